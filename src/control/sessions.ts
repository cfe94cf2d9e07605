// Dashboard sessions. The bearer token never travels in a URL: `igord dashboard` asks the daemon
// (with the token) for a one-time login code, the browser redeems it once at /login for a session the
// page keeps in its origin's storage (this scheme, host and port alone) and sends as a header
// (`Authorization: Session <id>`), which opens only the read-only (GET) routes. Not a cookie: a
// browser sends a host's cookies to every port of it, so any local server the operator's browser
// visited got the session, and two daemons on one host overwrote each other's.
import { randomBytes, timingSafeEqual } from "node:crypto";

/** A login link works once, and only this long after it was printed. */
export const LOGIN_CODE_TTL_MS = 60_000;
/** A dashboard session lasts this long. */
export const SESSION_TTL_MS = 12 * 60 * 60_000;
/** Bounds on what a caller can make the daemon remember. */
export const MAX_LOGIN_CODES = 16;
export const MAX_SESSIONS = 64;

function secret(): string {
  return randomBytes(32).toString("base64url");
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Now, for expiries: monotonic, so a wall clock stepped back does not keep a login link working for
 * the size of the step, nor one stepped forward end every session at once.
 */
const now = (): number => performance.now();

/** Secrets with expiry (on `now`'s clock), oldest dropped first when full. */
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

  private sweep(at = now()): void {
    for (const [k, until] of this.items) if (until <= at) this.items.delete(k);
  }
}

export class DashboardSessions {
  private readonly codes = new Expiring(MAX_LOGIN_CODES);
  private readonly sessions = new Expiring(MAX_SESSIONS);

  /** A one-time login code (needs the bearer token to get). */
  issueCode(): string {
    const code = secret();
    this.codes.add(code, now() + LOGIN_CODE_TTL_MS);
    return code;
  }

  /** Redeems a code once; returns the new session id, or null for an unknown, used or expired code. */
  redeem(code: string): string | null {
    const found = this.codes.find(code);
    if (found === null) return null;
    this.codes.delete(found);
    const session = secret();
    this.sessions.add(session, now() + SESSION_TTL_MS);
    return session;
  }

  valid(session: string): boolean {
    return this.sessions.find(session) !== null;
  }
}

/** The scheme of a dashboard session in the Authorization header. */
export const SESSION_SCHEME = "Session";

/** The session id a request carries (`Authorization: Session <id>`), if any. */
export function sessionFromHeader(header: string | undefined): string | null {
  const m = /^Session ([A-Za-z0-9_-]{1,128})$/.exec(header ?? "");
  return m ? (m[1] as string) : null;
}
