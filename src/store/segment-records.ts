// Event-log segments and the runs that seal them. Schema 11: a segment is stored in the row of the
// checkpoint that closes it (schema 10: in a table of its own under that row's id), so an agent's
// segments are found through its checkpoints' keys (schema 16: checkpoint-keys.ts) and a checkpoint
// with its segment is one INSERT and one key (docs/BENCHMARKS.md, "one B-tree for checkpoints and
// segments" and "the segment in its checkpoint's row"). A linked segment's id is its checkpoint's
// row id.
// Along a chain, ticks and row ids grow with seq, so walking the keys in seq order visits segments
// in to_tick order. event_log_floors says where an agent's linked segments start (pruning raises it),
// so no walk goes over the pruned past. A segment no stored checkpoint closes (an import's, or a
// second one for the same checkpoint) is "unlinked": a row of event_log_segments with a negative id,
// found by a partial index.
import type { EventLogSegment } from "../eventlog/tick-log.js";
import { runProofs, type SealedRun } from "../replay/run-seal.js";
import { AgentRecords } from "./agent-records.js";
import { keyed, keyIds } from "./checkpoint-keys.js";
import { rowToSegment, u8 } from "./rows.js";
import type { EventLogKeep, StoredSegment } from "./types.js";

/** Where the agent's linked segments start: no linked segment closes at a checkpoint with a lower seq. */
const FLOOR = "COALESCE((SELECT seq FROM event_log_floors WHERE agent_id = @agent), 0)";
/** The agent's linked segments from its floor (columns `cols`, `closing_seq`: the seq of the checkpoint closing each), in chain order. */
const linked = (cols: string, order: "ASC" | "DESC"): string =>
  `SELECT c.seq AS closing_seq, ${cols} FROM checkpoints c CROSS JOIN event_log_segments s ON s.id = c.id WHERE c.agent_id = @agent AND c.seq >= ${FLOOR} ORDER BY c.seq ${order}`;
/** Sizes only (a blob's length is read from its header, not its bytes). */
const SIZE = "length(s.blob) + length(s.post_hashes) AS n";

/** The segment reads: named parameters, @agent (and oldestLinkedFrom's @seq). */
export interface SegmentQueries {
  linkedAsc: string;
  linkedDesc: string;
  linkedSizesDesc: string;
  /** The oldest linked segment's id and last tick (and closing_seq), from the agent's floor; `From`: from a given seq. */
  oldestLinked: string;
  oldestLinkedFrom: string;
  /** The agent's unlinked segments (negative ids, the partial index), oldest first. */
  unlinked: string;
  unlinkedSizes: string;
}

/** The first schema whose segments are stored by their closing checkpoint's row id. */
export const SEGMENTS_BY_CHECKPOINT_SCHEMA = 10;
/** The first schema whose linked segments are stored in their closing checkpoint's row. */
export const SEGMENTS_IN_CHECKPOINT_ROW_SCHEMA = 11;

/** Schema 10's segment reads (an older file opened read-only; exported for the tests of their query plans). */
export const BY_CHECKPOINT: SegmentQueries = {
  linkedAsc: linked("s.*", "ASC"),
  linkedDesc: linked("s.*", "DESC"),
  linkedSizesDesc: linked(`s.id, s.to_tick, ${SIZE}`, "DESC"),
  oldestLinked: `${linked("s.id, s.to_tick", "ASC")} LIMIT 1`,
  oldestLinkedFrom: "SELECT c.seq AS closing_seq, s.id, s.to_tick FROM checkpoints c CROSS JOIN event_log_segments s ON s.id = c.id WHERE c.agent_id = @agent AND c.seq >= @seq ORDER BY c.seq LIMIT 1",
  unlinked: "SELECT * FROM event_log_segments s WHERE id < 0 AND agent_id = @agent ORDER BY to_tick",
  unlinkedSizes: `SELECT s.id, s.to_tick, ${SIZE} FROM event_log_segments s WHERE id < 0 AND agent_id = @agent ORDER BY to_tick`,
};

/**
 * Schema 11: a linked segment's columns in its checkpoint's row, named as event_log_segments names
 * them (its id: the row's; its agent and checkpoint hash: the row's own).
 */
