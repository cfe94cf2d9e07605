// A long strict replay chain (audit replay) in wire form: a few byte arrays instead of an object per
// tick. Sending 2,000 ReplayItem objects to a worker cost ~6.5 µs a tick in structured clone
// (serialise + deserialise, each payload its own ArrayBuffer): more than replaying the tick. Here
// the worker receives the encoded tick logs as recorded and decodes each tick's log as it replays it,
// with payloads as views (no copies), and compares state hashes as 32-character latin1 strings
// (crypto.hash's string output allocates no ArrayBuffer; a Buffer result plus a compare cost 2×).
import { hash } from "node:crypto";
import type { LogEntry } from "../eventlog/tick-log.js";
import { ErrorCode, IgordError } from "../errors.js";
import { INIT_SOURCE, type ReplayOutcome, type ReplayTarget } from "./engine.js";
import { acquireReplayInstance, type ReplayInstance, releaseReplayInstance } from "./instance-pool.js";
import { ReplaySource } from "./replay-source.js";

export interface ReplayChain {
  /** The first tick replayed; the chain is `count` consecutive ticks from it, in one instance. */
  fromTick: bigint;
  count: number;
  /** The state the first tick starts from. */
  preState: Uint8Array;
  /** Tick logs (eventlog/tick-log.ts encoding) of the ticks that observed something, in tick order, back to back; a tick without one observed nothing. */
  logs: Uint8Array;
  /** 32 bytes a tick: the SHA-256 its state must have, for the ticks whose `hashed` byte is 1. */
  hashes: Uint8Array;
  hashed: Uint8Array;
}

/** A chain and where each tick's log starts in `logs` (count + 1 offsets), to cut it into batches. */
export interface IndexedChain {
  chain: ReplayChain;
  logStarts: Uint32Array;
}

/** Builds a chain over [fromTick, fromTick + count) from each tick's encoded log and expected hash. */
export function buildChain(
  fromTick: bigint,
  count: number,
  preState: Uint8Array,
  at: (tick: bigint) => { log?: Uint8Array | undefined; hash?: Uint8Array | undefined },
): IndexedChain {
  const logs: Uint8Array[] = [];
  const logStarts = new Uint32Array(count + 1);
  const hashes = new Uint8Array(count * 32);
  const hashed = new Uint8Array(count);
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    logStarts[i] = bytes;
    const { log, hash: h } = at(fromTick + BigInt(i));
    if (log) {
      logs.push(log);
      bytes += log.byteLength;
    }
    if (h) {
      hashes.set(h, i * 32);
      hashed[i] = 1;
    }
  }
  logStarts[count] = bytes;
  return { chain: { fromTick, count, preState, logs: Buffer.concat(logs), hashes, hashed }, logStarts };
}

/** Ticks [from, to) of a chain, starting from `preState` (its own buffers: they cross to a worker). */
export function sliceChain(c: IndexedChain, from: number, to: number, preState: Uint8Array): ReplayChain {
  const { chain, logStarts } = c;
  return {
    fromTick: chain.fromTick + BigInt(from),
    count: to - from,
    preState,
    logs: chain.logs.slice(logStarts[from], logStarts[to]),
    hashes: chain.hashes.slice(from * 32, to * 32),
    hashed: chain.hashed.slice(from, to),
  };
}

const NO_ENTRIES: readonly LogEntry[] = [];

/**
 * Replays a chain strictly (every tick's hostcalls and, where a hash is given, its state), in one
 * instance; stops at the first tick that does not reproduce. The same checks as `replay(…, strict)`
 * over the equivalent items, with the same errors.
 */
