// Dashboard sessions. The bearer token never travels in a URL: `igord dashboard` asks the daemon
// (with the token) for a one-time login code, the browser redeems it once at /login for an HttpOnly,
// SameSite=Strict session cookie, and that cookie opens only the read-only (GET) routes.
import { randomBytes, timingSafeEqual } from "node:crypto";

/** A login link works once, and only this long after it was printed. */
export const LOGIN_CODE_TTL_MS = 60_000;
/** A dashboard session lasts this long. */
export const SESSION_TTL_MS = 12 * 60 * 60_000;
/** Bounds on what a caller can make the daemon remember. */
export const MAX_LOGIN_CODES = 16;
export const MAX_SESSIONS = 64;
export const SESSION_COOKIE = "igord_session";

function secret(): string {
  return randomBytes(32).toString("base64url");
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Secrets with expiry, oldest dropped first when full. */
class Expiring {
  private readonly items = new Map<string, number>();
  constructor(private readonly max: number) {}

  add(value: string, until: number): void {
    this.sweep();
    while (this.items.size >= this.max) this.items.delete(this.items.keys().next().value as string);
    this.items.set(value, until);
  }

  /** The stored secret equal to `value` and still valid, compared in constant time. */
  find(value: string): string | null {
    this.sweep();
    for (const k of this.items.keys()) if (sameSecret(k, value)) return k;
    return null;
  }

  delete(value: string): void {
    this.items.delete(value);
  }

  private sweep(now = Date.now()): void {
    for (const [k, until] of this.items) if (until <= now) this.items.delete(k);
  }
}

export class DashboardSessions {
  private readonly codes = new Expiring(MAX_LOGIN_CODES);
  private readonly sessions = new Expiring(MAX_SESSIONS);

  /** A one-time login code (needs the bearer token to get). */
  issueCode(): string {
    const code = secret();
    this.codes.add(code, Date.now() + LOGIN_CODE_TTL_MS);
    return code;
  }

  /** Redeems a code once; returns the new session id, or null for an unknown, used or expired code. */
  redeem(code: string): string | null {
    const found = this.codes.find(code);
    if (found === null) return null;
    this.codes.delete(found);
    const session = secret();
    this.sessions.add(session, Date.now() + SESSION_TTL_MS);
    return session;
  }

  valid(session: string): boolean {
    return this.sessions.find(session) !== null;
  }
}

/** The session id in a request's Cookie header, if any. */
export function sessionFromCookie(header: string | undefined): string | null {
  for (const part of (header ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === SESSION_COOKIE) return v.join("=");
  }
  return null;
}

export function sessionCookie(session: string): string {
  return `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(SESSION_TTL_MS / 1000)}`;
}
