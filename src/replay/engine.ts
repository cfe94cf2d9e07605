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
 * (a run starts at an item with a pre-state and continues in one instance). Live self-verification
 * (expected hashes from this node's own memory) compares only a run's final state, and re-runs it
 * tick by tick to name the first divergent tick only when that differs; `strict` replay (evidence
 * read from storage or received from a peer) compares every tick. Hostcall mismatches are caught at their tick either way.
 * `onTick(tick)` is called as each tick starts (the worker publishes it for its watchdog).
 */
export function replay(
  target: ReplayTarget,
  items: readonly ReplayItem[],
  onTick?: (tick: bigint) => void,
  /** Compare every tick's state: for recorded evidence from storage or another node. */
  strict = false,
): ReplayOutcome {
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
    let r = replayRun(target, run, strict, onTick);
    if (!strict && r.failure?.error.code === ErrorCode.ReplayStateMismatch && run.length > 1) r = replayRun(target, run, true, onTick);
    verified += r.verified;
    if (r.failure) {
      return { verified, failure: { tick: r.failure.tick, error: r.failure.error.toJSON() }, durationNs: process.hrtime.bigint() - started };
    }
    finalState = r.finalState;
  }
  return { verified, failure: null, durationNs: process.hrtime.bigint() - started, ...(finalState ? { finalState } : {}) };
}

function replayRun(target: ReplayTarget, run: readonly ReplayItem[], checkEveryTick: boolean, onTick?: (tick: bigint) => void): RunResult {
  const first = run[0] as ReplayItem;
  let verified = 0;
  let finalState: Uint8Array | undefined;
  let tick = first.tick;
  let inst: ReplayInstance | null = null;
  try {
    if (first.preState === undefined) throw new IgordError(ErrorCode.ReplayLogExhausted, "a replay chain must start from a state");
    onTick?.(first.tick);
    // A pooled instance reset to its post-agent_init image, or a fresh one: the same state either way.
    inst = acquireReplayInstance(target, INIT_SOURCE);
    const { sandbox, io } = inst;
    sandbox.resume(first.preState);
    for (let i = 0; i < run.length; i++) {
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
      const last = i === run.length - 1;
      if (last || checkEveryTick) {
        const post = sandbox.captureState();
        checkState(item, post);
        if (last) finalState = post;
      }
      verified = checkEveryTick || last ? i + 1 : verified;
    }
    releaseReplayInstance(inst, true);
    return { verified: run.length, failure: null, ...(finalState ? { finalState } : {}) };
  } catch (e) {
    if (inst) releaseReplayInstance(inst, false);
    const err = e instanceof IgordError ? e : new IgordError(ErrorCode.AgentTrap, (e as Error).message);
    // Without per-tick checks, ticks before a hostcall mismatch are known good only up to it.
    const good = err.code === ErrorCode.ReplayStateMismatch ? verified : run.findIndex((it) => it.tick === tick);
    return { verified: Math.max(0, good), failure: { tick, error: err } };
  }
}

/** The replayed state against the item's expected state (bytes) or, lacking it, its hash. */
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
