// What igor's mock servers (cmd/paywall, cmd/mockcloud) share: Go-style listen addresses, x402 payment
// terms, and what igord's mocks add to them: every `X-Payment` receipt is checked (Ed25519 signature
// against the key inside it, terms, single use) before anything is delivered.
import { createHash, createPublicKey, verify } from "node:crypto";
import { createServer } from "node:http";

/** Bytes of a payment receipt around its two strings: i64 amount, i64 ts, two u32 lengths, key, signature. */
export const RECEIPT_FIXED_BYTES = 8 + 8 + 4 + 4 + 32 + 64;
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
/** Largest X-Payment header accepted (hex of a receipt with igor's longest recipient and memo). */
export const MAX_PAYMENT_HEADER_CHARS = 2 * (RECEIPT_FIXED_BYTES + 256 + 512);

/** Parses a Go-style listen address: ":8402", "127.0.0.1:0", "[::1]:8402", "localhost:8500". */
export function parseAddr(addr) {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr.trim());
  if (!m) throw new Error(`listen address "${addr}" is not host:port (e.g. ":8402" or "127.0.0.1:0")`);
  const host = m[1] ?? m[2] ?? "";
  return { host: host === "" ? undefined : host, port: Number(m[3]) };
}

/** x402 terms as igor's servers write them: [i64 amount][u32 len][recipient][u32 len][memo], LE. */
export function encodePaymentTerms(amount, recipient, memo) {
  const r = Buffer.from(recipient, "utf8");
  const m = Buffer.from(memo, "utf8");
  const buf = Buffer.alloc(8 + 4 + r.length + 4 + m.length);
  let off = buf.writeBigInt64LE(BigInt(amount), 0);
  off = buf.writeUInt32LE(r.length, off);
  off += r.copy(buf, off);
  off = buf.writeUInt32LE(m.length, off);
  m.copy(buf, off);
  return buf;
}

/**
 * Parses a payment receipt `[i64 amount][i64 ts ns][u32 len][recipient][u32 len][memo][32 B key]` +
 * `[64 B sig]`; returns null when the bytes are not one.
 */
export function parseReceipt(buf) {
  if (buf.length < RECEIPT_FIXED_BYTES) return null;
  let off = 0;
  const amount = buf.readBigInt64LE(off);
  off += 8;
  const timestampNs = buf.readBigInt64LE(off);
  off += 8;
  const rlen = buf.readUInt32LE(off);
  off += 4;
  if (off + rlen + 4 > buf.length) return null;
  const recipient = buf.subarray(off, off + rlen).toString("utf8");
  off += rlen;
  const mlen = buf.readUInt32LE(off);
  off += 4;
  if (off + mlen + ED25519_PUBLIC_KEY_BYTES + ED25519_SIGNATURE_BYTES !== buf.length) return null;
  const memo = buf.subarray(off, off + mlen).toString("utf8");
  off += mlen;
  const publicKey = buf.subarray(off, off + ED25519_PUBLIC_KEY_BYTES);
  off += ED25519_PUBLIC_KEY_BYTES;
  return { amount, timestampNs, recipient, memo, publicKey, signed: buf.subarray(0, off), signature: buf.subarray(off) };
}

// Ed25519's curve (RFC 8032), only to refuse keys of small order: no one holds their private key,
// and signatures "by" them verify by chance (igor's all-zero key of an agent without identity is one:
// its signatures verify about one time in four).
const P = 2n ** 255n - 19n;
const modp = (a) => ((a % P) + P) % P;
const powp = (b, e) => {
  let r = 1n;
  for (b = modp(b); e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
  return r;
};
const inv = (a) => powp(a, P - 2n);
const D = modp(-121665n * inv(121666n));
const SQRT_M1 = powp(2n, (P - 1n) / 4n);

/** The affine point a 32-byte encoding names, or null if it names none (or not canonically). */
function decodePoint(bytes) {
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(bytes[i]);
  const sign = y >> 255n;
  y &= (1n << 255n) - 1n;
  if (y >= P) return null;
  const u = modp(y * y - 1n);
  const v = modp(D * y * y + 1n);
  let x = modp(u * powp(v, 3n) * powp(u * powp(v, 7n), (P - 5n) / 8n));
  if (modp(v * x * x) !== u) {
    x = modp(x * SQRT_M1);
    if (modp(v * x * x) !== u) return null;
  }
  if (x === 0n && sign === 1n) return null;
  if ((x & 1n) !== sign) x = P - x;
  return { x, y };
}

function double({ x, y }) {
  const t = modp(D * x * x * y * y);
  return { x: modp(2n * x * y * inv(1n + t)), y: modp((y * y + x * x) * inv(1n - t)) };
}

/** True when the key is not a point, or [8]A is the identity (its order divides the cofactor). */
export function weakPublicKey(bytes) {
  let pt = decodePoint(bytes);
  if (pt === null) return true;
  for (let i = 0; i < 3; i++) pt = double(pt);
  return pt.x === 0n && pt.y === 1n;
}

function signatureValid(receipt) {
  if (weakPublicKey(receipt.publicKey)) return false;
  try {
    const key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(receipt.publicKey).toString("base64url") },
      format: "jwk",
    });
    return verify(null, receipt.signed, key, receipt.signature);
  } catch {
    return false;
  }
}

