// Ed25519 signing spread over worker threads. A signature costs ~50 µs of CPU; at thousands of
// checkpoints per second that is most of a core, so batches signed in one turn of the event loop are
// split across signer threads. Small batches are signed inline: a thread hop would only add latency.
import { Worker } from "node:worker_threads";
import { workerScript } from "../worker-script.js";
import { type Ed25519Key, signBytes } from "./keys.js";
import type { SignReply, SignRequest } from "./signer-worker.js";

/** Batches smaller than this are signed on the calling thread. */
export const INLINE_SIGN_MAX = 8;
/** Signatures per message to a signer thread, at most. */
export const SIGN_CHUNK_MAX = 64;

interface Pending {
  key: Ed25519Key;
  message: Uint8Array;
  resolve: (sig: Uint8Array) => void;
  reject: (e: Error) => void;
}

export class SignerPool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, Pending[]>();
  private queue: Pending[] = [];
  private scheduled = false;
  private nextId = 1;
  private next = 0;
  private closed = false;

  constructor(size: number) {
    const script = workerScript("./signer-worker.js", import.meta.url);
    for (let i = 0; i < size; i++) {
      const w = new Worker(script);
      w.unref();
      w.on("message", (r: SignReply) => this.onReply(r));
      w.on("error", (e) => this.failAll(e));
      this.workers.push(w);
    }
  }

  sign(key: Ed25519Key, message: Uint8Array): Promise<Uint8Array> {
    if (this.closed || this.workers.length === 0) return Promise.resolve(signBytes(key, message));
    return new Promise((resolve, reject) => {
      this.queue.push({ key, message, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.dispatch());
      }
    });
  }

  private dispatch(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length < INLINE_SIGN_MAX) {
      for (const p of batch) p.resolve(signBytes(p.key, p.message));
      return;
    }
    // Chunks no larger than SIGN_CHUNK_MAX, round-robin: the first signatures come back while the
    // rest are still being made, so the caller's commits overlap the signing instead of waiting
    // for one reply per thread.
    const per = Math.min(SIGN_CHUNK_MAX, Math.ceil(batch.length / this.workers.length));
    for (let i = 0; i < batch.length; i += per) {
      const chunk = batch.slice(i, i + per);
      const id = this.nextId++;
      this.waiting.set(id, chunk);
      const w = this.workers[this.next++ % this.workers.length] as Worker;
      w.postMessage({ id, seeds: chunk.map((p) => p.key.seed), messages: chunk.map((p) => p.message) } satisfies SignRequest);
    }
  }

  private onReply(r: SignReply): void {
    const chunk = this.waiting.get(r.id);
    this.waiting.delete(r.id);
    if (!chunk) return;
    chunk.forEach((p, i) => {
      const sig = r.signatures?.[i];
      // A signer thread that failed: sign here rather than lose the checkpoint.
      p.resolve(sig ?? signBytes(p.key, p.message));
    });
  }

  private failAll(e: Error): void {
    for (const [id, chunk] of this.waiting) {
      this.waiting.delete(id);
      for (const p of chunk) {
        try {
          p.resolve(signBytes(p.key, p.message));
        } catch {
          p.reject(e);
        }
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new Error("signer pool closed"));
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