const IN_ROW_COLS =
  "c.id, c.agent_id, c.seg_from_tick AS from_tick, c.seg_to_tick AS to_tick, c.hash AS checkpoint_hash, c.seg_abi_version AS abi_version, c.seg_engine_version AS engine_version, c.seg_blob AS blob, c.seg_post_hashes AS post_hashes, c.seg_signature AS signature, c.seg_recorded_unsigned AS recorded_unsigned, c.seg_leaf AS leaf, c.seg_run_proof AS run_proof";
const inRow = (cols: string, order: "ASC" | "DESC"): string =>
  keyed(`k.seq AS closing_seq, ${cols}`, `k.agent_id = @agent AND k.seq >= ${FLOOR} AND c.seg_blob IS NOT NULL`, order, { orderBy: "closing_seq" });
/** Linked segments recorded before this node signed segments, not yet sealed (a partial index finds them; exported for the test of its plan). */
export const RECORDED_UNSIGNED_IN_ROWS = `SELECT ${IN_ROW_COLS} FROM checkpoints c WHERE c.seg_recorded_unsigned = 1 AND c.seg_signature IS NULL AND c.seg_blob IS NOT NULL`;
/** A linked segment's columns cleared: its checkpoint stays, the segment is gone. */
const CLEAR_IN_ROW =
  "seg_from_tick = NULL, seg_to_tick = NULL, seg_abi_version = NULL, seg_engine_version = NULL, seg_blob = NULL, seg_post_hashes = NULL, seg_signature = NULL, seg_recorded_unsigned = 0, seg_leaf = NULL, seg_run_proof = NULL";

/** Schema 11's segment reads (exported for the tests of their query plans). */
export const IN_CHECKPOINT_ROW: SegmentQueries = {
  linkedAsc: inRow(IN_ROW_COLS, "ASC"),
  linkedDesc: inRow(IN_ROW_COLS, "DESC"),
  linkedSizesDesc: inRow("c.id, c.seg_to_tick AS to_tick, length(c.seg_blob) + length(c.seg_post_hashes) AS n", "DESC"),
  oldestLinked: `${inRow("c.id, c.seg_to_tick AS to_tick", "ASC")} LIMIT 1`,
  oldestLinkedFrom: keyed("k.seq AS closing_seq, c.id, c.seg_to_tick AS to_tick", "k.agent_id = @agent AND k.seq >= @seq AND c.seg_blob IS NOT NULL", "ASC", { orderBy: "closing_seq", limit: 1 }),
  unlinked: BY_CHECKPOINT.unlinked,
  unlinkedSizes: BY_CHECKPOINT.unlinkedSizes,
};

/** The values of a linked segment's columns in its checkpoint's row, in IN_ROW_COLS' order from seg_from_tick (agent and hash: the row's). */
export function segmentInRow(e: EventLogSegment): [bigint, bigint, number, number, Uint8Array, Uint8Array, Uint8Array | null, Uint8Array | null, Uint8Array | null] {
  return [e.fromTick, e.toTick, e.abiVersion, e.engineVersion, e.blob, e.postHashes, e.signature ?? null, e.leaf ?? null, e.runProof ?? null];
}

/** An older file read as it is (read-only, not migrated): its segments by their (agent_id, to_tick) index, all "linked". */
const byAgent = (cols: string, order: "ASC" | "DESC"): string => `SELECT ${cols} FROM event_log_segments s WHERE s.agent_id = @agent ORDER BY s.to_tick ${order}`;
const BY_AGENT: SegmentQueries = {
  linkedAsc: byAgent("s.*", "ASC"),
  linkedDesc: byAgent("s.*", "DESC"),
  linkedSizesDesc: byAgent(`s.id, s.to_tick, ${SIZE}`, "DESC"),
  oldestLinked: `${byAgent("s.id, s.to_tick", "ASC")} LIMIT 1`,
  oldestLinkedFrom: "SELECT s.id, s.to_tick FROM event_log_segments s WHERE s.agent_id = @agent AND @seq IS NOT NULL ORDER BY s.to_tick LIMIT 1",
  unlinked: "SELECT * FROM event_log_segments s WHERE 0 AND agent_id = @agent",
  unlinkedSizes: `SELECT s.id, s.to_tick, ${SIZE} FROM event_log_segments s WHERE 0 AND agent_id = @agent`,
};

/** With a byte bound on logs kept by ticks, a connection sums an agent's segments each time it has written this fraction of the bound. */
export const EVENT_LOG_SUM_EVERY_FRACTION = 16;

