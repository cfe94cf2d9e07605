// WAL checkpoints held off around migrations on the main connection: a hop asks for a hold, so the
// checkpoint SQLite would run inside one of its commits (~1,000 pages copied back, two more fsyncs:
// 3–7 ms on this disk, every ~56 hops) runs after it instead.
import type Database from "better-sqlite3";
import { WalIndexReader } from "./wal-index.js";

/** SQLite's default: the WAL is checkpointed when a commit leaves it over this many pages. */
export const WAL_AUTOCHECKPOINT_PAGES = 1000;
/** While a migration is in flight (a hold), a commit checkpoints the WAL only past this many pages. */
export const WAL_DEFERRED_MAX_PAGES = 4 * WAL_AUTOCHECKPOINT_PAGES;
/**
 * How long after the last migration's release the deferred checkpoint waits: the peer's answer to
 * that migration's last message (the source's RETIRED after the target's result) comes first.
 */
export const WAL_CHECKPOINT_QUIET_MS = 3;

/** What the deferral reads of its store. */
export interface DeferralStore {
  /** The store is closed: nothing more to do. */
  closed(): boolean;
  /** Group commits run on the commit thread, which checkpoints on its own connection. */
  onCommitThread(): boolean;
}

export class WalCheckpointDeferral {
  /** Migrations in flight that asked for WAL checkpoints to wait. */
  private holds = 0;
  private scheduled = false;
  private readonly index: WalIndexReader;

  constructor(
    private readonly db: Database.Database,
    path: string,
    private readonly store: DeferralStore,
  ) {
    this.index = new WalIndexReader(path);
  }

  /**
   * Defers the main connection's WAL checkpoints until the returned release is called (by every
   * holder). The checkpoint runs WAL_CHECKPOINT_QUIET_MS after nothing holds any more, if the WAL
   * has reached SQLite's threshold (a hold taken meanwhile defers it again). Held, a commit still
   * checkpoints past WAL_DEFERRED_MAX_PAGES, so migrations back to back cannot grow the WAL without
   * bound. Nothing to do when the commit thread runs (it checkpoints on its own thread).
   */
  hold(): () => void {
    if (this.store.closed() || this.store.onCommitThread()) return () => {};
    if (this.holds++ === 0) this.db.exec(`PRAGMA wal_autocheckpoint = ${WAL_DEFERRED_MAX_PAGES}`);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds > 0 || this.store.closed()) return;
      this.db.exec(`PRAGMA wal_autocheckpoint = ${this.store.onCommitThread() ? 0 : WAL_AUTOCHECKPOINT_PAGES}`);
      if (this.scheduled || this.store.onCommitThread() || this.frames() < WAL_AUTOCHECKPOINT_PAGES) return;
      this.scheduled = true;
      setTimeout(() => {
        this.scheduled = false;
        if (this.store.closed() || this.holds > 0 || this.store.onCommitThread()) return;
        try {
          this.db.pragma("wal_checkpoint(PASSIVE)");
        } catch {
          // Busy or failing: SQLite's own autocheckpoint at the next commit tries again.
        }
      }, WAL_CHECKPOINT_QUIET_MS).unref();
    };
  }

  /** Frames in the WAL now (read without a lock: an estimate, which is all the deferred checkpoint needs); 0 when the index cannot be read. */
  private frames(): number {
    return this.index.read()?.mxFrame ?? 0;
  }

  close(): void {
    this.index.close();
  }
}
