// http_request(method, mlen, url, ulen, headers, hlen, body, blen, resp, resp_cap) -> i32
// (capability "http", event id 8, igor's ABI). The request runs outside the agent's thread (the
// worker hands it to the main thread and waits, see wasm/host-io.ts); this file is the part that
// runs in the tick: argument checks, policy, recording, and writing the response into guest memory.
//
// Results (igor's codes): the HTTP status as is (any status, 402 included, is a result, not an
// error); -1 transport error or unreadable argument; -2 an argument above its limit; -3 refused
// (host not in allowed_hosts, an address the operator has not opened (http-destination.ts), or a
// method other than GET/HEAD without ACTIVE_OWNER authority);
// -4 timeout; -5 response larger than max_response_bytes or than the buffer, with the body length
// written as a u32 at `resp` when resp_cap >= 4. Response layout: [u32 body length][body].
//
// Every invocation records one entry. Payload: empty when the arguments cannot be read (-1/-2);
// otherwise [32 B SHA-256 of the request] followed by the body (a status), the u32 size hint (-5),
// or nothing. Replay never touches the network: it returns the recorded result and bytes, after
// checking that the agent sends the same request again (same digest) and that the recorded
// response still fits the buffer it passes.
import { createHash } from "node:crypto";
import { ErrorCode, IgordError } from "../errors.js";
import { EMPTY, type Observation } from "../eventlog/recorder.js";
import { guestBytes, type HostContext } from "./context.js";
import { HostcallId } from "./registry.js";

/** igor's limits on the request's parts (above: -2). */
export const HTTP_MAX_METHOD_BYTES = 16;
export const HTTP_MAX_URL_BYTES = 8 * 1024;
export const HTTP_MAX_HEADERS_BYTES = 32 * 1024;
export const HTTP_MAX_BODY_BYTES = 1024 * 1024;
/** Defaults of the manifest's http options (igor's). */
export const HTTP_DEFAULT_TIMEOUT_MS = 10_000;
export const HTTP_DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
/** max_response_bytes may not exceed this: a response is recorded in the tick's event log. */
export const HTTP_MAX_RESPONSE_LIMIT = 8 * 1024 * 1024;

export const HttpResult = {
  network: -1,
  inputTooLong: -2,
  refused: -3,
  timeout: -4,
  tooLarge: -5,
} as const;

const DIGEST_BYTES = 32;

/** The manifest's `http` options, validated at load and carried in the import plan. */
export interface HttpOptions {
  /** Exact hostnames as a URL's hostname spells them (allowedHost); empty = any host. */
  allowedHosts: string[];
  timeoutMs: number;
  maxResponseBytes: number;
}

function optionInt(options: Readonly<Record<string, unknown>>, key: string, dflt: number, max: number): number {
  const v = options[key];
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1 || v > max) {
    throw new IgordError(ErrorCode.ManifestInvalid, `capability "http" option ${key} must be an integer in [1, ${max}], got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Characters an allowed_hosts entry may not hold: they would make it more than a host (a path,
 * query, fragment or user), or the URL parser would drop them (whitespace, controls) and the
 * entry would name another host than the one written.
 */
const NOT_IN_A_HOST = /[/\\?#@\s\p{Cc}]/u;

/**
 * An allowed_hosts entry as the hostname a request's URL has (WHATWG: lowercased, punycode for an
 * internationalised name, an IPv6 literal bracketed, IPv4 shorthand expanded), which is what a
 * request is matched on: an entry kept as written ("bücher.example", "::1") never matched one.
 * An entry with a port is refused rather than read as its host: a request's port is not compared,
 * so "example.com:8080" read as "example.com" would allow every port of it.
 */
function allowedHost(entry: string): string {
  const invalid = (why: string) => new IgordError(ErrorCode.ManifestInvalid, `capability "http" option allowed_hosts entry ${JSON.stringify(entry)} ${why}`);
  if (entry === "") throw invalid("is empty");
  if (NOT_IN_A_HOST.test(entry)) throw invalid("must be a host name alone (no scheme, path, user, query or spaces)");
  // An IPv6 literal may be written bare ("::1"); a single colon outside brackets is a port.
  const colons = entry.split(":").length - 1;
  const host = colons > 1 && !entry.startsWith("[") ? `[${entry}]` : entry;
  let hostname: string;
  try {
    hostname = new URL(`http://${host}`).hostname;
  } catch {
    throw invalid("is not a host name or IP address");
  }
  if (hostname === "") throw invalid("is not a host name or IP address");
  if (/:[^\]]*$/.test(host)) throw invalid("must not have a port (a request's port is not compared)");
  return hostname;
}

