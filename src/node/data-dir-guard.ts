// What an operator can do to a live node's data dir behind its back, checked every
// LOCK_CHECK_INTERVAL_MS. A deleted or replaced igord.lock (or igord.pid), taken for a stale file,
// would let a second process take the data dir: it is put back and held again; a lock file another
// process holds by now means two processes run these agents, and this one stops. A deleted or
// replaced igord.db: the node's connections keep the file they opened, so every checkpoint after
// would go into a file no path reaches, lost with the process and the whole history with it; the
// node stops, and writes the database it holds back to its path as it closes the store (a file
// found there is kept beside it, never overwritten). A deleted write-ahead log: the commits in it
// are in the file the node holds only, until they are copied into the database; the node stops,
// which copies them.
import { existsSync, renameSync, rmSync } from "node:fs";
import type { Logger } from "pino";
import { ErrorCode, IgordError } from "../errors.js";
import { type DataDirLock, fileId, LOCK_CHECK_INTERVAL_MS } from "../store/data-dir.js";
import type { SqliteStore } from "../store/sqlite-store.js";

export class DataDirGuard {
  private timer: NodeJS.Timeout | null = null;
  /** The last problem putting the lock file back, logged once until it changes. */
  private lockProblem = "";
  /** The database file the store opened (device and inode). */
  private readonly dbId: string | null;
  /** The store's write-ahead log (device and inode), once it exists. */
  private walId: string | null = null;
  /** Set once the database at the path is no longer the one the store holds. */
  private storeRemoved = false;

  constructor(
    private readonly lock: DataDirLock,
    private readonly dbPath: string,
    private readonly logger: Logger,
    /** The data dir is no longer this node's alone (DATA_DIR_LOCKED) or its database was taken (STORE_REMOVED): the node must stop. */
    private readonly onLost: (error: IgordError) => void,
  ) {
    this.dbId = fileId(dbPath);
  }

  start(): void {
    this.timer = setInterval(() => this.check(), LOCK_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Closes the store; when its database was deleted or replaced, first writes it back to its path
   * from the file the store still holds (a consistent copy, every commit in it), moving a file
   * found at the path aside as `<path>.replaced-<ms>`.
   */
  closeStore(store: SqliteStore): void {
    if (!this.storeRemoved) return store.close();
    const copy = `${this.dbPath}.writing-back`;
    try {
      rmSync(copy, { force: true });
      store.backupTo(copy);
    } catch (e) {
      store.close();
      this.logger.fatal({ event: "store_write_back_failed", code: (e as IgordError).code ?? null, err: (e as Error).message }, `the database could not be written back to ${this.dbPath}: ${(e as Error).message}`);
      return;
    }
    // Closing checkpoints and removes the store's own -wal and -shm at the path.
    store.close();
    const aside = existsSync(this.dbPath) ? `${this.dbPath}.replaced-${Date.now()}` : null;
    if (aside) renameSync(this.dbPath, aside);
    renameSync(copy, this.dbPath);
    this.logger.warn({ event: "store_written_back", path: this.dbPath, keptAside: aside }, `the database is back at ${this.dbPath}${aside ? `; the file found there is kept as ${aside}` : ""}: start igord again`);
  }

  private check(): void {
    if (fileId(this.dbPath) !== this.dbId) return this.databaseTaken();
    const wal = fileId(`${this.dbPath}-wal`);
    if (this.walId === null) this.walId = wal;
    else if (wal !== this.walId) return this.walTaken();
    const r = this.lock.check();
    if (r.state === "held") {
      this.lockProblem = "";
      return;
    }
    if (r.state === "restored") {
      this.lockProblem = "";
      this.logger.warn(
        { event: "data_dir_lock_restored", dir: this.lock.dir },
        `the data dir's lock or pid file was deleted or replaced while this daemon ran: put back; never delete them (the operating system releases the lock when its process ends)`,
      );
      return;
    }
    if (r.state === "failed") {
      if (this.lockProblem !== r.error.message) this.logger.error({ event: "data_dir_lock_unrestorable", code: r.error.code }, `the data dir's lock file was deleted or replaced and cannot be put back: ${r.error.message}`);
      this.lockProblem = r.error.message;
      return;
    }
    this.stop();
    this.logger.fatal(
      { event: "data_dir_lock_lost", code: r.error.code, pid: r.error.details.pid ?? null },
      `the data dir's lock file was replaced and another process holds it now (${r.error.message}): stopping this node`,
    );
    this.onLost(r.error);
  }

  /**
   * The write-ahead log deleted or replaced: the commits since the last copy into the database are
   * in the file the store holds open only, lost if the process dies. The node stops: closing the
   * store copies them into the database, which is still at its path.
   */
  private walTaken(): void {
    this.stop();
    const error = new IgordError(
      ErrorCode.StoreRemoved,
      `${this.dbPath}-wal was deleted or replaced while this node ran: its latest commits are only in the file the node holds open; the node stops, which writes them into ${this.dbPath} (never delete a running node's database files: stop it first)`,
    );
    this.logger.fatal({ event: "store_removed", code: error.code, path: `${this.dbPath}-wal` }, error.message);
    this.onLost(error);
  }

  private databaseTaken(): void {
    this.stop();
    this.storeRemoved = true;
    const error = new IgordError(
      ErrorCode.StoreRemoved,
      `${this.dbPath} was ${existsSync(this.dbPath) ? "replaced" : "deleted"} while this node ran: its data is only in the file the node holds open; the node stops and writes it back to ${this.dbPath} (never delete or replace the database of a running node: stop it first)`,
    );
    this.logger.fatal({ event: "store_removed", code: error.code, path: this.dbPath }, error.message);
    this.onLost(error);
  }
}
