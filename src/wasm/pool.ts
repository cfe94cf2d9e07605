// A pool of worker threads that host agent instances. Node cannot interrupt synchronous WebAssembly
// on a thread, so isolation works like this:
// - every tick publishes (placement, start) in a shared control block the watchdog reads;
// - when a tick runs past STALL_EVACUATE_MS, the other agents on that worker are moved to another
//   worker from their last committed state, so they keep their cadence;
// - when it runs past the tick timeout, the worker is terminated and the agent reported.
// The same holds for every guest call, not only agent_tick: loading (start function, _initialize,
// agent_init, agent_resume) and replay publish themselves too, so nothing a module runs can wedge a
// worker for good. A tick counts only when its result reaches the main thread, so a tick lost with a
// worker is simply re-run from the committed state elsewhere and never commits twice.
// Every failure reaches its agent: as a tick result when a tick is in flight, else as `lost`.
// The watchdog's decisions (stalls, overruns, rebalancing, surplus workers) are in
// wasm/pool-watchdog.ts; this file carries them out and owns loading, dispatch, results and replays.
import { EventEmitter } from "node:events";
import { MessageChannel, Worker } from "node:worker_threads";
import type { Logger } from "pino";
import { ErrorCode, IgordError } from "../errors.js";
import { workerScript } from "../worker-script.js";
import type { LogEntry } from "../eventlog/tick-log.js";
import { waitsOnNetwork } from "../hostcalls/http.js";
import type { ImportPlan } from "../hostcalls/policy.js";
import type { Ed25519Key } from "../identity/keys.js";
import { type ClaimReply, type HostIoEnvelope, type HostIoReply, hostIoFlag, serveHostIo } from "./host-io.js";
import { answerHostIo, type HostIoServices } from "./host-io-services.js";
import type { ReplayItem, ReplayOutcome } from "../replay/engine.js";
import type { ReplayChain } from "../replay/chain.js";
import { phaseName, runningPlacement, type Slot, type WorkerHandle } from "./pool-state.js";
import { PoolWatchdog, stallThresholdMs, type WatchedPool } from "./pool-watchdog.js";
import {
  Ctl,
  type FromWorker,
  type LoadReply,
  OkOutcomeReader,
  packTickItems,
  type TickOutcome,
  type ToWorker,
} from "./worker-protocol.js";

/**
 * Young generation of each agent worker's JS heap (V8 sizes it at three semi-spaces). Left alone, a
 * worker ticking 500 agents a second grows it to 16 MiB of mostly empty pages and keeps them; a tick's
 * garbage dies young, so a small one costs a scavenge a few times a second (measured in
 * docs/BENCHMARKS.md, "Audit replay and density").
 */
export const WORKER_MAX_YOUNG_GENERATION_MB = 4;

export interface AgentSpec {
  agentId: string;
  module: WebAssembly.Module;
  plan: ImportPlan;
  memoryCapPages: number;
  /** The manifest's max_cpu_millis: a live tick running longer is stopped by the watchdog. */
  tickLimitMs?: number | null;
  /** The agent's key: wallet_pay's receipts are signed with it here, on the main thread, never in a worker. */
  identity?: Ed25519Key;
}

export interface TickRequest {
  agentId: string;
  tick: bigint;
  budget: bigint;
  price: bigint;
  /** The agent holds ACTIVE_OWNER for this tick (default true: no lease means sole owner). */
  authority?: boolean;
  /** Unix ms when that authority lapses mid-tick (lease expiry + grace); absent = never. */
  authorityUntilMs?: number | null;
  /** The caller's own record of the agent, handed back with a successful result (no lookup by id per tick). */
  owner?: object;
}

/** A worker's tick outcome as the scheduler sees it: keyed by agent, errors as IgordError. */
export type PoolTickResult =
  | (Omit<Extract<TickOutcome, { status: "ok" }>, "placement"> & { agentId: string; owner?: object })
  | (Omit<Extract<TickOutcome, { status: "error" }>, "placement" | "error"> & { agentId: string; error: IgordError });