export function replayChain(target: ReplayTarget, chain: ReplayChain, onTick?: (tick: bigint) => void): ReplayOutcome {
  const started = process.hrtime.bigint();
  const { logs, hashed, count } = chain;
  const expected = Buffer.from(chain.hashes.buffer, chain.hashes.byteOffset, chain.hashes.byteLength).toString("binary");
  const dv = new DataView(logs.buffer, logs.byteOffset, logs.byteLength);
  const source = new ReplaySource(NO_ENTRIES, chain.fromTick);
  let next = 0;
  let tick = chain.fromTick;
  let i = 0;
  let inst: ReplayInstance | null = null;
  let finalState: Uint8Array | undefined;
  try {
    onTick?.(tick);
    inst = acquireReplayInstance(target, INIT_SOURCE);
    const { sandbox, io } = inst;
    sandbox.resume(chain.preState);
    for (; i < count; i++) {
      tick = chain.fromTick + BigInt(i);
      onTick?.(tick);
      let entries = NO_ENTRIES;
      if (next < logs.byteLength) {
        const logTick = dv.getBigUint64(next, true);
        if (logTick < tick) throw new IgordError(ErrorCode.ReplayUnconsumed, `the chain from tick ${chain.fromTick} carries a log of tick ${logTick} out of order`);
        if (logTick === tick) {
          const read: LogEntry[] = [];
          next = readEntries(logs, dv, next, read);
          entries = read;
        }
      }
      source.reset(entries, tick);
      io.source = source;
      sandbox.tick();
      source.finish();
      io.source = INIT_SOURCE;
      // Every tick's state is read, as a live tick's is (agent_checkpoint runs after each).
      const state = sandbox.stateView();
      if (hashed[i] === 1) checkBinaryHash(tick, hash("sha256", state, "binary"), expected.slice(i * 32, i * 32 + 32));
      if (i === count - 1) finalState = state.slice();
    }
    if (next < logs.byteLength) throw new IgordError(ErrorCode.ReplayUnconsumed, `the chain to tick ${tick} carries a log of tick ${dv.getBigUint64(next, true)} beyond it`);
    releaseReplayInstance(inst, true);
    return { verified: count, failure: null, durationNs: process.hrtime.bigint() - started, ...(finalState ? { finalState } : {}) };
  } catch (e) {
    if (inst) releaseReplayInstance(inst, false);
    const err = e instanceof IgordError ? e : new IgordError(ErrorCode.AgentTrap, (e as Error).message);
    return { verified: i, failure: { tick, error: err.toJSON() }, durationNs: process.hrtime.bigint() - started };
  }
}

/**
 * Reads the entries of the tick log at `off` into `out` (payloads are views of `logs`); returns where
 * the next log starts. The logs were checked as they were planned (eventlog/tick-log.ts
 * segmentLogSpans); here only their bounds are, one DataView for the whole chain: this runs every
 * tick, mostly before the JIT has optimised it.
 */
function readEntries(logs: Uint8Array, dv: DataView, off: number, out: LogEntry[]): number {
  const count = dv.getUint32(off + 8, true);
  let at = off + 12;
  for (let k = 0; k < count; k++) {
    if (at + 10 > logs.byteLength) throw new IgordError(ErrorCode.ReplayLogExhausted, `a tick log of the chain is truncated at byte ${at}`);
    const len = dv.getUint32(at + 6, true);
    if (at + 10 + len > logs.byteLength) throw new IgordError(ErrorCode.ReplayLogExhausted, `a tick log of the chain is truncated at byte ${at}`);
    out.push({ id: dv.getUint16(at, true), result: dv.getInt32(at + 2, true), payload: new Uint8Array(logs.buffer, logs.byteOffset + at + 10, len) });
    at += 10 + len;
  }
  return at;
}

function checkBinaryHash(tick: bigint, got: string, expected: string): void {
  if (got === expected) return;
  const gotHex = Buffer.from(got, "binary").toString("hex");
  const expectedHex = Buffer.from(expected, "binary").toString("hex");
  throw new IgordError(ErrorCode.ReplayStateMismatch, `tick ${tick}: replayed state hash ${gotHex.slice(0, 16)}… differs from the recorded ${expectedHex.slice(0, 16)}…`, {
    details: { tick: String(tick), expected: expectedHex, got: gotHex },
  });
}
