// A budget override (a top-up or an explicit new budget on resume) is part of the lineage: signed by
// the agent's key over its public key, the checkpoint it follows, the tick and both budgets, so a
// verifier can tell a recorded top-up from a budget that was tampered upwards.
import type { Ed25519Key } from "../identity/keys.js";
import { signBytes, verifyBytes } from "../identity/keys.js";

const DOMAIN = new TextEncoder().encode("igord-budget-override-v1");

/**
 * The kind of a lineage event that debits a payment whose tick was lost (budget/lost-payment.ts):
 * named here, with the events' signing, so the chain's verifier needs nothing above this domain.
 */
export const LOST_PAYMENT_KIND = "lost_payment";

/**
 * The largest tick or budget a lineage event holds: its signed bytes and the store hold each as a
 * signed 64-bit integer (budgets are at most MAX_MICROCENTS, the same bound).
 */
export const MAX_EVENT_INTEGER = 2n ** 63n - 1n;

export interface OverrideFields {
  afterHash: Uint8Array;
  tick: bigint;
  oldBudget: bigint;
  newBudget: bigint;
  reason: string;
}

/** A budget override as recorded in the lineage: its fields and the agent's signature over them. */
export interface BudgetOverride extends OverrideFields {
  signature: Uint8Array;
}

export function budgetOverrideSigningBytes(publicKey: Uint8Array, o: OverrideFields): Uint8Array {
  const reason = new TextEncoder().encode(o.reason);
  const out = new Uint8Array(DOMAIN.length + 32 + 32 + 24 + reason.length);
  let off = 0;
  out.set(DOMAIN, off);
  out.set(publicKey, (off += DOMAIN.length));
  out.set(o.afterHash, (off += 32));
  const dv = new DataView(out.buffer);
  dv.setBigUint64((off += 32), o.tick, true);
  dv.setBigInt64(off + 8, o.oldBudget, true);
  dv.setBigInt64(off + 16, o.newBudget, true);
  out.set(reason, off + 24);
  return out;
}

export function signBudgetOverride(key: Ed25519Key, o: OverrideFields): Uint8Array {
  return signBytes(key, budgetOverrideSigningBytes(key.publicKey, o));
}

/** Whether the lineage event `o` is signed by the agent whose public key is `publicKey`. */
export function overrideSigned(publicKey: Uint8Array, o: BudgetOverride): boolean {
  return verifyBytes(publicKey, budgetOverrideSigningBytes(publicKey, o), o.signature);
}
