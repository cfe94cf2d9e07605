// What an agent's ticks leave between checkpoints besides their event-log segments
// (segment-records.ts): receipts, the outbox of emitted messages and the payment journal. Each is
// written inside the checkpoint's transaction by the layer above, and read on its own by replay,
// audit, migration and the control API.
import { keyed } from "./checkpoint-keys.js";
import { u8 } from "./rows.js";
import { SegmentRecords } from "./segment-records.js";
import type { JournalledPayment, LeaseBelief, LineageEvent, OutboxBatch, ReceiptRow } from "./types.js";

/**
 * What an outbox message counts beyond its bytes, toward --outbox-retention and max_storage_bytes:
 * its row (agent, tick, index, epoch, time) and index entry. An empty message is a row all the same:
 * counted as 0, an agent emitting only empty messages was never bounded by either.
 */
export const OUTBOX_MESSAGE_OVERHEAD_BYTES = 64;
/** What an outbox row counts, as SQL over its columns. */
const MESSAGE_BYTES = `length(payload) + ${OUTBOX_MESSAGE_OVERHEAD_BYTES}`;

/** A page of an agent's outbox and the tick from which its messages are all kept (outboxKeptFromTick). */
export interface OutboxPage {
  messages: StoredOutboxMessage[];
  keptFromTick: bigint;
}

/** An emitted message as stored. */
export interface StoredOutboxMessage {
  tick: bigint;
  index: number;
  epochMajor: bigint;
  payload: Uint8Array;
  createdAt: number;
}

const outboxMessage = (r: Record<string, unknown>): StoredOutboxMessage => ({ tick: r.tick as bigint, index: Number(r.idx), epochMajor: r.epoch_major as bigint, payload: u8(r.payload as Buffer), createdAt: Number(r.created_at) });

export abstract class TickRecords extends SegmentRecords {
  /** --outbox-retention: per agent, bytes of emitted messages kept (0 keeps all). */
  outboxRetentionBytes = 0;
  /** Per agent: its outbox's bytes, as this connection counted them once and followed its own writes since. */
  private readonly outboxBytes = new Map<string, number>();

  // ---- receipts ---------------------------------------------------------------------------------

  protected insertReceipt(agentId: string, checkpointHash: Uint8Array, r: ReceiptRow): void {
    this.sql(
      "INSERT INTO receipts (agent_id, seq, tick_start, tick_end, cost, budget_after, node_id, checkpoint_hash, blob) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM receipts WHERE agent_id = ?), ?, ?, ?, ?, ?, ?, ?)",
    ).run(agentId, agentId, r.tickStart, r.tickEnd, r.cost, r.budgetAfter, r.nodeId, checkpointHash, r.blob);
  }

  /** A receipt for ticks already checkpointed (closing the range when an agent stops); with `lease`, compare-and-set. */
  addReceipt(agentId: string, checkpointHash: Uint8Array, r: ReceiptRow, lease?: LeaseBelief): void {
    this.db.transaction(() => {
      this.checkLease(agentId, lease);
      this.insertReceipt(agentId, checkpointHash, r);
    }).immediate();
  }

  /**
   * How many receipts the agent has, and its `index`-th (0 = oldest), each in O(log n): seqs are
   * consecutive per agent (insertReceipt takes MAX + 1, and receipts are never deleted). MIN and MAX
   * are separate subqueries: SQLite reads only one index entry for a lone min() or max().
   */
  receiptCount(agentId: string): number {
    const r = this.sql("SELECT (SELECT MIN(seq) FROM receipts WHERE agent_id = ?) AS lo, (SELECT MAX(seq) FROM receipts WHERE agent_id = ?) AS hi", true).get(agentId, agentId) as { lo: bigint | null; hi: bigint | null };
    return r.lo === null || r.hi === null ? 0 : Number(r.hi - r.lo) + 1;
  }

  receiptAt(agentId: string, index: number): Uint8Array | null {
    const r = this.sql("SELECT blob FROM receipts WHERE agent_id = ? AND seq = (SELECT MIN(seq) FROM receipts WHERE agent_id = ?) + ?", true).get(agentId, agentId, index) as { blob: Buffer } | undefined;
    return r ? u8(r.blob) : null;
  }

