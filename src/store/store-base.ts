// The bottom layer of the store: the database handle, the prepared-statement cache and the two
// transaction disciplines (ordinary and durable) every table family above writes through, plus the
// node's own rows (schema version, node key, wasm modules), which belong to no agent. Each layer
// above extends this one and adds one table family; SqliteStore at the top opens and closes it all.
import type Database from "better-sqlite3";
import { ErrorCode, IgordError } from "../errors.js";
import { peerIdFromPublicKey } from "../identity/did.js";
import { type Ed25519Key, generateKey, keyFromSeed } from "../identity/keys.js";
import { u8 } from "./rows.js";
import type { SyncMode } from "./types.js";
import { fdatasyncWal, type WalSync, WalSyncer } from "./wal-sync.js";

export abstract class StoreBase {
  readonly path: string;
  protected readonly db: Database.Database;
  /** Prepared statements by SQL text; one map per integer mode, so a lookup builds no key string. */
  private readonly statements = new Map<string, Database.Statement>();
  private readonly bigintStatements = new Map<string, Database.Statement>();

  /** --sync: the level of ordinary commits (ownership commits are always FULL, see durably()). */
  protected sync: SyncMode = "full";

  /** The fsync of durablyOffThread() commits; null (read-only, the commit thread's connection): they sync here (durably()). */
  protected walSyncer: WalSyncer | null = null;
  /** afterCommit listeners of the durable transaction running now. */
  private readonly committedListeners: ((durable: Promise<void>) => void)[] = [];

  protected constructor(path: string, db: Database.Database) {
    this.path = path;
    this.db = db;
  }

  /** Prepared statements are cached: preparing costs more than running a small insert. */
  protected sql(text: string, safeIntegers = false): Database.Statement {
    const cache = safeIntegers ? this.bigintStatements : this.statements;
    let st = cache.get(text);
    if (!st) {
      st = this.db.prepare(text);
      if (safeIntegers) st.safeIntegers(true);
      cache.set(text, st);
    }
    return st;
  }

  /**
   * Runs several writes that decide who owns an agent in one durable transaction (one fsync): a
   * lease change and its migration record, a handoff, a retirement, an operator's recovery.
   */
  atomically<T>(fn: () => T): T {
    return this.durably(fn);
  }

  /**
   * atomically(), with the fsync off the main thread (durablyOffThread): committed on return,
   * durable once `durable` resolves; nothing that depends on it may be sent or reported before.
   */
  atomicallyOffThread<T>(fn: () => T): { value: T; durable: Promise<void> } {
    return this.durablyOffThread(fn);
  }

  /**
   * Several writes in one transaction with no fsync of its own even under --sync full, for a state
   * change whose loss to a power cut leaves a state the node already settles safely (each caller says
   * which). WAL keeps it in order: the next durable commit makes it durable too; a killed process
   * loses nothing.
   */
  atomicallyUnsynced<T>(fn: () => T): T {
    return this.lightly(() => this.db.transaction(fn).immediate());
  }

  /**
   * A transaction committed with synchronous=FULL whatever --sync says: handoffs, retirements,
   * receptions, recoveries and fences decide who owns an agent, and losing one to a power cut could
   * leave two owners. --sync normal applies to the rest (periodic checkpoints, renewals). SQLite
   * refuses to change the level inside a transaction, so a nested call joins its outer transaction
   * (every ownership write nests only inside another durable one).
   */
  protected durably<T>(fn: () => T): T {
    const failure = this.syncFailed;
    if (failure) throw failure;
    if (this.db.inTransaction) return this.db.transaction(fn).immediate();
    if (this.sync === "full") return this.committing(() => this.db.transaction(fn).immediate());
    this.db.exec("PRAGMA synchronous = FULL");
    try {
      return this.committing(() => this.db.transaction(fn).immediate());
    } finally {
      this.db.exec("PRAGMA synchronous = NORMAL");
    }
  }

  /**
   * Inside a durable transaction (durably, durablyOffThread): runs `fn` once that transaction has
   * committed, before its fsync has returned when that runs off the main thread; never if it rolls
   * back. A write that a savepoint inside it rolled back still sees `fn` run: `fn` reads what was
   * committed before acting on it. `fn` gets that transaction's `durable`: it settles when the
   * fsync returns (already resolved when the commit synced on the main thread).
   */
  afterCommit(fn: (durable: Promise<void>) => void): void {
    this.committedListeners.push(fn);
  }

