// The one scheduler that ticks every agent of the node: normal cadence, fast cadence while an agent
// reports more work, metering of each committed tick, and checkpoints at exhaustion, failure and
// shutdown. Ticks run in the worker pool; a tick commits here, when its result arrives.
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import { TickMeter } from "../budget/meter.js";
import { MAX_TICK } from "../checkpoint/codec.js";
import { paymentsIn } from "../hostcalls/wallet-pay.js";
import { debitAbandonedRun, debitThrownAwayRun } from "./thrown-away-runs.js";
import { ErrorCode, IgordError } from "../errors.js";
import type { NodeMetrics } from "../metrics/metrics.js";
import type { CheckpointCommit, AgentStatus as StoredStatus } from "../store/sqlite-store.js";
import { type Checkpointer, type CheckpointSubject, type HTTP_ACT_CHECKPOINT_REASON, type PAYMENT_CHECKPOINT_REASON } from "./checkpointer.js";
import type { AgentSpec, PoolTickResult, TickRequest, WorkerPool } from "../wasm/pool.js";
import { canTick, type Lease } from "../authority/lease.js";
import type { ReplayItem } from "../replay/engine.js";
import { keepsWindow } from "../replay/policy.js";
import { ReplayWindow } from "../replay/window.js";
import {
  type AgentInit,
  type AgentMeta,
  type AgentRuntime,
  type AgentStatus,
  type AgentView,
  type CheckpointEvent,
  type DivergenceEvent,
  type LeaseOptions,
  reasonFor,
  type ReplayOptions,
  type TickEvent,
  viewOf,
} from "./agent-runtime.js";
import { DueQueue, NOT_IN_LANE } from "./due-queue.js";
import { monoNow } from "./clock.js";
import { Hibernation } from "./hibernation.js";
import { LeaseFence } from "./lease-fence.js";
import { Verifier } from "./verifier.js";
import { emitAgentLogs, queueOutputs } from "./agent-outputs.js";
import { CheckpointRequests } from "./checkpoint-requests.js";

export type { AgentInit, AgentMeta, AgentStatus, AgentView, CheckpointEvent, DivergenceEvent, LeaseOptions, ReplayOptions, TickEvent } from "./agent-runtime.js";
export { LEASE_SWEEP_MAX_MS } from "./lease-fence.js";

/**
 * Observation bytes of an agent's ticks since its last checkpoint past which it is checkpointed at
 * once, not at the next --checkpoint-interval: they are held on the main thread until a checkpoint
 * writes them (its event-log segment), and a tick may record MAX_TICK_EVENT_BYTES. An agent that did
 * that every tick made the node hold ~0.5 GB before a 5 s checkpoint and encode it in one go.
 */
export const MAX_UNCHECKPOINTED_LOG_BYTES = 64 * 1024 * 1024;
/** Due times within this many ms of now are dispatched in the same round. */
export const DISPATCH_SLACK_MS = 1;
/** After the tick timeout, how long shutdown waits for the watchdog to reap a hung tick. */
export const SHUTDOWN_GRACE_MS = 1000;

export interface SchedulerOptions {
  leases?: LeaseOptions;
  /** The migrate divergence policy hands the agent here (the node's migration service), if any. */
  migrateAway?: () => ((agentId: string) => void) | null;
  replay?: ReplayOptions;
  /** Keep every tick's event log until the next checkpoint stores it (for audit replay). */
  persistEventLogs?: boolean;
  pool: WorkerPool;
  checkpointer: Checkpointer;
  checkpointIntervalMs: number;
  logger: Logger;
  metrics?: NodeMetrics;
  tickIntervalMs: number;
  fastTickIntervalMs: number;
  tickTimeoutMs: number;
  /** --hibernate-after: agents whose next tick is further away leave their worker (absent or 0: never). */
  hibernateAfterMs?: number;
}

/**
 * A tick that ran longer than the manifest's max_cpu_millis is not committed (the agent fails). The
 * time is the tick's execution time in its worker, as metered for the budget: Node 20 has no
 * per-thread CPU clock, so time the thread waited for a core counts too.
 */
