// The node's SQLite database (<data-dir>/igord.db): WAL mode, forward-only migrations, and the only
// place in the code base with SQL. Checkpoint, history row, receipt and agent status commit in one
// transaction; checkpoints from many agents are group-committed in one transaction per turn of the
// event loop, so one fsync covers them all.
//
// The store is one class built in layers, one file per table family, each extending the one below
// (store-base → migration-records → agent-records → tick-records → history-records → agent-arrival);
// this top layer opens, checks and migrates the file, runs the group commit, backs up and closes.
// Callers import everything from here, as they always have.
import Database from "better-sqlite3";
import { closeSync, openSync, rmSync } from "node:fs";
import { BusyShare } from "../busy-share.js";
import { diskFullError, ErrorCode, IgordError } from "../errors.js";
import { AgentArrival } from "./agent-arrival.js";
import { CHECKPOINT_KEYS_SCHEMA, CHECKPOINT_KEYS_VIEWS_OF_OLDER_FILE } from "./checkpoint-keys.js";
import { COMMIT_THREAD_BUSY_SHARE, COMMIT_THREAD_WINDOW_MS, CommitThread, type CommitThreadOptions, type QueuedCommit } from "./commit-thread.js";
import { createPrivateFile } from "./data-dir.js";
import { HEAD_CHANGE_TRIGGERS } from "./head-changes.js";
import { TICK_AT_SCHEMA } from "./history-records.js";
import { corruptionError, databaseError, storeError, writeError } from "./rows.js";
import { MIGRATIONS } from "./schema.js";
import { type WalSync, WalSyncer } from "./wal-sync.js";
import { WAL_AUTOCHECKPOINT_PAGES, WalCheckpointDeferral } from "./wal-checkpoint-deferral.js";
import { COMMIT_WAL_AUTOCHECKPOINT_PAGES, WalCheckpointThread } from "./wal-checkpoint-thread.js";
import { BUSY_TIMEOUT_MS, type CheckpointCommit, type EventLogKeep, QUICK_CHECK_MAX_ERRORS, type SyncMode } from "./types.js";

export { corruptionError, databaseError } from "./rows.js";
export { fdatasyncWal, type WalSync } from "./wal-sync.js";
export { WAL_CHECKPOINT_QUIET_MS, WAL_DEFERRED_MAX_PAGES } from "./wal-checkpoint-deferral.js";
export { COMMIT_WAL_AUTOCHECKPOINT_PAGES, WAL_CHECKPOINT_LIMITS } from "./wal-checkpoint-thread.js";
export {
  type AgentRow,
  type AgentStatus,
  BUSY_TIMEOUT_MS,
  type CheckpointCommit,
  type CheckpointRow,
  DB_FILE,
  type EventLogSegment,
  type HandoffKey,
  type IncomingAgent,
  type LeaseBelief,
  type LeaseRenewal,
  type LineageEvent,
  MAX_FENCES_PER_PEER,
  MIGRATION_TERMINAL,
  type MigrationDirection,
  type MigrationRow,
  type MigrationState,
  type MigrationUpdate,
  type NewAgent,
  type OutboxBatch,
  type PendingReception,
  QUICK_CHECK_MAX_ERRORS,
  type ReceiptRow,
  type StoredSegment,
  type SyncMode,
} from "./types.js";

/**
 * The oldest schema whose histories the CLI reads as it is (read-only, without upgrading the file):
 * migration 6 signed event-log segments and added history bases. An older file's segments are
 * signed only by the node that recorded them, at its first start on a newer igord.
 */
export const OLDEST_HISTORY_SCHEMA_READ_AS_IS = 6;

/** How SqliteStore.open opens the database. */
export interface StoreOpenOptions {
  sync?: SyncMode;
  readonly?: boolean;
  eventLogRetention?: EventLogKeep;
  /** --outbox-retention: per agent, bytes of emitted messages kept (0 or absent keeps all). */
  outboxRetentionBytes?: number;
  /**
   * Group commits (enqueue) run on their own thread and connection: from the start, or (the
   * daemon's choice, "when-busy") once they take COMMIT_THREAD_BUSY_SHARE of the main thread's
   * time over a window — a thread costs ~8–12 MiB, which a node checkpointing a few hundred
   * agents a second does not need to pay.
   */
  commitThread?: boolean | "when-busy";
  /** This is that thread's connection: the main one already checked and migrated the file. */
  commitConnection?: boolean;
  /** How durable commits whose fsync runs off the main thread sync the WAL (tests hold or fail it). */
  walSync?: WalSync;
}

