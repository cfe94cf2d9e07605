// Ed25519 signing spread over worker threads. A signature costs ~34–50 µs of CPU; at thousands of
// checkpoints per second that is most of a core, so batches signed in one turn of the event loop are
// split across signer threads. Small batches are signed inline: a thread hop would only add latency.
//
// What a signature costs besides signing is kept small (it showed in the profile): each key is
// always signed by the same thread, which is sent its KeyObject once (a clone shares the parsed key:
// parsing a private key costs several signatures), and a chunk travels as one transferred buffer of
// messages and comes back as one buffer of signatures.
//
// A node's pool starts its threads only once signing measures busy (SIGNER_THREADS_BUSY_SHARE of the
// main thread over SIGNER_THREADS_WINDOW_MS): two idle threads cost ~20 MiB, a fifth of what a
// thousand slow agents take, and such a node signs a few hundred checkpoints a second at most.
import { Worker } from "node:worker_threads";
import { BusyShare } from "../busy-share.js";
import { workerScript } from "../worker-script.js";
import { type Ed25519Key, signBytes } from "./keys.js";
import type { SignReply, SignRequest } from "./signer-worker.js";

/** Batches smaller than this are signed on the calling thread. */
export const INLINE_SIGN_MAX = 8;
/** Signatures per message to a signer thread, at most. */
export const SIGN_CHUNK_MAX = 64;
/** Keys a signer thread keeps; at the bound the pool tells it to start over. */
export const SIGNER_KEYS_MAX = 20_000;

/** A pool started "when-busy" starts its threads once inline signing takes this share of the calling thread… */
export const SIGNER_THREADS_BUSY_SHARE = 0.1;
/** …over a window at least this long. */
export const SIGNER_THREADS_WINDOW_MS = 1000;

const SIGNATURE_BYTES = 64;

/** A message, whole or in parts signed as if joined (a checkpoint's: its v0x05 prefix and two slices of its blob). */
export type SignMessage = Uint8Array | readonly Uint8Array[];

function messageBytes(m: SignMessage): number {
  if (m instanceof Uint8Array) return m.length;
  let n = 0;
  for (const part of m) n += part.length;
  return n;
}

function joined(m: SignMessage): Uint8Array {
  return m instanceof Uint8Array ? m : Buffer.concat(m);
}

/**
 * A signature to make and whom to tell (SignerPool.signFor): the checkpointer's checkpoint in flight
 * is its own target, so a signature costs no promise, closure or record of its own.
 */
export interface SignTarget {
  readonly key: Ed25519Key;
  /** Read once per signing (it may be made when read). */
  readonly message: SignMessage;
  signed(sig: Uint8Array): void;
  signFailed(e: Error): void;
}

type Pending = SignTarget;

interface Thread {
  worker: Worker;
  /** Numbers of the keys this thread keeps. */
  keys: Set<number>;
}

export class SignerPool {
  private readonly threads: Thread[] = [];
  private readonly waiting = new Map<number, { chunk: Pending[]; thread: Thread }>();
  /** A number per key object, the same for the pool's life: it picks the key's thread. */
  private readonly keyNumbers = new WeakMap<Ed25519Key, number>();
  private nextKey = 0;
  private queue: Pending[] = [];
  private scheduled = false;
  private nextId = 1;
  private closed = false;
  /** Signatures a thread was given but the calling thread made (the thread failed or died). */
  fallbacks = 0;

  /** Measures inline signing until the threads start ("when-busy"); null once they did (or were started at once). */
  private startLater: BusyShare | null = null;

  /**
   * @param keysMax keys each thread keeps before it starts over (a bound on its memory).
   * @param start "now": the threads start with the pool; "when-busy": once inline signing measures busy.
   */
  constructor(
    private readonly size: number,
    private readonly keysMax = SIGNER_KEYS_MAX,
    start: "now" | "when-busy" = "now",
  ) {
    if (start === "now") this.startThreads();
    else this.startLater = new BusyShare(SIGNER_THREADS_BUSY_SHARE, SIGNER_THREADS_WINDOW_MS);
  }

  /** Whether the pool's threads were started (they may have died since). */
  get threadsStarted(): boolean {
    return this.startLater === null;
  }