export function parseHttpOptions(options: Readonly<Record<string, unknown>>): HttpOptions {
  const hosts = options.allowed_hosts ?? [];
  if (!Array.isArray(hosts) || hosts.some((h) => typeof h !== "string")) {
    throw new IgordError(ErrorCode.ManifestInvalid, `capability "http" option allowed_hosts must be an array of host names, got ${JSON.stringify(hosts)}`);
  }
  return {
    allowedHosts: (hosts as string[]).map(allowedHost),
    timeoutMs: optionInt(options, "timeout_ms", HTTP_DEFAULT_TIMEOUT_MS, 24 * 3_600_000),
    maxResponseBytes: optionInt(options, "max_response_bytes", HTTP_DEFAULT_MAX_RESPONSE_BYTES, HTTP_MAX_RESPONSE_LIMIT),
  };
}

/** A request as the host performs it (structured-cloned to the main thread). */
export interface HttpCall {
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array | null;
  /** The deadline for the whole exchange, response body included. */
  timeoutMs: number;
  /** Read at most this many body bytes (max_response_bytes + 1: one more shows the overflow). */
  readLimit: number;
}

export type HttpReply =
  | { kind: "response"; status: number; body: Uint8Array }
  | { kind: "timeout" }
  /** The connection would go to an address the operator has not opened (http-destination.ts): -3. */
  | { kind: "refused"; message: string }
  | { kind: "error"; message: string };

/** Methods that only read: observations anyone may make. Every other method acts on the world. */
export function isObservationMethod(method: string): boolean {
  const m = method.toUpperCase();
  return m === "GET" || m === "HEAD";
}

/** igor's header text: `Key: Value` lines, split at the first colon, trimmed; lines without a colon or a name are skipped. */
export function parseHeaderLines(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const colon = line.indexOf(":");
    if (colon <= 0) continue; // no colon, or no name
    out.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return out;
}

/** Whether the agent's plan makes its ticks wait on the network (it then gets a worker of its own). */
export function waitsOnNetwork(plan: { igor: readonly string[] }): boolean {
  return plan.igor.includes("http_request");
}

interface Request {
  method: string;
  url: string;
  headers: Uint8Array;
  body: Uint8Array;
  digest: Uint8Array;
}

const utf8 = new TextDecoder();

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

/** The request's identity in the log: SHA-256 of [u32 len][method][u32 len][url][u32 len][headers][u32 len][body]. */
function requestDigest(parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const p of parts) h.update(u32(p.length)).update(p);
  return new Uint8Array(h.digest());
}

