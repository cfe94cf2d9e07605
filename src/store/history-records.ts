// An agent's checkpoint history: the chain compare-and-set that appends a checkpoint (with its
// receipt, outbox, event log, pruning and status, all in the caller's transaction), the reads of the
// chain, and retention behind a signed history base. The group commit in SqliteStore batches these.
import type Database from "better-sqlite3";
import type { HistoryBase } from "../checkpoint/history-base.js";
import { versionStepProblem } from "../checkpoint/lineage.js";
import { ErrorCode, IgordError } from "../errors.js";
import { rowToCheckpoint, u8 } from "./rows.js";
import type { EventLogSegment } from "../eventlog/tick-log.js";
import { endKey, keyed, keyIds } from "./checkpoint-keys.js";
import { HEAD_CHANGES_COUNT } from "./head-changes.js";
import { dropUnnamedModules, modulesBeingPruned } from "./module-retention.js";
import { segmentInRow } from "./segment-records.js";
import { StorageTotals } from "./storage-totals.js";
import { OUTBOX_MESSAGE_OVERHEAD_BYTES, TickRecords } from "./tick-records.js";
import type { CheckpointCommit, CheckpointRow } from "./types.js";
import type { LeaseColumns } from "./agent-records.js";

/**
 * A checkpoint's reads in its transaction: the agent's lease and status, its chain head's seq, and
 * whether the head's hash is the checkpoint's prevHash (NULL both with no history). The hash is
 * compared in SQL and the row read as an array: 3.2–3.8 µs a read against 5.2–5.6 for the hash as a
 * Buffer in an object (1,000 agents 50 deep, 50,000 reads in a transaction, four rounds).
 */
const LEASE_STATUS_HEAD =
  `SELECT a.lease_state, a.epoch_major, a.epoch_generation, a.status, a.reason, c.seq, c.hash = ? FROM agents a LEFT JOIN checkpoints c ON c.id = ${endKey("id", "a.agent_id", "DESC")} WHERE a.agent_id = ?`;
/** LEASE_STATUS_HEAD's row: lease state, epoch major, epoch generation, status, reason, head seq, head hash = prevHash (1n / 0n). */
type LeaseStatusHeadRow = [LeaseColumns["lease_state"], bigint, bigint, string, string | null, bigint | null, bigint | null];

/** A checkpoint's own columns (rowToCheckpoint's), read by key: not its segment's, which share its row (schema 11). */
const CHECKPOINT_COLS = "k.agent_id AS agent_id, k.seq AS seq, c.tick AS tick, c.hash AS hash, c.prev_hash AS prev_hash, c.budget AS budget, c.reason AS reason, c.blob AS blob, c.created_at AS created_at";
/** The agent's checkpoints (named parameter @agent). */
const OF_AGENT = "k.agent_id = @agent";

/** The oldest and newest seq of an agent's stored checkpoints (NULL both with none): index lookups in the keys, no row read. */
const PRUNE_ENDS = `SELECT ${endKey("seq", "@agent", "ASC")} AS first, ${endKey("seq", "@agent", "DESC")} AS last`;

/** --history-retention N prunes N / HISTORY_PRUNE_STEP_DIVISOR checkpoints at a time (at least 1, at most MAX_HISTORY_PRUNE_STEP). */
export const HISTORY_PRUNE_STEP_DIVISOR = 4;
export const MAX_HISTORY_PRUNE_STEP = 64;

/**
 * Checkpoints pruned at a time when keeping `keep`: an agent keeps between `keep` and
 * `keep + step - 1`, and signs a history base once per `step` checkpoints. Pruned one at a time,
 * every checkpoint past the retention signed twice (its own signature and a base's) and took the
 * checkpointer off its one-signature path: 235–265 µs of CPU a checkpoint at --history-retention 16
 * against 120–136 with none (docs/BENCHMARKS.md, "History retention in steps").
 */
export function historyPruneStep(keep: number): number {
  return Math.max(1, Math.min(MAX_HISTORY_PRUNE_STEP, Math.floor(keep / HISTORY_PRUNE_STEP_DIVISOR)));
}

