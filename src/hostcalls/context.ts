// What a hostcall implementation may touch: the agent's memory (late-bound: an exported memory only
// exists after instantiation), the observation source, and the tick's budget and price.
import type { Observation, ObservationSource } from "../eventlog/recorder.js";
import { equalBytes } from "../hash/bytes.js";
import type { HttpCall, HttpReply } from "./http.js";
import type { OutputTail } from "./output-tail.js";

export interface HostContext {
  source: ObservationSource;
  memory(): WebAssembly.Memory | null;
  /** The agent's budget at the start of the current tick (microcents). */
  budget(): bigint;
  /** The price the agent is charged (microcents per second). */
  price(): bigint;
  /**
   * Whether this tick runs under the agent's active-owner lease. Side-effect hostcalls refuse with
   * HostcallResult.authority (-3) otherwise (CE-4/CM-5). Replay never reaches a live side effect.
   */
  authority(): boolean;
  /**
   * Live ticks only: takes `amount` from what is left of the tick's budget (wallet_pay), or with
   * `dryRun` only says whether it could. The scheduler debits the tick's recorded payments on commit.
   */
  spend?(amount: bigint, dryRun: boolean): boolean;
  /** Live ticks only: the payments (wallet_pay) this tick has made so far. */
  paymentsThisTick?(): number;
  /** Live ticks only: whether this is the first tick of an instance resumed after an interruption. */
  interrupted?(): boolean;
  /**
   * What the current guest call wrote (log lines, stdout/stderr), kept for its failure to quote
   * (output-tail.ts); absent where no failure is reported.
   */
  tail?: OutputTail;
  /** The agent's Ed25519 public key (payment receipts name it). */
  publicKey?(): Uint8Array;
  /** Real-world inputs, injectable for tests. Only called from `live` observation producers. */
  world: {
    nowNs(): bigint;
    randomFill(buf: Uint8Array): void;
    /** Performs an HTTP request and waits for it (live ticks in a worker only; replay has none). */
    http?(call: HttpCall): HttpReply;
    /** Signs a payment receipt with the agent's key (held by the main thread); null if it cannot. */
    signPayment?(message: Uint8Array): Uint8Array | null;
    /** The node's receipts for this agent (held by the main thread). */
    receipts?: {
      /** How many; null when the node did not answer. */
      count(): number | null;
      /** Receipt `index` (`bytes` null: there is none); null when the node did not answer. */
      get(index: number): { bytes: Uint8Array | null } | null;
    };
  };
}

/** A check that the payload is exactly `n` bytes. */
export const payloadOf =
  (n: number) =>
  (o: { payload: Uint8Array }): string | null =>
    o.payload.length === n ? null : `payload is ${o.payload.length} bytes, the call needs ${n}`;

/**
 * For hostcalls through which the agent passes bytes out (log_emit, trace, emit): a check that the
 * recorded observation is exactly what the agent produces now, result and payload byte for byte.
 * Replay runs it against the log, so an altered log line or message is a divergence at its tick,
 * though nothing the agent keeps in its state depends on it.
 */
export const sameOutput =
  (now: () => Observation) =>
  (rec: Observation): string | null => {
    const o = now();
    if (o.result !== rec.result) return `the call returns ${o.result} now, the log recorded ${rec.result}`;
    if (o.payload.length !== rec.payload.length) return `the agent wrote ${o.payload.length} bytes, the log recorded ${rec.payload.length}`;
    // A native compare: a replayed log line is checked on every tick, most often by cold (interpreted) code.
    if (equalBytes(o.payload, rec.payload)) return null;
    const at = o.payload.findIndex((b, i) => b !== rec.payload[i]);
    return `the agent wrote ${o.payload.length} bytes that differ from the recorded ${rec.payload.length} (first difference at byte ${at})`;
  };

export function i64Payload(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, v, true);
  return out;
}

const I64_SCRATCH = new Uint8Array(8);
const I64_SCRATCH_VIEW = new DataView(I64_SCRATCH.buffer);

export function readI64Payload(p: Uint8Array): bigint {
  // An 8-byte payload (a clock reading, every tick) is copied into one reused view, not given a DataView of its own.
  if (p.length !== 8) return new DataView(p.buffer, p.byteOffset, p.length).getBigInt64(0, true);
  I64_SCRATCH.set(p);
  return I64_SCRATCH_VIEW.getBigInt64(0, true);
}

/** A view of guest memory [ptr, ptr+len), or null when out of bounds or there is no memory. */
export function guestBytes(ctx: HostContext, ptr: number, len: number): Uint8Array | null {
  const mem = ctx.memory();
  if (mem === null) return null;
  const start = ptr >>> 0;
  if (len < 0 || start + len > mem.buffer.byteLength) return null;
  return new Uint8Array(mem.buffer, start, len);
}

/** Reads an AssemblyScript string (UTF-16LE, byte length stored at ptr-4); with `maxChars`, its first `maxChars` code units only. */
export function readAsString(ctx: HostContext, ptr: number, maxChars = Number.POSITIVE_INFINITY): string | null {
  const p = ptr >>> 0;
  if (p < 4) return null;
  const header = guestBytes(ctx, p - 4, 4);
  if (header === null) return null;
  const byteLen = new DataView(header.buffer, header.byteOffset, 4).getUint32(0, true);
  if (guestBytes(ctx, p, byteLen & ~1) === null) return null;
  const body = guestBytes(ctx, p, Math.min(byteLen & ~1, maxChars * 2));
  return body === null ? null : new TextDecoder("utf-16le").decode(body);
}
