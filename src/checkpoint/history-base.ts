// The signed base of a pruned history. --history-retention keeps an agent's newest checkpoints and
// deletes the older ones; the agent's key then signs where the stored history now starts (the base:
// its oldest kept checkpoint), where it started before any pruning (the origin) and how many
// checkpoints were removed. `igord verify` reads a history that starts at its signed base as pruned
// by its owner, not cut by someone else, and still checks every checkpoint from the base on.
import { hex } from "../hash/bytes.js";
import type { Ed25519Key } from "../identity/keys.js";
import { signBytes } from "../identity/keys.js";

const DOMAIN = new TextEncoder().encode("igord-history-base-v1");

export interface HistoryBaseFields {
  /** Hash of the oldest checkpoint this node ever stored for the agent (its genesis, usually). */
  originHash: Uint8Array;
  /** Hash and tick of the oldest checkpoint kept. */
  baseHash: Uint8Array;
  baseTick: bigint;
  /** Checkpoints removed before the base, in all. */
  pruned: bigint;
}

export interface HistoryBase extends HistoryBaseFields {
  signature: Uint8Array;
}

export function historyBaseSigningBytes(publicKey: Uint8Array, b: HistoryBaseFields): Uint8Array {
  const out = new Uint8Array(DOMAIN.length + 32 * 3 + 16);
  out.set(DOMAIN, 0);
  let off = DOMAIN.length;
  out.set(publicKey, off);
  out.set(b.originHash, (off += 32));
  out.set(b.baseHash, (off += 32));
  const dv = new DataView(out.buffer);
  dv.setBigUint64((off += 32), b.baseTick, true);
  dv.setBigUint64(off + 8, b.pruned, true);
  return out;
}

export function signHistoryBase(key: Ed25519Key, b: HistoryBaseFields): Uint8Array {
  return signBytes(key, historyBaseSigningBytes(key.publicKey, b));
}

/**
 * A history base as JSON, in a migration package's header and in an export's history-base.json:
 * hashes and the signature as lowercase hex, the counts as decimal strings.
 */
export interface HistoryBaseJson {
  originHash: string;
  baseHash: string;
  baseTick: string;
  pruned: string;
  signature: string;
}

const U64_MAX = 2n ** 64n - 1n;

export function historyBaseToJson(b: HistoryBase): HistoryBaseJson {
  return { originHash: hex(b.originHash), baseHash: hex(b.baseHash), baseTick: b.baseTick.toString(), pruned: b.pruned.toString(), signature: hex(b.signature) };
}

/** The base `v` holds, or what is wrong with it (every wrong field named). */
export function historyBaseFromJson(v: unknown): HistoryBase | string {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "not an object";
  const o = v as Record<string, unknown>;
  const bytes = (field: keyof HistoryBaseJson, n: number): Uint8Array | string => {
    const s = o[field];
    return typeof s === "string" && s.length === 2 * n && /^[0-9a-f]*$/.test(s) ? new Uint8Array(Buffer.from(s, "hex")) : `${field} must be ${n} bytes of lowercase hex`;
  };
  const count = (field: keyof HistoryBaseJson): bigint | string => {
    const s = o[field];
    return typeof s === "string" && /^(0|[1-9][0-9]{0,19})$/.test(s) && BigInt(s) <= U64_MAX ? BigInt(s) : `${field} must be a decimal string of a 64-bit count`;
  };
  const fields = { originHash: bytes("originHash", 32), baseHash: bytes("baseHash", 32), baseTick: count("baseTick"), pruned: count("pruned"), signature: bytes("signature", 64) };
  const wrong = Object.values(fields).filter((f): f is string => typeof f === "string");
  return wrong.length > 0 ? wrong.join("; ") : (fields as HistoryBase);
}
