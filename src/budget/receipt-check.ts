// Whether node execution receipts can be an agent's record of ticks its history holds: each signed
// by the node it names (its peer id is its key), for this agent, for ticks no later than the
// history's head, with a cost and a budget after that are no negative amounts, in tick order (each
// after the one before), and never claiming more budget left than the checkpoint at its last tick
// held. The node that takes the agent continues its own receipts from the newest one (its last tick
// and budget after, store receiptBase): a budget after above the checkpoint's would have it sign,
// for ticks it never ran, a cost the agent never spent; one out of order, bill ticks billed already.
// Migration admission and `igord import` hold every arriving receipt to it, and store each once.
//
// One negative cost is the record of an older igord, not a gift: before receipts ended at their
// checkpoint's budget (2026-12-02), a node that debited a lost payment after its head and stopped
// before a tick signed the stop's receipt with the payment already out of its budget after, then
// billed the next ticks from the head's budget, so that receipt's cost is the ticks' less the lost
// payment. Such a receipt is taken when lost payments debited since the receipt before it account
// for what it gives back; else an agent with that history could never leave the node it upgraded on.
import { LOST_PAYMENT_KIND } from "../checkpoint/overrides.js";
import { publicKeyFromPeerId } from "../identity/did.js";
import { verifyBytes } from "../identity/keys.js";
import { type Receipt, receiptSigningBytes } from "./receipt.js";

/** What an agent's history says of its checkpoints, for the receipts that arrive with it. */
export interface ReceiptHistory {
  agentId: string;
  /** The tick of its head checkpoint. */
  headTick: bigint;
  /**
   * The oldest tick it holds a checkpoint at: a receipt ending before it (a history its owner's
   * retention pruned keeps its newest receipt before the base) cannot be checked against one.
   */
  firstTick: bigint;
  /** The budget of its checkpoint at `tick`; undefined when it holds none at that tick. */
  budgetAt(tick: bigint): bigint | undefined;
  /** Its signed lost payments (lostPaymentDebits): what an older igord's negative cost may give back. */
  lostPayments?: readonly LostPaymentDebit[];
}

/** A lost payment debited after the checkpoint at `tick`. */
export interface LostPaymentDebit {
  tick: bigint;
  amount: bigint;
}

/** The lost payments among an agent's (verified, signed) lineage events. */
export function lostPaymentDebits(events: readonly { kind: string; tick: bigint; oldBudget: bigint; newBudget: bigint }[]): LostPaymentDebit[] {
  return events.filter((e) => e.kind === LOST_PAYMENT_KIND && e.oldBudget > e.newBudget).map((e) => ({ tick: e.tick, amount: e.oldBudget - e.newBudget }));
}

/**
 * What is wrong with receipt `r` on its own (signature, agent, ticks, amounts); null when nothing
 * is. `givesBack`: the negative cost the lost payments it follows account for (see above).
 */
export function receiptProblem(r: Receipt, agentId: string, headTick: bigint, givesBack = 0n): string | null {
  const what = `the receipt for ticks ${r.tickStart}..${r.tickEnd} of "${agentId}"`;
  // Only ticks the history holds were run (a receipt past the head would also make every real one
  // of a later return look old).
  if (r.tickStart > r.tickEnd || r.tickEnd > headTick) {
    return `a receipt of "${agentId}" is for ticks ${r.tickStart}..${r.tickEnd}, not within its history (head at tick ${headTick})`;
  }
  const key = publicKeyFromPeerId(r.nodeId);
  if (r.agentId !== agentId || !key || !verifyBytes(key, receiptSigningBytes(r), r.signature)) {
    return `${what} is not validly signed by node ${r.nodeId}`;
  }
  // Ticks only cost (budget/receipt.ts receiptFields: no node of ours signs one that gives back).
  if (r.cost < -givesBack) return `${what} has a negative cost (${r.cost} µ¢)${givesBack > 0n ? `, more than the ${givesBack} µ¢ of lost payments debited before it` : ""}`;
  if (r.budgetAfter < 0n) return `${what} leaves a negative budget (${r.budgetAfter} µ¢)`;
  return null;
}

/**
 * Checks an agent's arriving receipts one after the other, oldest first (receiptProblem, then their
 * order and budgets against `history`), and passes each the first time only: a node stores an
 * agent's receipt once, and a list that repeats one (a crafted file or package, or a store that
 * took one twice) would have it counted and listed to the agent twice.
 */
export class ArrivingReceipts {
  private readonly seen = new Set<string>();
  /** The last tick receipted so far (those this node stores already, for an agent that returns). */
  private lastEnd: bigint | null;
  private newest: Receipt | null = null;

  constructor(
    private readonly history: ReceiptHistory,
    receiptedTo: bigint | null = null,
  ) {
    this.lastEnd = receiptedTo;
  }

  /** "take" (store it), "again" (listed before: skip it), or what is wrong with it. */
  check(r: Receipt, blob: Uint8Array): "take" | "again" | { problem: string } {
    const { agentId } = this.history;
    const alone = receiptProblem(r, agentId, this.history.headTick, this.lostPaymentsBefore(r.tickEnd));
    if (alone) return { problem: alone };
    const k = Buffer.from(blob).toString("base64");
    if (this.seen.has(k)) return "again";
    const what = `the receipt for ticks ${r.tickStart}..${r.tickEnd} of "${agentId}"`;
    if (this.lastEnd !== null && r.tickStart <= this.lastEnd) {
      return { problem: `${what} is out of order: it overlaps ticks receipted up to ${this.lastEnd}` };
    }
    const budget = this.history.budgetAt(r.tickEnd);
    if (budget !== undefined && r.budgetAfter > budget) {
      return { problem: `${what} claims a budget after of ${r.budgetAfter} µ¢, more than the ${budget} µ¢ its checkpoint at tick ${r.tickEnd} holds` };
    }
    this.seen.add(k);
    this.lastEnd = r.tickEnd;
    this.newest = r;
    return "take";
  }

  /** The lost payments debited after a checkpoint from the last receipted tick on and before `tickEnd`. */
  private lostPaymentsBefore(tickEnd: bigint): bigint {
    let sum = 0n;
    for (const p of this.history.lostPayments ?? []) {
      if ((this.lastEnd === null || p.tick >= this.lastEnd) && p.tick < tickEnd) sum += p.amount;
    }
    return sum;
  }

  /**
   * Once every receipt is checked: what is wrong with the newest, which the node's own receipts
   * continue from, when no checkpoint of the history is at its last tick to check its budget by
   * (an honest one ends at a checkpoint: receipts are signed with them). Null when nothing is.
   */
  finish(): string | null {
    const r = this.newest;
    if (r === null || r.tickEnd < this.history.firstTick || this.history.budgetAt(r.tickEnd) !== undefined) return null;
    return `the newest receipt of "${this.history.agentId}" ends at tick ${r.tickEnd}, where its history holds no checkpoint to check the budget it claims`;
  }
}
