// The worker pool's private state, shared by its two halves: the pool (wasm/pool.ts: loading,
// dispatching ticks, taking results, replays, moving agents) and its watchdog
// (wasm/pool-watchdog.ts: stalls, overruns, rebalancing, surplus workers), which decides from this
// state and acts only through the pool's methods (WatchedPool).
import type { Worker } from "node:worker_threads";
import type { IgordError } from "../errors.js";
import type { LogEntry } from "../eventlog/tick-log.js";
import type { ReplayOutcome } from "../replay/engine.js";
import type { AgentSpec, TickRequest } from "./pool.js";
import { Ctl, GUEST_PHASES } from "./worker-protocol.js";

export interface WorkerHandle {
  id: number;
  worker: Worker;
  ctl: BigInt64Array;
  placements: Set<number>;
  stalled: boolean;
  dead: boolean;
  /**
   * Hosts one agent whose ticks wait on the network (http_request): a slow server then holds only
   * that agent's thread, never another agent's tick. Not part of the shared pool.
   */
  dedicated: boolean;
  replays: Map<number, { agentId: string; resolve: (o: ReplayOutcome) => void; reject: (e: IgordError) => void }>;
}

/** The first load of an agent: place() waits on it. */
export interface Placing {
  resolve: (r: { state: Uint8Array; events: LogEntry[] }) => void;
  reject: (e: IgordError) => void;
}

export interface Slot {
  spec: AgentSpec;
  placement: number;
  worker: WorkerHandle;
  /** Last committed state: what the agent resumes from if it has to move. */
  state: Uint8Array;
  budget: bigint;
  price: bigint;
  ready: boolean;
  /** While not ready: the state being loaded (null = fresh, init only). */
  loadFrom: Uint8Array | null;
  /** Set until the first load settles. */
  placing: Placing | null;
  /** The worker a running agent is being moved off (reported once the move is done). */
  movedFrom: number | null;
  inFlight: TickRequest | null;
  queued: TickRequest | null;
  /** A tick may have run after `state` without being committed: told to the next instance's first tick. */
  interrupted: boolean;
  /** Check the replay rule at the first load (not for a state the agent checkpointed running here). */
  checkResume: boolean;
  /** The state was checkpointed by an older module (LoadRequest.stateOfOlderModule). */
  stateOfOlderModule: boolean;
  /** To move to a less loaded worker as soon as no tick of it is in flight (rebalance()). */
  rebalance: boolean;
  /** Only replayed on, never ticked (LoadRequest.replayOnly). */
  replayOnly: boolean;
}

/** The placement whose guest code the worker runs now, or -1. */
export function runningPlacement(h: WorkerHandle): number {
  return Number(Atomics.load(h.ctl, Ctl.current));
}

/** What the agent was doing when its worker had to go (named in the error). */
export function phaseName(h: WorkerHandle): string {
  return GUEST_PHASES[Number(Atomics.load(h.ctl, Ctl.phase))] ?? "agent_tick";
}
