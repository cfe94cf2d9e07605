// What an agent's ticks leave between checkpoints: event-log segments (and their retention),
// receipts, and the outbox of emitted messages. Each is written inside the checkpoint's transaction
// by the layer above, and read on its own by replay, audit, migration and the control API.
import type { EventLogSegment } from "../eventlog/tick-log.js";
import { runProofs, type SealedRun } from "../replay/run-seal.js";
import { AgentRecords } from "./agent-records.js";
import { rowToSegment, u8 } from "./rows.js";
import type { JournalledPayment, LeaseBelief, LineageEvent, OutboxBatch, ReceiptRow, StoredSegment } from "./types.js";

export abstract class TickRecords extends AgentRecords {
  // ---- event-log segments -----------------------------------------------------------------------

  /** Per agent, segments older than this many ticks (0 = keep all) or beyond this many bytes are pruned. */
  eventLogRetention: { ticks: bigint } | { bytes: number } = { ticks: 0n };

  protected insertSegment(agentId: string, checkpointHash: Uint8Array, e: EventLogSegment): void {
    this.sql(
      "INSERT INTO event_log_segments (agent_id, from_tick, to_tick, checkpoint_hash, abi_version, engine_version, blob, post_hashes, signature, leaf, run_proof) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ).run(agentId, e.fromTick, e.toTick, checkpointHash, e.abiVersion, e.engineVersion, e.blob, e.postHashes, e.signature ?? null, e.leaf ?? null, e.runProof ?? null);
  }

  // ---- run seals (replay/run-seal.ts) ------------------------------------------------------------

  /** Stores a sealed run (in the caller's transaction) and drops runs whose segments are all gone. */
  protected insertEventRun(agentId: string, run: SealedRun): void {
    this.sql("INSERT INTO event_log_runs (agent_id, from_tick, to_tick, leaves, signature) VALUES (?, ?, ?, ?, ?)").run(
      agentId, run.fromTick, run.toTick, Buffer.concat(run.leaves), run.signature,
    );
    // A run ending before the oldest kept segment's last tick covers none (both lookups use an index).
    this.sql("DELETE FROM event_log_runs WHERE agent_id = ? AND to_tick < (SELECT MIN(to_tick) FROM event_log_segments WHERE agent_id = ?)").run(agentId, agentId);
  }

  /**
   * Seals a run of segments this node recorded (see openEventRuns). No fsync of its own (it runs on a
   * migration's path): a seal lost to a power cut leaves the run open, and the next start seals it
   * again, to the same signature (Ed25519 is deterministic).
   */
  sealEventRun(agentId: string, run: SealedRun): void {
    this.atomicallyUnsynced(() => this.insertEventRun(agentId, run));
  }

  /**
   * The runs still open (of one agent, or of all): per agent, the segments recorded here after its
   * newest sealed run, with their leaves, oldest first. Each run closes after the one before it, so
   * the open segments are always those after the newest run (the checkpointer continues an open run
   * it finds, OpenRuns.adopt).
   */
  openEventRuns(agentId?: string): { agentId: string; fromTick: bigint; toTick: bigint; leaves: Uint8Array[] }[] {
    const ids = agentId !== undefined ? [agentId] : (this.sql("SELECT agent_id FROM agents ORDER BY agent_id", true).all() as { agent_id: string }[]).map((r) => r.agent_id);
    const runs: { agentId: string; fromTick: bigint; toTick: bigint; leaves: Uint8Array[] }[] = [];
    for (const id of ids) {
      const sealed = this.sql("SELECT MAX(to_tick) AS t FROM event_log_runs WHERE agent_id = ?", true).get(id) as { t: bigint | null };
      const rows = this.sql("SELECT from_tick, to_tick, leaf FROM event_log_segments WHERE agent_id = ? AND to_tick > ? AND leaf IS NOT NULL ORDER BY to_tick", true).all(
        id,
        sealed.t ?? -1n,
      ) as { from_tick: bigint; to_tick: bigint; leaf: Buffer }[];
      const first = rows[0];
      const last = rows.at(-1);
      if (first && last) runs.push({ agentId: id, fromTick: first.from_tick, toTick: last.to_tick, leaves: rows.map((r) => u8(r.leaf)) });
    }
    return runs;
  }

  /** The agent's stored segments with each recorded one's seal from its run (a segment of an open run keeps its leaf, unsealed). */
  private withRunSeals(agentId: string, segments: StoredSegment[]): StoredSegment[] {
    const first = segments.find((s) => s.leaf && !s.runProof && !s.signature);
    if (!first) return segments;
    const rows = this.sql("SELECT from_tick, to_tick, leaves, signature FROM event_log_runs WHERE agent_id = ? AND to_tick >= ? ORDER BY to_tick", true).all(
      agentId,
      first.toTick,
    ) as { from_tick: bigint; to_tick: bigint; leaves: Buffer; signature: Buffer }[];
    const runs = rows.map((r) => {
      const leaves: Uint8Array[] = [];
      for (let off = 0; off + 32 <= r.leaves.byteLength; off += 32) leaves.push(u8(r.leaves.subarray(off, off + 32)));
      return { fromTick: r.from_tick, toTick: r.to_tick, leaves, signature: u8(r.signature), proofs: null as Map<string, { proof: Uint8Array; signature: Uint8Array }> | null };
    });
    return segments.map((s) => {
      if (!s.leaf || s.runProof || s.signature) return s;
      const key = Buffer.from(s.leaf).toString("hex");
      for (const run of runs) {
        if (run.fromTick > s.fromTick || s.toTick > run.toTick) continue;
        run.proofs ??= new Map(runProofs(run).map((p) => [Buffer.from(p.leaf).toString("hex"), p]));
        const p = run.proofs.get(key);
        if (!p) continue;
        const { leaf: _leaf, ...rest } = s;
        return { ...rest, runProof: p.proof, signature: p.signature };
      }
      return s;
    });
  }

  protected pruneSegments(agentId: string, newestTick: bigint): void {
    const r = this.eventLogRetention;
    if ("ticks" in r) {
      if (r.ticks > 0n && newestTick > r.ticks) {
        this.sql("DELETE FROM event_log_segments WHERE agent_id = ? AND to_tick <= ?").run(agentId, newestTick - r.ticks);
      }
      return;
    }
    // Size limit: keep the newest segments whose total fits, drop the rest — but never the segment
    // just written, even when it alone is over the limit (the newest ticks must stay verifiable).
    const rows = this.sql(
      "SELECT id, length(blob) + length(post_hashes) AS n FROM event_log_segments WHERE agent_id = ? ORDER BY to_tick DESC",
    ).all(agentId) as { id: number; n: number }[];
    let total = 0;
    for (const [i, row] of rows.entries()) {
      total += row.n;
      if (i > 0 && total > r.bytes) this.sql("DELETE FROM event_log_segments WHERE id = ?").run(row.id);
    }
  }

  /** The agent's stored event-log segments, oldest first (those starting after `afterTick`, if given). */
  eventSegments(agentId: string, afterTick = -1n): StoredSegment[] {
    const rows = (
      this.sql("SELECT * FROM event_log_segments WHERE agent_id = ? AND from_tick > ? ORDER BY to_tick", true).all(agentId, afterTick) as Record<string, unknown>[]
    ).map(rowToSegment);
    return this.withRunSeals(agentId, rows);
  }

  /** Segments this node recorded before it signed segments (schema 6), not yet sealed. */
  segmentsRecordedUnsigned(): (StoredSegment & { id: number; agentId: string })[] {
    return (this.sql("SELECT * FROM event_log_segments WHERE recorded_unsigned = 1 AND signature IS NULL ORDER BY agent_id, to_tick", true).all() as Record<string, unknown>[]).map((r) => ({
      ...rowToSegment(r),
      id: Number(r.id),
      agentId: String(r.agent_id),
    }));
  }

  /** Seals a segment recorded before segments were signed (see segmentsRecordedUnsigned). */
  sealRecordedSegment(id: number, signature: Uint8Array): void {
    this.sql("UPDATE event_log_segments SET signature = ?, recorded_unsigned = 0 WHERE id = ? AND recorded_unsigned = 1 AND signature IS NULL").run(signature, id);
  }

  /** The agent's newest stored event-log segment. */
  lastEventSegment(agentId: string): StoredSegment | undefined {
    const r = this.sql("SELECT * FROM event_log_segments WHERE agent_id = ? ORDER BY to_tick DESC LIMIT 1", true).get(agentId) as
      | Record<string, unknown>
      | undefined;
    return r ? rowToSegment(r) : undefined;
  }

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
    const first = this.sql("SELECT tick, budget FROM checkpoints WHERE agent_id = ? ORDER BY seq LIMIT 1", true).get(agentId) as
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
    for (const b of batches) {
      b.messages.forEach((m, i) => {
        this.sql("INSERT INTO outbox (agent_id, tick, idx, epoch_major, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)").run(agentId, b.tick, i, b.epochMajor, m, Date.now());
      });
    }
  }

  outbox(agentId: string, afterTick = -1n, limit = 1000): { tick: bigint; index: number; epochMajor: bigint; payload: Uint8Array; createdAt: number }[] {
    return (
      this.sql("SELECT * FROM outbox WHERE agent_id = ? AND tick > ? ORDER BY tick, idx LIMIT ?", true).all(agentId, afterTick, limit) as Record<string, unknown>[]
    ).map((r) => ({ tick: r.tick as bigint, index: Number(r.idx), epochMajor: r.epoch_major as bigint, payload: u8(r.payload as Buffer), createdAt: Number(r.created_at) }));
  }

  // ---- payment journal ----------------------------------------------------------------------------

  /**
   * Journals a signed payment before its signature is handed to the agent: durable (FULL) whatever
   * --sync says, since money may leave as soon as the agent holds the receipt.
   */
  journalPayment(p: JournalledPayment): void {
    this.durably(() => {
      this.sql("INSERT OR IGNORE INTO payment_journal (agent_id, tick, receipt_hash, amount, recipient, memo, receipt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)").run(
        p.agentId, p.tick, Buffer.from(p.receiptHash), p.amount, p.recipient, p.memo, Buffer.from(p.receipt), Date.now(),
      );
    });
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
