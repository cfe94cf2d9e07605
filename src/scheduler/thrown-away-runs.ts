// Payments of tick runs that will never commit (a lapsed lease, a worker lost, a failure, a stop with
// the run in flight) left the budget all the same: taken from it at once, written as lost_payment
// events with the next checkpoint (or the stop's), and listed to the agent until then.
import { debit } from "../budget/lost-payment.js";
import { decodePaymentReceipt } from "../hostcalls/wallet-pay.js";
import type { AgentRuntime } from "./agent-runtime.js";
import type { Checkpointer } from "./checkpointer.js";

/** Debits the payments a thrown-away run of `tick` made, given by their receipts. */
export function debitThrownAwayRun(a: AgentRuntime, tick: bigint, receipts: readonly Uint8Array[], checkpointer: Checkpointer): void {
  for (const receipt of receipts) {
    const p = decodePaymentReceipt(receipt);
    const oldBudget = a.budget;
    a.budget = debit(a.budget, p?.amount ?? 0n);
    checkpointer.addLostPayments(a.id, [{ tick, receipt, oldBudget, newBudget: a.budget }]);
    a.logger.warn(
      { event: "lost_payment_debited", tick: String(tick), amount: String(p?.amount), recipient: p?.recipient, oldBudget: String(oldBudget), newBudget: String(a.budget) },
      `tick ${tick} paid ${p?.amount} µ¢ to ${JSON.stringify(p?.recipient)} in a run that was thrown away; debited now`,
    );
  }
}

/**
 * A run of `tick` was thrown away without its observations (lost with its worker, failed, or in
 * flight when the agent stopped): what it paid is known from the payment journal, where the main
 * thread wrote it before the run held the receipt. No run of it can pay any more: the pool answers
 * only the agent's current placement.
 */
export function debitAbandonedRun(a: AgentRuntime, tick: bigint, checkpointer: Checkpointer): void {
  debitThrownAwayRun(a, tick, checkpointer.abandonedPayments(a.id, tick), checkpointer);
}