/** What a checkpoint prunes: the checkpoint that becomes the base, and its signed record's fields. */
export interface PrunePlan {
  baseSeq: bigint;
  fields: Omit<HistoryBase, "signature">;
}

/**
 * What LEASE_STATUS_HEAD would read for an agent, as the last commit on this connection left it
 * (the commit connection keeps these: see `heads`). Mutated in place by the agent's next commit.
 */
interface KnownHead {
  leaseState: LeaseColumns["lease_state"];
  epochMajor: bigint;
  epochGeneration: bigint;
  status: string;
  reason: string | null;
  seq: bigint;
  /** A copy (a commit's byte fields are views into a buffer that goes back to the main thread). */
  hash: Uint8Array;
}

/** Whether two byte strings are equal (32-byte hashes: a loop costs less than Buffer.compare's call). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The schema whose checkpoints store the time their tick committed (`tick_at`). */
export const TICK_AT_SCHEMA = 17;

export abstract class HistoryRecords extends TickRecords {
  /** False on an older file read as it is (read-only, below TICK_AT_SCHEMA): its checkpoints have no tick times. */
  protected tickTimesStored = true;

  /** LEASE_STATUS_HEAD prepared in raw mode (its rows as arrays), on first use. */
  private leaseStatusHeadStatement: Database.Statement | null = null;
  /**
   * The commit connection's (SqliteStore.open with commitConnection) per-agent lease, status and
   * head as its own last commit of the agent left them, so its next checkpoint reads no row (the
   * read was four B-tree descents, a fifth of the commit thread's SQL). That connection writes
   * nothing but commits; every other writer of igord's store (the main connection's handoffs,
   * arrivals, imports, lease moves and status changes; another process) counts each write that
   * changes what a commit reads in `head_changes` (store/head-changes.ts: all but lease renewals),
   * and the whole map is dropped when that count moved (forgetHeadsIfChanged, read inside each
   * commit's write transaction, so no write can land between the check and the use). A renewal
   * leaves it: a known generation is at most the stored one, and a checkpoint carrying a newer one
   * reads the row. Null on every other connection: one that writes more than commits reads the row
   * each time.
   */
  protected heads: Map<string, KnownHead> | null = null;
  /** PRAGMA data_version when `heads` was last checked (null: not yet): no other connection committed while it stands. */
  private headsDataVersion: number | null = null;
  /** head_changes' count when `heads` was last checked (null: not yet). */
  private headsChanges: bigint | null = null;
  private dataVersionStatement: Database.Statement | null = null;
  private headChangesStatement: Database.Statement | null = null;
  /** Agents' stored bytes as this connection's commits left them (store/storage-totals.ts), on first use by a limited agent. */
  private storageTotals: StorageTotals | null = null;
  /** PRAGMA data_version when a connection without known heads last checked its totals. */
  private totalsDataVersion: number | null = null;

  /**
   * Drops the known heads when another connection has committed a write they rest on since they
   * were last checked. Runs inside the commit's write transaction (BEGIN IMMEDIATE: no other
   * connection commits until it ends). The count is read only when some other connection committed.
   */
  protected forgetHeadsIfChanged(): void {
    if (!this.heads) return;
    this.dataVersionStatement ??= this.db.prepare("PRAGMA data_version").pluck();
    const version = this.dataVersionStatement.get() as number;
    if (version === this.headsDataVersion) return;
    this.headsDataVersion = version;
    this.headChangesStatement ??= this.db.prepare(HEAD_CHANGES_COUNT).pluck().safeIntegers(true);
    const changes = this.headChangesStatement.get() as bigint;
    if (changes !== this.headsChanges) {
      this.heads.clear();
      this.storageTotals?.forget();
    }
    this.headsChanges = changes;
  }

  /** Forgets every known head and stored-bytes total (a transaction rolled back: what its commits left is not stored). */
  protected forgetHeads(): void {
    this.heads?.clear();
    this.storageTotals?.forget();
  }

