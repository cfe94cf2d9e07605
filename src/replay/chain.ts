// A long replay chain (audit replay) in wire form: a few byte arrays instead of an object per
// tick. Sending 2,000 ReplayItem objects to a worker cost ~6.5 µs a tick in structured clone
// (serialise + deserialise, each payload its own ArrayBuffer): more than replaying the tick. Here
// the worker receives the encoded tick logs as recorded and decodes each tick's log as it replays it,
// with payloads as views (no copies), and compares state hashes as 32-character latin1 strings
// (crypto.hash's string output allocates no ArrayBuffer; a Buffer result plus a compare cost 2×).
import { hash } from "node:crypto";
import type { Observation, ObservationCheck, ObservationSource } from "../eventlog/recorder.js";
import { ErrorCode, IgordError } from "../errors.js";
import { INIT_SOURCE, type ReplayOutcome, type ReplayTarget } from "./engine.js";
import { acquireReplayInstance, type ReplayInstance, releaseReplayInstance } from "./instance-pool.js";
import { hostcallMismatch, leftUnconsumed, logExhausted, payloadMismatch } from "./replay-source.js";

export interface ReplayChain {
  /** The first tick replayed; the chain is `count` consecutive ticks from it, in one instance. */
  fromTick: bigint;
  count: number;
  /** The state the first tick starts from. */
  preState: Uint8Array;
  /** Tick logs (eventlog/tick-log.ts encoding) of the ticks that observed something, in tick order, back to back; a tick without one observed nothing. */
  logs: Uint8Array;
  /** 32 bytes a tick: the SHA-256 its state must have, for the ticks whose `hashed` byte is not 0. */
  hashes: Uint8Array;
  /** A byte a tick: 0 no hash, HASHED its state's hash is checked, CHECKPOINTED also resumed as a checkpoint (below). */
  hashed: Uint8Array;
}

/** A tick whose state hash is checked. */
export const HASHED = 1;
/**
 * A tick whose state is a stored checkpoint's: checked, then resumed in a fresh instance for the
 * ticks after it, as a node resuming that checkpoint runs them. State a checkpoint does not capture
 * (a mutable global, memory outside it) reproduces in one unbroken instance from the start and
 * would pass the audit, while every node that resumes the checkpoint computes other states.
 */
