// The bridge through which a tick, running synchronous WebAssembly in a worker thread, has the main
// thread do asynchronous I/O for it (an HTTP request) and waits for the answer.
//
// The worker posts the request on a MessagePort it owns no listener for, then blocks in Atomics.wait
// on a shared flag. The main thread performs the request with its event loop (never blocking other
// workers' ticks), posts the reply on the port, then raises the flag and notifies. The worker wakes
// and takes the reply synchronously with receiveMessageOnPort. Every wait has a deadline of its own
// (the request's timeout plus HOST_IO_REPLY_GRACE_MS); a reply that comes later is recognised by its
// id and dropped. The pool's watchdog still bounds the whole tick.
//
// Who decides whether a reply counts is one compare-and-swap on a shared cell: the worker writes the
// id it waits for; the main thread claims it (id -> -id) before posting the reply, and the worker,
// giving up, abandons it (id -> 0). Exactly one of them wins. A reply the main thread claimed is
// taken by the guest; one it could not claim never reaches a guest, so the main thread may undo
// what it did for it (a payment's journal row: no guest holds that receipt, no money left with it).
import { type MessagePort, receiveMessageOnPort } from "node:worker_threads";
import type { HttpCall, HttpReply } from "../hostcalls/http.js";

/** How long past a request's own deadline the worker still waits for the main thread's reply. */
export const HOST_IO_REPLY_GRACE_MS = 50;
/**
 * A request's deadline ends at least this long before the tick timeout, so the agent sees -4 and its
 * tick completes instead of the watchdog stopping the agent.
 */
export const HTTP_TICK_MARGIN_MS = 250;

/** How long a worker waits for the main thread to answer a local request (signing, receipts). */
export const HOST_IO_LOCAL_WAIT_MS = 5_000;
/**
 * How long a worker that gave up still waits for a reply the main thread claimed just before: posted
 * right after the claim, in the same turn of the main thread's event loop, so it is there at once.
 */
export const HOST_IO_CLAIMED_REPLY_WAIT_MS = 1_000;

export type HostIoRequest =
  | { kind: "http"; call: HttpCall }
  /** Sign a payment receipt with the agent's key (journalled under the tick that pays, first). */
  | { kind: "sign"; message: Uint8Array; tick: bigint }
  | { kind: "receipt_count" }
  | { kind: "receipt"; index: number };

export type HostIoReply =
  | HttpReply
  | { kind: "signature"; signature: Uint8Array }
  | { kind: "count"; count: number }
  | { kind: "receipt"; bytes: Uint8Array | null };

export interface HostIoEnvelope {
  id: number;
  /** The placement whose tick asks (the main thread answers only for agents placed on that worker). */
  placement: number;
  request: HostIoRequest;
  /** Unix ms when the authority of the tick that asks lapses (null: never): nothing acts on the world past it. */
  authorityUntilMs: number | null;
  /** Unix ms after which the worker no longer waits for the reply: a request served later is not performed. */
  waitsUntilMs: number;
}

export interface HostIoReplyEnvelope {
  id: number;
  reply: HostIoReply;
}

/** The shared cells: the flag a worker waits on (0 = waiting, 1 = a reply was posted), and the id of the request it waits for (see the header). */
const enum Cell {
  flag = 0,
  waitsFor = 1,
}

export function hostIoFlag(): SharedArrayBuffer {
  return new SharedArrayBuffer(8);
}

/** Worker side: one request at a time (a worker runs one tick at a time). */
export class HostIoClient {
  private nextId = 1;
  private readonly flag: Int32Array;

  constructor(
    private readonly port: MessagePort,
    flag: SharedArrayBuffer,
  ) {
    this.flag = new Int32Array(flag);
  }

  /** Sends the request and blocks until its reply, or returns null after `waitMs` (the request abandoned: its reply, if the main thread still makes one, is never claimed). */
  call(placement: number, request: HostIoRequest, waitMs: number, authorityUntilMs: number | null): HostIoReply | null {
    // Ids stay positive Int32s (a claimed one is its negation, an abandoned one 0).
    const id = this.nextId;
    this.nextId = id >= 0x7fffffff ? 1 : id + 1;
    Atomics.store(this.flag, Cell.flag, 0);
    Atomics.store(this.flag, Cell.waitsFor, id);
    this.port.postMessage({ id, placement, request, authorityUntilMs, waitsUntilMs: Date.now() + waitMs } satisfies HostIoEnvelope);
    const reply = this.await(id, waitMs);
    if (reply !== null) return reply;
    // Abandoned, unless the main thread claimed the reply first: then it is on its way, and taken.
    if (Atomics.compareExchange(this.flag, Cell.waitsFor, id, 0) === id) return null;
    return this.await(id, HOST_IO_CLAIMED_REPLY_WAIT_MS);
  }

  /** The reply to request `id`, or null after `waitMs`. */
  private await(id: number, waitMs: number): HostIoReply | null {
    const deadline = performance.now() + waitMs;
    for (;;) {
      // Clear the flag before draining: a reply posted after the drain raises it again, so the next
      // wait returns at once instead of sleeping through it.
      Atomics.store(this.flag, Cell.flag, 0);
      for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) {
        const r = m.message as HostIoReplyEnvelope;
        if (r.id === id) return r.reply;
      }
      const left = deadline - performance.now();
      if (left <= 0) return null;
      Atomics.wait(this.flag, Cell.flag, 0, left);
    }
  }
}

/**
 * Claims the reply to a request for the worker still waiting for it: true once claimed (the guest
 * takes the reply, which must then be posted), false when the worker gave it up or moved on to
 * another request (no guest ever takes it). Asked again, it answers as the first time.
 */
export type ClaimReply = () => boolean;

/**
 * Main-thread side: serves a worker's requests with `perform` and wakes the worker with each reply
 * it could claim. `perform` may claim the reply itself before it returns, to undo what no guest
 * will take (the payment journal: host-io-services.ts).
 */
export function serveHostIo(port: MessagePort, flag: SharedArrayBuffer, perform: (env: HostIoEnvelope, claim: ClaimReply) => Promise<HostIoReply>): void {
  const f = new Int32Array(flag);
  port.on("message", (env: HostIoEnvelope) => {
    let claimed: boolean | null = null;
    const claim: ClaimReply = () => (claimed ??= Atomics.compareExchange(f, Cell.waitsFor, env.id, -env.id) === env.id);
    void perform(env, claim)
      .catch((e: unknown): HostIoReply => ({ kind: "error", message: e instanceof Error ? e.message : String(e) }))
      .then((reply) => {
        if (!claim()) return;
        try {
          port.postMessage({ id: env.id, reply } satisfies HostIoReplyEnvelope);
        } catch {
          return; // the worker is gone
        }
        Atomics.store(f, Cell.flag, 1);
        Atomics.notify(f, Cell.flag);
      });
  });
  port.unref();
}