  /** The agent's receipts in order (those ending after `afterTick`, if given). */
  receipts(agentId: string, afterTick = -1n): ReceiptRow[] {
    return (this.sql("SELECT * FROM receipts WHERE agent_id = ? AND tick_end > ? ORDER BY seq", true).all(agentId, afterTick) as Record<string, unknown>[]).map(
      (r) => ({
        tickStart: r.tick_start as bigint,
        tickEnd: r.tick_end as bigint,
        cost: r.cost as bigint,
        budgetAfter: r.budget_after as bigint,
        nodeId: r.node_id as string,
        blob: u8(r.blob as Buffer),
      }),
    );
  }

  /** The newest receipt's last tick for the agent (receipts arriving by migration continue after it). */
  lastReceiptTick(agentId: string): bigint | null {
    const r = this.sql("SELECT MAX(tick_end) AS t FROM receipts WHERE agent_id = ?", true).get(agentId) as { t: bigint | null };
    return r.t;
  }

  /** Where an agent's receipts stop: the last receipt, or (none yet) its first checkpoint here. */
  receiptBase(agentId: string): { tick: bigint; budget: bigint } | undefined {
    const r = this.sql("SELECT tick_end, budget_after FROM receipts WHERE agent_id = ? ORDER BY seq DESC LIMIT 1", true).get(agentId) as
      | { tick_end: bigint; budget_after: bigint }
      | undefined;
    if (r) return { tick: r.tick_end, budget: r.budget_after };
    const first = this.sql(keyed("k.seq AS seq, c.tick AS tick, c.budget AS budget", "k.agent_id = @agent", "ASC", { limit: 1 }), true).get({ agent: agentId }) as
      | { tick: bigint; budget: bigint }
      | undefined;
    return first ? { tick: first.tick, budget: first.budget } : undefined;
  }


  // ---- outbox (the emit side effect) ------------------------------------------------------------

  /**
   * Publishes the messages of checkpointed ticks, inside the checkpoint's transaction: only ticks the
   * history contains ever publish, and (agent, tick, index) is written once — a tick re-run after a
   * crash was never published, and a duplicate is an error, not a silent extra row.
   */
  protected insertOutbox(agentId: string, batches: readonly OutboxBatch[]): void {
    let added = 0;
    for (const b of batches) {
      b.messages.forEach((m, i) => {
        this.sql("INSERT INTO outbox (agent_id, tick, idx, epoch_major, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)").run(agentId, b.tick, i, b.epochMajor, m, Date.now());
        added += m.length + OUTBOX_MESSAGE_OVERHEAD_BYTES;
      });
    }
    if (this.outboxRetentionBytes > 0 && added > 0) this.keepOutboxWithin(agentId, added);
  }

  /**
   * --outbox-retention: drops the agent's oldest ticks' messages, whole ticks, until what is left fits
   * (the newest tick is always kept). The agent's outbox bytes are counted once per connection and
   * followed from there, so a steady emitter reads only the few oldest rows it drops; the last tick
   * dropped is marked (outbox_floors) for readers. Two connections
   * write outboxes (the main one, and the commit thread's once it runs): what one wrote the other
   * sees at its next count, so an agent whose commits move between them may hold up to one
   * connection's writes more for a while, or lose its oldest messages a little early; never more
   * than that.
   */
  private keepOutboxWithin(agentId: string, added: number): void {
    const limit = this.outboxRetentionBytes;
    const known = this.outboxBytes.get(agentId);
    let total = known === undefined ? this.outboxSize(agentId) : known + added;
    if (total > limit) {
      const rows = this.sql(`SELECT tick, ${MESSAGE_BYTES} AS n FROM outbox WHERE agent_id = ? ORDER BY tick, idx`, true).iterate(agentId) as IterableIterator<{ tick: bigint; n: bigint }>;
      // Ticks are dropped whole, oldest first, each once all its rows are read; the newest (the last
      // read when the rows run out) always stays.
      let through: bigint | null = null;
      let freed = 0;
      let tick: bigint | null = null;
      let bytes = 0;
      for (const r of rows) {
        if (r.tick !== tick) {
          if (tick !== null) {
            through = tick;
            freed += bytes;
            if (total - freed <= limit) break;
          }
          tick = r.tick;
          bytes = 0;
        }
        bytes += Number(r.n);
      }
      if (through !== null) {
        this.sql("DELETE FROM outbox WHERE agent_id = ? AND tick <= ?").run(agentId, through);
        // The mark a reader needs: ticks up to it may have lost messages (empty ticks leave no row).
        this.sql("INSERT INTO outbox_floors (agent_id, dropped_through) VALUES (?, ?) ON CONFLICT (agent_id) DO UPDATE SET dropped_through = MAX(dropped_through, excluded.dropped_through)").run(agentId, through);
        total -= freed;
      }
    }
    this.outboxBytes.set(agentId, total);
  }

