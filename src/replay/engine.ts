// The replay engine: re-executes recorded ticks in a fresh sandbox (a new instance, or a pooled one
// reset to its post-initialisation image: replay/instance-pool.ts) and checks that they reproduce. Each item either starts a new instance from a pre-tick state
// (window snapshots, verified one by one) or continues the previous one (a chain: N consecutive ticks
// in one instance, as audit replay does). Runs wherever a sandbox can run: a worker thread for
// deadline-bound replay of live agents, or in-process for tests.
import { equalBytes, hex, sha256 } from "../hash/bytes.js";
import { type ObservationSource, ZERO_SOURCE } from "../eventlog/recorder.js";
import type { LogEntry } from "../eventlog/tick-log.js";
import { ErrorCode, IgordError, type SerializedError } from "../errors.js";
import type { ImportPlan } from "../hostcalls/policy.js";
import { acquireReplayInstance, type ReplayInstance, releaseReplayInstance } from "./instance-pool.js";
import { ReplaySource } from "./replay-source.js";

/** Bumped whenever replay semantics change, so an upgrade is not mistaken for nondeterminism. */
export const REPLAY_ENGINE_VERSION = 1;

export interface ReplayItem {
  tick: bigint;
  /** Start a fresh instance from this state; absent = continue the previous item's instance. */
  preState?: Uint8Array;
  entries: LogEntry[];
  /** SHA-256 of the state the tick must produce; absent = only the hostcall sequence is checked. */
  expectedPostHash?: Uint8Array;
  /**
   * The state itself, when the caller holds it (self-verification: the window keeps each tick's
   * post-state): compared byte for byte, in place of its hash, which then need not be computed.
   */
  expectedPost?: Uint8Array;
  budget: bigint;
  price: bigint;
}

export interface ReplayOutcome {
  /** Items that reproduced. */
  verified: number;
  /** The first item that did not, and why. */
  failure: { tick: bigint; error: SerializedError } | null;
  durationNs: bigint;
  /** The state after the last verified item (lets a long chain continue in another batch). */
  finalState?: Uint8Array;
}

export interface ReplayTarget {
  module: WebAssembly.Module;
  plan: ImportPlan;
  memoryCapPages: number;
}

/**
 * During agent_init of a replay instance: observations are answered with zeros of the right shape.
 * The state init builds is replaced by agent_resume, so nothing it observed can matter.
 */
export const INIT_SOURCE: ObservationSource = ZERO_SOURCE;


interface RunResult {
  verified: number;
  failure: { tick: bigint; error: IgordError } | null;
  finalState?: Uint8Array;
}

/**
 * Replays items in order; stops at the first that does not reproduce. Items are grouped into runs
 * (a run starts at an item with a pre-state and continues in one instance). Every tick's hostcalls
 * and, where the item gives one, its resulting state are compared at that tick, the same for live
 * self-verification and for recorded evidence (audit, admission): a tick whose state diverged is
 * never counted verified because a later tick of its run overwrote the difference (a state a
 * periodic checkpoint stored may be any tick's). Between ticks the state is compared in place in
 * guest memory (no copy); only the run's last is copied out, as `finalState`.
 * `onTick(tick)` is called as each tick starts (the worker publishes it for its watchdog).
 */
export function replay(target: ReplayTarget, items: readonly ReplayItem[], onTick?: (tick: bigint) => void): ReplayOutcome {
  const started = process.hrtime.bigint();
  const runs: ReplayItem[][] = [];
  for (const item of items) {
    const run = runs.at(-1);
    if (item.preState !== undefined || !run) runs.push([item]);
    else run.push(item);
  }
  let verified = 0;
  let finalState: Uint8Array | undefined;
  for (const run of runs) {
    const r = replayRun(target, run, onTick);
    verified += r.verified;
    if (r.failure) {
      return { verified, failure: { tick: r.failure.tick, error: r.failure.error.toJSON() }, durationNs: process.hrtime.bigint() - started };
    }
    finalState = r.finalState;
  }
  return { verified, failure: null, durationNs: process.hrtime.bigint() - started, ...(finalState ? { finalState } : {}) };
}

function replayRun(target: ReplayTarget, run: readonly ReplayItem[], onTick?: (tick: bigint) => void): RunResult {
  const first = run[0] as ReplayItem;
  let finalState: Uint8Array | undefined;
  let tick = first.tick;
  let done = 0;
  let inst: ReplayInstance | null = null;
  try {
    if (first.preState === undefined) throw new IgordError(ErrorCode.ReplayLogExhausted, "a replay chain must start from a state");
    onTick?.(first.tick);
    // A pooled instance reset to its post-agent_init image, or a fresh one: the same state either way.
    inst = acquireReplayInstance(target, INIT_SOURCE);
    const { sandbox, io } = inst;
    sandbox.resume(first.preState);
    const last = run.length - 1;
    for (let i = 0; i <= last; i++) {
      const item = run[i] as ReplayItem;
      tick = item.tick;
      onTick?.(item.tick);
      io.budget = item.budget;
      io.price = item.price;
      const replaySource = new ReplaySource(item.entries, item.tick);
      io.source = replaySource;
      sandbox.tick();
      replaySource.finish();
      io.source = INIT_SOURCE;
      if (i === last) {
        finalState = sandbox.captureState();
        checkState(item, finalState);
      } else if (item.expectedPost || item.expectedPostHash) {
        // A view of guest memory, read before any guest code runs again.
        checkState(item, sandbox.stateView());
      }
      done = i + 1;
    }
    releaseReplayInstance(inst, true);
    return { verified: run.length, failure: null, ...(finalState ? { finalState } : {}) };
  } catch (e) {
    if (inst) releaseReplayInstance(inst, false);
    const err = e instanceof IgordError ? e : new IgordError(ErrorCode.AgentTrap, (e as Error).message);
    return { verified: done, failure: { tick, error: err } };
  }
}

function checkState(item: ReplayItem, post: Uint8Array): void {
  if (item.expectedPost) {
    if (!equalBytes(post, item.expectedPost)) throw stateMismatch(item.tick, sha256(post), sha256(item.expectedPost));
  } else if (item.expectedPostHash) {
    const got = sha256(post);
    if (!equalBytes(got, item.expectedPostHash)) throw stateMismatch(item.tick, got, item.expectedPostHash);
  }
}

function stateMismatch(tick: bigint, got: Uint8Array, expected: Uint8Array): IgordError {
  return new IgordError(
    ErrorCode.ReplayStateMismatch,
    `tick ${tick}: replayed state hash ${hex(got).slice(0, 16)}… differs from the recorded ${hex(expected).slice(0, 16)}…`,
    { details: { tick: String(tick), expected: hex(expected), got: hex(got) } },
  );
}
