// The replay engine: re-executes recorded ticks in a fresh sandbox from the cached compiled module
// and checks that they reproduce. Each item either starts a new instance from a pre-tick state
// (window snapshots, verified one by one) or continues the previous one (a chain: N consecutive ticks
// in one instance, as audit replay does). Runs wherever a sandbox can run: a worker thread for
// deadline-bound replay of live agents, or in-process for tests.
import { createHash } from "node:crypto";
import type { Observation, ObservationCheck, ObservationSource } from "../eventlog/recorder.js";
import type { LogEntry } from "../eventlog/tick-log.js";
import { ErrorCode, IgordError, type SerializedError } from "../errors.js";
import type { ImportPlan } from "../hostcalls/policy.js";
import { AgentSandbox } from "../wasm/sandbox.js";
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

const NO_WORLD = {
  nowNs: (): bigint => {
    throw new Error("replay must not read the clock");
  },
  randomFill: (): void => {
    throw new Error("replay must not read entropy");
  },
};

/**
 * During agent_init of a replay instance: observations are answered with zeros of the right shape.
 * The state init builds is replaced by agent_resume, so nothing it observed can matter.
 */
const INIT_SOURCE: ObservationSource = {
  observe: (_id, _live, check) => {
    const eight = { result: 0, payload: new Uint8Array(8) };
    return check?.(eight) ? { result: 0, payload: new Uint8Array(0) } : eight;
  },
};

function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(b).digest());
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/**
 * Replays items in order; stops at the first that does not reproduce. `onTick(tick)` is called as
 * each tick starts (the worker publishes it for its watchdog).
 */
export function replay(target: ReplayTarget, items: readonly ReplayItem[], onTick?: (tick: bigint) => void): ReplayOutcome {
  const started = process.hrtime.bigint();
  let current: ReplaySource | null = null;
  let tickBudget = 0n;
  let tickPrice = 0n;
  // One source per tick, swapped under a stable facade so a chained instance keeps its imports.
  const source: ObservationSource = {
    observe: (id: number, live: () => Observation, check?: ObservationCheck) => {
      if (!current) throw new IgordError(ErrorCode.ReplayLogExhausted, "hostcall outside a replayed tick");
      return current.observe(id, live, check);
    },
  };
  let sandbox: AgentSandbox | null = null;
  let verified = 0;
  let finalState: Uint8Array | undefined;
  for (const item of items) {
    onTick?.(item.tick);
    try {
      if (item.preState !== undefined || sandbox === null) {
        if (item.preState === undefined) throw new IgordError(ErrorCode.ReplayLogExhausted, "a replay chain must start from a state");
        current = INIT_SOURCE as unknown as ReplaySource; // what init observes is overwritten by resume
        sandbox = AgentSandbox.instantiate({
          module: target.module,
          plan: target.plan,
          memoryCapPages: target.memoryCapPages,
          context: { source, budget: () => tickBudget, price: () => tickPrice, world: NO_WORLD },
        });
        sandbox.init();
        sandbox.resume(item.preState);
      }
      tickBudget = item.budget;
      tickPrice = item.price;
      current = new ReplaySource(item.entries, item.tick);
      sandbox.tick();
      current.finish();
      const post = sandbox.captureState();
      finalState = post;
      if (item.expectedPostHash) {
        const got = sha256(post);
        if (hex(got) !== hex(item.expectedPostHash)) {
          throw new IgordError(
            ErrorCode.ReplayStateMismatch,
            `tick ${item.tick}: replayed state hash ${hex(got).slice(0, 16)}… differs from the recorded ${hex(item.expectedPostHash).slice(0, 16)}…`,
            { details: { tick: String(item.tick), expected: hex(item.expectedPostHash), got: hex(got) } },
          );
        }
      }
      verified++;
    } catch (e) {
      const err = e instanceof IgordError ? e : new IgordError(ErrorCode.AgentTrap, (e as Error).message);
      return { verified, failure: { tick: item.tick, error: err.toJSON() }, durationNs: process.hrtime.bigint() - started };
    } finally {
      current = null;
    }
  }
  return { verified, failure: null, durationNs: process.hrtime.bigint() - started, ...(finalState ? { finalState } : {}) };
}