  /** The bytes the agent's outbox counts (each message's and its row's). */
  protected outboxSize(agentId: string): number {
    return (this.sql(`SELECT COALESCE(SUM(${MESSAGE_BYTES}), 0) AS n FROM outbox WHERE agent_id = ?`).get(agentId) as { n: number }).n;
  }

  /**
   * The agent's messages after `afterTick`, whole ticks only (a reader continues after the last tick
   * it got, so a page that ended inside a tick would lose that tick's other messages): ticks are
   * added while the page stays within `maxMessages` and `maxBytes`; the first tick always whole (one
   * tick's messages are bounded by its event log).
   */
  outboxPage(agentId: string, afterTick: bigint, maxMessages: number, maxBytes: number): OutboxPage {
    // One snapshot: a drop between the two reads would show a gap that is not there, or hide one.
    return this.db.transaction(() => ({ messages: this.outboxMessages(agentId, afterTick, maxMessages, maxBytes), keptFromTick: this.outboxKeptFromTick(agentId) })).deferred();
  }

  /**
   * The tick from which every message the agent's committed ticks emitted is still stored (0: every
   * one is): --outbox-retention dropped those of the ticks before it, and a tick that emitted nothing
   * leaves no row, so only this mark tells a reader behind it that it missed messages.
   */
  outboxKeptFromTick(agentId: string): bigint {
    const r = this.sql("SELECT dropped_through FROM outbox_floors WHERE agent_id = ?", true).get(agentId) as { dropped_through: bigint } | undefined;
    return r ? r.dropped_through + 1n : 0n;
  }

  private outboxMessages(agentId: string, afterTick: bigint, maxMessages: number, maxBytes: number): StoredOutboxMessage[] {
    const rows = this.sql("SELECT * FROM outbox WHERE agent_id = ? AND tick > ? ORDER BY tick, idx", true).iterate(agentId, afterTick) as IterableIterator<Record<string, unknown>>;
    const page: Record<string, unknown>[] = [];
    let bytes = 0;
    let tickStart = 0;
    for (const r of rows) {
      if (page.length > 0 && r.tick !== page.at(-1)!.tick) {
        tickStart = page.length;
        if (tickStart >= maxMessages || bytes >= maxBytes) break;
      }
      page.push(r);
      bytes += (r.payload as Buffer).length;
      // Past a bound inside a later tick: that tick is left for the next page.
      if (tickStart > 0 && (page.length > maxMessages || bytes > maxBytes)) {
        page.length = tickStart;
        break;
      }
    }
    return page.map(outboxMessage);
  }

  outbox(agentId: string, afterTick = -1n, limit = 1000): StoredOutboxMessage[] {
    return (
      this.sql("SELECT * FROM outbox WHERE agent_id = ? AND tick > ? ORDER BY tick, idx LIMIT ?", true).all(agentId, afterTick, limit) as Record<string, unknown>[]
    ).map(outboxMessage);
  }

  // ---- payment journal ----------------------------------------------------------------------------