type SegmentRow = Record<string, unknown> & { id: bigint; to_tick: bigint; from_tick: bigint; closing_seq?: bigint };
type SizeRow = { id: bigint; to_tick: bigint; n: bigint; closing_seq?: bigint };

export abstract class SegmentRecords extends AgentRecords {
  /**
   * Per agent, segments older than this many ticks (0 = keep all; and beyond `maxBytes`, if given) or
   * beyond this many bytes are pruned.
   */
  eventLogRetention: EventLogKeep = { ticks: 0n };
  /** Per agent, segment bytes this connection wrote since it last summed the agent's segments (ticks with maxBytes). */
  private readonly writtenSinceSum = new Map<string, number>();
  /** How segments are read: in their checkpoints' rows (schema 11 on), or as an older file opened read-only stores them. */
  private q: SegmentQueries = IN_CHECKPOINT_ROW;

  /** A file of this schema version is read as it is (read-only): segments the way that version stores them. */
  protected readSegmentsOfSchema(version: number): void {
    this.q = version < SEGMENTS_BY_CHECKPOINT_SCHEMA ? BY_AGENT : version < SEGMENTS_IN_CHECKPOINT_ROW_SCHEMA ? BY_CHECKPOINT : IN_CHECKPOINT_ROW;
  }

  /**
   * Stores a segment no stored checkpoint closes (an import's or a migration's whose checkpoint is
   * not in the history stored with it, or a second one for a checkpoint), unlinked. A linked one
   * goes in with its checkpoint's INSERT (history-records.ts).
   */
  protected insertSegment(agentId: string, checkpointHash: Uint8Array, e: EventLogSegment): void {
    this.sql("INSERT INTO event_log_floors (agent_id, seq, unlinked) VALUES (?, 0, 1) ON CONFLICT (agent_id) DO UPDATE SET unlinked = 1").run(agentId);
    // Unlinked: below every id in use (the lowest is -1 or less).
    const id = (this.sql("SELECT MIN(COALESCE(MIN(id), 0), 0) - 1 AS id FROM event_log_segments", true).get() as { id: bigint }).id;
    this.sql(
      "INSERT INTO event_log_segments (id, agent_id, from_tick, to_tick, checkpoint_hash, abi_version, engine_version, blob, post_hashes, signature, leaf, run_proof) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ).run(id, agentId, e.fromTick, e.toTick, checkpointHash, e.abiVersion, e.engineVersion, e.blob, e.postHashes, e.signature ?? null, e.leaf ?? null, e.runProof ?? null);
  }

  /** Deletes a segment: a linked one (a positive id: its checkpoint's row) from its row, an unlinked one from event_log_segments. */
  private deleteSegment(id: bigint): void {
    if (id > 0n) this.sql(`UPDATE checkpoints SET ${CLEAR_IN_ROW} WHERE id = ?`).run(id);
    else this.sql("DELETE FROM event_log_segments WHERE id = ?").run(id);
  }

  /** Whether this file keeps linked segments in their checkpoints' rows (schema 11 on: every writable store). */
  protected segmentsInRows(): boolean {
    return this.q === IN_CHECKPOINT_ROW;
  }

  /** The agent's segments, oldest first: linked ones in chain order merged with unlinked ones by to_tick. */
  private allSegmentRows(agentId: string): SegmentRow[] {
    const linked = this.sql(this.q.linkedAsc, true).all({ agent: agentId }) as SegmentRow[];
    return mergeByTick(linked, this.sql(this.q.unlinked, true).all({ agent: agentId }) as SegmentRow[]);
  }

  /**
   * The agent's segments whose last tick is at least `minToTick`, oldest first: the linked ones are
   * read back from the newest and the walk stops at the first older one.
   */
  private recentSegmentRows(agentId: string, minToTick: bigint): SegmentRow[] {
    const linked: SegmentRow[] = [];
    for (const r of this.sql(this.q.linkedDesc, true).iterate({ agent: agentId }) as IterableIterator<SegmentRow>) {
      if (r.to_tick < minToTick) break;
      linked.push(r);
    }
    linked.reverse();
    return mergeByTick(linked, (this.sql(this.q.unlinked, true).all({ agent: agentId }) as SegmentRow[]).filter((r) => r.to_tick >= minToTick));
  }

  /**
   * Deletes the agent's segments whose last tick is at most `tick` (their ticks are past keeping, or
   * before a pruned history's base), and moves its floor up to the oldest kept one. With the oldest's
   * last tick known and not due, that is one read; else one row at a time (most checkpoints drop one
   * segment), each a get(), which costs far less than an iterate().
   */
  protected dropSegmentsThrough(agentId: string, tick: bigint): void {
    const f = this.floor(agentId);
    if (f?.unlinked) this.sql("DELETE FROM event_log_segments WHERE id < 0 AND agent_id = ? AND to_tick <= ?").run(agentId, tick);
    if (f && f.to_tick !== null && f.to_tick > tick) return;
    let seq = f?.seq ?? 0n;
    let front: bigint | null = null;
    if (f && f.to_tick !== null) {
      // The oldest is known and due: it closes at the floor.
      this.sql(`UPDATE checkpoints SET ${CLEAR_IN_ROW} WHERE id = (${keyIds("k.agent_id = @agent AND k.seq = @seq")})`).run({ agent: agentId, seq });
      seq += 1n;
    }
    for (;;) {
      const r = this.sql(this.q.oldestLinkedFrom, true).get({ agent: agentId, seq }) as SegmentRow | undefined;
      if (!r) break;
      // Past checkpoints with no segment, too.
      seq = r.closing_seq as bigint;
      if (r.to_tick > tick) {
        front = r.to_tick;
        break;
      }
      this.deleteSegment(r.id);
      seq += 1n;
    }
    this.setSegmentFloor(agentId, seq, front);
  }

  /** The agent's event_log_floors row (none: no segment of it was ever dropped, and none is unlinked). */
  private floor(agentId: string): { seq: bigint; to_tick: bigint | null; unlinked: bigint } | undefined {
    return this.sql("SELECT seq, to_tick, unlinked FROM event_log_floors WHERE agent_id = ?", true).get(agentId) as
      | { seq: bigint; to_tick: bigint | null; unlinked: bigint }
      | undefined;
  }

  /** The agent's linked segments start at `seq`, the oldest ending at `toTick` (null: unknown, or none yet). */
  private setSegmentFloor(agentId: string, seq: bigint, toTick: bigint | null): void {
    this.sql("INSERT INTO event_log_floors (agent_id, seq, to_tick) VALUES (?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET seq = excluded.seq, to_tick = excluded.to_tick").run(agentId, seq, toTick);
  }

  /** After `written` (a segment ending at `newestTick`) was stored: prunes the agent's segments past what is kept. */
  protected pruneSegments(agentId: string, newestTick: bigint, written: EventLogSegment): void {
    const r = this.eventLogRetention;
    if (!("ticks" in r)) {
      this.pruneToBytes(agentId, r.bytes);
      return;
    }
    if (r.ticks > 0n && newestTick > r.ticks) this.dropSegmentsThrough(agentId, newestTick - r.ticks);
    if (!r.maxBytes) return;
    // Summing an agent's segments reads a row per segment (100,000 ticks: thousands): done once a
    // sixteenth of the bound has been written here since the last sum. Two connections write (the
    // commit thread's), so the logs stay within the bound plus an eighth, and the newest segment.
    const since = (this.writtenSinceSum.get(agentId) ?? 0) + written.blob.length + written.postHashes.length;
    if (since < r.maxBytes / EVENT_LOG_SUM_EVERY_FRACTION) {
      this.writtenSinceSum.set(agentId, since);
      return;
    }
    this.writtenSinceSum.delete(agentId);
    this.pruneToBytes(agentId, r.maxBytes);
  }

  /**
   * Keeps the agent's newest segments whose total fits `limit` and drops the rest, never the segment
   * just written, even when it alone is over the limit: the newest ticks must stay verifiable (a
   * restart replays the newest segment, node/stored-resume.ts storedReplayItems; the ticks a live
   * verification has not reached yet are in the scheduler's replay window, in memory).
   */
  private pruneToBytes(agentId: string, limit: number): void {
    const rows = this.segmentSizesNewestFirst(agentId);
    let total = 0;
    let oldest: SizeRow | null = null;
    let dropped = false;
    for (const [i, row] of rows.entries()) {
      total += Number(row.n);
      if (i > 0 && total > limit) {
        this.deleteSegment(row.id);
        dropped = true;
      } else if (row.closing_seq !== undefined) oldest = row;
    }
    if (dropped && oldest) this.setSegmentFloor(agentId, oldest.closing_seq as bigint, oldest.to_tick);
    // No linked segment left: the floor stays where it was (a lower bound still), its oldest unknown.
    else if (dropped) this.sql("UPDATE event_log_floors SET to_tick = NULL WHERE agent_id = ?").run(agentId);
  }

  /** The agent's segments' ids, last ticks and sizes, newest first (sizes only: no log is read). */
  private segmentSizesNewestFirst(agentId: string): SizeRow[] {
    const sizes = this.sql(this.q.linkedSizesDesc, true).all({ agent: agentId }) as SizeRow[];
    return mergeByTick(sizes.reverse(), this.sql(this.q.unlinkedSizes, true).all({ agent: agentId }) as SizeRow[]).reverse();
  }

  /**
   * Where the newest `maxBytes` of the agent's logs begin: the last tick of the newest segment that
   * does not fit in them, counting from the newest (which always fits), or -1n when all fit. A
   * reader of "the recent logs" reads eventSegments(agentId, this) and decodes at most that much.
   * `floorTick`: the caller reads no log of a tick below it, so the walk may stop at the first
   * segment ending below it (the answer is then below it too).
   */
  newestLogsAfter(agentId: string, maxBytes: number, floorTick = -1n): bigint {
    // Walked back from the newest, and left at the first segment that does not fit: the dashboard
    // asks at every poll, on the main thread, and summing every kept segment's size cost what the
    // whole history holds (~0.4 s at 100,000 checkpoints with --history-retention 0).
    // The unlinked ones are few (an import's, a reception's): read whole, merged in as segmentSizesNewestFirst does.
    const unlinked = this.sql(this.q.unlinkedSizes, true).all({ agent: agentId }) as SizeRow[];
    let u = unlinked.length - 1;
    let total = 0;
    let counted = 0;
    const overflows = (row: SizeRow): boolean => {
      total += Number(row.n);
      return counted++ > 0 && total > maxBytes;
    };
    // Leaving the loop (return) ends the statement's iteration.
    for (const row of this.sql(this.q.linkedSizesDesc, true).iterate({ agent: agentId }) as IterableIterator<SizeRow>) {
      for (; u >= 0 && (unlinked[u] as SizeRow).to_tick >= row.to_tick; u--) if (overflows(unlinked[u] as SizeRow)) return (unlinked[u] as SizeRow).to_tick;
      if (overflows(row) || row.to_tick < floorTick) return row.to_tick;
    }
    for (; u >= 0; u--) if (overflows(unlinked[u] as SizeRow)) return (unlinked[u] as SizeRow).to_tick;
    return -1n;
  }

  /** Bytes of the agent's segments (all, or those whose last tick is at most `throughTick`). */
  protected segmentBytes(agentId: string, throughTick?: bigint): number {
    let total = 0;
    for (const r of this.segmentSizesNewestFirst(agentId)) if (throughTick === undefined || r.to_tick <= throughTick) total += Number(r.n);
    return total;
  }

  /** The agent's stored event-log segments, oldest first (those starting after `afterTick`, if given). */
  eventSegments(agentId: string, afterTick = -1n): StoredSegment[] {
    // A segment's first tick is at most one past its last (an empty one), so none older than
    // afterTick - 1 starts after afterTick.
    const rows = (afterTick < 0n ? this.allSegmentRows(agentId) : this.recentSegmentRows(agentId, afterTick - 1n)).filter((r) => r.from_tick > afterTick);
    return this.withRunSeals(agentId, rows.map(rowToSegment));
  }

  /** Segments this node recorded before it signed segments (schema 6), not yet sealed. */
  segmentsRecordedUnsigned(): (StoredSegment & { id: number; agentId: string })[] {
    const inTable = "SELECT id, agent_id, from_tick, to_tick, checkpoint_hash, abi_version, engine_version, blob, post_hashes, signature, recorded_unsigned, leaf, run_proof FROM event_log_segments WHERE recorded_unsigned = 1 AND signature IS NULL";
    // An older file read as it is keeps them all in event_log_segments.
    const inRows = this.q === IN_CHECKPOINT_ROW ? `${RECORDED_UNSIGNED_IN_ROWS} UNION ALL ` : "";
    return (this.sql(`${inRows}${inTable} ORDER BY agent_id, to_tick`, true).all() as Record<string, unknown>[]).map((r) => ({
      ...rowToSegment(r),
      id: Number(r.id),
      agentId: String(r.agent_id),
    }));
  }

  /** Seals a segment recorded before segments were signed (see segmentsRecordedUnsigned). */
  sealRecordedSegment(id: number, signature: Uint8Array): void {
    if (id > 0) this.sql("UPDATE checkpoints SET seg_signature = ?, seg_recorded_unsigned = 0 WHERE id = ? AND seg_recorded_unsigned = 1 AND seg_signature IS NULL AND seg_blob IS NOT NULL").run(signature, id);
    else this.sql("UPDATE event_log_segments SET signature = ?, recorded_unsigned = 0 WHERE id = ? AND recorded_unsigned = 1 AND signature IS NULL").run(signature, id);
  }

  /** The agent's newest stored event-log segment. */
  lastEventSegment(agentId: string): StoredSegment | undefined {
    let newest = this.sql(`${this.q.linkedDesc} LIMIT 1`, true).get({ agent: agentId }) as SegmentRow | undefined;
    const unlinked = (this.sql(this.q.unlinked, true).all({ agent: agentId }) as SegmentRow[]).at(-1);
    if (unlinked && (!newest || unlinked.to_tick > newest.to_tick)) newest = unlinked;
    return newest ? rowToSegment(newest) : undefined;
  }

  // ---- run seals (replay/run-seal.ts) ------------------------------------------------------------

  /** Stores a sealed run (in the caller's transaction) and drops runs whose segments are all gone. */
  protected insertEventRun(agentId: string, run: SealedRun): void {
    this.sql("INSERT INTO event_log_runs (agent_id, from_tick, to_tick, leaves, signature) VALUES (?, ?, ?, ?, ?)").run(
      agentId, run.fromTick, run.toTick, Buffer.concat(run.leaves), run.signature,
    );
    // A run ending before the oldest kept segment's last tick covers none (no segment: none goes).
    const oldest = this.oldestSegmentTickForRuns(agentId);
    if (oldest !== null) this.sql("DELETE FROM event_log_runs WHERE agent_id = ? AND to_tick < ?").run(agentId, oldest);
  }

  /**
   * The last tick of the agent's oldest stored segment, or null where no run can have lost all its
   * segments. Segments go only where they are dropped, and every drop leaves the agent an
   * event_log_floors row (dropSegmentsThrough, pruneToBytes; an unlinked segment makes one, a
   * reception deletes the agent's runs with its floor): with none, nothing is read of the
   * checkpoints. With one that knows its oldest linked segment and no unlinked segment, that is the
   * oldest. The two segment reads cost the commit thread ~5 % of its time at every run seal.
   */
  private oldestSegmentTickForRuns(agentId: string): bigint | null {
    const f = this.floor(agentId);
    if (!f) return null;
    if (!f.unlinked && f.to_tick !== null) return f.to_tick;
    return this.oldestSegmentTick(agentId);
  }

  /** The last tick of the agent's oldest stored segment (null: none). */
  private oldestSegmentTick(agentId: string): bigint | null {
    const oldest = (this.sql(this.q.oldestLinked, true).get({ agent: agentId }) as SegmentRow | undefined)?.to_tick ?? null;
    const unlinked = (this.sql(this.q.unlinked, true).get({ agent: agentId }) as SegmentRow | undefined)?.to_tick;
    return unlinked !== undefined && (oldest === null || unlinked < oldest) ? unlinked : oldest;
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
      const after = sealed.t ?? -1n;
      const rows = this.recentSegmentRows(id, after).filter((r) => r.to_tick > after && r.leaf !== null);
      const first = rows[0];
      const last = rows.at(-1);
      if (first && last) runs.push({ agentId: id, fromTick: first.from_tick, toTick: last.to_tick, leaves: rows.map((r) => u8(r.leaf as Buffer)) });
    }
    return runs;
  }