export class SqliteStore extends AgentArrival {
  private queue: QueuedCommit[] = [];
  private flushScheduled = false;
  private closed = false;
  /** Where group commits run when the node gave them their own thread (store/commit-thread.ts). */
  private commitThread: CommitThread | null = null;
  /** Set while the thread waits to be started ("when-busy"): the main thread's time in commits, per window. */
  private commitThreadLater: CommitThreadOptions | null = null;
  private readonly commitBusy = new BusyShare(COMMIT_THREAD_BUSY_SHARE, COMMIT_THREAD_WINDOW_MS);
  /** Holds of the main connection's WAL checkpoints around migrations. */
  private readonly walDeferral: WalCheckpointDeferral;
  /** The commit connection's WAL checkpoints, on a thread of their own (store/wal-checkpoint-thread.ts). */
  private walThread: WalCheckpointThread | null = null;

  private constructor(path: string, db: Database.Database) {
    super(path, db);
    this.walDeferral = new WalCheckpointDeferral(db, path, { closed: () => this.closed, onCommitThread: () => this.commitThread !== null });
  }

  static open(path: string, opts: StoreOpenOptions = {}): SqliteStore {
    let db: Database.Database;
    try {
      // The database holds private keys: created owner-only (its WAL and shm files inherit the mode).
      if (!opts.readonly) createPrivateFile(path);
      db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    } catch (e) {
      // createPrivateFile names its own failure (a full disk among them).
      throw e instanceof IgordError ? e : storeError(`cannot open database ${path}: ${(e as Error).message}`, e);
    }
    try {
      return SqliteStore.ready(path, db, opts);
    } catch (e) {
      // SQLite's own words, by its code, with the file's name: it said only "database or disk is
      // full" or "database disk image is malformed" when a pragma or the first read failed.
      db.close();
      throw databaseError(e, path);
    }
  }

  /** Checks, migrates and sets up the store on a database just opened (open() closes it if this throws). */
  private static ready(path: string, db: Database.Database, opts: StoreOpenOptions): SqliteStore {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // A writer proves the file sound first: a damaged page must not start a node that looks
    // healthy and empty (its agents unreadable), nor take imports on top of it.
    if (!opts.readonly && !opts.commitConnection) quickCheck(path, db);
    if (!opts.readonly) {
      db.pragma("journal_mode = WAL");
      db.pragma(`synchronous = ${opts.sync === "normal" ? "NORMAL" : "FULL"}`);
      db.pragma("foreign_keys = ON");
    }
    const store = new SqliteStore(path, db);
    store.sync = opts.sync ?? "full";
    store.eventLogRetention = opts.eventLogRetention ?? { ticks: 0n };
    store.outboxRetentionBytes = opts.outboxRetentionBytes ?? 0;
    store.migrate(opts.readonly ?? false);
    if (!opts.readonly && !opts.commitConnection) {
      // Every writer but the commit connection counts what a commit connection's known heads rest on.
      db.exec(HEAD_CHANGE_TRIGGERS);
      store.walSyncer = new WalSyncer(path);
    }
    if (opts.walSync) store.walSync = opts.walSync;
    if (opts.commitThread && !opts.readonly) {
      const threadOpts = { path, sync: store.sync, eventLogRetention: store.eventLogRetention, outboxRetentionBytes: store.outboxRetentionBytes };
      if (opts.commitThread === "when-busy") store.commitThreadLater = threadOpts;
      else store.startCommitThread(threadOpts);
    }
    if (opts.commitConnection) {
      // Two connections write agents' status: neither may skip a write by what it last wrote itself.
      store.statusCached = false;
      // It writes nothing but commits: it may keep each agent's head as it left it (history-records.ts).
      store.heads = new Map();
      // Under `normal` the WAL checkpoint is the commit thread's only fsync: it runs on a thread of
      // its own (×1.13 the checkpoint rate in quiet pairs). Under `full` every commit syncs anyway,
      // and a concurrent checkpoint's syncs compete with them (higher in 4 of 11 pairs): inline.
      if (store.sync === "normal") store.walThread = new WalCheckpointThread(db, path, store.sync);
      else db.pragma(`wal_autocheckpoint = ${COMMIT_WAL_AUTOCHECKPOINT_PAGES}`);
    }
    return store;
  }