function overCpu(a: AgentRuntime, r: Extract<PoolTickResult, { status: "ok" }>): IgordError | null {
  const max = a.meta.limits?.maxCpuMillis;
  if (max == null || r.elapsedNs <= max * 1_000_000n) return null;
  const ms = r.elapsedNs / 1_000_000n;
  return new IgordError(ErrorCode.TickCpuExceeded, `tick ${r.tick} ran ${ms} ms, over the manifest's max_cpu_millis of ${max}`, {
    details: { tick: String(r.tick), elapsedMs: String(ms), limit: String(max) },
  });
}

/** An agent at MAX_TICK: the next tick could not be stored. */
function tickLimit(tick: bigint): IgordError {
  return new IgordError(ErrorCode.TickLimit, `the agent is at tick ${tick}, the largest a node stores (a signed 64-bit integer): it runs no further tick`, {
    details: { tick: String(tick) },
  });
}

export class Scheduler extends EventEmitter<{
  tick: [TickEvent];
  stopped: [AgentView];
  checkpoint: [CheckpointEvent];
  verified: [{ agentId: string; ticks: bigint[]; durationNs: bigint }];
  divergence: [DivergenceEvent];
}> {
  private readonly agents = new Map<string, AgentRuntime>();
  private readonly queue = new DueQueue<AgentRuntime>();
  private timer: NodeJS.Timeout | null = null;
  private timerDue = Number.POSITIVE_INFINITY;
  private immediate: NodeJS.Immediate | null = null;
  private stopping = false;
  private idleWaiters: (() => void)[] = [];
  private readonly checkpoints: CheckpointRequests;
  /** Agents handed off from here before a tick told them their last run was interrupted (handedOffUntold). */
  private readonly untoldHandoffs = new Set<string>();
  private readonly checkpointTimer: NodeJS.Timeout | null;
  private readonly leaseTimer: NodeJS.Timeout | null;
  private readonly hibernateTimer: NodeJS.Timeout | null;
  private readonly hibernation: Hibernation;
  private readonly fence: LeaseFence;
  private readonly verifier: Verifier;

  constructor(private readonly opts: SchedulerOptions) {
    super();
    this.checkpoints = new CheckpointRequests(opts.checkpointer, opts.persistEventLogs === true, opts.metrics, {
      outcome: (e) => this.emit("checkpoint", e),
      here: (a) => this.agents.get(a.id) === a,
      failed: (a, err) => {
        if (a.status === "running") this.finish(a, "failed", reasonFor(err), err);
      },
    });
    opts.pool.on("result", (r) => this.onResult(r));
    // A worker message's successful ticks arrive together: one call per batch, not an event per tick.
    // Each carries the agent's record it was dispatched for (TickRequest.owner): no lookup by id.
    opts.pool.on("results", (rs) => {
      for (const r of rs) this.onResult(r, r.status === "ok" ? (r.owner as AgentRuntime | undefined) : undefined);
    });
    opts.pool.on("lost", ({ agentId, error }) => this.onLost(agentId, error));
    opts.pool.on("abandoned", ({ agentId, tick }) => {
      const a = this.agents.get(agentId);
      if (a?.status !== "running") return;
      debitAbandonedRun(a, tick, this.opts.checkpointer);
      // The re-run starts from the budget without them.
      this.opts.pool.rebudget(a.id, a.budget);
    });
    // Periodic checkpoints of every agent in one pass: the store group-commits them together.
    this.checkpointTimer = opts.checkpointIntervalMs > 0 ? setInterval(() => this.checkpointAll("periodic"), opts.checkpointIntervalMs) : null;
    this.checkpointTimer?.unref();
    this.verifier = new Verifier(opts.pool, opts.replay, opts.metrics, {
      verified: (e) => this.emit("verified", e),
      divergence: (e) => this.emit("divergence", e),
      pause: (a, reason, error) => this.finish(a, "stopped", reason, error),
      migrateAway: () => opts.migrateAway?.() ?? null,
    });
    this.fence = new LeaseFence(opts.leases, opts.metrics, { finish: (a, status, reason, error) => this.finish(a, status, reason, error) });
    const sweepMs = this.fence.sweepIntervalMs();
    this.leaseTimer = sweepMs !== null ? setInterval(() => this.sweepLeases(), sweepMs) : null;
    this.leaseTimer?.unref();
    this.hibernation = new Hibernation(opts.hibernateAfterMs ?? 0, opts.pool);
    const hibernateMs = this.hibernation.sweepIntervalMs();
    this.hibernateTimer = hibernateMs !== null ? setInterval(() => this.sweepHibernation(), hibernateMs) : null;
    this.hibernateTimer?.unref();
    opts.pool.on("evacuated", (e) => {
      opts.metrics?.evacuations.inc();
      this.agents
        .get(e.agentId)
        ?.logger.info(
          { event: "agent_evacuated", from: e.fromWorker, to: e.toWorker },
          "agent moved to another worker",
        );
    });
  }

  has(id: string): boolean {
    return this.agents.has(id);
  }

  /** Instantiates the agent in the pool and starts ticking it. Throws IgordError if it cannot load. */
  async add(
    spec: AgentSpec,
    meta: AgentMeta,
    init: AgentInit,
    /** For a fresh agent: persists it with its initial state (genesis) before its first tick. */
    onFresh?: (subject: CheckpointSubject) => void,
  ): Promise<AgentView> {
    const logger = this.opts.logger.child({ agent: spec.agentId, did: meta.did });
    const place = () => this.opts.pool.place(spec, { state: init.state, budget: init.budget, price: init.price, interrupted: init.interrupted ?? false, stateOfOlderModule: init.stateOfOlderModule ?? false });
    let placed = await (init.placed ?? place());
    // Placed ahead and lost with its worker before this took it over: placed again, as if not ahead.
    if (init.placed && !this.opts.pool.has(spec.agentId)) placed = await place();
    if (init.state === null && onFresh) {
      try {
        onFresh({
          ...(init.lease ? { lease: init.lease } : {}),
          agentId: spec.agentId,
          tick: init.tick,
          budget: init.budget,
          price: init.price,
          state: placed.state,
          wasmHash: meta.wasmHash,
          identity: meta.identity,
        });
      } catch (e) {
        this.opts.pool.unload(spec.agentId);
        throw e;
      }
    }
    const a: AgentRuntime = {
      id: spec.agentId,
      meta,
      spec,
      hibernated: false,
      wakeInterrupted: false,
      status: "running",
      reason: null,
      error: null,
      tick: init.tick,
      budget: init.budget,
      startBudget: init.budget,
      spent: 0n,
      price: init.price,
      meter: new TickMeter(),
      state: placed.state,
      more: false,
      inFlight: false,
      inFlightAuthorityUntil: null,
      lastTickAt: null,
      nextDueAt: null,
      lastTickNs: 0n,
      ticksThisRun: 0,
      lastEvents: placed.events,
      logger,
      window: new ReplayWindow(keepsWindow(this.verifier.replay.mode) ? this.verifier.replay.window : 0),
      sinceVerify: 0,
      intensifyLeft: 0,
      verifying: false,
      replayVerified: 0,
      divergences: 0,
      pendingLogs: [],
      pendingLogBytes: 0,
      lease: init.lease ?? null,
      detaching: false,
      onIdle: null,
      pendingOutbox: [],
      dueEntry: null,
      dueLane: NOT_IN_LANE,
      tickTally: null,
      // In the literal (not added when held): every agent record keeps one shape on the tick path.
      held: false,
    };
    this.agents.set(a.id, a);
    this.untoldHandoffs.delete(a.id);
    if (init.heldUntil) this.hold(a, init.heldUntil, init.lastTickAt ?? null);
    if (init.state === null) emitAgentLogs(a, 0n, placed.events);
    logger.info(
      { event: "agent_started", tick: String(a.tick), budget: String(a.budget), fresh: init.state === null },
      init.state === null ? "agent started fresh" : `agent resumed at tick ${a.tick}`,
    );
    if (this.stopping) return this.view(a);
    if (a.budget <= 0n) {
      this.finish(a, "stopped", "budget_exhausted", null);
    } else {
      this.schedule(a, this.resumedDue(a, init.lastTickAt ?? null));
    }
    return this.view(a);
  }

  /** The agent's cadence: its manifest's tick_interval_ms, else the node's --tick-interval. */
  private intervalOf(a: AgentRuntime): number {
    return a.meta.tickIntervalMs ?? this.opts.tickIntervalMs;
  }

  /** The fast path never ticks an agent slower than its own cadence. */
  private fastIntervalOf(a: AgentRuntime): number {
    return Math.min(this.opts.fastTickIntervalMs, this.intervalOf(a));
  }

  /**
   * When an agent added (resumed, arrived, started) ticks first: an interval after its last tick
   * (`lastTickAt`, wall ms, from its head checkpoint), so restarts, stops and hops do not push its
   * cadence back; clamped to [now, now + interval], so a clock that differs on another node can
   * neither delay it past one interval nor make it tick at once twice. Unknown: an interval from now.
   */
  private resumedDue(a: AgentRuntime, lastTickAt: number | null): number {
    const interval = this.intervalOf(a);
    // lastTickAt is wall time (it may come from another node): the delay is taken on the wall clock.
    const delay = lastTickAt === null ? interval : Math.min(Math.max(lastTickAt + interval - Date.now(), 0), interval);
    return monoNow() + delay;
  }

  /** No tick of `a` until `until` resolves (its first when its cadence says, after); withdrawn if it rejects. */
  private hold(a: AgentRuntime, until: Promise<unknown>, lastTickAt: number | null): void {
    a.held = true;
    until.then(
      () => {
        a.held = false;
        if (this.agents.get(a.id) === a && a.status === "running" && !a.detaching && !this.stopping) this.schedule(a, this.resumedDue(a, lastTickAt));
      },
      () => {
        if (this.agents.get(a.id) !== a) return;
        // Never ticked (held since it was added): dropped without a checkpoint, its instance unloaded.
        this.queue.cancel(a);
        this.opts.pool.unload(a.id);
        a.status = "stopped";
        this.forget(a.id);
        a.logger.warn({ event: "agent_withdrawn" }, "agent withdrawn before its first tick: what it was held for failed");
      },
    );
  }

  private schedule(a: AgentRuntime, due: number): void {
    if (a.held) return;
    a.nextDueAt = due;
    this.queue.schedule(a, due);
    this.arm();
  }

  private arm(): void {
    if (this.stopping || this.immediate) return;
    const due = this.queue.peek();
    if (due === null) return;
    const delay = due - monoNow();
    if (delay <= 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.timerDue = Number.POSITIVE_INFINITY;
      this.immediate = setImmediate(() => this.runDue());
      return;
    }
    if (this.timer && this.timerDue <= due) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => this.runDue(), delay);
  }

  private runDue(): void {
    this.timer = null;
    this.immediate = null;
    this.timerDue = Number.POSITIVE_INFINITY;
    if (this.stopping) return;
    const reqs: TickRequest[] = [];
    // Due times are monotonic; leases are wall time.
    const wallNow = Date.now();
    for (const a of this.queue.popDue(monoNow() + DISPATCH_SLACK_MS)) {
      // Every agent leaving the map is cancelled first (finish, detach), so a popped record is current.
      if (a.status !== "running" || a.inFlight || a.detaching) continue;
      // The lease fences every tick, not just every sweep: past expiry + grace nothing is dispatched.
      if (!this.fence.check(a, wallNow)) continue;
      // A tick past the largest a node stores could never be committed (and its re-runs would act again).
      if (a.tick >= MAX_TICK) {
        this.fail(a, tickLimit(a.tick), a.tick);
        continue;
      }
      if (a.hibernated) this.hibernation.wake(a, (e) => this.wakeFailed(a, e));
      a.inFlight = true;
      a.inFlightAuthorityUntil = this.fence.authorityUntil(a);
      a.nextDueAt = null;
      reqs.push({ agentId: a.id, tick: a.tick + 1n, budget: a.budget, price: a.price, authority: this.fence.authority(a), authorityUntilMs: a.inFlightAuthorityUntil, owner: a });
    }
    if (reqs.length > 0) this.opts.pool.dispatch(reqs);
    this.arm();
  }

  /**
   * `dispatched`: the record the tick was dispatched for. A record that left the map (detached) or
   * was replaced has no tick in flight, so its late result is ignored below like any stale one.
   */
  private onResult(r: PoolTickResult, dispatched?: AgentRuntime): void {
    const a = dispatched ?? this.agents.get(r.agentId);
    if (!a) return;
    if (r.status === "error") {
      // The pool reports a failure only for the agent's live placement: it holds even with no tick
      // in flight (a hung replay, a failed reload), or the agent would stay "running" with nothing behind it.
      if (a.status !== "running") return;
      a.inFlight = false;
      // The failed run's payments (journalled) left the budget all the same.
      debitAbandonedRun(a, r.tick, this.opts.checkpointer);
      // WASI proc_exit(0) is a clean stop at the last committed tick; another code fails the agent.
      if (r.error.code === ErrorCode.AgentExit && r.error.details.exitCode === 0) this.finish(a, "stopped", reasonFor(r.error), null);
      else this.fail(a, r.error, r.tick);
    } else {
      if (!a.inFlight) return;
      a.inFlight = false;
      const overLimit = overCpu(a, r);
      if (overLimit) this.fail(a, overLimit, r.tick);
      else {
        // One clock read serves the lease check and the commit (once per tick on the main thread).
        // The check is against the authority the tick was dispatched with: the sweep may have renewed
        // the lease since, but the tick's side effects were refused past that authority (CE-4).
        const now = Date.now();
        if (a.inFlightAuthorityUntil !== null && now > a.inFlightAuthorityUntil) this.discard(a, r);
        else this.commit(a, r, now);
      }
    }
    this.afterResult(a);
  }

  /**
   * A tick that outlived the lease it was dispatched under is not this node's to commit (even if the
   * lease was renewed meanwhile: its side effects were refused past that lease): the worker's instance
   * is rewound to the committed state and the lease is settled (recovered at major + 1 after a plain
   * expiry) before the tick runs again.
   */
  private discard(a: AgentRuntime, r: Extract<PoolTickResult, { status: "ok" }>): void {
    a.logger.warn(
      { event: "tick_discarded", tick: String(r.tick), reason: "lease_lapsed", authorityUntil: a.inFlightAuthorityUntil, expiresAt: a.lease?.expiresAtMs },
      `tick ${r.tick} finished after the lease it was dispatched under lapsed; it is not committed and runs again under a valid lease`,
    );
    // What it paid (while it held the lease) left the budget all the same: debited now, written as
    // lost_payment events with the next checkpoint, and listed to the agent's re-run (wallet_receipt).
    debitThrownAwayRun(a, r.tick, paymentsIn(r.events).receipts, this.opts.checkpointer);
    this.opts.pool.rewind(a.id, a.state);
    if (!this.stopping && !a.detaching && this.fence.check(a, Date.now())) this.schedule(a, monoNow());
  }

  /** The pool dropped an agent while no tick of it was in flight. */
  private onLost(agentId: string, error: IgordError): void {
    const a = this.agents.get(agentId);
    if (a?.status !== "running") return;
    a.inFlight = false;
    this.fail(a, error, a.tick);
    this.afterResult(a);
  }

  private fail(a: AgentRuntime, error: IgordError, tick: bigint): void {
    this.opts.metrics?.failures.inc({ code: error.code });
    a.logger.error({ event: "agent_failed", tick: String(tick), code: error.code, details: error.details }, error.message);
    this.finish(a, "failed", reasonFor(error), error);
  }

  private afterResult(a: AgentRuntime): void {
    const idle = a.onIdle;
    a.onIdle = null;
    idle?.();
    if (this.idleWaiters.length > 0 && !this.anyInFlight()) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private commit(a: AgentRuntime, r: Extract<PoolTickResult, { status: "ok" }>, now: number): void {
    if (r.tick !== a.tick + 1n) {
      a.logger.error(
        { event: "tick_out_of_order", expected: String(a.tick + 1n), got: String(r.tick) },
        "discarding out-of-order tick",
      );
      return;
    }
    // Payments the tick made (wallet_pay) leave the budget first, exactly; execution is charged on
    // what is left. Both go into the node's receipts, which so add up to every unit that left.
    const paid = r.events.length > 0 ? paymentsIn(r.events).total : 0n;
    const afterPayments = paid === 0n ? a.budget : paid >= a.budget ? 0n : a.budget - paid;
    const charge = a.meter.charge(r.elapsedNs, a.price, afterPayments);
    a.window.pushTick(r.tick, a.state, r.state, r.postHash, r.events, a.budget, a.price);
    // Only ticks that observed something are stored; a segment's tick range says which ticks it covers.
    let logBytesPassed = false;
    if (this.opts.persistEventLogs && r.events.length > 0) {
      a.pendingLogs.push({ tick: r.tick, entries: r.events, postHash: r.postHash });
      for (const e of r.events) a.pendingLogBytes += e.payload.length;
      logBytesPassed = a.pendingLogBytes >= MAX_UNCHECKPOINTED_LOG_BYTES;
    }
    a.tick = r.tick;
    a.budget = charge.budgetAfter;
    // Most short ticks cost 0 (the meter carries the remainder): nothing to add, no bigint made.
    const spent = paid === 0n ? charge.cost : charge.cost + paid;
    if (spent !== 0n) {
      a.spent += spent;
      this.opts.checkpointer.addCost(a.id, spent);
    }
    a.state = r.state;
    a.more = r.more;
    a.lastTickAt = now;
    a.lastTickNs = r.elapsedNs;
    a.lastEvents = r.events;
    a.ticksThisRun++;
    const metrics = this.opts.metrics;
    if (metrics) metrics.tickCommitted((a.tickTally ??= metrics.tickTally(a.id)), Number(r.elapsedNs) / 1e9);
    if (a.logger.isLevelEnabled("debug")) a.logger.debug(
      {
        event: "tick",
        tick: String(a.tick),
        cost: String(charge.cost),
        budget: String(a.budget),
        more: r.more,
      },
      "tick",
    );
    if (r.events.length > 0) {
      emitAgentLogs(a, a.tick, r.events);
      queueOutputs(a, a.tick, r.events);
    }
    // Nothing in the daemon listens (tests and benches do): no event object per tick for nobody.
    if (this.listenerCount("tick") > 0) this.emit("tick", {
      agentId: a.id,
      tick: a.tick,
      more: r.more,
      cost: charge.cost,
      paid,
      budget: a.budget,
      elapsedNs: r.elapsedNs,
      events: r.events,
      at: now,
    });
    if (charge.exhausted) {
      this.finish(a, "stopped", "budget_exhausted", null);
      return;
    }
    this.verifier.afterCommit(a);
    if (a.status !== "running") return;
    if (!this.stopping && !a.detaching) {
      // Its ticks' logs since the last checkpoint are held here until the next: past the bound, now.
      if (logBytesPassed) void this.checkpoints.take(a, "event_log_bytes", "active", null);
      this.schedule(a, monoNow() + (r.more ? this.fastIntervalOf(a) : this.intervalOf(a)));
    }
  }

  private sweepHibernation(): void {
    const now = monoNow();
    for (const a of this.agents.values()) if (this.hibernation.eligible(a, now)) this.hibernation.hibernate(a);
  }

  /** The agent could not be placed again for its tick: it fails like a tick that failed. */
  private wakeFailed(a: AgentRuntime, error: IgordError): void {
    if (a.status !== "running" || !a.inFlight) return;
    a.inFlight = false;
    if (error.code !== ErrorCode.NodeStopping) this.fail(a, error, a.tick + 1n);
    this.afterResult(a);
  }

  private sweepLeases(): void {
    this.fence.sweep(this.sweepable(), Date.now());
  }

  /** Agents whose leases the sweep checks: running here and not leaving (mid-tick ones only renew). */
  private *sweepable(): Generator<AgentRuntime> {
    for (const a of this.agents.values()) if (a.status === "running" && !a.detaching) yield a;
  }

  /**
   * Verifies ticks this node recorded before it restarted: the last stored segment of event logs,
   * replayed as a chain from the checkpoint before it against the stored per-tick state hashes.
   */
  verifyStored(agentId: string, items: ReplayItem[]): void {
    const a = this.agents.get(agentId);
    if (a) this.verifier.verifyStored(a, items);
  }

  /**
   * Before a tick of the agent acts on the world (wallet_pay's signature, an HTTP request that is not
   * a read; `reason` says which): checkpoints its committed state when ticks committed since its last
   * checkpoint, and resolves once that is durable, so the act is made from a state a restart
   * resumes. The SDK's pattern begins an intent in one tick and acts in a later one, once a
   * checkpoint covers the intent, a moment the agent cannot see: acting before it, a crash took the
   * agent back to before the intent, and it paid (or posted) again. An agent stopping or leaving is
   * checkpointed at its committed state by that (the acting tick is thrown away or commits before
   * it), so nothing is added then. False when the checkpoint failed (the agent fails with it, and
   * nothing is done).
   */
  async checkpointBeforeAct(agentId: string, reason: typeof PAYMENT_CHECKPOINT_REASON | typeof HTTP_ACT_CHECKPOINT_REASON): Promise<boolean> {
    const a = this.agents.get(agentId);
    if (!a || a.status !== "running" || a.detaching || this.stopping || !this.opts.checkpointer.behind(a.id, a.tick)) return true;
    await this.checkpoints.take(a, reason, "active", null);
    return a.status === "running" && !this.opts.checkpointer.behind(a.id, a.tick);
  }

  private checkpointAll(reason: string): void {
    // An agent being detached for a handoff is checkpointed by the detach itself: one queued behind
    // that would run after the agent left (its chain forgotten) and fail it for nothing.
    for (const a of this.agents.values()) if (a.status === "running" && !a.detaching) void this.checkpoints.take(a, reason, "active", null);
  }

  /**
   * Ends the agent's run here. `interruptedReason`: the reason stored instead when a tick in flight
   * is thrown away (its run may have acted), or when the agent has not yet been told that its last
   * run was interrupted (a start must still tell it), written with the stop's checkpoint in one
   * transaction.
   */
  private finish(a: AgentRuntime, status: AgentStatus, reason: string, error: IgordError | null, interruptedReason = reason): void {
    // Resumed after an interruption (or its tick rewound) and not told yet: no tick committed since,
    // so this end is no clean one either.
    const untold = this.untold(a);
    a.wakeInterrupted = false;
    this.queue.cancel(a);
    a.status = status;
    a.reason = reason;
    a.error = error ? { code: error.code, message: error.message } : null;
    a.nextDueAt = null;
    a.hibernated = false;
    const abandoned = a.inFlight ? a.tick + 1n : null;
    a.inFlight = false; // a result still in flight belongs to the unloaded placement: discarded
    // Whoever waits for that result (a handoff's detach) is told now: it will never come.
    const idle = a.onIdle;
    a.onIdle = null;
    idle?.();
    if (this.idleWaiters.length > 0 && !this.anyInFlight()) for (const w of this.idleWaiters.splice(0)) w();
    this.opts.pool.unload(a.id);
    // What that run paid so far is debited and written with this stop's checkpoint.
    if (abandoned !== null) debitAbandonedRun(a, abandoned, this.opts.checkpointer);
    // Shutdown keeps the agent active in storage so the next start resumes it.
    const stored: StoredStatus = reason === "shutdown" ? "active" : status === "failed" ? "failed" : "stopped";
    const storedReason = abandoned !== null || untold ? interruptedReason : reason;
    void this.checkpoints.take(a, reason, stored, storedReason === "shutdown" ? null : storedReason);
    if (status === "stopped") {
      a.logger.info(
        { event: "agent_stopped", reason, tick: String(a.tick), budget: String(a.budget) },
        `agent stopped: ${reason}`,
      );
    }
    this.emit("stopped", this.view(a));
  }

  /**
   * Stops ticking a running agent (checkpointed at its last committed tick, stored as stopped with
   * the reason). A tick in flight is thrown away, its payments debited as lost with the stop's
   * checkpoint, and the agent stored with `interruptedReason` instead (its run may have acted: a
   * later start tells the agent so).
   */
  async pause(id: string, reason: string, interruptedReason = reason): Promise<void> {
    const a = this.agents.get(id);
    if (a?.status !== "running") return;
    this.finish(a, "stopped", reason, null, interruptedReason);
    await this.settled();
  }

  /**
   * Takes a running agent off this node for a handoff: no new tick starts, the tick in flight
   * commits, its committed state is checkpointed (nothing lost, nothing re-executed), and it is
   * unloaded. Resolves with the tick and lease of that checkpoint; the caller owns what happens next.
   */
  async detach(id: string, alsoWrite?: CheckpointCommit["alsoWrite"]): Promise<{ tick: bigint; budget: bigint; lease: Lease | null }> {
    const a = this.agents.get(id);
    if (!a || a.status !== "running" || a.detaching) {
      throw new IgordError(ErrorCode.AgentNotRunning, `agent "${id}" is not running on this node${a ? ` (${a.detaching ? "already being handed off" : a.status})` : ""}`);
    }
    if (a.lease && !canTick(a.lease)) {
      throw new IgordError(ErrorCode.LeaseTransition, `agent "${id}" holds ${a.lease.state}, not ACTIVE_OWNER: it cannot be handed off`);
    }
    a.detaching = true;
    this.queue.cancel(a);
    a.nextDueAt = null;
    try {
      if (a.inFlight) await new Promise<void>((resolve) => (a.onIdle = resolve));
      if (a.status !== "running") throw new IgordError(ErrorCode.AgentNotRunning, `agent "${id}" stopped (${a.reason ?? a.status}) before its handoff`);
      // alsoWrite (the handoff) commits with this checkpoint: one fsync for both.
      // Not told yet that its last run was interrupted: the handoff is no clean end, and the package
      // says so (built from here on, the detach's commit included).
      if (this.untold(a)) this.untoldHandoffs.add(id);
      await this.checkpoints.take(a, "migrate", "active", null, null, alsoWrite);
      if (a.status !== "running") throw new IgordError(ErrorCode.AgentNotRunning, `agent "${id}" could not be checkpointed for its handoff (${a.reason ?? a.status})`);
    } catch (e) {
      a.detaching = false;
      if (a.status === "running" && !this.stopping) this.schedule(a, monoNow());
      throw e;
    }
    this.opts.pool.unload(id);
    this.drop(id);
    a.logger.info({ event: "agent_detached", tick: String(a.tick) }, "agent stopped here for a handoff");
    return { tick: a.tick, budget: a.budget, lease: a.lease };
  }

  /** Whether the agent's next tick is still to hear resume_interrupted 1, on its worker or hibernated. */
  private untold(a: AgentRuntime): boolean {
    return this.opts.pool.interrupted(a.id) || a.wakeInterrupted;
  }

  /**
   * Whether the agent was handed off from here resumed after an interruption and not told yet by a
   * tick (resume_interrupted): its package says so, and the target's first tick tells it.
   */
  handedOffUntold(id: string): boolean {
    return this.untoldHandoffs.has(id);
  }

  /** Drops an agent that no longer runs from the scheduler (the operator removed it from the node). */
  forget(id: string): void {
    const a = this.agents.get(id);
    if (!a || a.status === "running") return;
    this.drop(id);
  }

  /** What the scheduler and its services keep for an agent that left (detached or removed). */
  private drop(id: string): void {
    this.agents.delete(id);
    this.opts.checkpointer.forget(id);
    this.opts.metrics?.forgetAgent(id);
  }

  private anyInFlight(): boolean {
    for (const a of this.agents.values()) if (a.inFlight) return true;
    return false;
  }

  /** Stops ticking, lets in-flight ticks commit (or be reaped), and checkpoints every running agent. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.fence.stop();
    if (this.hibernateTimer) clearInterval(this.hibernateTimer);
    this.timer = null;
    this.immediate = null;
    if (this.anyInFlight()) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.opts.tickTimeoutMs + SHUTDOWN_GRACE_MS);
        this.idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    for (const a of this.agents.values()) {
      if (a.status === "running") this.finish(a, "stopped", "shutdown", null);
    }
    await this.checkpoints.settled();
  }

  /** Resolves once every checkpoint started so far is durable (or failed). */
  settled(): Promise<void> {
    return this.checkpoints.settled();
  }

  /**
   * Resolves once every checkpoint of this agent started so far is durable (or failed): a failure's
   * or a stop's checkpoint is still being committed when `stopped` is emitted, and a resume or an
   * operator's write of the stored row must come after it (docs/OPERATIONS.md). Null when none is
   * in flight: a caller need not yield then.
   */
  settledFor(id: string): Promise<void> | null {
    return this.checkpoints.settledFor(id);
  }

  view(a: AgentRuntime): AgentView;
  view(id: string): AgentView | undefined;
  view(x: AgentRuntime | string): AgentView | undefined {
    const a = typeof x === "string" ? this.agents.get(x) : x;
    return a ? viewOf(a) : undefined;
  }

  list(): AgentView[] {
    return [...this.agents.values()].map((a) => this.view(a));
  }

  statusCounts(): Map<string, number> {
    const counts = new Map<string, number>([
      ["running", 0],
      ["stopped", 0],
      ["failed", 0],
    ]);
    for (const a of this.agents.values()) counts.set(a.status, (counts.get(a.status) ?? 0) + 1);
    return counts;
  }

  /** Running agents that are off their worker until their next tick. */
  hibernatedCount(): number {
    let n = 0;
    for (const a of this.agents.values()) if (a.hibernated) n++;
    return n;
  }

  leaseStates(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const a of this.agents.values()) if (a.lease) counts.set(a.lease.state, (counts.get(a.lease.state) ?? 0) + 1);
    return counts;
  }

  *budgets(): Iterable<[string, bigint]> {
    for (const a of this.agents.values()) yield [a.id, a.budget];
  }
}
