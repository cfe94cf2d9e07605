// The bridge through which a tick, running synchronous WebAssembly in a worker thread, has the main
// thread do asynchronous I/O for it (an HTTP request) and waits for the answer.
//
// The worker posts the request on a MessagePort it owns no listener for, then blocks in Atomics.wait
// on a shared flag. The main thread performs the request with its event loop (never blocking other
// workers' ticks), posts the reply on the port, then raises the flag and notifies. The worker wakes
// and takes the reply synchronously with receiveMessageOnPort. Every wait has a deadline of its own
// (the request's timeout plus HOST_IO_REPLY_GRACE_MS); a reply that comes later is recognised by its
// id and dropped. The pool's watchdog still bounds the whole tick.
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

/** The shared flag (one Int32) a worker waits on: 0 = waiting, 1 = a reply was posted. */
export function hostIoFlag(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
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

  /** Sends the request and blocks until its reply, or returns null after `waitMs`. */
  call(placement: number, request: HostIoRequest, waitMs: number, authorityUntilMs: number | null): HostIoReply | null {
    const id = this.nextId++;
    Atomics.store(this.flag, 0, 0);
    this.port.postMessage({ id, placement, request, authorityUntilMs, waitsUntilMs: Date.now() + waitMs } satisfies HostIoEnvelope);
    const deadline = performance.now() + waitMs;
    for (;;) {
      // Clear the flag before draining: a reply posted after the drain raises it again, so the next
      // wait returns at once instead of sleeping through it.
      Atomics.store(this.flag, 0, 0);
      for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) {
        const r = m.message as HostIoReplyEnvelope;
        if (r.id === id) return r.reply;
      }
      const left = deadline - performance.now();
      if (left <= 0) return null;
      Atomics.wait(this.flag, 0, 0, left);
    }
  }
}

/** Main-thread side: serves a worker's requests with `perform` and wakes the worker with each reply. */
export function serveHostIo(port: MessagePort, flag: SharedArrayBuffer, perform: (env: HostIoEnvelope) => Promise<HostIoReply>): void {
  const f = new Int32Array(flag);
  port.on("message", (env: HostIoEnvelope) => {
    void perform(env)
      .catch((e: unknown): HostIoReply => ({ kind: "error", message: e instanceof Error ? e.message : String(e) }))
      .then((reply) => {
        try {
          port.postMessage({ id: env.id, reply } satisfies HostIoReplyEnvelope);
        } catch {
          return; // the worker is gone
        }
        Atomics.store(f, 0, 1);
        Atomics.notify(f, 0);
      });
  });
  port.unref();
}