  /**
   * The agent's stored segments with each recorded one's seal from its run (a segment of an open
   * run keeps its leaf, unsealed). Segments and runs are both in tick order, so the runs are walked
   * once beside them: looking each segment's run up from the first cost segments × runs (5.7 s of
   * `igord verify`'s 32 at 100,000 segments).
   */
  private withRunSeals(agentId: string, segments: StoredSegment[]): StoredSegment[] {
    if (!segments.some(needsRunSeal)) return segments;
    const sealer = runSealer((from) => this.runsFrom(agentId, from.toTick));
    try {
      return segments.map(sealer.seal);
    } finally {
      sealer.close();
    }
  }

  /** The agent's sealed runs ending at `fromToTick` or later, in tick order, a row at a time. */
  private runsFrom(agentId: string, fromToTick: bigint): IterableIterator<RunRow> {
    return this.sql("SELECT from_tick, to_tick, leaves, signature FROM event_log_runs WHERE agent_id = ? AND to_tick >= ? ORDER BY to_tick", true).iterate(
      agentId,
      fromToTick,
    ) as IterableIterator<RunRow>;
  }

  /**
   * The agent's stored segments, oldest first, as eventSegments(agentId) gives them (each recorded
   * one with its run's seal), read a row at a time: a reader of every log (verify's payments, an
   * export) holds one segment at a time, not the history's. The store is only read until it ends.
   */
  *eachEventSegment(agentId: string): Generator<StoredSegment, void, undefined> {
    // The unlinked ones are few (an import's, a reception's): read whole, merged in by tick.
    const unlinked = this.sql(this.q.unlinked, true).all({ agent: agentId }) as SegmentRow[];
    // The runs are read from the first segment that needs its seal (a store from before run seals has none, nor their table).
    const sealer = runSealer((from) => this.runsFrom(agentId, from.toTick));
    const seal = sealer.seal;
    try {
      let u = 0;
      for (const r of this.sql(this.q.linkedAsc, true).iterate({ agent: agentId }) as IterableIterator<SegmentRow>) {
        for (; u < unlinked.length && (unlinked[u] as SegmentRow).to_tick < r.to_tick; u++) yield seal(rowToSegment(unlinked[u] as SegmentRow));
        yield seal(rowToSegment(r));
      }
      for (; u < unlinked.length; u++) yield seal(rowToSegment(unlinked[u] as SegmentRow));
    } finally {
      sealer.close();
    }
  }
}

