// Before a client sends the bearer token, the server proves it holds it: an HMAC of the client's nonce
// and of the very endpoint the client reached (its address and port as each side of the connection
// sees them). A daemon that died leaves <data-dir>/control.addr behind, and any local user may listen
// on that port afterwards; the token outlives restarts. The endpoint in the proof stops such a
// listener from relaying the nonce to the real daemon on another port and passing its answer on.
import { createHmac, timingSafeEqual } from "node:crypto";

export const PROOF_PATH = "/v1/proof";
/** The client's nonce: 32 random bytes in hex. */
export const PROOF_NONCE_RE = /^[0-9a-f]{64}$/;

export interface Endpoint {
  address: string;
  port: number;
}

/** An IPv4 address as a dual-stack socket reports it ("::ffff:127.0.0.1") is that IPv4 address. */
function plainAddress(a: string): string {
  return a.startsWith("::ffff:") ? a.slice("::ffff:".length) : a;
}

export function controlProof(token: string, nonce: string, endpoint: Endpoint): string {
  return createHmac("sha256", token).update(`igord-control-proof/v1\0${nonce}\0${plainAddress(endpoint.address)}\0${endpoint.port}`).digest("hex");
}

/** Whether `proof` is the proof for this nonce and endpoint (compared in constant time). */
export function proofHolds(proof: unknown, token: string, nonce: string, endpoint: Endpoint): boolean {
  if (typeof proof !== "string") return false;
  const want = Buffer.from(controlProof(token, nonce, endpoint));
  const got = Buffer.from(proof);
  return got.length === want.length && timingSafeEqual(got, want);
}