/**
 * Checks X-Payment receipts against fixed terms and remembers every receipt it accepted, so none is
 * used twice (keyed by the hash of the signed part: a signature cannot be altered to pass as new).
 */
export class ReceiptChecker {
  constructor(terms) {
    this.terms = terms;
    this.spent = new Set();
  }

  /** {ok: true, receipt} or {ok: false, status, reason}; an accepted receipt is spent at once. */
  check(header) {
    const hex = header.trim();
    if (hex.length > MAX_PAYMENT_HEADER_CHARS || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
      return { ok: false, status: 400, reason: "malformed", detail: "X-Payment is not a hex receipt" };
    }
    const receipt = parseReceipt(Buffer.from(hex, "hex"));
    if (receipt === null) return { ok: false, status: 400, reason: "malformed", detail: "X-Payment is not a payment receipt" };
    if (!signatureValid(receipt)) {
      return { ok: false, status: 403, reason: "bad_signature", detail: "receipt signature does not verify against its public key" };
    }
    const t = this.terms;
    if (receipt.amount !== BigInt(t.amount) || receipt.recipient !== t.recipient || receipt.memo !== t.memo) {
      return {
        ok: false,
        status: 403,
        reason: "wrong_terms",
        detail: `receipt pays ${receipt.amount} to "${receipt.recipient}" for "${receipt.memo}"; terms are ${t.amount} to "${t.recipient}" for "${t.memo}"`,
      };
    }
    const id = createHash("sha256").update(receipt.signed).digest("hex");
    if (this.spent.has(id)) return { ok: false, status: 409, reason: "replayed", detail: "receipt was already used" };
    this.spent.add(id);
    return { ok: true, receipt, id };
  }
}

/** A request without payment: 402 and the terms, as igor's servers answer it. */
export function askForPayment(name, req, res, terms, stats, log) {
  stats.payments402++;
  log(`[${name}] 402 → ${remote(req)} (no payment header)`);
  res.writeHead(402, { "Content-Type": "application/octet-stream" });
  res.end(encodePaymentTerms(terms.amount, terms.recipient, terms.memo));
}

/** A refused payment: its status and `{"error": reason, "detail": ...}`, counted by reason. */
export function refusePayment(name, req, res, verdict, stats, log) {
  stats.refused[verdict.reason] = (stats.refused[verdict.reason] ?? 0) + 1;
  log(`[${name}] ${verdict.status} → ${remote(req)} (payment refused: ${verdict.reason}: ${verdict.detail})`);
  res.writeHead(verdict.status, { "Content-Type": "application/json", "X-Payment-Error": verdict.reason });
  res.end(JSON.stringify({ error: verdict.reason, detail: verdict.detail }));
}

/** Go's http.Error: text/plain, the message and a newline. */
export function httpError(res, status, msg) {
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" });
  res.end(`${msg}\n`);
}

export function health(res) {
  res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
  res.end("ok");
}

export function remote(req) {
  return `${req.socket.remoteAddress}:${req.socket.remotePort}`;
}

/**
 * Starts `handler` on `addr` (Go-style) or on { host, port }; resolves once listening. The result
 * names the bound port (port 0 picks one) and closes every connection on close().
 */
export async function listen(name, handler, { addr, host, port, log }) {
  const where = addr !== undefined ? parseAddr(addr) : { host, port: port ?? 0 };
  const server = createServer((req, res) => {
    try {
      handler(req, res);
    } catch (e) {
      log(`[${name}] handler error: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent) httpError(res, 500, "internal error");
    }
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(where.port, where.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  const boundPort = typeof bound === "object" && bound !== null ? bound.port : where.port;
  log(`[${name}] Listening on ${where.host ?? ""}:${boundPort}`);
  return {
    server,
    port: boundPort,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Runs a server from the command line until SIGINT/SIGTERM, as igor's do. */
export async function runMain(name, start, envVar, defaultAddr) {
  const log = (line) => console.log(`${new Date().toISOString()} ${line}`);
  let srv;
  try {
    srv = await start({ addr: process.env[envVar] || defaultAddr, log });
  } catch (e) {
    log(`[${name}] Server error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
  const stop = async () => {
    log(`[${name}] Shutting down...`);
    await srv.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
