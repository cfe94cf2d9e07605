// The commit thread's WAL checkpoints off its path under `--sync normal`: a thread of their own, with
// its own connection, copies the WAL back into the database while the commit thread goes on
// committing. Run inside the commit thread's transactions (SQLite's autocheckpoint), they held every
// agent of a cohort waiting and cost ~15 % of the `--sync normal` rate (docs/BENCHMARKS.md, "where
// the `normal` pipeline idles"). Under `full` every commit syncs anyway and the commit connection
// checkpoints inline (sqlite-store.ts): a concurrent checkpoint's syncs competed with the commits'.
//
// The WAL starts again from its first frame only once a checkpoint has copied back every frame in
// it, and frames keep arriving while the thread copies: so after the thread's run the commit thread
// copies the few left itself (a short checkpoint that restarts the WAL), and the WAL stays bounded.
// If the thread falls behind, the commit thread waits for it and checkpoints inline past the
// limits' maxPages; SQLite's own
// autocheckpoint stays on as a backstop. Where the WAL index cannot be read (wal-index.ts), or the
// thread is gone, the commit connection checkpoints as it did before (its autocheckpoint).
import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";
import { workerScript } from "../worker-script.js";
import { BUSY_TIMEOUT_MS, type SyncMode } from "./types.js";
import { WalIndexReader } from "./wal-index.js";

/**
 * The commit connection's own threshold without the thread (16 MiB): a WAL four times SQLite's
 * default copies each index page rewritten by several group commits into the file once, not once
 * per commit (~3 µs less CPU per checkpoint, docs/BENCHMARKS.md).
 */
export const COMMIT_WAL_AUTOCHECKPOINT_PAGES = 4000;

export interface WalCheckpointLimits {
  /** The thread is asked to checkpoint once this many frames are not yet copied back. */
  threadPages: number;
  /** After a run of the thread, at most this many frames left are copied by the commit thread itself, which restarts the WAL. */
  tailPages: number;
  /** The WAL's bound: past it, with the thread behind, the commit thread waits for it and checkpoints inline. */
  maxPages: number;
  /** SQLite's own autocheckpoint on the commit connection while the thread runs: a backstop only. */
  backstopPages: number;
}

/**
 * The thread copies the WAL back once it holds this many frames not yet copied (128 MiB of 4-KiB
 * pages). A checkpoint copies each page once however often the WAL rewrote it, so a longer WAL
 * copies pages that many commits rewrite (the tables' last leaves, the recent keys' leaves) back
 * once for several. Chosen under schema 15, when every checkpoint rewrote its agent's leaf of an
 * (agent_id, seq) index: with agents ~600 deep, 8.5–9.3 against 11.8–12.2 µs of this thread's CPU a
 * checkpoint at 4,000 frames. Under schema 16 (no such index) it still saves ~1 µs there: 3.6 / 4.4
 * against 4.9 / 5.2 (docs/BENCHMARKS.md, "checkpoints onto a deeper history" and "checkpoint keys").
 */
export const WAL_THREAD_CHECKPOINT_PAGES = 32_000;

export const WAL_CHECKPOINT_LIMITS: Readonly<WalCheckpointLimits> = {
  threadPages: WAL_THREAD_CHECKPOINT_PAGES,
  tailPages: 512,
  // 256 MiB of 4-KiB pages: a thread's run copies ~128 MiB while commits go on (~1 s at 20k
  // checkpoints a second adds ~30,000 frames).
  maxPages: 2 * WAL_THREAD_CHECKPOINT_PAGES,
  backstopPages: 4 * WAL_THREAD_CHECKPOINT_PAGES,
};

/** How long the commit thread waits for a checkpoint the thread is running before it tries its own. */
export const WAL_CHECKPOINT_LAG_WAIT_MS = 10_000;
/** How long the commit thread's own checkpoint waits for readers to leave the WAL, so it can restart it. */
export const WAL_RESTART_BUSY_TIMEOUT_MS = 20;
/** Behind and at the bound, the commit thread tries its own checkpoint this many times (a run the thread starts meanwhile holds the lock). */
export const WAL_LAG_ATTEMPTS = 3;
/** How long closing waits for the thread to close its connection. */
export const WAL_CHECKPOINT_CLOSE_WAIT_MS = 10_000;

/** Slots of the Int32Array the two threads share. */
export const WalSlot = {
  /** A WalState. */
  State: 0,
  /** 1 once the thread closed its connection. */
  Closed: 1,
  /** PRAGMA synchronous of the thread's connection (its checkpoints sync as that level does). */
  Synchronous: 2,
  /** Checkpoints the thread has run. */
  Runs: 3,
} as const;
export const WAL_SLOTS = 4;

export const WalState = {
  Idle: 0,
  Requested: 1,
  Running: 2,
  /** Its connection could not open: the commit connection checkpoints itself. */
  Failed: 3,
} as const;

/** What the thread is started with (workerData). */
export interface WalCheckpointThreadData {
  path: string;
  sync: SyncMode;
  shared: Int32Array;
}

export type WalCheckpointRequest = { type: "checkpoint" } | { type: "close" };

export class WalCheckpointThread {
  private readonly worker: Worker;
  private readonly shared = new Int32Array(new SharedArrayBuffer(WAL_SLOTS * 4));
  private readonly index: WalIndexReader;
  /** The commit connection's autocheckpoint now: the backstop while the thread is used, its own threshold otherwise. */
  private autocheckpoint = -1;
  private gone = false;
  /** The thread's run count when the commit thread last looked at what its run left. */
  private tailAfterRuns = -1;