export interface PoolOptions extends HostIoServices {
  size: number;
  tickTimeoutMs: number;
  tickIntervalMs: number;
  logger: Logger;
}

/** A tick of the slot's came back committed-able: its state is the slot's, nothing is in flight. */
function settleOk(slot: Slot, state: Uint8Array): void {
  slot.state = state;
  slot.inFlight = null;
  slot.interrupted = false;
}

export class WorkerPool extends EventEmitter<{
  /** A tick's result on its own: a failure, or a success whose state was too large to pack. */
  result: [PoolTickResult];
  /**
   * The successful results one worker message brought, in order: one call per batch of ticks, not
   * one per tick. Every result either event carries is for the agent's live placement and the tick
   * it has in flight.
   */
  results: [PoolTickResult[]];
  /** The pool no longer holds this agent and no tick of it was in flight to report it with. */
  lost: [{ agentId: string; error: IgordError }];
  evacuated: [{ agentId: string; fromWorker: number; toWorker: number }];
  /**
   * A run of this tick was thrown away with its worker (moved off a stalled worker, or the worker
   * ended) and runs again elsewhere; what it paid is journalled only. Told before the re-run is sent.
   */
  abandoned: [{ agentId: string; tick: bigint }];
}> {
  private readonly workers: WorkerHandle[] = [];
  private readonly slots = new Map<string, Slot>();
  private readonly byPlacement = new Map<number, Slot>();
  private nextPlacement = 1;
  private nextReplayId = 1;
  private nextWorkerId = 1;
  private readonly watchdog: PoolWatchdog;
  private stopped = false;
  private readonly script = workerScript("./worker.js", import.meta.url);

  constructor(private readonly opts: PoolOptions) {
    super();
    const watched: WatchedPool = {
      workers: this.workers,
      live: () => this.live(),
      slotAt: (placement) => this.byPlacement.get(placement),
      evacuate: (placement) => this.evacuate(placement),
      move: (slot) => this.move(slot),
      retire: (h, cause) => this.retire(h, cause),
      fail: (slot, error) => this.fail(slot, error),
      terminateIdle: (h) => this.terminate(h),
      releaseDedicated: (h) => this.releaseDedicated(h),
    };
    const stallMs = stallThresholdMs(opts.tickIntervalMs, opts.tickTimeoutMs);
    this.watchdog = new PoolWatchdog(watched, { size: opts.size, tickTimeoutMs: opts.tickTimeoutMs, stallMs, logger: opts.logger });
  }

  /**
   * Starts the watchdog and `initial` workers (a node starts its first agent's while it starts its
   * services). The others start as agents need them (pickWorker), up to `size`: a node with one agent
   * runs one worker thread, not `size` (each costs ~100 ms of CPU to start and ~8 MiB).
   */
  start(initial = 0): void {
    for (let i = 0; i < Math.min(initial, this.opts.size); i++) this.spawn();
    this.watchdog.start();
  }

  private spawn(dedicated = false): WorkerHandle {
    const sab = new SharedArrayBuffer(Ctl.size * 8);
    const ctl = new BigInt64Array(sab);
    ctl[Ctl.current] = -1n;
    const io = new MessageChannel();
    const ioFlag = hostIoFlag();
    const worker = new Worker(this.script, {
      workerData: { control: sab, io: io.port2, ioFlag, tickTimeoutMs: this.opts.tickTimeoutMs },
      transferList: [io.port2],
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_MAX_YOUNG_GENERATION_MB },
    });
    serveHostIo(io.port1, ioFlag, (env, claim) => this.serveIo(h, env, claim));
    worker.once("exit", () => io.port1.close());
    const h: WorkerHandle = {
      id: this.nextWorkerId++,
      worker,
      ctl,
      placements: new Set(),
      stalled: false,
      dead: false,
      dedicated,
      replays: new Map(),
    };
    worker.on("message", (m: FromWorker) => this.onMessage(h, m));
    worker.on("error", (e) => this.onWorkerLost(h, e));
    worker.on("exit", (code) => {
      if (!h.dead && !this.stopped) this.onWorkerLost(h, new Error(`worker exited with code ${code}`));
    });
    this.workers.push(h);
    this.opts.logger.debug({ event: "worker_started", worker: h.id, dedicated }, dedicated ? "worker thread started for one agent" : "worker thread started");
    return h;
  }

  /** Answers what a tick on `h` asks the main thread for, for an agent placed on `h` only. */
  private async serveIo(h: WorkerHandle, env: HostIoEnvelope, claim: ClaimReply): Promise<HostIoReply> {
    const slot = this.byPlacement.get(env.placement);
    if (!slot || slot.worker !== h) return { kind: "error", message: `no agent at placement ${env.placement} on worker ${h.id}` };
    return answerHostIo(this.opts, slot.spec, env, claim);
  }

  private live(): WorkerHandle[] {
    return this.workers.filter((w) => !w.dead && !w.stalled && !w.dedicated);
  }

  /** `apart`: an agent moved off a wedged worker, kept off workers where it would mix first loads with running agents (firstLoadMixes). */
  private pickWorker(exclude?: WorkerHandle, spec?: AgentSpec, apart?: Slot): WorkerHandle {
    if (spec && waitsOnNetwork(spec.plan)) return this.spawn(true);
    let candidates = this.live().filter((w) => w !== exclude && (apart === undefined || !this.firstLoadMixes(w, apart)));
    // No worker free for it, or, for an agent placed here (not moved), every one busy while the pool
    // is below its size: one more starts (the agents spread as they did over `size` workers started
    // at once). An agent moved off a wedged worker goes to one that runs, not to one still starting:
    // the wedged worker's replacement starts after (retire), and rebalancing spreads them once it listens.
    const grow = exclude === undefined && this.live().length < this.opts.size && candidates.every((w) => w.placements.size > 0);
    if (candidates.length === 0 || grow) candidates = [this.spawn()];
    return candidates.reduce((a, b) => (b.placements.size < a.placements.size ? b : a));
  }

  /**
   * Whether `slot` on `w` would share the worker between an agent's first load (code that never ran
   * here: its start function, _initialize or agent_init may hang) and an agent that already runs.
   * Moved off a wedged worker together, the running agents' next ticks queued behind the other
   * first loads there, and each of those that hung wedged them again: with three hostile modules in
   * the agents dir at start, a running mate moved three times and went 1.2-1.4 s without a tick.
   */
  private firstLoadMixes(w: WorkerHandle, slot: Slot): boolean {
    const first = slot.placing !== null;
    for (const p of w.placements) if ((this.byPlacement.get(p)?.placing != null) !== first) return true;
    return false;
  }

  private post(h: WorkerHandle, msg: ToWorker): void {
    if (!h.dead) h.worker.postMessage(msg);
  }

  /** Loads the slot (from slot.loadFrom) on `h` under a new placement. */
  private loadOn(h: WorkerHandle, slot: Slot): void {
    slot.placement = this.nextPlacement++;
    slot.worker = h;
    slot.ready = false;
    this.byPlacement.set(slot.placement, slot);
    h.placements.add(slot.placement);
    this.post(h, {
      type: "load",
      placement: slot.placement,
      agentId: slot.spec.agentId,
      module: slot.spec.module,
      plan: slot.spec.plan,
      memoryCapPages: slot.spec.memoryCapPages,
      state: slot.loadFrom,
      budget: slot.budget,
      price: slot.price,
      publicKey: slot.spec.identity?.publicKey ?? null,
      interrupted: slot.interrupted,
      // Only before the first tick: later reloads resume states the agent itself checkpointed.
      checkResume: slot.placing !== null && slot.checkResume,
      ...(slot.stateOfOlderModule ? { stateOfOlderModule: true } : {}),
      ...(slot.replayOnly ? { replayOnly: true } : {}),
    });
  }

  /**
   * Instantiates an agent on the least-loaded worker. `state` null = fresh (init only); the returned
   * state is the agent's initial state then. Throws IgordError when the agent cannot load, including
   * TICK_TIMEOUT when its guest code runs past the tick timeout while loading.
   */
  place(
    spec: AgentSpec,
    /** checkResume false: the state is one the agent checkpointed while running here (a wake from hibernation). */
    init: { state: Uint8Array | null; budget: bigint; price: bigint; interrupted?: boolean; checkResume?: boolean; stateOfOlderModule?: boolean; replayOnly?: boolean },
  ): Promise<{ state: Uint8Array; events: LogEntry[] }> {
    if (this.stopped) return Promise.reject(new IgordError(ErrorCode.NodeStopping, "the worker pool is stopping"));
    if (this.slots.has(spec.agentId))
      return Promise.reject(new IgordError(ErrorCode.AgentExists, `agent "${spec.agentId}" is already running`));
    return new Promise((resolve, reject) => {
      const worker = this.pickWorker(undefined, spec);
      const slot: Slot = {
        spec,
        placement: 0,
        worker,
        state: init.state ?? new Uint8Array(0),
        budget: init.budget,
        price: init.price,
        ready: false,
        loadFrom: init.state,
        placing: { resolve, reject },
        movedFrom: null,
        inFlight: null,
        queued: null,
        interrupted: init.interrupted ?? false,
        checkResume: init.checkResume ?? true,
        stateOfOlderModule: init.stateOfOlderModule ?? false,
        rebalance: false,
        replayOnly: init.replayOnly ?? false,
      };
      this.slots.set(spec.agentId, slot);
      this.loadOn(worker, slot);
    });
  }

  private onLoaded(slot: Slot, reply: LoadReply): void {
    if (!reply.ok) {
      this.fail(slot, IgordError.fromJSON(reply.error));
      return;
    }
    slot.state = reply.state;
    slot.loadFrom = null;
    slot.ready = true;
    const placing = slot.placing;
    slot.placing = null;
    placing?.resolve({ state: reply.state, events: reply.events });
    if (slot.movedFrom !== null) {
      this.emit("evacuated", { agentId: slot.spec.agentId, fromWorker: slot.movedFrom, toWorker: slot.worker.id });
      slot.movedFrom = null;
    }
    this.flushQueued(slot);
  }

  /**
   * The pool drops the agent and tells whoever waits: place() while it is first loading, the tick's
   * result when one is in flight, else the `lost` event. Never silent.
   */
  private fail(slot: Slot, error: IgordError): void {
    if (this.slots.get(slot.spec.agentId) !== slot) return;
    this.forget(slot);
    const agentId = slot.spec.agentId;
    if (slot.placing) {
      const placing = slot.placing;
      slot.placing = null;
      placing.reject(error);
      return;
    }
    const req = slot.inFlight ?? slot.queued;
    if (req) {
      this.emit("result", { agentId, tick: req.tick, status: "error", elapsedNs: 0n, error, events: [] });
    } else {
      this.emit("lost", { agentId, error });
    }
  }

  has(agentId: string): boolean {
    return this.slots.has(agentId);
  }

  /** Sends tick requests, batched per worker. An agent has at most one tick in flight. */
  dispatch(reqs: readonly TickRequest[]): void {
    const batches = new Map<WorkerHandle, { reqs: TickRequest[]; placements: number[] }>();
    for (const req of reqs) {
      const slot = this.slots.get(req.agentId);
      if (!slot) {
        // The caller believes the agent is here; it must hear that it is not (never wait for ever).
        const error = new IgordError(ErrorCode.AgentNotFound, `agent "${req.agentId}" is no longer held by the worker pool; its tick ${req.tick} cannot run`);
        queueMicrotask(() => this.emit("result", { agentId: req.agentId, tick: req.tick, status: "error", elapsedNs: 0n, error, events: [] }));
        continue;
      }
      slot.budget = req.budget;
      slot.price = req.price;
      if (!slot.ready || slot.inFlight) {
        slot.queued = req;
        continue;
      }
      slot.inFlight = req;
      let batch = batches.get(slot.worker);
      if (!batch) {
        batch = { reqs: [], placements: [] };
        batches.set(slot.worker, batch);
      }
      batch.reqs.push(req);
      batch.placements.push(slot.placement);
    }
    for (const [h, batch] of batches) {
      const packed = packTickItems(batch.reqs, batch.placements);
      if (!h.dead) h.worker.postMessage({ type: "tick", generation: Atomics.load(h.ctl, Ctl.generation), packed }, [packed]);
    }
  }

  private flushQueued(slot: Slot): void {
    const next = slot.inFlight ?? slot.queued;
    slot.inFlight = null;
    slot.queued = null;
    if (next) this.dispatch([next]);
  }

  /**
   * Puts the agent back to `state` (its committed state) in a fresh instance: the instance ran a tick
   * whose result was not committed.
   */
  rewind(agentId: string, state: Uint8Array): void {
    const slot = this.slots.get(agentId);
    if (!slot?.ready) return;
    slot.state = state;
    slot.interrupted = true;
    // Its tick came back, so its worker is idle and sound: a worker of its own (an HTTP agent's) takes
    // the fresh instance itself. Another would start a thread for it (tens of ms, more under load),
    // and a re-run waiting out that start could outlive a short lease again, and be discarded again.
    const own = slot.worker;
    this.evacuate(slot.placement, false, own.dedicated && !own.dead ? own : undefined);
  }

  /** The agent's budget changed while a tick of it waits to run again (a lost payment was debited). */
  rebudget(agentId: string, budget: bigint): void {
    const slot = this.slots.get(agentId);
    if (!slot) return;
    slot.budget = budget;
    if (slot.inFlight) slot.inFlight = { ...slot.inFlight, budget };
    if (slot.queued) slot.queued = { ...slot.queued, budget };
  }

  /** Whether the agent's next instance is to be told it was interrupted (no tick committed since). */
  interrupted(agentId: string): boolean {
    return this.slots.get(agentId)?.interrupted ?? false;
  }

  /** Whether the agent's placement is the one made with `spec` (not another holder of its id). */
  placedWith(spec: AgentSpec): boolean {
    return this.slots.get(spec.agentId)?.spec === spec;
  }

  unload(agentId: string): void {
    const slot = this.slots.get(agentId);
    if (!slot) return;
    this.post(slot.worker, { type: "unload", placement: slot.placement });
    this.forget(slot);
    slot.placing?.reject(new IgordError(ErrorCode.AgentNotFound, `agent "${agentId}" was unloaded while it was loading`));
    slot.placing = null;
  }

  private forget(slot: Slot): void {
    slot.worker.placements.delete(slot.placement);
    this.byPlacement.delete(slot.placement);
    if (this.slots.get(slot.spec.agentId) === slot) this.slots.delete(slot.spec.agentId);
    this.releaseDedicated(slot.worker);
  }

  /** A dedicated worker whose agent left is ended (unless it is running guest code, the watchdog's case). */
  private releaseDedicated(h: WorkerHandle): void {
    if (!h.dedicated || h.dead || h.placements.size > 0 || h.replays.size > 0) return;
    if (runningPlacement(h) >= 0) return;
    this.terminate(h);
  }

  /** Ends a worker and drops it from the pool (what it held is the caller's to move or fail). */
  private terminate(h: WorkerHandle): void {
    h.dead = true;
    void h.worker.terminate();
    this.workers.splice(this.workers.indexOf(h), 1);
  }

  /**
   * Replays recorded ticks of an agent on the worker that hosts it, bounded by the same watchdog as
   * live ticks: a replay past the tick timeout terminates the worker and stops the agent. With a
   * `deadlineNs` (process.hrtime.bigint()'s clock: monotonic, a wall-clock step moves it neither way),
   * a tick not started by then ends the replay with REPLAY_DEADLINE. A
   * replay-only placement takes replays while its first load runs: the worker runs them after the
   * load, in order (one whose load failed answers AGENT_NOT_FOUND; place() rejects with the reason).
   */
  replay(agentId: string, items: ReplayItem[] | ReplayChain, opts: { deadlineNs?: bigint } = {}): Promise<ReplayOutcome> {
    const slot = this.slots.get(agentId);
    if (!slot || (!slot.ready && !(slot.replayOnly && slot.placing !== null))) {
      return Promise.reject(new IgordError(ErrorCode.AgentNotFound, `agent "${agentId}" is not ready for replay`));
    }
    const id = this.nextReplayId++;
    const h = slot.worker;
    return new Promise((resolve, reject) => {
      h.replays.set(id, { agentId, resolve, reject });
      this.post(h, { type: "replay", id, placement: slot.placement, items, ...(opts.deadlineNs === undefined ? {} : { deadlineNs: opts.deadlineNs }) });
    });
  }

  private onMessage(h: WorkerHandle, m: FromWorker): void {
    if (m.type === "replayed") {
      const p = h.replays.get(m.id);
      h.replays.delete(m.id);
      p?.resolve(m.outcome);
      return;
    }
    if (m.type === "loaded") {
      const slot = this.byPlacement.get(m.placement);
      // A load answered for a placement since moved elsewhere is stale: the other load counts.
      if (slot && slot.worker === h && !slot.ready) this.onLoaded(slot, m);
      return;
    }
    if (m.packed) this.onPacked(m.packed);
    for (const item of m.items) this.onOutcome(item);
  }

  /**
   * A message's packed successful outcomes: each is checked against the tick its slot has in flight
   * before anything is copied (a stale one is skipped in place), the scheduler hears them all in one
   * call, and then each slot moves on (a rebalance move, or its queued tick).
   */
  private onPacked(packed: ArrayBuffer): void {
    const r = new OkOutcomeReader(packed);
    const results: PoolTickResult[] = [];
    const slots: Slot[] = [];
    const placements: number[] = [];
    while (r.next()) {
      const slot = this.byPlacement.get(r.placement);
      const req = slot?.inFlight;
      if (!slot || !req || !r.isTick(req.tick)) continue; // stale placement: discard
      r.take();
      settleOk(slot, r.state);
      // The request's tick is the result's (checked above): no bigint made per result.
      results.push({ agentId: slot.spec.agentId, owner: req.owner, tick: req.tick, status: "ok", more: r.more, elapsedNs: r.elapsedNs, state: r.state, postHash: r.postHash, events: r.events });
      slots.push(slot);
      placements.push(r.placement);
    }
    if (results.length === 0) return;
    this.emit("results", results);
    for (let i = 0; i < slots.length; i++) this.afterOk(slots[i] as Slot, placements[i] as number);
  }

  /** Between two ticks: the moment a rebalanced agent moves (nothing of it runs on the old worker). */
  private afterOk(slot: Slot, placement: number): void {
    if (slot.rebalance && slot.ready && this.byPlacement.get(placement) === slot) this.move(slot);
    else if (slot.queued) this.flushQueued(slot);
  }

  private onOutcome(item: TickOutcome): void {
    const slot = this.byPlacement.get(item.placement);
    if (!slot?.inFlight || slot.inFlight.tick !== item.tick) return; // stale placement: discard
    if (item.status === "skipped") {
      this.flushQueued(slot);
      return;
    }
    const agentId = slot.spec.agentId;
    if (item.status === "ok") {
      settleOk(slot, item.state);
      this.emit("result", {
        agentId,
        tick: item.tick,
        status: "ok",
        more: item.more,
        elapsedNs: item.elapsedNs,
        state: item.state,
        postHash: item.postHash,
        events: item.events,
      });
      this.afterOk(slot, item.placement);
      return;
    }
    this.forget(slot);
    this.emit("result", {
      agentId,
      tick: item.tick,
      status: "error",
      elapsedNs: item.elapsedNs,
      error: IgordError.fromJSON(item.error),
      events: item.events,
    });
  }

  private move(slot: Slot): void {
    const from = slot.worker.id;
    this.evacuate(slot.placement, false);
    this.opts.logger.info({ event: "agent_rebalanced", agent: slot.spec.agentId, from, to: slot.worker.id }, "agent moved to a less loaded worker");
  }

  private onWorkerLost(h: WorkerHandle, err: Error): void {
    if (h.dead || this.stopped) return;
    const current = runningPlacement(h);
    const slot = current >= 0 ? this.byPlacement.get(current) : undefined;
    const phase = phaseName(h);
    this.opts.logger.error(
      { event: "worker_lost", worker: h.id, agent: slot?.spec.agentId, phase: slot ? phase : undefined, err: err.message },
      "worker thread died",
    );
    this.retire(h);
    if (slot) {
      this.fail(
        slot,
        new IgordError(ErrorCode.WorkerCrashed, `agent "${slot.spec.agentId}" crashed its worker thread in ${phase}: ${err.message}`, { details: { phase } }),
      );
    }
  }

  /** Terminates a worker and moves every agent still placed on it (loading ones too). */
  private retire(h: WorkerHandle, cause?: { agentId: string; error: IgordError }): void {
    // The shared workers the pool had: a retired one is replaced, unless its agents' moves started one.
    const shared = (): number => this.workers.filter((w) => !w.dead && !w.dedicated).length;
    const before = shared();
    this.terminate(h);
    for (const p of h.replays.values()) {
      p.reject(p.agentId === cause?.agentId ? cause.error : new IgordError(ErrorCode.WorkerCrashed, "the worker thread stopped during a replay"));
    }
    h.replays.clear();
    const current = runningPlacement(h);
    for (const p of [...h.placements]) if (p !== current) this.evacuate(p);
    if (!this.stopped && !h.dedicated && shared() < before && this.live().length < this.opts.size) this.spawn();
  }

  /**
   * Re-instantiates an agent on another worker (or on `to`): a ready one from its last committed
   * state, one still loading from what it was loading. A reload that fails reaches the agent like any
   * other failure.
   */
  private evacuate(placement: number, report = true, to?: WorkerHandle): void {
    const slot = this.byPlacement.get(placement);
    if (!slot) return;
    const from = slot.worker;
    // Wherever it goes now is a fresh choice: a pending rebalance move is void.
    slot.rebalance = false;
    this.post(from, { type: "unload", placement });
    from.placements.delete(placement);
    this.byPlacement.delete(placement);
    if (slot.ready) slot.loadFrom = slot.state;
    if (slot.placing === null && report) slot.movedFrom ??= from.id;
    if (slot.ready && slot.inFlight) {
      // Its tick may have run (and paid) on `from`: the re-run is told it was interrupted, and the
      // scheduler hears of it now, while no other run of this tick can pay (the placement is gone).
      slot.interrupted = true;
      this.emit("abandoned", { agentId: slot.spec.agentId, tick: slot.inFlight.tick });
    }
    // Off a wedged or ended worker (report), first loads and running agents go to separate workers.
    this.loadOn(to ?? this.pickWorker(from, slot.spec, report ? slot : undefined), slot);
    this.releaseDedicated(from);
  }

  stats(): { workers: number; agentsPerWorker: number[]; stalled: number } {
    const live = this.workers.filter((w) => !w.dead);
    return {
      workers: live.length,
      agentsPerWorker: live.map((w) => w.placements.size),
      stalled: live.filter((w) => w.stalled).length,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watchdog.stop();
    // Whoever still waits on a load or a replay hears that it will not come.
    const stopping = (): IgordError => new IgordError(ErrorCode.NodeStopping, "the worker pool is stopping");
    for (const slot of this.slots.values()) {
      slot.placing?.reject(stopping());
      slot.placing = null;
    }
    for (const h of this.workers) {
      for (const p of h.replays.values()) p.reject(stopping());
      h.replays.clear();
    }
    await Promise.all(
      this.workers.map((h) => {
        h.dead = true;
        return h.worker.terminate();
      }),
    );
    this.workers.length = 0;
    this.slots.clear();
    this.byPlacement.clear();
  }
}