  private startCommitThread(opts: CommitThreadOptions): void {
    this.commitThreadLater = null;
    this.statusCached = false;
    this.commitThread = new CommitThread(opts, (batch) => this.settleHere(batch));
    // WAL checkpoints run after the commits that fill the WAL, on the commit thread, not in a
    // COMMIT of the main thread's few writes (leases, the payment journal).
    this.db.pragma("wal_autocheckpoint = 0");
  }

  /** "when-busy": counts a group commit's time on the main thread; starts the thread once they take enough of it. */
  private noteCommitTime(started: number): void {
    if (this.commitBusy.note(started) && this.commitThreadLater) this.startCommitThread(this.commitThreadLater);
  }

  /**
   * Refuses, before anything is read, an agent history `what` (verify, export) from a file opened
   * read-only below OLDEST_HISTORY_SCHEMA_READ_AS_IS: its unsigned event logs would audit as forged
   * and its missing tables fail halfway. The file is not touched.
   */
  requireHistoryReadable(what: string): void {
    const version = this.schemaVersion();
    if (version >= OLDEST_HISTORY_SCHEMA_READ_AS_IS) return;
    throw new IgordError(
      ErrorCode.StoreSchema,
      `${this.path} has schema version ${version}, from an igord whose histories this one cannot ${what} as they are (it reads schema ${OLDEST_HISTORY_SCHEMA_READ_AS_IS} and later): start igord once on this data dir to upgrade it (the node signs the event logs it recorded), then ${what} again; the file was not changed`,
    );
  }

  private migrate(readonly: boolean): void {
    const has = this.sql("SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'").get();
    if (!has && readonly) throw new IgordError(ErrorCode.StoreSchema, `${this.path} is not an igord database`);
    if (!has) this.db.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
    const row = this.sql("SELECT MAX(version) AS v FROM schema_version").get() as { v: number | null };
    const current = row.v ?? 0;
    if (current > MIGRATIONS.length) {
      throw new IgordError(
        ErrorCode.StoreSchema,
        `database ${this.path} has schema version ${current}, newer than this igord (${MIGRATIONS.length}); upgrade igord`,
      );
    }
    if (readonly) {
      this.readSegmentsOfSchema(current);
      // Reads by key over the older file's (agent_id, seq) index (temporary views: nothing written to it).
      if (current < CHECKPOINT_KEYS_SCHEMA) this.db.exec(CHECKPOINT_KEYS_VIEWS_OF_OLDER_FILE);
      this.tickTimesStored = current >= TICK_AT_SCHEMA;
      return;
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      try {
        this.db.transaction(() => {
          this.db.exec(MIGRATIONS[v] as string);
          this.sql("INSERT INTO schema_version (version) VALUES (?)").run(v + 1);
        }).immediate();
      } catch (e) {
        // One transaction a step: a step that fails (a full disk, a table in the way) leaves the file as it was.
        const code = (e as { code?: unknown }).code;
        const step = `upgrading ${this.path} from schema ${v} to ${v + 1}`;
        throw corruptionError(e, step) ?? diskFullError(e, `${step} failed; the file is as it was before the upgrade`) ?? storeError(`${step} failed${typeof code === "string" ? ` (${code})` : ""}: ${(e as Error).message}; the file is as it was before the upgrade`, e);
      }
    }
  }

  /**
   * Commits checkpoints now, each atomically (checkpoint + history + receipt + status), all in one
   * transaction: one fsync covers the batch. A checkpoint refused by the chain check does not undo
   * the others. A checkpoint's alsoWrite goes in with it, and makes the batch durable.
   */
  commitNow(commits: readonly CheckpointCommit[]): (IgordError | null)[] {
    const txn = commits.some((c) => c.alsoWrite) ? <T>(fn: () => T): T => this.durably(fn) : <T>(fn: () => T): T => this.db.transaction(fn).immediate();
    return this.commitWith(commits, txn);
  }

