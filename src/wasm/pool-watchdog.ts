// The worker pool's watchdog: placement and worker health. Every period it reads each worker's
// control block (which placement runs guest code, since when, in which phase) and decides:
// - a tick (or a replay, counted from its first tick) running past the stall threshold gets its
//   worker's other agents moved elsewhere, so they keep their cadence;
// - guest code past the tick timeout (or a live tick past its manifest's max_cpu_millis) gets its
//   worker terminated and its agent failed with the reason;
// - once no worker is stalled, agents are spread evenly again and surplus workers retired.
// It changes nothing itself but the workers' stalled flags and the slots' rebalance marks: every
// move, failure and termination goes through the pool (WatchedPool), which owns the rest.
import type { Logger } from "pino";
import { ErrorCode, IgordError } from "../errors.js";
import { phaseName, runningPlacement, type Slot, type WorkerHandle } from "./pool-state.js";
import { Ctl } from "./worker-protocol.js";

/** The watchdog looks at every worker's control block this often (at most; less for short stalls). */
export const WATCHDOG_INTERVAL_MS = 50;
/**
 * A tick running longer than a quarter of the tick interval, clamped to [MIN, MAX], gets its
 * worker's other agents moved elsewhere, so that they lose at most a fraction of one interval.
 */
export const STALL_EVACUATE_MIN_MS = 20;
export const STALL_EVACUATE_MAX_MS = 200;
/** Agents move to even out the workers once the busiest holds this many more than half the gap. */
export const REBALANCE_MIN_EXCESS = 1;

/** Phases of a live tick (the tick's own limit applies to them; loads and replays have the tick timeout). */
const LIVE_TICK_PHASES = new Set(["agent_tick", "agent_checkpoint", "agent_checkpoint_ptr", "http_request"]);

export function stallThresholdMs(tickIntervalMs: number, tickTimeoutMs: number): number {
  const byInterval = Math.max(
    STALL_EVACUATE_MIN_MS,
    Math.min(STALL_EVACUATE_MAX_MS, Math.floor(tickIntervalMs / 4)),
  );
  return Math.min(byInterval, Math.floor(tickTimeoutMs / 2));
}

/** What the watchdog reads of the pool and the actions it asks of it. */
export interface WatchedPool {
  /** Every worker the pool holds (the watchdog iterates a copy: its actions may change the list). */
  readonly workers: readonly WorkerHandle[];
  /** The workers new agents can go to: not stalled, not dedicated, not dead. */
  live(): WorkerHandle[];
  slotAt(placement: number): Slot | undefined;
  /** Re-instantiates the agent at `placement` on another worker (reported as an evacuation). */
  evacuate(placement: number): void;
  /** Moves a ready agent with no tick in flight to the least loaded worker. */
  move(slot: Slot): void;
  /** Terminates `h`, fails its running agent with `cause`, and moves every other agent off it. */
  retire(h: WorkerHandle, cause?: { agentId: string; error: IgordError }): void;
  fail(slot: Slot, error: IgordError): void;
  /** Ends `h`, which holds no agent and runs no guest code. */
  terminateIdle(h: WorkerHandle): void;
  /** Ends a dedicated worker whose agent left, unless it still runs guest code. */
  releaseDedicated(h: WorkerHandle): void;
}

export interface WatchdogOptions {
  /** Shared workers the pool keeps (a surplus spawned during a stall is retired once idle). */
  size: number;
  tickTimeoutMs: number;
  stallMs: number;
  logger: Logger;
}