  /**
   * The agent's stored bytes for a max_storage_bytes check, inside the commit's transaction: this
   * connection's running total. The commit connection forgets its totals with its known heads (the
   * head_changes count covers every write of stored bytes by another connection); any other
   * connection forgets them whenever another connection has committed anything.
   */
  private storedBytesForLimit(agentId: string): number {
    if (!this.segmentsInRows()) return this.storedBytes(agentId);
    this.storageTotals ??= new StorageTotals(this.db);
    if (!this.heads) {
      this.dataVersionStatement ??= this.db.prepare("PRAGMA data_version").pluck();
      const version = this.dataVersionStatement.get() as number;
      if (version !== this.totalsDataVersion) this.storageTotals.forget();
      this.totalsDataVersion = version;
    }
    return this.storageTotals.bytes(agentId);
  }

  /**
   * Appends a checkpoint to the agent's history. Compare-and-set on the chain: the checkpoint's
   * prevHash must be the current head's hash (or the agent must have no history), so a stale or
   * duplicate writer can never fork or overwrite the history. A refused checkpoint is returned as an
   * error before anything is written; an unexpected failure throws. `arrived`: the segment closing
   * it that an arriving history (an import, a migration) brings, stored in its row (a commit's own
   * is `c.events`).
   */
  protected insertCheckpoint(c: CheckpointCommit, arrived?: EventLogSegment): IgordError | null {
    // The stored head's seq (undefined: no history), and whether the checkpoint's prevHash is its hash.
    let headSeq: bigint | undefined;
    let extendsHead = true;
    // The agent's status as stored now (read with the lease): the status write below is skipped when it is already so.
    let stored: { status: string; reason: string | null } | undefined;
    // The row LEASE_STATUS_HEAD read, when it was read.
    let read: LeaseStatusHeadRow | undefined;
    // A known lease's generation is at most the stored one (renewals are not counted): a checkpoint
    // carrying a newer generation reads the row.
    const known = c.lease ? this.heads?.get(c.agentId) : undefined;
    if (known && c.lease && c.lease.epoch.generation <= known.epochGeneration) {
      const stale = this.leaseMismatch(c.agentId, c.lease, false, { lease_state: known.leaseState, epoch_major: known.epochMajor, epoch_generation: known.epochGeneration });
      if (stale) return stale;
      headSeq = known.seq;
      extendsHead = sameBytes(known.hash, c.prevHash);
      stored = { status: known.status, reason: known.reason };
    } else if (c.lease) {
      const row = (read = this.readLeaseStatusHead(c.agentId, c.prevHash));
      // A checkpoint is captured before it commits; its owner may renew (generation + 1) meanwhile.
      // Authority moves only with a new major or state, so those must match exactly.
      const stale = this.leaseMismatch(c.agentId, c.lease, false, row ? { lease_state: row[0], epoch_major: row[1], epoch_generation: row[2] } : undefined);
      if (stale || !row) return stale;
      if (row[5] !== null) {
        headSeq = row[5];
        extendsHead = row[6] === 1n;
      }
      stored = { status: row[3], reason: row[4] };
    } else {
      const head = this.sql(keyed("k.seq AS seq, c.hash AS hash", OF_AGENT, "DESC", { limit: 1 }), true).get({ agent: c.agentId }) as { seq: bigint; hash: Buffer } | undefined;
      if (head) {
        headSeq = head.seq;
        extendsHead = head.hash.equals(c.prevHash);
      }
    }
    if (headSeq !== undefined && !extendsHead) {
      return new IgordError(
        ErrorCode.CheckpointChainBroken,
        `checkpoint for agent "${c.agentId}" at tick ${c.tick} does not extend the stored head (seq ${headSeq})`,
      );
    }
    // Pruning happens only when the stored base is still the checkpoint it was planned on.
    const plannedBase = c.prune ? this.hashAt(c.agentId, c.prune.baseSeq) : undefined;
    const prune = c.prune && plannedBase?.equals(c.prune.base.baseHash) ? c.prune : undefined;
    if (c.maxStorageBytes !== undefined) {
      // This commit's messages count before --outbox-retention drops old ticks for them (below, in
      // insertOutbox): the check is short by at most what this commit's retention frees.
      const added = c.blob.length + (c.events ? c.events.blob.length + c.events.postHashes.length : 0) + outboxBytes(c.outbox);
      const after = this.storedBytesForLimit(c.agentId) - (prune ? this.bytesBefore(c.agentId, prune.baseSeq, prune.base.baseTick) : 0) + added;
      if (BigInt(after) > c.maxStorageBytes) {
        return new IgordError(
          ErrorCode.StorageLimit,
          `agent "${c.agentId}": its stored bytes (history, event logs, outbox) would grow to ${after}, over the manifest's max_storage_bytes of ${c.maxStorageBytes} (keep fewer with --history-retention, --event-log-retention or --outbox-retention)`,
          { details: { agentId: c.agentId, bytes: after, limit: String(c.maxStorageBytes) } },
        );
      }
    }
    const seq = (headSeq ?? 0n) + 1n;
    // With its segment (schema 11: in the checkpoint's row): one INSERT.
    const segment = c.events ?? arrived;
    if (segment) {
      this.sql(
        "INSERT INTO checkpoints (agent_id, seq, tick, hash, prev_hash, budget, reason, blob, created_at, tick_at, seg_from_tick, seg_to_tick, seg_abi_version, seg_engine_version, seg_blob, seg_post_hashes, seg_signature, seg_leaf, seg_run_proof) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ).run(c.agentId, seq, c.tick, c.hash, c.prevHash, c.budget, c.reason, c.blob, Date.now(), c.tickAt ?? null, ...segmentInRow(segment));
      // An arriving one at or below the agent's floor (a returning agent's): the floor comes down to it, its oldest unknown.
      if (arrived && !c.events) this.sql("UPDATE event_log_floors SET seq = ?, to_tick = NULL WHERE agent_id = ? AND seq >= ?").run(seq, c.agentId, seq);
    } else
      this.sql("INSERT INTO checkpoints (agent_id, seq, tick, hash, prev_hash, budget, reason, blob, created_at, tick_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").run(
          c.agentId,
          seq,
          c.tick,
          c.hash,
          c.prevHash,
          c.budget,
          c.reason,
          c.blob,
          Date.now(),
          c.tickAt ?? null,
        );
    if (c.receipt) this.insertReceipt(c.agentId, c.hash, c.receipt);
    if (c.outbox) this.insertOutbox(c.agentId, c.outbox);
    this.settlePayments(c.agentId, c.tick, c.settledPayments);
    if (c.lostPayments) this.settleLostPayments(c.agentId, c.lostPayments);
    if (prune) this.pruneHistory(c.agentId, prune.baseSeq, prune.base);
    if (c.events) {
      const e = c.events;
      this.pruneSegments(c.agentId, e.toTick, e);
      if (c.runSeal) this.insertEventRun(c.agentId, c.runSeal);
    }
    if (stored) {
      // Read in this transaction: exact whichever connection wrote the status last.
      if (stored.status !== c.status || stored.reason !== c.statusReason) {
        this.sql("UPDATE agents SET status = ?, reason = ?, updated_at = ? WHERE agent_id = ?").run(c.status, c.statusReason, Date.now(), c.agentId);
      }
      if (this.statusCached) this.lastStatus.set(c.agentId, `${c.status}:${c.statusReason ?? ""}`);
      if (this.heads) this.knowHead(c, seq, read ?? known);
      return null;
    }
    if (!this.statusCached) {
      this.sql("UPDATE agents SET status = ?, reason = ?, updated_at = ? WHERE agent_id = ? AND (status IS NOT ? OR reason IS NOT ?)").run(
        c.status, c.statusReason, Date.now(), c.agentId, c.status, c.statusReason,
      );
      return null;
    }
    const statusKey = `${c.status}:${c.statusReason ?? ""}`;
    if (this.lastStatus.get(c.agentId) !== statusKey) {
      this.sql("UPDATE agents SET status = ?, reason = ?, updated_at = ? WHERE agent_id = ?").run(c.status, c.statusReason, Date.now(), c.agentId);
      this.lastStatus.set(c.agentId, statusKey);
    }
    return null;
  }

  /**
   * The lease, the status and the chain head in one statement (three per checkpoint before: these
   * reads were a fifth of the commit thread's time).
   */
  private readLeaseStatusHead(agentId: string, prevHash: Uint8Array): LeaseStatusHeadRow | undefined {
    this.leaseStatusHeadStatement ??= this.db.prepare(LEASE_STATUS_HEAD).safeIntegers(true).raw(true);
    return this.leaseStatusHeadStatement.get(prevHash, agentId) as LeaseStatusHeadRow | undefined;
  }

  /**
   * Keeps what the agent's row and head are once `c` (inserted at `seq`, its lease matched) commits.
   * The stored lease is what the check read (a commit does not write it): `from`, the known entry
   * (updated in place) or the row read.
   */
  private knowHead(c: CheckpointCommit, seq: bigint, from: KnownHead | LeaseStatusHeadRow | undefined): void {
    if (!from) return;
    if (Array.isArray(from)) {
      this.heads?.set(c.agentId, { leaseState: from[0], epochMajor: from[1], epochGeneration: from[2], status: c.status, reason: c.statusReason, seq, hash: Uint8Array.from(c.hash) });
      return;
    }
    const known = from as KnownHead;
    known.status = c.status;
    known.reason = c.statusReason;
    known.seq = seq;
    if (known.hash.length === c.hash.length) known.hash.set(c.hash);
    else known.hash = Uint8Array.from(c.hash);
  }

  /**
   * Appends a checkpoint that continues the stored head (used by `igord resume`), from a file: its
   * version may not step down from the head's (a v0x04 after a v0x05 may be a payment receipt).
   */
  appendCheckpoint(c: CheckpointCommit): void {
    const err = this.db.transaction(() => {
      const head = this.head(c.agentId);
      const stepDown = head ? versionStepProblem(head.blob[0] as number, c.blob[0] as number) : null;
      if (stepDown) return new IgordError(ErrorCode.CheckpointVersion, `checkpoint for agent "${c.agentId}" at tick ${c.tick}: ${stepDown}`);
      return this.insertCheckpoint(c);
    }).immediate();
    if (err) throw err;
  }

  /**
   * When the tick of the agent's head checkpoint committed (Unix ms), or null: unknown (genesis, a
   * checkpoint an older igord or an older peer wrote). Reads past the head's state (the column
   * comes after it): for a resume or a hop, once.
   */
  headTickAt(agentId: string): number | null {
    if (!this.tickTimesStored) return null;
    const r = this.sql(keyed("k.seq AS seq, c.tick_at AS tick_at", OF_AGENT, "DESC", { limit: 1 }), true).get({ agent: agentId }) as { tick_at: bigint | null } | undefined;
    return r?.tick_at == null ? null : Number(r.tick_at);
  }

  head(agentId: string): CheckpointRow | undefined {
    const r = this.sql(keyed(CHECKPOINT_COLS, OF_AGENT, "DESC", { limit: 1 }), true)
      .get({ agent: agentId }) as Record<string, unknown> | undefined;
    return r ? rowToCheckpoint(r) : undefined;
  }

  /**
   * The agent's checkpoint with this hash. No index by hash (schema 9): the agent's checkpoints are
   * read back from the head, so the cost grows with how far back it lies (all of them when absent).
   */
  checkpointByHash(agentId: string, hash: Uint8Array): CheckpointRow | undefined {
    const r = this.sql(keyed(CHECKPOINT_COLS, `${OF_AGENT} AND c.hash = @hash`, "DESC", { limit: 1 }), true).get({ agent: agentId, hash }) as
      | Record<string, unknown>
      | undefined;
    return r ? rowToCheckpoint(r) : undefined;
  }

  /**
   * Whether the agent's history holds the checkpoint with this hash and tick. Ticks increase along a
   * chain, so the walk back from the head stops at the first older tick: a checkpoint just written is
   * found at the head, one never written costs one row.
   */
  holdsCheckpoint(agentId: string, hash: Uint8Array, tick: bigint): boolean {
    const rows = this.sql(keyed("k.seq AS seq, c.tick AS tick, c.hash AS hash", OF_AGENT, "DESC"), true).iterate({ agent: agentId }) as IterableIterator<{ tick: bigint; hash: Buffer }>;
    for (const r of rows) {
      if (r.tick < tick) break;
      // Leaving the loop (break or return) ends the statement's iteration.
      if (r.tick === tick && r.hash.equals(hash)) return true;
    }
    return false;
  }

  checkpointAt(agentId: string, seq: bigint): CheckpointRow | undefined {
    const r = this.sql(keyed(CHECKPOINT_COLS, `${OF_AGENT} AND k.seq = @seq`), true)
      .get({ agent: agentId, seq }) as Record<string, unknown> | undefined;
    return r ? rowToCheckpoint(r) : undefined;
  }

  /** The agent's checkpoint taken at exactly this tick, if any. */
  checkpointAtTick(agentId: string, tick: bigint): CheckpointRow | undefined {
    const r = this.sql(keyed(CHECKPOINT_COLS, `${OF_AGENT} AND c.tick = @tick`, "DESC", { limit: 1 }), true).get({ agent: agentId, tick }) as
      | Record<string, unknown>
      | undefined;
    return r ? rowToCheckpoint(r) : undefined;
  }

  /** The agent's checkpoints in chain order (after sequence number `afterSeq`, if given). */
  *history(agentId: string, afterSeq = 0n): IterableIterator<CheckpointRow> {
    const it = this.sql(keyed(CHECKPOINT_COLS, `${OF_AGENT} AND k.seq > @seq`, "ASC"), true)
      .iterate({ agent: agentId, seq: afterSeq }) as IterableIterator<Record<string, unknown>>;
    for (const r of it) yield rowToCheckpoint(r);
  }

  /** Where a pruned history now starts, signed by the agent (none: nothing was pruned here). */
  historyBase(agentId: string): HistoryBase | undefined {
    const r = this.sql("SELECT * FROM history_bases WHERE agent_id = ?", true).get(agentId) as Record<string, unknown> | undefined;
    if (!r) return undefined;
    return {
      originHash: u8(r.origin_hash as Buffer),
      baseHash: u8(r.base_hash as Buffer),
      baseTick: r.base_tick as bigint,
      pruned: r.pruned as bigint,
      signature: u8(r.signature as Buffer),
    };
  }

  /**
   * What keeping the newest `keep` checkpoints (counting one about to be appended) would prune: the
   * checkpoint that becomes the base and the fields of its signed record; none while fewer than
   * historyPruneStep(keep) would go (a base costs a signature: pruned a step at a time, not a
   * checkpoint at a time). `dueIn`: appends until the next plan can prune, so a caller that counts
   * its appends reads this once a step (it costs ~7–10 µs on the main thread). An agent's seqs are
   * contiguous (each append is its head's + 1, pruning removes from the bottom), so the plan is
   * three index lookups, not a walk of the kept checkpoints.
   */
  prunePlan(agentId: string, keep: number): { plan: PrunePlan | null; dueIn: number } {
    const step = historyPruneStep(keep);
    if (keep < 2) return { plan: null, dueIn: Number.POSITIVE_INFINITY };
    const ends = this.sql(PRUNE_ENDS, true).get({ agent: agentId }) as { first: bigint | null; last: bigint | null };
    if (ends.first === null || ends.last === null) return { plan: null, dueIn: 1 };
    // The appended checkpoint (last + 1) takes one of the `keep` places; each append moves the base one on.
    const keptFrom = ends.last + 2n - BigInt(keep);
    const excess = keptFrom - ends.first;
    if (excess < BigInt(step)) return { plan: null, dueIn: Number(BigInt(step) - excess) };
    // A step at a time even when far more is past keeping (a retention set or lowered under a long
    // history): the rest goes a step with each of the next checkpoints. Pruned in one commit, 96,000
    // checkpoints held the thread that commits (the main thread, at a start) ~2 s.
    const baseSeq = excess > BigInt(step) ? ends.first + BigInt(step) : keptFrom;
    const older = baseSeq - ends.first;
    const base = this.sql(keyed("c.tick AS tick, c.hash AS hash", `${OF_AGENT} AND k.seq = @seq`), true).get({ agent: agentId, seq: baseSeq }) as { tick: bigint; hash: Buffer } | undefined;
    const previous = this.historyBase(agentId);
    const origin = previous?.originHash ?? this.hashAt(agentId, ends.first);
    if (!base || !origin) return { plan: null, dueIn: 1 };
    // More past keeping than this step prunes: the next checkpoint prunes again.
    return { plan: { baseSeq, fields: { originHash: u8(origin), baseHash: u8(base.hash), baseTick: base.tick, pruned: (previous?.pruned ?? 0n) + older } }, dueIn: excess > BigInt(step) ? 1 : step };
  }

  private hashAt(agentId: string, seq: bigint): Buffer | undefined {
    return (this.sql(keyed("c.hash AS hash", `${OF_AGENT} AND k.seq = @seq`)).get({ agent: agentId, seq }) as { hash: Buffer } | undefined)?.hash;
  }

  private bytesBefore(agentId: string, seq: bigint, tick: bigint): number {
    const r = this.sql(`SELECT COALESCE(SUM(n), 0) AS n FROM (${keyed("length(c.blob) AS n", `${OF_AGENT} AND k.seq < @seq`)})`).get({ agent: agentId, seq }) as { n: number };
    return r.n + this.segmentBytes(agentId, tick);
  }

  private pruneHistory(agentId: string, baseSeq: bigint, base: HistoryBase): void {
    // Logs of ticks up to the base replay from nothing that is kept. The checkpoints' rows take their
    // segments with them (schema 11: no row rewritten to clear a segment about to be deleted); what
    // is left to drop is the base's own segment and unlinked ones, and the floor moves.
    const sql = (text: string): Database.Statement => this.sql(text);
    const earlierModules = modulesBeingPruned(sql, agentId, baseSeq);
    this.sql(`DELETE FROM checkpoints WHERE id IN (${keyIds(`${OF_AGENT} AND k.seq < @seq`)})`).run({ agent: agentId, seq: baseSeq });
    dropUnnamedModules(sql, earlierModules);
    this.dropSegmentsThrough(agentId, base.baseTick);
    // Receipts of ticks before the base go with their checkpoints, but the newest (where the next
    // receipt's range starts, receiptBase); what is kept still reads by index from 0 (receiptAt).
    this.sql("DELETE FROM receipts WHERE agent_id = ? AND tick_end < ? AND seq < (SELECT MAX(seq) FROM receipts WHERE agent_id = ?)").run(agentId, base.baseTick, agentId);
    this.putHistoryBase(agentId, base);
  }

  /** Records where the agent's stored history starts (pruned here, or arrived pruned by migration). */
  protected putHistoryBase(agentId: string, base: HistoryBase): void {
    this.sql(
      "INSERT OR REPLACE INTO history_bases (agent_id, origin_hash, base_hash, base_tick, pruned, signature, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ).run(agentId, base.originHash, base.baseHash, base.baseTick, base.pruned, base.signature, Date.now());
  }

  /** Bytes stored for the agent: checkpoint blobs, event-log segments and outbox messages (what max_storage_bytes bounds). */
  storedBytes(agentId: string): number {
    const r = this.sql(`SELECT COALESCE(SUM(n), 0) AS n FROM (${keyed("length(c.blob) AS n", OF_AGENT)})`).get({ agent: agentId }) as { n: number };
    return r.n + this.segmentBytes(agentId) + this.outboxSize(agentId);
  }

  historyCount(agentId: string): number {
    return (this.sql(`SELECT COUNT(*) AS n FROM (${keyIds(OF_AGENT)})`).get({ agent: agentId }) as { n: number }).n;
  }
}

/** Bytes a commit's outbox messages count (each its bytes and its row's overhead). */
function outboxBytes(batches: CheckpointCommit["outbox"]): number {
  let n = 0;
  for (const b of batches ?? []) for (const m of b.messages) n += m.length + OUTBOX_MESSAGE_OVERHEAD_BYTES;
  return n;
}