export function httpRequest(ctx: HostContext, opts: HttpOptions | undefined): (...args: number[]) => number {
  const options = opts ?? parseHttpOptions({});
  return (mPtr = 0, mLen = 0, uPtr = 0, uLen = 0, hPtr = 0, hLen = 0, bPtr = 0, bLen = 0, rPtr = 0, rCap = 0) => {
    const mlen = mLen >>> 0;
    const ulen = uLen >>> 0;
    const hlen = hLen >>> 0;
    const blen = bLen >>> 0;
    const cap = rCap >>> 0;
    /** The request as the agent passes it now: a result code when its arguments are unusable. */
    const read = (): Request | number => {
      if (mlen > HTTP_MAX_METHOD_BYTES || ulen > HTTP_MAX_URL_BYTES || hlen > HTTP_MAX_HEADERS_BYTES || blen > HTTP_MAX_BODY_BYTES) return HttpResult.inputTooLong;
      const m = guestBytes(ctx, mPtr, mlen);
      const u = guestBytes(ctx, uPtr, ulen);
      const hd = guestBytes(ctx, hPtr, hlen);
      const b = guestBytes(ctx, bPtr, blen);
      if (m === null || u === null || hd === null || b === null) return HttpResult.network;
      // Go's net/http treats an empty method as GET.
      const method = mlen === 0 ? "GET" : utf8.decode(m);
      return { method, url: utf8.decode(u), headers: hd.slice(), body: b.slice(), digest: requestDigest([m, u, hd, b]) };
    };
    const withDigest = (digest: Uint8Array, rest: Uint8Array = EMPTY): Uint8Array => {
      const out = new Uint8Array(DIGEST_BYTES + rest.length);
      out.set(digest);
      out.set(rest, DIGEST_BYTES);
      return out;
    };
    const live = (): Observation => {
      const req = read();
      if (typeof req === "number") return { result: req, payload: EMPTY };
      const refused = { result: HttpResult.refused, payload: withDigest(req.digest) };
      let url: URL;
      try {
        url = new URL(req.url);
      } catch {
        return options.allowedHosts.length > 0 ? refused : { result: HttpResult.network, payload: withDigest(req.digest) };
      }
      if (options.allowedHosts.length > 0 && !options.allowedHosts.includes(url.hostname.toLowerCase())) return refused;
      if (url.protocol !== "http:" && url.protocol !== "https:") return { result: HttpResult.network, payload: withDigest(req.digest) };
      // CE-4: a request that may change the world is a side effect, allowed only to the active owner.
      if (!isObservationMethod(req.method) && !ctx.authority()) return refused;
      const http = ctx.world.http;
      if (!http) return { result: HttpResult.network, payload: withDigest(req.digest) };
      const reply = http({
        method: req.method,
        url: req.url,
        headers: parseHeaderLines(utf8.decode(req.headers)),
        body: req.body.length > 0 ? req.body : null,
        timeoutMs: options.timeoutMs,
        readLimit: options.maxResponseBytes + 1,
      });
      if (reply.kind === "timeout") return { result: HttpResult.timeout, payload: withDigest(req.digest) };
      if (reply.kind === "refused") return refused;
      if (reply.kind === "error") return { result: HttpResult.network, payload: withDigest(req.digest) };
      const n = reply.body.length;
      if (n > options.maxResponseBytes || 4 + n > cap) return { result: HttpResult.tooLarge, payload: withDigest(req.digest, u32(n)) };
      if (guestBytes(ctx, rPtr, 4 + n) === null) return { result: HttpResult.network, payload: withDigest(req.digest) };
      ctx.source.reserve?.(HostcallId.http_request, DIGEST_BYTES + n);
      return { result: reply.status, payload: withDigest(req.digest, reply.body) };
    };
    const check = (rec: Observation): string | null => {
      const req = read();
      if (typeof req === "number") {
        return rec.result === req && rec.payload.length === 0 ? null : `the agent's arguments give ${req} now, the log recorded ${rec.result}`;
      }
      if (rec.payload.length < DIGEST_BYTES) return `payload is ${rec.payload.length} bytes, shorter than the request digest`;
      const at = req.digest.findIndex((b, i) => b !== rec.payload[i]);
      if (at >= 0) return "the agent sends a different request from the recorded one (method, URL, headers or body)";
      const rest = rec.payload.length - DIGEST_BYTES;
      if (rec.result >= 0) return 4 + rest <= cap ? null : `the recorded ${rest}-byte response does not fit the ${cap}-byte buffer the agent passes`;
      if (rec.result === HttpResult.tooLarge) return rest === 4 ? null : `a -5 result recorded ${rest} bytes after the digest, not a 4-byte size hint`;
      return rest === 0 ? null : `a ${rec.result} result recorded ${rest} bytes after the digest`;
    };
    const o = ctx.source.observe(HostcallId.http_request, live, check);
    return deliver(ctx, o, rPtr, cap);
  };
}

/** Writes what the call returns into guest memory: [u32 len][body] for a status, the size hint for -5. */
function deliver(ctx: HostContext, o: Observation, rPtr: number, cap: number): number {
  if (o.result >= 0) {
    const body = o.payload.subarray(DIGEST_BYTES);
    const dst = guestBytes(ctx, rPtr, 4 + body.length);
    if (dst === null) return HttpResult.network;
    dst.set(u32(body.length));
    dst.set(body, 4);
  } else if (o.result === HttpResult.tooLarge && cap >= 4) {
    guestBytes(ctx, rPtr, 4)?.set(o.payload.subarray(DIGEST_BYTES, DIGEST_BYTES + 4));
  }
  return o.result;
}
