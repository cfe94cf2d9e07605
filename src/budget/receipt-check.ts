// Whether a node execution receipt can be an agent's record of ticks its history holds: signed by
// the node it names (its peer id is its key), for this agent, for ticks no later than the history's
// head. Migration admission and `igord import` hold every arriving receipt to it, and store each once.
import { publicKeyFromPeerId } from "../identity/did.js";
import { verifyBytes } from "../identity/keys.js";
import { type Receipt, receiptSigningBytes } from "./receipt.js";

/** What is wrong with receipt `r` of `agentId` whose history ends at `headTick`; null when nothing is. */
export function receiptProblem(r: Receipt, agentId: string, headTick: bigint): string | null {
  // Only ticks the history holds were run (a receipt past the head would also make every real one
  // of a later return look old).
  if (r.tickStart > r.tickEnd || r.tickEnd > headTick) {
    return `a receipt of "${agentId}" is for ticks ${r.tickStart}..${r.tickEnd}, not within its history (head at tick ${headTick})`;
  }
  const key = publicKeyFromPeerId(r.nodeId);
  if (r.agentId !== agentId || !key || !verifyBytes(key, receiptSigningBytes(r), r.signature)) {
    return `the receipt for ticks ${r.tickStart}..${r.tickEnd} of "${agentId}" is not validly signed by node ${r.nodeId}`;
  }
  return null;
}

/**
 * A filter that passes each receipt the first time only: a node stores an agent's receipt once, and
 * a list that repeats one (a crafted file or package, or a store that took one twice) would have it
 * counted and listed to the agent twice.
 */
export function receiptsOnce(): (blob: Uint8Array) => boolean {
  const seen = new Set<string>();
  return (blob) => {
    const k = Buffer.from(blob).toString("base64");
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  };
}
