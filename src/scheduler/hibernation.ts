// Hibernation (after Durable Objects hibernation and Orleans grain deactivation): an agent whose
// next tick is further away than --hibernate-after leaves its worker, the instance is dropped and
// its memory freed, and it is placed again from its committed state just before that tick is
// dispatched. Placing it again is exactly what a restart or an evacuation does (agent_resume from
// the committed state, under the watchdog like every guest call). Its tick count, budget, lease,
// replay window and pending event logs stay with the scheduler on the main thread. So the event
// log, the lineage and every replay are the same as if it had stayed loaded, and the agent sees
// nothing it would not see after a resume from a checkpoint.
import type { IgordError } from "../errors.js";
import type { WorkerPool } from "../wasm/pool.js";
import type { AgentRuntime } from "./agent-runtime.js";
import { wallTimeOf } from "./clock.js";

/** How often agents are looked at for hibernation (at most; a quarter of --hibernate-after when shorter). */
export const HIBERNATE_SWEEP_MAX_MS = 1000;
/** Lower bound of the sweep period, so a tiny --hibernate-after does not spin. */
export const HIBERNATE_SWEEP_MIN_MS = 10;

export class Hibernation {
  constructor(
    /** --hibernate-after; 0 = never. */
    private readonly afterMs: number,
    private readonly pool: WorkerPool,
  ) {}

  /** How often to look for agents to hibernate; null when hibernation is off. */
  sweepIntervalMs(): number | null {
    if (this.afterMs <= 0) return null;
    return Math.max(HIBERNATE_SWEEP_MIN_MS, Math.min(HIBERNATE_SWEEP_MAX_MS, Math.floor(this.afterMs / 4)));
  }

  /**
   * Whether the agent may leave its worker now: running, idle (no tick in flight, no replay running
   * on its worker, not being handed off) and its next tick further away than --hibernate-after.
   */
  /** `nowMs`: the scheduler's monotonic clock (clock.ts), which its due times are on. */
  eligible(a: AgentRuntime, nowMs: number): boolean {
    return (
      this.afterMs > 0 &&
      a.status === "running" &&
      !a.hibernated &&
      !a.inFlight &&
      !a.verifying &&
      !a.detaching &&
      a.nextDueAt !== null &&
      a.nextDueAt - nowMs > this.afterMs
    );
  }

  hibernate(a: AgentRuntime): void {
    // Resumed after an interruption and not yet ticked: the instance that wakes must still say so
    // (resume_interrupted), or the agent would take an interrupted run for a clean one.
    a.wakeInterrupted = this.pool.interrupted(a.id);
    this.pool.unload(a.id);
    a.hibernated = true;
    a.logger.debug({ event: "agent_hibernated", tick: String(a.tick), nextTickAt: a.nextDueAt === null ? null : wallTimeOf(a.nextDueAt) }, "agent left its worker until its next tick");
  }

  /**
   * Places the agent again from its committed state. The tick dispatched right after waits in the
   * pool until the load is done; a load that fails (a trap, or the watchdog past the tick timeout)
   * reaches `failed`, which fails the agent like any failed tick.
   */
  wake(a: AgentRuntime, failed: (error: IgordError) => void): void {
    a.hibernated = false;
    const interrupted = a.wakeInterrupted;
    a.wakeInterrupted = false;
    // Its own committed state: the replay rule was checked when it first loaded, as for an evacuation.
    this.pool.place(a.spec, { state: a.state, budget: a.budget, price: a.price, interrupted, checkResume: false }).then(
      () => a.logger.debug({ event: "agent_woke", tick: String(a.tick) }, "agent back on a worker"),
      (e: unknown) => failed(e as IgordError),
    );
  }
}