  private startThreads(): void {
    this.startLater = null;
    const script = workerScript("./signer-worker.js", import.meta.url);
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(script);
      worker.unref();
      const thread: Thread = { worker, keys: new Set() };
      worker.on("message", (r: SignReply) => this.onReply(r));
      // A thread that died takes no more chunks (its keys go to the others); what it held is signed here.
      const lost = (e: Error): void => {
        const i = this.threads.indexOf(thread);
        if (i >= 0) this.threads.splice(i, 1);
        this.failAll(e, thread);
      };
      worker.on("error", lost);
      worker.on("exit", () => lost(new Error("signer thread exited")));
      this.threads.push(thread);
    }
  }

  /** Signs on the calling thread; while the threads wait to start, counts the time and starts them once busy. */
  private signHere(key: Ed25519Key, message: SignMessage): Uint8Array {
    if (this.startLater === null || this.closed) return signBytes(key, joined(message));
    const started = performance.now();
    const sig = signBytes(key, joined(message));
    if (this.startLater.note(started)) this.startThreads();
    return sig;
  }

  /** Signs `message` (parts: their concatenation, copied once, into the chunk sent to a thread). */
  sign(key: Ed25519Key, message: SignMessage): Promise<Uint8Array> {
    if (this.closed || this.threads.length === 0) return Promise.resolve(this.signHere(key, message));
    return new Promise((signed, signFailed) => this.enqueue({ key, message, signed, signFailed }));
  }

  /**
   * Signs `t.message` with `t.key` and calls `t.signed` with the signature (a view the target may
   * keep), or `t.signFailed`: never synchronously when threads sign, at once when the pool signs
   * inline (closed, threads not started yet, or none left).
   */
  signFor(t: SignTarget): void {
    if (this.closed || this.threads.length === 0) {
      this.signInline(t);
      return;
    }
    this.enqueue(t);
  }

  private enqueue(p: Pending): void {
    this.queue.push(p);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.dispatch());
    }
  }

  private keyNumber(key: Ed25519Key): number {
    let n = this.keyNumbers.get(key);
    if (n === undefined) {
      n = this.nextKey++;
      this.keyNumbers.set(key, n);
    }
    return n;
  }

  private dispatch(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length < INLINE_SIGN_MAX || this.threads.length === 0) {
      for (const p of batch) this.signInline(p);
      return;
    }
    // Each key's thread; within a thread, chunks of at most SIGN_CHUNK_MAX, so the first
    // signatures come back (and their checkpoints commit) while the rest are still being made.
    const perThread: Pending[][] = this.threads.map(() => []);
    for (const p of batch) (perThread[this.keyNumber(p.key) % this.threads.length] as Pending[]).push(p);
    perThread.forEach((list, t) => {
      for (let i = 0; i < list.length; i += SIGN_CHUNK_MAX) this.send(this.threads[t] as Thread, list.slice(i, i + SIGN_CHUNK_MAX));
    });
  }

  private send(thread: Thread, chunk: Pending[]): void {
    const id = this.nextId++;
    // At the bound the thread starts over (before this chunk's keys are added, so it keeps them).
    const reset = thread.keys.size + chunk.length > this.keysMax;
    if (reset) thread.keys.clear();
    const add: SignRequest["add"] = [];
    const keys = new Uint32Array(chunk.length);
    const offsets = new Uint32Array(chunk.length + 1);
    let size = 0;
    // Each message read once: a target may make it when asked (a checkpoint in flight does, so it
    // holds no views of its blob while it waits).
    const messages = new Array<SignMessage>(chunk.length);
    chunk.forEach((p, i) => {
      const n = this.keyNumber(p.key);
      if (!thread.keys.has(n)) {
        thread.keys.add(n);
        add.push([n, p.key.privateKeyObject, p.key.secretKey]);
      }
      keys[i] = n;
      offsets[i] = size;
      const m = p.message;
      messages[i] = m;
      size += messageBytes(m);
    });
    offsets[chunk.length] = size;
    // Not zeroed first (the zeroing showed in the profile): every byte is a message's, written below,
    // and the buffer only travels to the signer thread, which reads each message's range.
    const data = Buffer.allocUnsafeSlow(size);
    messages.forEach((m, i) => {
      if (m instanceof Uint8Array) data.set(m, offsets[i]);
      else {
        let off = offsets[i] as number;
        for (const part of m) {
          data.set(part, off);
          off += part.length;
        }
      }
    });
    this.waiting.set(id, { chunk, thread });
    const req: SignRequest = { id, reset, add, keys, offsets, data };
    thread.worker.postMessage(req, [data.buffer, keys.buffer, offsets.buffer]);
  }

  private onReply(r: SignReply): void {
    const chunk = this.waiting.get(r.id)?.chunk;
    this.waiting.delete(r.id);
    if (!chunk) return;
    const sigs = r.signatures;
    if (!sigs || sigs.length !== chunk.length * SIGNATURE_BYTES) {
      // A signer thread that failed: sign here rather than lose the checkpoint.
      for (const p of chunk) {
        this.fallbacks++;
        this.signInline(p);
      }
      return;
    }
    // Views into the transferred reply (this thread owns it): no copy per signature.
    for (let i = 0; i < chunk.length; i++) (chunk[i] as Pending).signed(sigs.subarray(i * SIGNATURE_BYTES, (i + 1) * SIGNATURE_BYTES));
  }

  /** Signs here what `thread` (every thread, without it) was given and has not answered. */
  private failAll(e: Error, thread?: Thread): void {
    for (const [id, { chunk, thread: t }] of this.waiting) {
      if (thread && t !== thread) continue;
      this.waiting.delete(id);
      for (const p of chunk) {
        this.fallbacks++;
        this.signInline(p, e);
      }
    }
  }

  /** Signs `p` on the calling thread and tells it; a failure is told as `failure` when given (why a thread did not sign it), else as itself. */
  private signInline(p: Pending, failure?: Error): void {
    let sig: Uint8Array;
    try {
      sig = this.signHere(p.key, p.message);
    } catch (e) {
      p.signFailed(failure ?? (e as Error));
      return;
    }
    p.signed(sig);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new Error("signer pool closed"));
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
    this.threads.length = 0;
  }
}