  /**
   * Journals a signed payment before its signature is handed to the agent: committed on return and
   * durable, whatever --sync says, once the returned promise resolves (the WAL's fsync runs off the
   * main thread), since money may leave as soon as the agent holds the receipt. Nothing may hand the
   * signature out before it resolves; if it rejects (a failed sync), nothing may at all.
   */
  journalPayment(p: JournalledPayment): Promise<void> {
    return this.durablyOffThread(() => {
      this.sql("INSERT OR IGNORE INTO payment_journal (agent_id, tick, receipt_hash, amount, recipient, memo, receipt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)").run(
        p.agentId, p.tick, Buffer.from(p.receiptHash), p.amount, p.recipient, p.memo, Buffer.from(p.receipt), Date.now(),
      );
    }).durable;
  }

  /**
   * Drops the journal row of a receipt no guest took: its tick stopped waiting for the signature
   * (wallet_pay returned -6), so nothing can be paid with it. Not synced of its own: a power cut
   * that loses the delete leaves the row, which the next start debits as a lost payment (what a
   * receipt signed in a run lost with the process gets: the agent is never charged less than it paid).
   */
  unjournalPayment(agentId: string, receiptHash: Uint8Array): void {
    this.atomicallyUnsynced(() => this.sql("DELETE FROM payment_journal WHERE agent_id = ? AND receipt_hash = ?").run(agentId, Buffer.from(receiptHash)));
  }

  /**
   * The checkpoint that commits ticks up to `tick` settles their payments (in its transaction): those
   * whose receipt hashes its event logs hold, or (no logs kept) every payment of those ticks.
   */
  protected settlePayments(agentId: string, tick: bigint, receiptHashes?: readonly Uint8Array[]): void {
    if (receiptHashes === undefined) {
      this.sql("DELETE FROM payment_journal WHERE agent_id = ? AND tick <= ?").run(agentId, tick);
      return;
    }
    for (const h of receiptHashes) this.sql("DELETE FROM payment_journal WHERE agent_id = ? AND receipt_hash = ?").run(agentId, Buffer.from(h));
  }

  /** Lost payments debited by the checkpoint being written (its transaction): their events, their rows gone. */
  protected settleLostPayments(agentId: string, lost: readonly { event: LineageEvent; receiptHash: Uint8Array }[]): void {
    for (const l of lost) {
      this.addLineageEvent(agentId, l.event);
      this.sql("DELETE FROM payment_journal WHERE agent_id = ? AND receipt_hash = ?").run(agentId, Buffer.from(l.receiptHash));
    }
  }

  /**
   * Lost payments debited while no tick followed (the agent stops, fails or leaves before its next
   * checkpoint could carry them): their events after the stored head and their rows' removal commit
   * together; with `lease`, only if the stored lease still matches.
   */
  writeLostPayments(agentId: string, lost: readonly { event: LineageEvent; receiptHash: Uint8Array }[], lease?: LeaseBelief): void {
    this.durably(() => {
      this.checkLease(agentId, lease);
      this.settleLostPayments(agentId, lost);
    });
  }

  /** The agent's journalled payments no checkpoint has settled, oldest first. */
  unsettledPayments(agentId: string): JournalledPayment[] {
    return (this.sql("SELECT * FROM payment_journal WHERE agent_id = ? ORDER BY tick, created_at", true).all(agentId) as Record<string, unknown>[]).map((r) => ({
      agentId: r.agent_id as string,
      tick: r.tick as bigint,
      receiptHash: u8(r.receipt_hash as Buffer),
      amount: r.amount as bigint,
      recipient: r.recipient as string,
      memo: r.memo as string,
      receipt: u8(r.receipt as Buffer),
    }));
  }

  /** Debits lost payments once: their signed lineage events and the journal rows' removal commit together. */
  debitLostPayments(agentId: string, events: readonly LineageEvent[]): void {
    this.durably(() => {
      for (const e of events) this.addLineageEvent(agentId, e);
      this.sql("DELETE FROM payment_journal WHERE agent_id = ?").run(agentId);
    });
  }
}