  /**
   * commitNow for a batch carrying an alsoWrite (a handoff), with the fsync off the main thread
   * (durablyOffThread): the results once committed, and `durable`, which settles once they are
   * durable. Nothing of the batch may be reported durable before it resolves.
   */
  private commitNowOffThread(commits: readonly CheckpointCommit[]): { results: (IgordError | null)[]; durable: Promise<void> } {
    let durable: Promise<void> = Promise.resolve();
    const txn = <T>(fn: () => T): T => {
      const r = this.durablyOffThread(fn);
      durable = r.durable;
      return r.value;
    };
    const results = this.commitWith(commits, txn);
    return { results, durable };
  }

  private commitWith(commits: readonly CheckpointCommit[], txn: <T>(fn: () => T) => T): (IgordError | null)[] {
    const insert = (c: CheckpointCommit): IgordError | null => {
      const refused = this.insertCheckpoint(c);
      if (refused === null) c.alsoWrite?.({ hash: c.hash, tick: c.tick, budget: c.budget });
      return refused;
    };
    try {
      return txn(() => {
        this.forgetHeadsIfChanged();
        return commits.map(insert);
      });
    } catch (e) {
      // Rolled back: the heads its commits left are not stored.
      this.forgetHeads();
      // A store that lost a WAL sync takes no durable write: the whole batch is refused.
      if (this.syncFailed && e === this.syncFailed) throw e;
      // Something unexpected failed mid-batch (the batch rolled back): isolate it with a savepoint
      // per checkpoint so the others still commit.
      this.lastStatus.clear();
      const results: (IgordError | null)[] = [];
      try {
        txn(() => {
          for (const c of commits) {
            try {
              results.push(this.db.transaction(() => insert(c))());
            } catch (e) {
              // A refused ownership write keeps its code (LEASE_STALE, say): the caller acts on it.
              results.push(c.alsoWrite && e instanceof IgordError ? e : writeError(`cannot store checkpoint of "${c.agentId}"`, e));
            }
          }
        });
      } finally {
        // A savepoint rolled back keeps no head either: none is kept from this batch.
        this.forgetHeads();
      }
      return results;
    }
  }

  /**
   * Defers the main connection's WAL checkpoints until the returned release is called (by every
   * holder): a migration asks this for its whole hop (store/wal-checkpoint-deferral.ts).
   */
  deferWalCheckpoints(): () => void {
    return this.walDeferral.hold();
  }

  /** Whether group commits run on the commit thread now. */
  get commitsOnThread(): boolean {
    return this.commitThread?.usable ?? false;
  }

  /** The commit connection, after a transaction's replies: its WAL checkpoints (store/wal-checkpoint-thread.ts). */
  afterCommits(): void {
    this.walThread?.afterCommit();
  }

  /** PRAGMA synchronous of this connection now (1 NORMAL, 2 FULL): the level its next commit uses. */
  synchronousLevel(): number {
    return this.db.pragma("synchronous", { simple: true }) as number;
  }

  /** Queues a checkpoint for the next group commit; resolves once it is durable. */
  enqueue(commit: CheckpointCommit): Promise<void> {
    if (this.closed) return Promise.reject(storeError("the store is closed"));
    return new Promise((resolve, reject) => this.enqueueQueued({ commit, resolve, reject }));
  }

