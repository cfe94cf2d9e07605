// One agent's timeline for the dashboard: its stored checkpoints (newest TIMELINE_MAX_CHECKPOINTS),
// the receipts and payments (wallet_pay receipts in the event logs) of those checkpoints' ticks,
// migrations and lineage records, and the divergences this node saw, each with a time.
import { equalBytes, hex } from "../hash/bytes.js";
import { ErrorCode, IgordError } from "../errors.js";
import type { SqliteStore } from "../store/sqlite-store.js";
import { decodeSegment } from "../eventlog/tick-log.js";
import { decodePaymentReceipt, paymentsIn } from "../hostcalls/wallet-pay.js";

/** The chart shows this many of the newest checkpoints (a long history stays a small answer). */
export const TIMELINE_MAX_CHECKPOINTS = 500;
/**
 * Bytes of the agent's newest event logs the timeline decodes for its payments at each poll (the
 * logs kept can be --event-log-max-bytes, 64 MiB by default): older payments are not listed, and
 * the answer says from which tick they are (`paymentsAfterTick`).
 */
export const TIMELINE_MAX_LOG_BYTES = 4 * 1024 ** 2;
/** Divergences the node remembers for the dashboard, node-wide, newest kept. */
export const MAX_REMEMBERED_DIVERGENCES = 1000;

export interface DivergenceNote {
  agentId: string;
  tick: bigint;
  code: string;
  message: string;
  at: number;
}

/** A bounded memory of recent divergences (they are events, not stored state). */
export class DivergenceLog {
  private readonly notes: DivergenceNote[] = [];

  add(n: DivergenceNote): void {
    this.notes.push(n);
    if (this.notes.length > MAX_REMEMBERED_DIVERGENCES) this.notes.shift();
  }

  of(agentId: string): DivergenceNote[] {
    return this.notes.filter((n) => n.agentId === agentId);
  }
}

export function agentTimeline(store: SqliteStore, divergences: DivergenceLog, agentId: string, maxLogBytes = TIMELINE_MAX_LOG_BYTES): Record<string, unknown> {
  if (!store.agent(agentId)) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${agentId}" on this node`);
  const total = store.historyCount(agentId);
  // Seqs keep counting after a history is pruned: the newest ones are those above head - max.
  const headSeq = store.head(agentId)?.seq ?? 0n;
  const after = headSeq > BigInt(TIMELINE_MAX_CHECKPOINTS) ? headSeq - BigInt(TIMELINE_MAX_CHECKPOINTS) : 0n;
  const all = [...store.history(agentId, after)];
  const atTick = new Map(all.map((c) => [c.tick, c.createdAt]));
  const fromCheckpoints = all[0]?.tick ?? 0n;
  // The walk back over the logs' sizes stops at the oldest checkpoint shown: no older payment is listed.
  const fitting = store.newestLogsAfter(agentId, maxLogBytes, fromCheckpoints);
  const paymentsAfter = fitting > fromCheckpoints ? fitting : fromCheckpoints;
  return {
    agentId,
    checkpointsStored: total,
    checkpoints: all.map((c) => ({ seq: c.seq.toString(), tick: c.tick.toString(), budget: c.budget.toString(), reason: c.reason, at: c.createdAt })),
    // A receipt is written with the checkpoint that closes its range: those of the checkpoints shown
    // (every receipt of a long-lived agent would be a large answer, asked for at every poll).
    receipts: store.receipts(agentId, after > 0n && all[0] ? all[0].tick - 1n : -1n).map((r) => ({ tickStart: r.tickStart.toString(), tickEnd: r.tickEnd.toString(), cost: r.cost.toString(), nodeId: r.nodeId, at: atTick.get(r.tickEnd) ?? null })),
    // The payments of the ticks after the oldest checkpoint shown, in at most maxLogBytes of the newest logs.
    paymentsAfterTick: paymentsAfter.toString(),
    payments: payments(store, agentId, paymentsAfter).map((p) => ({ ...p, at: all.find((c) => c.tick >= BigInt(p.tick))?.createdAt ?? null })),
    migrations: store.migrations({ agentId, limit: 200 }).map((m) => ({ id: m.id, direction: m.direction, state: m.state, peer: m.peer, at: m.updatedAt })),
    lineage: store.lineageEvents(agentId).map((e) => ({
      kind: e.kind,
      tick: e.tick.toString(),
      reason: e.reason,
      oldBudget: e.oldBudget.toString(),
      newBudget: e.newBudget.toString(),
      after: hex(e.afterHash).slice(0, 16),
      at: all.find((c) => equalBytes(c.hash, e.afterHash))?.createdAt ?? null,
    })),
    divergences: divergences.of(agentId).map((d) => ({ tick: d.tick.toString(), code: d.code, message: d.message, at: d.at })),
  };
}

/** The payments recorded in the agent's stored event logs after `fromTick`. */
function payments(store: SqliteStore, agentId: string, fromTick: bigint): { tick: string; amount: string; recipient: string; memo: string }[] {
  const out: { tick: string; amount: string; recipient: string; memo: string }[] = [];
  for (const seg of store.eventSegments(agentId, fromTick)) {
    for (const log of decodeSegment(seg.blob)) {
      for (const receipt of paymentsIn(log.entries).receipts) {
        const r = decodePaymentReceipt(receipt);
        if (r) out.push({ tick: log.tick.toString(), amount: r.amount.toString(), recipient: r.recipient, memo: r.memo });
      }
    }
  }
  return out;
}