export class PoolWatchdog {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pool: WatchedPool,
    private readonly opts: WatchdogOptions,
  ) {}

  start(): void {
    const period = Math.max(5, Math.min(WATCHDOG_INTERVAL_MS, Math.floor(this.opts.stallMs / 2)));
    this.timer = setInterval(() => this.inspect(), period);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Evacuates neighbours of a stalled tick, terminates a worker past the tick timeout. */
  inspect(): void {
    const now = process.hrtime.bigint();
    for (const h of [...this.pool.workers]) {
      if (h.dead) continue;
      const current = runningPlacement(h);
      if (current < 0) {
        this.pool.releaseDedicated(h);
        if (h.stalled) {
          h.stalled = false;
          this.opts.logger.info({ event: "worker_recovered", worker: h.id }, "stalled worker finished its tick");
        }
        continue;
      }
      const elapsedMs = Number(now - Atomics.load(h.ctl, Ctl.startedNs)) / 1e6;
      // A replay holds its worker for all its ticks, each under the tick timeout on its own: the
      // worker's other agents have waited since the replay began.
      const replaySince = Atomics.load(h.ctl, Ctl.replayStartedNs);
      const busyMs = replaySince > 0n ? Number(now - replaySince) / 1e6 : elapsedMs;
      const running = this.pool.slotAt(current);
      // The manifest's per-tick limit bounds live ticks; a load (its capture included) has the tick timeout.
      const limit = running?.ready && running.inFlight ? running.spec.tickLimitMs : null;
      if (limit != null && elapsedMs > limit && LIVE_TICK_PHASES.has(phaseName(h))) {
        this.killOverLimit(h, current, elapsedMs, limit);
      } else if (elapsedMs > this.opts.tickTimeoutMs) {
        this.killForTimeout(h, current, elapsedMs);
      } else if (busyMs > this.opts.stallMs && !h.stalled && !h.dedicated) {
        h.stalled = true;
        Atomics.add(h.ctl, Ctl.generation, 1n);
        this.opts.logger.warn(
          { event: "worker_stalled", worker: h.id, agent: running?.spec.agentId, elapsedMs: Math.round(busyMs) },
          "a tick is running long; moving the worker's other agents",
        );
        for (const p of [...h.placements]) if (p !== current) this.pool.evacuate(p);
      }
    }
    this.trimSurplus();
    this.rebalance();
  }

  /**
   * Spreads agents again once no worker is stalled: a stall moves a worker's agents to the others,
   * and without this they stayed there after it recovered (one worker running ticks for two, the
   * other idle). The busiest worker gives agents to the least busy; an agent moves between two of
   * its ticks (at once when none is in flight, else when its tick in flight returns), from its
   * committed state, so no tick runs twice or on two workers.
   */
  private rebalance(): void {
    const shared = this.pool.workers.filter((w) => !w.dead && !w.dedicated);
    if (shared.length < 2 || shared.some((w) => w.stalled)) return;
    let most = shared[0] as WorkerHandle;
    let least = most;
    for (const h of shared) {
      if (h.placements.size > most.placements.size) most = h;
      if (h.placements.size < least.placements.size) least = h;
    }
    // A worker spawned while all the others were stalled is surplus now: its agents go back to the
    // others, and trimSurplus() retires it once it is empty.
    if (shared.length > this.opts.size) {
      for (const p of [...least.placements]) this.moveBetweenTicks(p);
      return;
    }
    // A worker still starting would hold the moved agents' loads (and so their next ticks) until it
    // listens: they move once it does.
    if (Atomics.load(least.ctl, Ctl.booted) === 0n) return;
    let excess = Math.floor((most.placements.size - least.placements.size) / 2);
    if (excess < REBALANCE_MIN_EXCESS) return;
    for (const p of [...most.placements]) {
      if (excess === 0) break;
      if (this.moveBetweenTicks(p)) excess--;
    }
  }

  /** Moves the agent now if no tick of it is in flight, else when that tick returns. False: not ready. */
  private moveBetweenTicks(placement: number): boolean {
    const slot = this.pool.slotAt(placement);
    if (!slot?.ready) return false;
    if (slot.inFlight || slot.queued) slot.rebalance = true;
    else this.pool.move(slot);
    return true;
  }

  /** Workers spawned while others were stalled are surplus once those recover: retire idle ones. */
  private trimSurplus(): void {
    const live = this.pool.live();
    for (const h of live) {
      if (live.length <= this.opts.size) return;
      if (h.placements.size === 0 && runningPlacement(h) < 0) {
        this.pool.terminateIdle(h);
        live.splice(live.indexOf(h), 1);
      }
    }
  }

  /** Terminates a worker whose guest code overran, and fails the agent it was running with `error`. */
  private kill(h: WorkerHandle, current: number, error: (slot: Slot, phase: string) => IgordError): void {
    const slot = this.pool.slotAt(current);
    const err = slot ? error(slot, phaseName(h)) : null;
    // The agent's replays fail with the reason too (an audit says why it stopped), not as a crash.
    this.pool.retire(h, slot && err ? { agentId: slot.spec.agentId, error: err } : undefined);
    if (slot && err) this.pool.fail(slot, err);
  }

  private killForTimeout(h: WorkerHandle, current: number, elapsedMs: number): void {
    const timeoutMs = this.opts.tickTimeoutMs;
    this.kill(h, current, (slot, phase) => new IgordError(
      ErrorCode.TickTimeout,
      `agent "${slot.spec.agentId}" ran ${Math.round(elapsedMs)}ms in ${phase}, past the ${timeoutMs}ms tick timeout; its worker was terminated`,
      { details: { timeoutMs, phase } },
    ));
  }

  /** A tick past its agent's own max_cpu_millis: the worker goes, the agent fails (TICK_CPU_EXCEEDED). */
  private killOverLimit(h: WorkerHandle, current: number, elapsedMs: number, limitMs: number): void {
    this.kill(h, current, (slot) => {
      const tick = slot.inFlight?.tick;
      return new IgordError(ErrorCode.TickCpuExceeded, `tick ${tick ?? "?"} ran ${Math.round(elapsedMs)} ms, over the manifest's max_cpu_millis of ${limitMs} (stopped by the watchdog)`, {
        details: { tick: tick === undefined ? null : String(tick), elapsedMs: String(Math.round(elapsedMs)), limit: String(limitMs) },
      });
    });
  }
}