type RunRow = { from_tick: bigint; to_tick: bigint; leaves: Buffer; signature: Buffer };

/** A segment recorded here whose seal is in its run (not one that arrived sealed, nor an older signed one). */
function needsRunSeal(s: StoredSegment): boolean {
  return s.leaf !== undefined && !s.runProof && !s.signature;
}

/**
 * Gives each segment its run's seal (its inclusion proof and the run's signature), for segments
 * given in tick order beside the runs in tick order (`open`ed at the first segment that needs its
 * seal, and `close`d by the caller): a run ending before a segment holds no later segment either, so
 * each run is read once. A segment no run holds (the open run's) is left as it is.
 */
function runSealer(open: (from: StoredSegment) => Iterator<RunRow>): { seal: (s: StoredSegment) => StoredSegment; close: () => void } {
  let runs: Iterator<RunRow> | null = null;
  let run: { fromTick: bigint; toTick: bigint; leaves: Uint8Array[]; signature: Uint8Array; proofs: Map<string, { proof: Uint8Array; signature: Uint8Array }> | null } | undefined;
  let ended = false;
  const seal = (s: StoredSegment): StoredSegment => {
    if (!needsRunSeal(s)) return s;
    runs ??= open(s);
    while (!ended && (run === undefined || run.toTick < s.toTick)) {
      const next = runs.next();
      if (next.done) {
        ended = true;
        run = undefined;
        break;
      }
      const r = next.value;
      const leaves: Uint8Array[] = [];
      for (let off = 0; off + 32 <= r.leaves.length; off += 32) leaves.push(u8(r.leaves.subarray(off, off + 32)));
      run = { fromTick: r.from_tick, toTick: r.to_tick, leaves, signature: u8(r.signature), proofs: null };
    }
    if (!run || run.fromTick > s.fromTick || s.toTick > run.toTick) return s;
    run.proofs ??= new Map(runProofs(run).map((p) => [Buffer.from(p.leaf).toString("hex"), p]));
    const p = run.proofs.get(Buffer.from(s.leaf as Uint8Array).toString("hex"));
    if (!p) return s;
    const { leaf: _leaf, ...rest } = s;
    return { ...rest, runProof: p.proof, signature: p.signature };
  };
  return { seal, close: () => void runs?.return?.() };
}

/** Two lists each in to_tick order, merged (ties: the first list's row first). */
function mergeByTick<R extends { to_tick: bigint }>(a: R[], b: R[]): R[] {
  if (b.length === 0) return a;
  const out: R[] = [];
  let j = 0;
  for (const r of a) {
    while (j < b.length && (b[j] as R).to_tick < r.to_tick) out.push(b[j++] as R);
    out.push(r);
  }
  while (j < b.length) out.push(b[j++] as R);
  return out;
}