  /** Runs a top-level durable transaction; then the afterCommit listeners it gathered, or drops them. */
  private committing<T>(run: () => T): T {
    const value = this.uncommitted(run);
    this.runCommitted(Promise.resolve());
    return value;
  }

  /** The afterCommit listeners of the transaction that just committed: one that throws cannot undo the commit, nor stop the others. */
  private runCommitted(durable: Promise<void>): void {
    for (const fn of this.committedListeners.splice(0)) {
      try {
        fn(durable);
      } catch {
        // The write is committed whatever a listener does; the listener's own caller sees its effect.
      }
    }
  }

  /**
   * A durable transaction (as durably()) whose fsync leaves the main thread: it commits at
   * synchronous=NORMAL, then the WalSyncer fdatasyncs the WAL file on the libuv pool; `durable` settles
   * when that returns. Until then the write is visible to this node but not durable: the caller
   * sends nothing that depends on it, and tells no one it happened, before `durable` resolves.
   *
   * Why the fdatasync makes the commit as durable as synchronous=FULL would (SQLite's wal.c): in WAL
   * mode a COMMIT writes its frames, the last one marked as a commit, into `<db>-wal` with write()
   * before it returns, at any level. FULL adds exactly one step to a commit: an fsync of the WAL file
   * after those frames (and, without SQLITE_IOCAP_POWERSAFE_OVERWRITE, padding to a sector, which
   * unix has), and SQLite's unix VFS does it with fdatasync. Syncing the same file through another fd
   * afterwards flushes the same pages; frames other commits append meanwhile (this connection's, the
   * commit thread's) are flushed too, which is harmless. NORMAL, unlike OFF, keeps the syncs that
   * keep the file sound: the WAL header's when a writer restarts the WAL, and a checkpoint's, which
   * syncs the WAL before it copies frames into the database and the database before the WAL may
   * be restarted. So a checkpoint between this COMMIT and the fdatasync first made these frames
   * durable itself, and a restart that overwrites them comes after the database holding them was
   * synced: the fdatasync then syncs newer content, still correct. The WAL file stays the same inode
   * while this connection is open (SQLite deletes it only when the last connection closes; a
   * TRUNCATE checkpoint truncates it in place), and its directory entry is synced before the first
   * of these syncs counts (wal-sync.ts). A killed process loses nothing once COMMIT returned (the
   * OS has the pages); only a power cut before the fdatasync can lose the write, and nobody was
   * told of it by then.
   *
   * A failed sync cannot be undone (the commit is visible) nor trusted on retry (Linux may drop the
   * pages it failed to write and report success next time), so the store refuses every durable
   * write from then on (STORE_ERROR): ownership stays as this node last made it durable, and a
   * restart recovers from what the WAL file really holds.
   */
  protected durablyOffThread<T>(fn: () => T): { value: T; durable: Promise<void> } {
    const syncer = this.walSyncer;
    if (syncer?.failure) throw syncer.failure;
    if (!syncer?.usable || this.db.inTransaction) return { value: this.durably(fn), durable: Promise.resolve() };
    let value: T;
    if (this.sync === "full") {
      this.db.exec("PRAGMA synchronous = NORMAL");
      try {
        value = this.uncommitted(() => this.db.transaction(fn).immediate());
      } finally {
        this.db.exec("PRAGMA synchronous = FULL");
      }
    } else {
      value = this.uncommitted(() => this.db.transaction(fn).immediate());
    }
    const durable = syncer.syncNow();
    this.runCommitted(durable);
    return { value, durable };
  }

  /** Runs a transaction whose afterCommit listeners the caller runs; a rollback drops them. */
  private uncommitted<T>(run: () => T): T {
    try {
      return run();
    } catch (e) {
      this.committedListeners.length = 0;
      throw e;
    }
  }

