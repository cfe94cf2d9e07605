// Group commits of checkpoints on their own thread, through a second connection to the node's
// database, so the main thread neither runs their statements nor waits for their COMMIT, WAL write,
// fsync and WAL checkpoints: ~45 % of the main thread at thousands of checkpoints per second
// (docs/BENCHMARKS.md). Everything a commit checks (the lease, the chain head, the storage limit, a
// pruning plan) is still read inside its own transaction, on that thread, exactly as the main
// thread's commitNow does it: SQLite serialises the two connections' writes, so a lease moved by the
// main thread before the commit's transaction is seen by it, and one moved after refuses nothing it
// would not have refused in one thread.
//
// A thread that dies (or cannot open the database) takes no more batches: the store commits on the
// main thread again, and a batch it held is settled there — its checkpoints already stored count as
// committed, the others are committed (or refused) now.
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import { IgordError, type SerializedError } from "../errors.js";
import { workerScript } from "../worker-script.js";
import { packCommits, type PackedCommits } from "./commit-codec.js";
import { writeError } from "./rows.js";
import type { CheckpointCommit, EventLogKeep, SyncMode } from "./types.js";

/** A store that starts its commit thread when busy does so once group commits take this share of the main thread's time… */
export const COMMIT_THREAD_BUSY_SHARE = 0.2;
/** …over a window at least this long (a shutdown's one burst of checkpoints does not start it). */
export const COMMIT_THREAD_WINDOW_MS = 1000;

/** How long closing the store waits for the commit thread to finish the batches it holds. */
export const COMMIT_THREAD_CLOSE_WAIT_MS = 30_000;

export interface QueuedCommit {
  commit: CheckpointCommit;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export interface CommitThreadOptions {
  path: string;
  sync: SyncMode;
  eventLogRetention: EventLogKeep;
  outboxRetentionBytes: number;
}

/** What the commit thread is started with (workerData). */
export interface CommitThreadData extends CommitThreadOptions {
  port: MessagePort;
  /** Set to 1 (and notified) once the thread has closed its connection. */
  closed: Int32Array;
}

export type CommitRequest = { type: "commit"; id: number; commits: PackedCommits } | { type: "close" };
/** `buffer`: the request's packed buffer, sent back (transferred) for the next batch to be packed into. */
export type CommitReply =
  | { type: "committed"; id: number; results: (SerializedError | null)[]; synchronous: number; buffer?: ArrayBuffer }
  | { type: "failed"; id: number; error: string; /** SQLite's (or the OS's) code, as SQLITE_FULL. */ code?: string; buffer?: ArrayBuffer }
  | { type: "unusable"; error: string };

/** Packed buffers the commit thread sent back that are kept for the next batches… */
const SPARE_BUFFERS_MAX = 2;
/** …each at most this large: one burst (a stop of 10,000 agents packs ~20 MiB) is not kept for the store's life. */
const SPARE_BUFFER_MAX_BYTES = 4 * 1024 * 1024;

export class CommitThread {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly closedFlag = new Int32Array(new SharedArrayBuffer(4));
  private readonly inFlight = new Map<number, QueuedCommit[]>();
  private nextId = 1;
  /** Buffers of answered batches, to pack the next ones into (a fresh one per batch cost page faults and an unmap). */
  private readonly spares: ArrayBuffer[] = [];
  /** False once the thread died, failed to open the database, or was closed: the store commits itself. */
  usable = true;

  /**
   * @param settle commits on the calling thread a batch the thread was given but never answered
   *   (it died): what is already stored resolves, the rest commits there.
   */
  constructor(
    opts: CommitThreadOptions,
    private readonly settle: (batch: QueuedCommit[]) => void,
  ) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const data: CommitThreadData = { ...opts, port: port2, closed: this.closedFlag };
    this.worker = new Worker(workerScript("./commit-worker.js", import.meta.url), { workerData: data, transferList: [port2] });
    this.worker.unref();
    this.port.on("message", (r: CommitReply) => this.onReply(r));
    // Only batches in flight keep the process alive.
    this.port.unref();
    this.worker.on("error", () => this.lost());
    this.worker.on("exit", () => this.lost());
  }

  /** Hands a batch (none carrying alsoWrite: a closure stays on its thread) to the commit thread. */
  commit(batch: QueuedCommit[]): void {
    const id = this.nextId++;
    if (this.inFlight.size === 0) this.port.ref();
    this.inFlight.set(id, batch);
    const commits = packCommits(
      batch.map((b) => b.commit),
      this.spares.pop(),
    );
    const req: CommitRequest = { type: "commit", id, commits };
    this.port.postMessage(req, [commits.data.buffer as ArrayBuffer]);
  }

  private onReply(r: CommitReply): void {
    if (r.type === "unusable") {
      this.lost();
      return;
    }
    if (r.buffer && r.buffer.byteLength <= SPARE_BUFFER_MAX_BYTES && this.spares.length < SPARE_BUFFERS_MAX) this.spares.push(r.buffer);
    const batch = this.inFlight.get(r.id);
    if (!batch) return;
    this.inFlight.delete(r.id);
    if (this.inFlight.size === 0) this.port.unref();
    if (r.type === "failed") {
      const err = writeError("checkpoint transaction failed", Object.assign(new Error(r.error), r.code === undefined ? {} : { code: r.code }));
      for (const b of batch) b.reject(err);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const e = r.results[i];
      const b = batch[i] as QueuedCommit;
      if (e) b.reject(IgordError.fromJSON(e));
      else b.resolve();
    }
  }

  /** The thread is gone: what it held is settled by the store on the calling thread. */
  private lost(): void {
    if (!this.usable && this.inFlight.size === 0) return;
    this.usable = false;
    // Replies it sent before it went are still answers.
    this.drainReplies();
    const held = [...this.inFlight.values()];
    this.inFlight.clear();
    this.port.unref();
    for (const batch of held) this.settle(batch);
  }

  private drainReplies(): void {
    for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) this.onReply(m.message as CommitReply);
  }

  /**
   * Waits (blocking: closing the store is synchronous) for the thread to finish every batch it was
   * given and close its connection, and resolves those batches' checkpoints.
   */
  close(): void {
    if (!this.usable) return;
    this.usable = false;
    this.port.postMessage({ type: "close" } satisfies CommitRequest);
    Atomics.wait(this.closedFlag, 0, 0, COMMIT_THREAD_CLOSE_WAIT_MS);
    this.drainReplies();
    // A batch still unanswered (the thread hung past the wait) is settled here.
    const held = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const batch of held) this.settle(batch);
    this.port.close();
    void this.worker.terminate();
  }

  /** For tests: the thread, to end it as a crash would. */
  get thread(): Worker {
    return this.worker;
  }
}