  /**
   * Queues a checkpoint for the next group commit and calls `q.resolve` once it is durable (or
   * `q.reject`, never synchronously but on a closed store): the checkpointer's checkpoint in flight
   * is its own QueuedCommit, with no promise or closures of its own.
   */
  enqueueQueued(q: QueuedCommit): void {
    if (this.closed) {
      q.reject(storeError("the store is closed"));
      return;
    }
    this.queue.push(q);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.flushScheduled = false;
    let batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const thread = this.commitThread;
    if (thread && !thread.usable) {
      // The thread is gone: this connection checkpoints the WAL again, and commits everything.
      this.db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
      this.commitThread = null;
    }
    if (thread?.usable) {
      // A commit carrying alsoWrite (a closure over this thread's state) commits here.
      const here = batch.some((b) => b.commit.alsoWrite) ? batch.filter((b) => b.commit.alsoWrite) : null;
      const there = here ? batch.filter((b) => !b.commit.alsoWrite) : batch;
      if (there.length > 0) thread.commit(there);
      if (!here) return;
      batch = here;
    }
    if (!this.commitThreadLater) {
      this.commitHere(batch);
      return;
    }
    const started = performance.now();
    this.commitHere(batch);
    this.noteCommitTime(started);
  }

  private commitHere(batch: readonly QueuedCommit[]): void {
    let results: (IgordError | null)[];
    let durable: Promise<void> | null = null;
    try {
      const commits = batch.map((b) => b.commit);
      // A handoff rides in this batch: its fsync runs off the main thread, and every checkpoint of
      // the batch is reported durable only once it has returned.
      if (commits.some((c) => c.alsoWrite)) ({ results, durable } = this.commitNowOffThread(commits));
      else results = this.commitNow(commits);
    } catch (e) {
      for (const b of batch) b.reject(e instanceof IgordError && e === this.syncFailed ? e : writeError("checkpoint transaction failed", e));
      return;
    }
    const settle = (): void =>
      batch.forEach((b, i) => {
        const err = results[i];
        if (err) b.reject(err);
        else b.resolve();
      });
    if (!durable) {
      settle();
      return;
    }
    // A failed sync fails the whole batch: none of it is known to be on disk.
    durable.then(settle, (e: unknown) => {
      for (const b of batch) b.reject(e);
    });
  }

  /** A batch the commit thread held when it died: what it stored counts, the rest commits here. */
  private settleHere(batch: readonly QueuedCommit[]): void {
    const rest = batch.filter((b) => {
      if (!this.holdsCheckpoint(b.commit.agentId, b.commit.hash, b.commit.tick)) return true;
      b.resolve();
      return false;
    });
    if (rest.length > 0) this.commitHere(rest);
  }

  /**
   * Writes a consistent copy of the whole database to `dest` (which must not exist) while other
   * processes keep writing: VACUUM INTO reads one snapshot. The copy holds private keys: 0600.
   */
  backupTo(dest: string): void {
    let fd: number;
    try {
      fd = openSync(dest, "wx", 0o600);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new IgordError(ErrorCode.StoreError, code === "EEXIST" ? `${dest} already exists; a backup never overwrites a file` : `cannot create ${dest}: ${code ?? (e as Error).message}`);
    }
    closeSync(fd);
    try {
      this.db.prepare("VACUUM INTO ?").run(dest);
    } catch (e) {
      rmSync(dest, { force: true });
      // The copy reads every page: a damaged one is the database's (restore it), a full disk the copy's.
      throw (
        corruptionError(e, `backup of ${this.path} to ${dest} failed: ${this.path} is corrupt; restore it from a backup`) ??
        diskFullError(e, `backup of ${this.path} to ${dest} failed`) ??
        new IgordError(ErrorCode.StoreError, `backup of ${this.path} to ${dest} failed: ${(e as Error).message}`)
      );
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.commitThread?.close();
    this.walThread?.close();
    this.closed = true;
    this.walDeferral.close();
    this.walSyncer?.close();
    this.db.close();
  }
}

function quickCheck(path: string, db: Database.Database): void {
  let problems: string[];
  try {
    problems = (db.pragma(`quick_check(${QUICK_CHECK_MAX_ERRORS})`) as { quick_check: string }[]).map((r) => r.quick_check);
  } catch (e) {
    db.close();
    throw corruptionError(e, `${path} is corrupt (PRAGMA quick_check failed); restore it from a backup`) ?? storeError(`cannot check ${path}: ${(e as Error).message}`, e);
  }
  if (problems.length === 1 && problems[0] === "ok") return;
  db.close();
  throw new IgordError(ErrorCode.StoreCorrupt, `${path} is corrupt (PRAGMA quick_check: ${problems.join("; ")}); restore it from a backup`);
}