export const CHECKPOINTED = 2;

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
  at: (tick: bigint) => { log?: Uint8Array | undefined; hash?: Uint8Array | undefined; checkpoint?: boolean },
): IndexedChain {
  const logs: Uint8Array[] = [];
  const logStarts = new Uint32Array(count + 1);
  const hashes = new Uint8Array(count * 32);
  const hashed = new Uint8Array(count);
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    logStarts[i] = bytes;
    const { log, hash: h, checkpoint } = at(fromTick + BigInt(i));
    if (log) {
      logs.push(log);
      bytes += log.length;
    }
    if (h) {
      hashes.set(h, i * 32);
      hashed[i] = checkpoint === true ? CHECKPOINTED : HASHED;
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

/**
 * Serves a chain's tick logs to the hostcalls straight from the wire form: each observation is read
 * at its offset when the agent asks for it (no entry objects built ahead, no array a tick), with the
 * same checks and reasons as ReplaySource over the decoded entries.
 */
class ChainSource implements ObservationSource {
  /** Where the next entry of the tick being served starts, its index and the tick's entry count. */
  private at = 0;
  private position = 0;
  private count = 0;
  private index = 0;

  constructor(
    private readonly logs: Uint8Array,
    private readonly dv: DataView,
    private readonly fromTick: bigint,
  ) {}

  /** Serves the `index`th tick of the chain: `count` entries from `at` (0 = it observed nothing). */
  serve(index: number, at: number, count: number): void {
    this.index = index;
    this.at = at;
    this.count = count;
    this.position = 0;
  }

  private tick(): bigint {
    return this.fromTick + BigInt(this.index);
  }

  observe(id: number, _live: () => Observation, check?: ObservationCheck): Observation {
    const k = this.position;
    if (k >= this.count) throw logExhausted(this.tick(), id, k, this.count);
    const at = this.at;
    const recorded = this.dv.getUint16(at, true);
    if (recorded !== id) throw hostcallMismatch(this.tick(), id, k, recorded);
    const len = this.dv.getUint32(at + 6, true);
    const o: Observation = { result: this.dv.getInt32(at + 2, true), payload: new Uint8Array(this.logs.buffer, this.logs.byteOffset + at + 10, len) };
    if (check !== undefined) {
      const problem = check(o);
      if (problem) throw payloadMismatch(this.tick(), id, k, problem);
    }
    this.position = k + 1;
    this.at = at + 10 + len;
    return o;
  }

  finish(): void {
    if (this.position < this.count) throw leftUnconsumed(this.tick(), this.count - this.position, this.dv.getUint16(this.at, true), this.position);
  }
}

const TWO_32 = 2 ** 32;

/**
 * Replays a chain (every tick's hostcalls and, where a hash is given, its state), in one instance
 * up to each checkpoint, whose state the ticks after it resume in a fresh one (CHECKPOINTED); stops
 * at the first tick that does not reproduce. The same checks as `replay(…)`
 * over the equivalent items, with the same errors. `onTick` is called before the instance is
 * acquired and as each tick starts (the worker restarts its watchdog's clock).
 *
 * The loop runs once a tick, mostly before the JIT has optimised it (an audit is a fresh process):
 * ticks are followed as two 32-bit halves (numbers, no BigInt a tick) and logs are read in place.
 */
export function replayChain(target: ReplayTarget, chain: ReplayChain, onTick?: () => void): ReplayOutcome {
  const started = process.hrtime.bigint();
  const { logs, hashed, count, fromTick } = chain;
  const expected = Buffer.from(chain.hashes.buffer, chain.hashes.byteOffset, chain.hashes.length).toString("latin1");
  const dv = new DataView(logs.buffer, logs.byteOffset, logs.length);
  const source = new ChainSource(logs, dv, fromTick);
  // The tick being replayed, as its high and low 32-bit words.
  let hi = Number(fromTick / 0x1_0000_0000n);
  let lo = Number(fromTick % 0x1_0000_0000n);
  let next = 0;
  let i = 0;
  let inst: ReplayInstance | null = null;
  let finalState: Uint8Array | undefined;
  try {
    onTick?.();
    inst = acquireReplayInstance(target, INIT_SOURCE);
    let { sandbox, io } = inst;
    sandbox.resume(chain.preState);
    for (; i < count; i++) {
      if (i > 0 && ++lo === TWO_32) {
        lo = 0;
        hi++;
      }
      onTick?.();
      let at = next;
      let entries = 0;
      if (next < logs.length) {
        const logHi = dv.getUint32(next + 4, true);
        const logLo = dv.getUint32(next, true);
        if (logHi < hi || (logHi === hi && logLo < lo)) {
          throw new IgordError(ErrorCode.ReplayUnconsumed, `the chain from tick ${fromTick} carries a log of tick ${dv.getBigUint64(next, true)} out of order`);
        }
        if (logHi === hi && logLo === lo) {
          entries = dv.getUint32(next + 8, true);
          at = next + 12;
          next = logEnd(logs, dv, next);
        }
      }
      source.serve(i, at, entries);
      io.source = source;
      sandbox.tick();
      source.finish();
      io.source = INIT_SOURCE;
      // Every tick's state is read, as a live tick's is (agent_checkpoint runs after each).
      const state = sandbox.stateView();
      // The 32-character digest against the table in place (startsWith at the tick's offset: no substring a tick).
      if (hashed[i] !== 0) {
        const got = hash("sha256", state, "binary");
        if (!expected.startsWith(got, i * 32)) throw stateMismatch(fromTick + BigInt(i), got, expected.slice(i * 32, i * 32 + 32));
      }
      if (i === count - 1) finalState = state.slice();
      else if (hashed[i] === CHECKPOINTED) {
        // The checkpoint's state, as a node resuming it starts: in a fresh instance.
        const checkpointed = state.slice();
        releaseReplayInstance(inst, true);
        inst = null;
        inst = acquireReplayInstance(target, INIT_SOURCE);
        ({ sandbox, io } = inst);
        sandbox.resume(checkpointed);
      }
    }
    if (next < logs.length) throw new IgordError(ErrorCode.ReplayUnconsumed, `the chain to tick ${tickAt(chain, i)} carries a log of tick ${dv.getBigUint64(next, true)} beyond it`);
    releaseReplayInstance(inst, true);
    return { verified: count, failure: null, durationNs: process.hrtime.bigint() - started, ...(finalState ? { finalState } : {}) };
  } catch (e) {
    if (inst) releaseReplayInstance(inst, false);
    const err = e instanceof IgordError ? e : new IgordError(ErrorCode.AgentTrap, (e as Error).message);
    return { verified: i, failure: { tick: tickAt(chain, i), error: err.toJSON() }, durationNs: process.hrtime.bigint() - started };
  }
}

/** The tick at index `i` of the chain; past its end, its last tick (what a failure after it names). */
function tickAt(chain: ReplayChain, i: number): bigint {
  return chain.fromTick + BigInt(Math.max(0, Math.min(i, chain.count - 1)));
}

/**
 * Where the tick log at `off` ends. The logs were checked as they were planned (eventlog/tick-log.ts
 * segmentLogSpans); here only their bounds are, before the tick runs, one DataView for the whole chain.
 */
function logEnd(logs: Uint8Array, dv: DataView, off: number): number {
  const count = dv.getUint32(off + 8, true);
  let at = off + 12;
  for (let k = 0; k < count; k++) {
    if (at + 10 > logs.length) throw new IgordError(ErrorCode.ReplayLogExhausted, `a tick log of the chain is truncated at byte ${at}`);
    const len = dv.getUint32(at + 6, true);
    if (at + 10 + len > logs.length) throw new IgordError(ErrorCode.ReplayLogExhausted, `a tick log of the chain is truncated at byte ${at}`);
    at += 10 + len;
  }
  return at;
}

function stateMismatch(tick: bigint, got: string, expected: string): IgordError {
  const gotHex = Buffer.from(got, "latin1").toString("hex");
  const expectedHex = Buffer.from(expected, "latin1").toString("hex");
  return new IgordError(ErrorCode.ReplayStateMismatch, `tick ${tick}: replayed state hash ${gotHex.slice(0, 16)}… differs from the recorded ${expectedHex.slice(0, 16)}…`, {
    details: { tick: String(tick), expected: expectedHex, got: gotHex },
  });
}