  /**
   * An fdatasync of the WAL now (off the main thread): makes durable everything this connection
   * reads, including what a killed process committed and never synced (readable from the OS's cache
   * after a restart, not yet on disk). Null when this store has no WAL sync.
   */
  syncWalNow(): Promise<void> | null {
    const syncer = this.walSyncer;
    if (syncer?.failure) return Promise.reject(syncer.failure);
    return syncer?.usable ? syncer.syncNow() : null;
  }

  /** Whether a WAL sync has failed (the store takes no durable write any more). */
  get syncFailed(): IgordError | null {
    return this.walSyncer?.failure ?? null;
  }

  /** How durablyOffThread() syncs the WAL (tests replace it to hold or fail the sync). */
  get walSync(): WalSync {
    return this.walSyncer?.sync ?? fdatasyncWal;
  }

  set walSync(sync: WalSync) {
    if (this.walSyncer) this.walSyncer.sync = sync;
  }

  /**
   * A bookkeeping write (a migration record's progress) committed without an fsync of its own even
   * under --sync full: WAL keeps it in order, so the next durable commit (the handoff, the
   * retirement) makes it durable too, and a power cut can only lose the newest progress, never
   * leave it inconsistent; a killed process loses nothing (the WAL write is done). Who owns an agent
   * is never decided by these rows (durably() writes those). Inside a transaction it joins it.
   */
  protected lightly<T>(fn: () => T): T {
    // exec, not pragma(): the level is set when the statement is compiled, so it cannot be a cached
    // prepared statement, and exec skips pragma()'s Statement object (~4 µs a flip pair, not ~13).
    if (this.sync !== "full" || this.db.inTransaction) return fn();
    this.db.exec("PRAGMA synchronous = NORMAL");
    try {
      return fn();
    } finally {
      this.db.exec("PRAGMA synchronous = FULL");
    }
  }

  /**
   * Runs `fn`'s reads over one snapshot of the database: a deferred transaction, whose first SELECT
   * fixes (in WAL mode) the moment every later read in it sees. A reader beside a daemon that commits
   * meanwhile (export, verify) then sees one moment, never a head from one and a history from
   * another. While it runs, the daemon's WAL restarts wait for it (WAL_RESTART_BUSY_TIMEOUT_MS at
   * most, then they try again later): the WAL grows, nothing is blocked.
   */
  snapshot<T>(fn: () => T): T {
    return this.db.transaction(fn).deferred();
  }

  schemaVersion(): number {
    return (this.sql("SELECT MAX(version) AS v FROM schema_version").get() as { v: number }).v;
  }

  /** The node's persistent key (its future libp2p peer id), created on first use. */
  nodeKey(): { key: Ed25519Key; peerId: string } {
    const row = this.sql("SELECT seed, public_key FROM node_identity WHERE id = 1").get() as
      | { seed: Buffer; public_key: Buffer }
      | undefined;
    if (row) {
      const key = keyFromSeed(u8(row.seed));
      if (!Buffer.from(key.publicKey).equals(row.public_key)) {
        throw new IgordError(ErrorCode.IdentityCorrupt, `the node key in ${this.path} does not match its public key`);
      }
      return { key, peerId: peerIdFromPublicKey(key.publicKey) };
    }
    const key = generateKey();
    const peerId = peerIdFromPublicKey(key.publicKey);
    this.sql("INSERT INTO node_identity (id, seed, public_key, peer_id, created_at) VALUES (1, ?, ?, ?, ?)")
      .run(Buffer.from(key.seed), Buffer.from(key.publicKey), peerId, Date.now());
    return { key, peerId };
  }

  putWasm(hash: string, bytes: Uint8Array): void {
    this.sql("INSERT OR IGNORE INTO wasm_modules (hash, bytes, size, created_at) VALUES (?, ?, ?, ?)")
      .run(hash, Buffer.from(bytes), bytes.length, Date.now());
  }

  /** Whether the module is held, without reading its bytes (a migration offer asks on every hop). */
  hasWasm(hash: string): boolean {
    return this.sql("SELECT 1 FROM wasm_modules WHERE hash = ?").get(hash) !== undefined;
  }

  wasm(hash: string): Uint8Array | undefined {
    const row = this.sql("SELECT bytes FROM wasm_modules WHERE hash = ?").get(hash) as { bytes: Buffer } | undefined;
    return row ? u8(row.bytes) : undefined;
  }
}
