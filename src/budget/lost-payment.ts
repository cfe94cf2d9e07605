// A payment whose tick was lost (the process died after the receipt was signed and handed to the
// agent, before a checkpoint committed the tick) is still money spent: the payment journal keeps
// its receipt, and at the next start it is debited once as a signed lineage event of kind
// lost_payment. The event's reason carries the receipt itself, so a verifier can check it is the
// agent's own signed payment and count it with the payments in the event logs.
import { type BudgetOverride, LOST_PAYMENT_KIND, signBudgetOverride } from "../checkpoint/overrides.js";
import { hex } from "../hash/bytes.js";
import type { Ed25519Key } from "../identity/keys.js";
import { decodePaymentReceipt, type PaymentReceipt, verifyPaymentReceipt } from "../hostcalls/wallet-pay.js";

export { LOST_PAYMENT_KIND };

const REASON = /^lost payment at tick (\d+): .*, receipt ([0-9a-f]+)$/;

/** Whether `reason` has the form of a lost payment's (checkpoint/lineage-kind.ts: reserved to that kind). */
export function isLostPaymentReason(reason: string): boolean {
  return REASON.test(reason);
}

/** The reason recorded for a lost payment (the receipt in hex ends it). */
export function lostPaymentReason(tick: bigint, receipt: Uint8Array): string {
  const r = decodePaymentReceipt(receipt);
  return `lost payment at tick ${tick}: ${r?.amount ?? 0n} µ¢ to ${JSON.stringify(r?.recipient ?? "")}, receipt ${hex(receipt)}`;
}

/**
 * The signed lost_payment lineage event debiting the payment of `paid` (the tick it was made in, its
 * receipt) from `oldBudget` to `newBudget`, after the checkpoint `afterHash` at `tick`.
 */
export function lostPaymentEvent(
  identity: Ed25519Key,
  at: { afterHash: Uint8Array; tick: bigint; oldBudget: bigint; newBudget: bigint },
  paid: { tick: bigint; receipt: Uint8Array },
): BudgetOverride & { kind: typeof LOST_PAYMENT_KIND } {
  const fields = { ...at, reason: lostPaymentReason(paid.tick, paid.receipt) };
  return { kind: LOST_PAYMENT_KIND, ...fields, signature: signBudgetOverride(identity, fields) };
}

/** The payment a lost_payment lineage event debited; null for another kind or an unreadable one. */
export function parseLostPayment(e: { kind: string; reason: string }): { tick: bigint; receipt: Uint8Array; payment: PaymentReceipt; signed: boolean } | null {
  if (e.kind !== LOST_PAYMENT_KIND) return null;
  const m = REASON.exec(e.reason);
  if (!m) return null;
  const receipt = new Uint8Array(Buffer.from(m[2] as string, "hex"));
  const payment = decodePaymentReceipt(receipt);
  return payment ? { tick: BigInt(m[1] as string), receipt, payment, signed: verifyPaymentReceipt(receipt) } : null;
}

/** The budget after debiting `amount` (never below zero: the money is gone either way). */
export function debit(budget: bigint, amount: bigint): bigint {
  return amount >= budget ? 0n : budget - amount;
}
