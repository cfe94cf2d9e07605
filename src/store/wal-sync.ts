// The fsync of a durable commit, off the main thread: an fd of `<db>-wal` that is fdatasynced on
// the libuv pool after a commit at synchronous=NORMAL (StoreBase.durablyOffThread says why that is
// as durable as FULL). One sync at a time, in commit order, commits made during one sharing the
// next; the first failure is kept and fails every sync after it.
import { closeSync, fdatasync, openSync } from "node:fs";
import { open } from "node:fs/promises";
import { dirname } from "node:path";
import { ErrorCode, IgordError } from "../errors.js";

/**
 * Makes durable what has been written to a WAL file: `fdatasync` of an fd of `<db>-wal`, on the
 * libuv pool. A store option and a settable field, so a test can hold it pending or fail it.
 */
export type WalSync = (walFd: number) => Promise<void>;

export const fdatasyncWal: WalSync = (fd) => new Promise((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));

export class WalSyncer {
  /** How the WAL is synced (tests replace it to hold or fail the sync). */
  sync: WalSync = fdatasyncWal;
  private fd: number | null;
  private pending = 0;
  private closing = false;
  private dirSynced = false;
  private chain: Promise<void> = Promise.resolve();
  /** The sync queued behind the one in flight, not started yet: a commit that asks now shares it. */
  private queued: Promise<void> | null = null;
  /** A sync is in flight (started, not yet returned). */
  private syncing = false;
  /** The first sync that failed: the store takes no durable write after it. */
  failure: IgordError | null = null;

  /** Opens an fd of `<dbPath>-wal` (the connection is in WAL mode, so it exists); `usable` is false when it cannot. */
  constructor(private readonly dbPath: string) {
    try {
      this.fd = openSync(`${dbPath}-wal`, "r");
    } catch {
      this.fd = null;
    }
  }

  get usable(): boolean {
    return this.fd !== null && !this.closing;
  }

  /**
   * fdatasync of the WAL file off the main thread, after the previous one: Linux reports a page it
   * failed to write back once per fd, to whichever sync asks first, so a sync that started while an
   * earlier one was in flight could succeed while the earlier one fails. One at a time, each after
   * the last succeeded; a failure fails every sync after it. Commits that ask while a sync is in
   * flight share the one queued behind it (group commit): it starts after each of them committed,
   * so it covers them all, and several agents' payments or hops pay for one fdatasync. With none in
   * flight the fdatasync is asked for at once, not a microtask later: the committing code goes on
   * synchronously (a hop's source builds and sends its offer and package, ~0.4–1.3 ms), and the
   * sync it gates would start only after that. Commits later in the same synchronous turn share the
   * sync queued behind it (each payment and hop commits in a turn of its own anyway).
   */
  syncNow(): Promise<void> {
    if (this.queued) return this.queued;
    const fd = this.fd as number;
    this.pending++;
    let synced: Promise<void>;
    if (this.syncing) {
      const next = (): Promise<void> => {
        // Started: a commit after this point needs a sync of its own.
        this.queued = null;
        return this.start(fd);
      };
      synced = this.chain.then(next, next);
      this.queued = synced;
    } else {
      synced = this.start(fd);
    }
    const settle = (): void => {
      if (--this.pending === 0 && this.closing) this.close();
    };
    // The chain never rejects (the failure is kept); the caller's promise does.
    this.chain = synced.then(settle, settle);
    return synced;
  }

  /** One sync, now: the directory's first, then the WAL's fdatasync (asked for before this returns, once the directory is synced). */
  private async start(fd: number): Promise<void> {
    this.syncing = true;
    try {
      if (this.failure) throw this.failure;
      try {
        if (!this.dirSynced) await this.syncDirOnce();
        await this.sync(fd);
      } catch (e) {
        this.failure ??= new IgordError(
          ErrorCode.StoreError,
          `an fsync of ${this.dbPath}-wal failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): what this node stored since its last good sync may not be on disk, so it takes no more durable writes (ownership changes, payments); restart it`,
        );
        throw this.failure;
      }
    } finally {
      this.syncing = false;
    }
  }

  /**
   * Syncs the database's directory once, before the first WAL sync counts, as SQLite does on the
   * first sync of a WAL file it created: an fdatasync of the file does not make its directory entry
   * durable. A directory that cannot be opened or synced is not an error (nor is it to SQLite).
   */
  private async syncDirOnce(): Promise<void> {
    if (this.dirSynced) return;
    try {
      const dir = await open(dirname(this.dbPath), "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch {
      // As SQLite.
    }
    this.dirSynced = true;
  }

  /** Closes the fd, once no sync is using it. */
  close(): void {
    this.closing = true;
    if (this.fd === null || this.pending > 0) return;
    closeSync(this.fd);
    this.fd = null;
  }
}
