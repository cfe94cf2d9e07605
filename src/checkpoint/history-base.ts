// The signed base of a pruned history. --history-retention keeps an agent's newest checkpoints and
// deletes the older ones; the agent's key then signs where the stored history now starts (the base:
// its oldest kept checkpoint), where it started before any pruning (the origin) and how many
// checkpoints were removed. `igord verify` reads a history that starts at its signed base as pruned
// by its owner, not cut by someone else, and still checks every checkpoint from the base on.
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
