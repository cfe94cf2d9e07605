// The node's side of the payment journal: journal each receipt the main thread signs (before the
// signature goes back to the tick), and at start-up debit, exactly once, the journalled payments
// of ticks that never committed (budget/lost-payment.ts), whose receipts the agent then finds first
// among the node's receipts (wallet_receipt), so it need not pay for the same thing again.
import type { Logger } from "pino";
import { debit, LOST_PAYMENT_KIND, lostPaymentEvent, parseLostPayment } from "../budget/lost-payment.js";
import { equalBytes, hex, sha256 } from "../hash/bytes.js";
import { decodePaymentReceipt } from "../hostcalls/wallet-pay.js";
import type { Ed25519Key } from "../identity/keys.js";
import type { LineageEvent, SqliteStore } from "../store/sqlite-store.js";
import type { JournalledPayment } from "../store/types.js";
import type { ReceiptList } from "../wasm/host-io-services.js";

/** Writes the journal row of a receipt just signed for `agentId` in `tick`; durable once it resolves (throws or rejects: no signature). */
export function journalPayment(store: SqliteStore, agentId: string, tick: bigint, receipt: Uint8Array): Promise<void> {
  const r = decodePaymentReceipt(receipt);
  if (!r) throw new Error(`the payment receipt signed for agent "${agentId}" is malformed`);
  return store.journalPayment({ agentId, tick, receiptHash: sha256(receipt), amount: r.amount, recipient: r.recipient, memo: r.memo, receipt });
}

/** Drops the journal row of a receipt just signed for `agentId` that no guest took (its tick stopped waiting). */
export function unjournalPayment(store: SqliteStore, agentId: string, receipt: Uint8Array): void {
  store.unjournalPayment(agentId, sha256(receipt));
}

/**
 * Before the agent's first tick here (and after a handoff's detach, so nothing journalled stays
 * behind the package): every payment still journalled was lost — signed in a tick
 * after the stored head (lost with the process), or in a run of a committed tick that was thrown
 * away and re-run under the same number (its checkpoint settled only the receipts in its log) — so
 * it is debited from the budget the agent resumes with, by one signed lineage event each, committed
 * with the journal rows' removal (a second start finds none). Returns how many were debited.
 */
export function debitLostPayments(store: SqliteStore, logger: Logger, agentId: string): number {
  const lost = store.unsettledPayments(agentId);
  if (lost.length === 0) return 0;
  const head = store.head(agentId);
  if (!head) return 0;
  const events = lostPaymentEvents(store.identity(agentId), head, store.lineageEvents(agentId), lost);
  store.debitLostPayments(agentId, events);
  for (const [i, p] of lost.entries()) {
    const e = events[i] as LineageEvent;
    logger.warn(
      { event: "lost_payment_debited", agent: agentId, tick: String(p.tick), amount: String(p.amount), recipient: p.recipient, receipt: hex(p.receiptHash), oldBudget: String(e.oldBudget), newBudget: String(e.newBudget) },
      `${agentId} paid ${p.amount} µ¢ to ${JSON.stringify(p.recipient)} in tick ${p.tick}, which was lost; debited now`,
    );
  }
  return lost.length;
}

/**
 * The signed lost_payment events that debit `lost` (journalled payments no committed tick settled)
 * after `head`, one each, from the budget in force after it (`prior`: the agent's lineage events).
 */
export function lostPaymentEvents(identity: Ed25519Key, head: { hash: Uint8Array; tick: bigint; budget: bigint }, prior: readonly LineageEvent[], lost: readonly JournalledPayment[]): LineageEvent[] {
  let budget = prior.filter((e) => equalBytes(e.afterHash, head.hash)).at(-1)?.newBudget ?? head.budget;
  return lost.map((p) => {
    const event = lostPaymentEvent(identity, { afterHash: head.hash, tick: head.tick, oldBudget: budget, newBudget: debit(budget, p.amount) }, p);
    budget = event.newBudget;
    return event;
  });
}

/**
 * Whether a run after the stored head paid and was thrown away (its payment is debited after the
 * head): the agent resuming from that head is told it was interrupted (resume_interrupted), so an
 * InFlight intent is reconciled with that receipt, however cleanly the agent stopped or left.
 */
export function paidAfterHead(events: readonly LineageEvent[], headHash: Uint8Array): boolean {
  return events.some((e) => e.kind === LOST_PAYMENT_KIND && equalBytes(e.afterHash, headHash));
}

/**
 * What wallet_receipt_count / wallet_receipt list for an agent: first the receipts of its payments
 * debited as lost (their ticks never committed, so the agent's state lost them), newest first, then
 * the node's execution receipts, oldest first. A lost payment left the budget: handing its receipt
 * back lets an agent reconciling an Unresolved payment show it to the provider instead of paying
 * twice (agents/sdk/payments.ts findReceipt). Newest first, and ahead of the execution receipts,
 * so a search ends at the first execution receipt however long the agent has run. `pending`: those
 * of runs thrown away while the node runs on (scheduler/checkpointer.ts lostReceipts).
 */
export function nodeReceipts(store: SqliteStore, agentId: string, pending: readonly Uint8Array[] = []): ReceiptList {
  const lost: Uint8Array[] = [];
  for (const e of store.lineageEvents(agentId)) {
    const p = parseLostPayment(e);
    if (p?.signed) lost.push(p.receipt);
  }
  // `pending`: debited while the agent runs on, newest first, stored with the next checkpoint (a
  // receipt in both lists for the moment that checkpoint is being committed is listed once).
  const fresh = pending.filter((r) => !lost.some((l) => equalBytes(l, r)));
  const first = [...fresh, ...lost.reverse()];
  // The execution receipts are read one by one (a long-lived agent has hundreds of thousands).
  return {
    count: () => first.length + store.receiptCount(agentId),
    at: (i) => (i < 0 ? null : i < first.length ? (first[i] as Uint8Array) : store.receiptAt(agentId, i - first.length)),
  };
}