  /**
   * @param db the commit connection (its checkpoints inline, its autocheckpoint)
   */
  constructor(
    private readonly db: Database.Database,
    path: string,
    sync: SyncMode,
    private readonly limits: Readonly<WalCheckpointLimits> = WAL_CHECKPOINT_LIMITS,
  ) {
    this.index = new WalIndexReader(path);
    const data: WalCheckpointThreadData = { path, sync, shared: this.shared };
    this.worker = new Worker(workerScript("./wal-checkpoint-worker.js", import.meta.url), { workerData: data });
    // Only the commit thread's work keeps the process alive, never this thread.
    this.worker.unref();
    this.worker.on("error", () => (this.gone = true));
    this.worker.on("exit", () => (this.gone = true));
    this.setAutocheckpoint(COMMIT_WAL_AUTOCHECKPOINT_PAGES);
  }

  /**
   * After a transaction's replies: asks the thread to checkpoint, or copies the WAL's last frames
   * back inline (the thread done and the WAL long), or, the thread behind and the WAL at its bound,
   * waits for it and checkpoints inline.
   */
  afterCommit(): void {
    const header = this.usable ? this.index.read() : null;
    if (!header) {
      this.setAutocheckpoint(COMMIT_WAL_AUTOCHECKPOINT_PAGES);
      return;
    }
    this.setAutocheckpoint(this.limits.backstopPages);
    const { mxFrame } = header;
    const pending = Math.max(0, mxFrame - header.nBackfill);
    const state = Atomics.load(this.shared, WalSlot.State);
    if (state === WalState.Idle) {
      if (pending >= this.limits.threadPages) this.request();
      else if (pending > 0 && mxFrame >= this.limits.threadPages) this.afterThreadRun(pending);
      return;
    }
    if (mxFrame < this.limits.maxPages) return;
    // Behind: a run in progress finishes first (the checkpoint lock is its own until then), and
    // one it starts meanwhile too.
    for (let attempt = 0; attempt < WAL_LAG_ATTEMPTS; attempt++) {
      Atomics.wait(this.shared, WalSlot.State, WalState.Running, WAL_CHECKPOINT_LAG_WAIT_MS);
      if (this.checkpointInline()) return;
    }
  }

  private get usable(): boolean {
    return !this.gone && Atomics.load(this.shared, WalSlot.State) !== WalState.Failed;
  }

  /** Hands the thread a checkpoint (it is idle). */
  private request(): void {
    Atomics.store(this.shared, WalSlot.State, WalState.Requested);
    this.worker.postMessage({ type: "checkpoint" } satisfies WalCheckpointRequest);
  }

  /**
   * Once after each of the thread's runs: the frames written while it copied. Few, the commit
   * thread copies them itself and restarts the WAL; more, the thread copies them first (each run
   * shorter than the last). Not again at every commit: a restart that found a reader waits for the
   * thread's next run.
   */
  private afterThreadRun(pending: number): void {
    const runs = Atomics.load(this.shared, WalSlot.Runs);
    if (runs === this.tailAfterRuns) return;
    this.tailAfterRuns = runs;
    if (pending > this.limits.tailPages) this.request();
    else void this.checkpointInline();
  }

  /**
   * Whether the WAL was copied back and restarted (not busy). RESTART, not PASSIVE: after a
   * PASSIVE copy the next commit restarts the WAL only if no reader holds a snapshot in it then,
   * and the main connection's reads often did (with PASSIVE tails a bench run's WAL reached 28,858
   * frames, its restarts missed); RESTART waits for those readers and restarts the WAL itself. It
   * waits WAL_RESTART_BUSY_TIMEOUT_MS at most (a backup's long read must not stall commits): then
   * the next tail tries again.
   */
  private checkpointInline(): boolean {
    try {
      this.db.pragma(`busy_timeout = ${WAL_RESTART_BUSY_TIMEOUT_MS}`);
      try {
        const [result] = this.db.pragma("wal_checkpoint(RESTART)") as { busy: number }[];
        return result?.busy === 0;
      } finally {
        this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      }
    } catch {
      // Failing: the next commit, or SQLite's autocheckpoint, tries again.
      return false;
    }
  }

  private setAutocheckpoint(pages: number): void {
    if (pages === this.autocheckpoint) return;
    this.db.pragma(`wal_autocheckpoint = ${pages}`);
    this.autocheckpoint = pages;
  }

  /** For tests: what the thread shares (its state, its connection's synchronous level, its checkpoints). */
  get sharedState(): Int32Array {
    return this.shared;
  }

  /** For tests: the thread. */
  get thread(): Worker {
    return this.worker;
  }

  /**
   * Waits (blocking: closing the store is synchronous) for the thread to finish a checkpoint it is
   * running and close its connection, then ends it.
   */
  close(): void {
    this.index.close();
    if (!this.gone) {
      this.worker.postMessage({ type: "close" } satisfies WalCheckpointRequest);
      Atomics.wait(this.shared, WalSlot.Closed, 0, WAL_CHECKPOINT_CLOSE_WAIT_MS);
    }
    this.gone = true;
    void this.worker.terminate();
  }
}
