// Agent worker thread: hosts many agent instances and runs the ticks the pool sends it. Before each
// tick it publishes (placement, start time) in the shared control block so the main thread can see
// a hung tick and terminate this thread. Each result is posted as soon as its tick completes, so a
// later hung tick never holds a finished one back.
import "../shim/promise-with-resolvers.js";
import { randomFillSync } from "node:crypto";
import { sha256 } from "../hash/bytes.js";
import { parentPort, workerData } from "node:worker_threads";
import { ErrorCode, IgordError } from "../errors.js";
import { LiveRecorder } from "../eventlog/recorder.js";
import type { LogEntry } from "../eventlog/tick-log.js";
import { INIT_SOURCE, type ReplayOutcome, type ReplayTarget, replay } from "../replay/engine.js";
import { replayChain } from "../replay/chain.js";
import { acquireReplayInstance, releaseReplayInstance } from "../replay/instance-pool.js";
import type { HttpCall, HttpReply } from "../hostcalls/http.js";
import { HOST_IO_LOCAL_WAIT_MS, HOST_IO_REPLY_GRACE_MS, HostIoClient, type HostIoReply, type HostIoRequest, HTTP_TICK_MARGIN_MS } from "./host-io.js";
import { resumeRuleViolation } from "./resume-check.js";
import { AgentSandbox, toAgentError } from "./sandbox.js";
import { Ctl, GUEST_PHASES, type LoadRequest, phaseIndex, RESULT_HOLD_NS, type ReplayRequest, type TickBatch, TickItems, type TickOutcome, type ToWorker, OkOutcomeWriter, PACKED_STATE_MAX } from "./worker-protocol.js";

interface Hosted {
  agentId: string;
  target: ReplayTarget;
  sandbox: AgentSandbox;
  recorder: LiveRecorder;
  /** Budget and price at load (served by wallet_balance / node_price while loading). */
  budget: bigint;
  price: bigint;
  /** The batch of the tick being run and its index there: its budget and price, read when asked. */
  batch: TickItems | null;
  batchAt: number;
  /** The placement as the control block holds it (no BigInt() per tick). */
  current: bigint;
  /** Whether the tick being run may perform side effects (its agent holds ACTIVE_OWNER). */
  authority: boolean;
  /** When that authority lapses (checked at the moment of each side effect); null = never. */
  authorityUntilMs: number | null;
  /** What the current tick paid so far (wallet_pay): the budget it can still spend is budget - paid. */
  paid: bigint;
  /** How many payments the current tick made (wallet_pay's MAX_PAYMENTS_PER_TICK). */
  payments: number;
  publicKey: Uint8Array;
  /** Until this instance's first tick completes: it resumed after an interruption. */
  interrupted: boolean;
}

const port = parentPort;
if (!port) throw new Error("worker.ts must run in a worker thread");
const ctl = new BigInt64Array(workerData.control as SharedArrayBuffer);
const hosted = new Map<number, Hosted>();
/** Placements that only replay (LoadRequest.replayOnly): the target their replays run. */
const replayOnly = new Map<number, ReplayTarget>();
/** The batch and index of the tick being run (a payment is journalled under its tick). */
let runningBatch: TickItems | null = null;
let runningAt = 0;
const IDLE = -1n;
const NO_HASH = new Uint8Array(0);
const TICK_PHASE_BIG = BigInt(phaseIndex("agent_tick"));
const REPLAY_PHASE = phaseIndex("replay");

const PHASE_INDEX = new Map<string, bigint>(GUEST_PHASES.map((p) => [p, BigInt(phaseIndex(p))]));

/** Publishes the guest call about to run (the watchdog names it if it hangs). Three times a tick. */
function onPhase(phase: string): void {
  Atomics.store(ctl, Ctl.phase, PHASE_INDEX.get(phase) ?? 0n);
}

/** A recorder for a load's guest calls: a log over the limit names the call (agent_init, ...). */
function loadRecorder(): LiveRecorder {
  const r = new LiveRecorder();
  r.loadPhase = currentPhase;
  return r;
}

/** The guest call running now (what onPhase last published). */
function currentPhase(): string {
  return GUEST_PHASES[Number(Atomics.load(ctl, Ctl.phase))] ?? "load";
}

/** Marks this worker busy in guest code for `placement` from now (the watchdog's clock starts). */
function enter(placement: number, phase: number): void {
  Atomics.store(ctl, Ctl.phase, BigInt(phase));
  Atomics.store(ctl, Ctl.startedNs, process.hrtime.bigint());
  Atomics.store(ctl, Ctl.current, BigInt(placement));
}

/** The current guest call starts a new tick: its timeout counts from now. */
function restartTickClock(): void {
  Atomics.store(ctl, Ctl.startedNs, process.hrtime.bigint());
}

function leave(): void {
  Atomics.store(ctl, Ctl.current, IDLE);
}

/** Budget and price of the tick `h` runs (its batch item), else those it was loaded with. */
function budgetOf(h: Pick<Hosted, "batch" | "batchAt" | "budget">): bigint {
  return h.batch ? h.batch.budget(h.batchAt) : h.budget;
}
function priceOf(h: Pick<Hosted, "batch" | "batchAt" | "price">): bigint {
  return h.batch ? h.batch.price(h.batchAt) : h.price;
}

const io = new HostIoClient(workerData.io, workerData.ioFlag as SharedArrayBuffer);
const tickTimeoutMs = workerData.tickTimeoutMs as number;

/**
 * Has the main thread perform the request while this thread waits, within what is left of the tick
 * timeout (less HTTP_TICK_MARGIN_MS): a request that cannot finish in time is a timeout (-4), not a
 * stopped agent.
 */
function msLeftInTick(): number {
  const elapsedMs = Number(process.hrtime.bigint() - Atomics.load(ctl, Ctl.startedNs)) / 1e6;
  return Math.floor(tickTimeoutMs - elapsedMs - HTTP_TICK_MARGIN_MS);
}

function http(call: HttpCall): HttpReply {
  const phase = Atomics.load(ctl, Ctl.phase);
  // Only a tick reaches the network: agent_init and agent_resume run at every load (a restart, a
  // reception not yet durable, a hibernated agent woken), agent_checkpoint whenever the node asks.
  // Refused there (-3), which replays as it is.
  if (phase !== TICK_PHASE_BIG) return { kind: "refused", message: "http_request is answered only during agent_tick" };
  const timeoutMs = Math.min(call.timeoutMs, msLeftInTick());
  if (timeoutMs <= 0) return { kind: "timeout" };
  onPhase("http_request");
  try {
    const r = callMain({ kind: "http", call: { ...call, timeoutMs } }, timeoutMs + HOST_IO_REPLY_GRACE_MS);
    return r === null ? { kind: "timeout" } : r.kind === "response" || r.kind === "timeout" || r.kind === "refused" || r.kind === "error" ? r : { kind: "error", message: `unexpected reply ${r.kind}` };
  } finally {
    Atomics.store(ctl, Ctl.phase, phase);
  }
}

/** A quick question to the main thread (signing, receipts) within what is left of the tick. */
function ask(request: HostIoRequest): HostIoReply | null {
  const waitMs = Math.min(HOST_IO_LOCAL_WAIT_MS, msLeftInTick());
  return waitMs <= 0 ? null : callMain(request, waitMs);
}

/** Asks the main thread for the running placement, with when its tick's authority lapses (null: never, or no tick running). */
function callMain(request: HostIoRequest, waitMs: number): HostIoReply | null {
  const authorityUntilMs = runningBatch ? runningBatch.authorityUntilMs(runningAt) : null;
  return io.call(Number(Atomics.load(ctl, Ctl.current)), request, waitMs, authorityUntilMs);
}

/**
 * A step of the wall clock larger than this (a suspend or a paused VM, which the monotonic clock does
 * not count; an NTP step) moves the agents' clock to the wall clock's time.
 */
const WALL_CLOCK_STEP_MS = 1_000;
/** What the wall clock moved beyond the monotonic clock since this thread started. */
let wallStepMs = 0;

/**
 * Wall clock in Unix ms with microsecond resolution: monotonic time since the thread started
 * (performance.now), moved by every step of the wall clock (Date.now) larger than WALL_CLOCK_STEP_MS.
 * Without those moves, a worker that ran through a suspend served the time it was before it, for ever.
 */
function wallNowMs(): number {
  const t = performance.timeOrigin + performance.now() + wallStepMs;
  const wall = Date.now();
  if (Math.abs(wall - t) <= WALL_CLOCK_STEP_MS) return t;
  wallStepMs += wall - t;
  return wall;
}

const world = {
  nowNs: (): bigint => BigInt(Math.round(wallNowMs() * 1000)) * 1000n,
  randomFill: (buf: Uint8Array): void => {
    randomFillSync(buf);
  },
  http,
  signPayment: (message: Uint8Array): Uint8Array | null => {
    const r = ask({ kind: "sign", message, tick: runningBatch ? runningBatch.tick(runningAt) : 0n });
    return r?.kind === "signature" ? r.signature : null;
  },
  receipts: {
    // null: no answer (no time left in the tick, the wait ran out, or the main thread failed).
    count: (): number | null => {
      const r = ask({ kind: "receipt_count" });
      return r?.kind === "count" ? r.count : null;
    },
    get: (index: number): { bytes: Uint8Array | null } | null => {
      const r = ask({ kind: "receipt", index });
      return r?.kind === "receipt" ? { bytes: r.bytes } : null;
    },
  },
};

/**
 * A replay-only placement from a state: the replay rule is checked on a replay instance (pooled and
 * reset to its post-agent_init image, or fresh), which then goes back to the pool for the replay.
 */
function loadReplayOnly(req: LoadRequest, state: Uint8Array): void {
  const target = { module: req.module, plan: req.plan, memoryCapPages: req.memoryCapPages };
  enter(req.placement, phaseIndex("start"));
  let inst: ReturnType<typeof acquireReplayInstance> | null = null;
  try {
    inst = acquireReplayInstance(target, INIT_SOURCE);
    if (req.checkResume) {
      let from = state;
      if (req.stateOfOlderModule) {
        // A state an older module wrote (a code upgrade before the window): the rule holds for the
        // state this code makes of it, resumed in a second clean instance (as a live load checks it).
        onPhase("agent_resume");
        inst.sandbox.resume(state);
        onPhase("agent_checkpoint");
        from = inst.sandbox.captureState();
        releaseReplayInstance(inst, true);
        inst = null;
        inst = acquireReplayInstance(target, INIT_SOURCE);
      }
      onPhase("agent_resume");
      inst.sandbox.resume(from);
      onPhase("agent_checkpoint");
      const problem = resumeRuleViolation(req.agentId, from, inst.sandbox.captureState());
      if (problem) throw problem;
    }
    releaseReplayInstance(inst, true);
    inst = null;
    replayOnly.set(req.placement, target);
    leave();
    port?.postMessage({ type: "loaded", placement: req.placement, ok: true, state, events: [] });
  } catch (e) {
    if (inst) releaseReplayInstance(inst, false);
    leave();
    const err = e instanceof IgordError ? e : toAgentError(e, "load");
    port?.postMessage({ type: "loaded", placement: req.placement, ok: false, error: err.toJSON() });
  }
}

function load(req: LoadRequest): void {
  if (req.replayOnly && req.state !== null) {
    loadReplayOnly(req, req.state);
    return;
  }
  const recorder = loadRecorder();
  // No side effect during agent_init/agent_resume: only a tick runs with the owner's authority.
  const h: Partial<Hosted> & { budget: bigint; price: bigint; batch: TickItems | null; batchAt: number; current: bigint; authority: boolean; authorityUntilMs: number | null; paid: bigint; payments: number; publicKey: Uint8Array; interrupted: boolean } = {
    budget: req.budget,
    price: req.price,
    batch: null,
    batchAt: 0,
    current: BigInt(req.placement),
    authority: false,
    authorityUntilMs: null,
    paid: 0n,
    payments: 0,
    publicKey: req.publicKey ?? new Uint8Array(32),
    interrupted: req.interrupted,
  };
  // Loading runs guest code (start function, _initialize, agent_init, agent_resume): the whole load
  // is bounded by the tick timeout like a tick.
  enter(req.placement, phaseIndex("start"));
  try {
    const instantiate = (source: LiveRecorder): AgentSandbox => {
      const sandbox = AgentSandbox.instantiate({
        module: req.module,
        plan: req.plan,
        memoryCapPages: req.memoryCapPages,
        context: {
          source,
          budget: () => budgetOf(h) - h.paid,
          price: () => priceOf(h),
          authority: () => h.authority && (h.authorityUntilMs === null || Date.now() <= h.authorityUntilMs),
          spend: (amount, dryRun) => {
            if (budgetOf(h) - h.paid < amount) return false;
            if (!dryRun) {
              h.paid += amount;
              h.payments++;
            }
            return true;
          },
          paymentsThisTick: () => h.payments,
          publicKey: () => h.publicKey,
          interrupted: () => h.interrupted,
          world,
        },
        onPhase,
      });
      sandbox.init();
      return sandbox;
    };
    const sandbox = instantiate(recorder);
    let state: Uint8Array;
    if (req.state === null) {
      state = sandbox.captureState();
      // The replay rule, on a second fresh instance (its observations are not the agent's).
      if (req.checkResume) checkResume(req.agentId, state, instantiate(loadRecorder()));
    } else {
      sandbox.resume(req.state);
      state = req.state;
      // This instance is fresh: checkpointing it right after agent_resume must give the state back;
      // a state an older module wrote, the state this code makes of it, resumed in another fresh one.
      if (req.checkResume && req.stateOfOlderModule) checkResume(req.agentId, sandbox.captureState(), instantiate(loadRecorder()));
      else if (req.checkResume) checkResume(req.agentId, state, sandbox, false);
    }
    const target = { module: req.module, plan: req.plan, memoryCapPages: req.memoryCapPages };
    recorder.loadPhase = null;
    hosted.set(req.placement, Object.assign(h, { agentId: req.agentId, sandbox, recorder, target }) as Hosted);
    leave();
    port?.postMessage({ type: "loaded", placement: req.placement, ok: true, state, events: recorder.take() });
  } catch (e) {
    leave();
    const err = e instanceof IgordError ? e : toAgentError(e, "load");
    port?.postMessage({ type: "loaded", placement: req.placement, ok: false, error: err.toJSON() });
  }
}

/** agent_resume(state) then agent_checkpoint in `fresh` must give back `state` (resumeRuleViolation). */
function checkResume(agentId: string, state: Uint8Array, fresh: AgentSandbox, resume = true): void {
  if (resume) fresh.resume(state);
  const problem = resumeRuleViolation(agentId, state, fresh.captureState());
  if (problem) throw problem;
}

// Results of a batch travel together (one message for many ticks: the main thread pays per
// message), but none waits longer than RESULT_HOLD_NS for the next tick to finish: if that tick hangs,
// the held ones are lost with the worker just like the ticks queued behind it, and re-run elsewhere
// from their committed state (a tick counts only when its result reaches the main thread).
// Successful ticks with states up to PACKED_STATE_MAX are packed as they finish (okWriter); the
// others (skipped, failed, large states) are held as objects.
const okWriter = new OkOutcomeWriter();
let held: TickOutcome[] = [];
/** Held results go by this hrtime (RESULT_HOLD_NS after the first one held). */
let holdUntil = 0n;

function holding(): boolean {
  return held.length > 0 || okWriter.count > 0;
}

function post(outcome: TickOutcome): void {
  if (!holding()) holdUntil = process.hrtime.bigint() + RESULT_HOLD_NS;
  held.push(outcome);
}

function flush(): void {
  if (!holding()) return;
  const packed = okWriter.count > 0 ? okWriter.take() : undefined;
  // Only the large states not packed are transferred on their own.
  const transfer = held.flatMap((o) => (o.status === "ok" ? [o.state.buffer as ArrayBuffer] : []));
  port?.postMessage({ type: "results", items: held, ...(packed ? { packed } : {}) }, packed ? [packed, ...transfer] : transfer);
  held = [];
}

const NO_EVENTS: readonly LogEntry[] = [];

function runBatch(batch: TickBatch): void {
  const items = new TickItems(batch.packed);
  // The end of the last tick run: no clock read per item to decide whether held results must go.
  let lastEnd = 0n;
  for (let i = 0; i < items.length; i++) {
    if (holding() && lastEnd > holdUntil) flush();
    const placement = items.placement(i);
    const h = hosted.get(placement);
    if (!h || Atomics.load(ctl, Ctl.generation) !== batch.generation) {
      post({ placement, tick: items.tick(i), status: "skipped" });
      continue;
    }
    h.batch = items;
    h.batchAt = i;
    h.authority = items.authority(i);
    h.authorityUntilMs = items.authorityUntilMs(i);
    h.paid = 0n;
    h.payments = 0;
    runningBatch = items;
    runningAt = i;
    // enter(), with this tick's constants: phase, start (the watchdog's clock), placement.
    Atomics.store(ctl, Ctl.phase, TICK_PHASE_BIG);
    const start = process.hrtime.bigint();
    Atomics.store(ctl, Ctl.startedNs, start);
    Atomics.store(ctl, Ctl.current, h.current);
    let outcome: TickOutcome | null = null;
    let more = false;
    let state: Uint8Array | null = null;
    let elapsedNs = 0n;
    let events: readonly LogEntry[] = NO_EVENTS;
    let postHash: Uint8Array = NO_HASH;
    try {
      more = h.sandbox.tick();
      h.interrupted = false;
      // A view of guest memory: packed (copied) below before any guest code runs again.
      state = h.sandbox.stateView();
      lastEnd = process.hrtime.bigint();
      elapsedNs = lastEnd - start;
      if (h.recorder.size > 0) {
        events = h.recorder.take();
        // Only ticks that observed something are verified by replay or stored with a state hash.
        postHash = sha256(state);
      }
    } catch (e) {
      lastEnd = process.hrtime.bigint();
      // A trapped instance is discarded: AssemblyScript leaks its shadow stack on every trap.
      hosted.delete(placement);
      const error = (e instanceof IgordError ? e : toAgentError(e, "agent_tick")).toJSON();
      outcome = { placement, tick: items.tick(i), status: "error", elapsedNs: lastEnd - start, error, events: h.recorder.take() };
    }
    h.authority = false;
    h.batch = null;
    runningBatch = null;
    leave();
    if (outcome) post(outcome);
    else if (state && state.length <= PACKED_STATE_MAX) {
      if (!holding()) holdUntil = lastEnd + RESULT_HOLD_NS;
      okWriter.writeWords(placement, items.tickLo(i), items.tickHi(i), more, elapsedNs, state, postHash, events);
    } else if (state) {
      post({ placement, tick: items.tick(i), status: "ok", more, elapsedNs, state: state.slice(), postHash, events: events as LogEntry[] });
    }
  }
  flush();
}

/** Replays recorded ticks in fresh instances; each replayed tick is published like a live one. */
function runReplay(req: ReplayRequest): void {
  const target = hosted.get(req.placement)?.target ?? replayOnly.get(req.placement);
  let outcome: ReplayOutcome;
  if (!target) {
    outcome = {
      verified: 0,
      failure: { tick: Array.isArray(req.items) ? (req.items[0]?.tick ?? 0n) : req.items.fromTick, error: { code: "AGENT_NOT_FOUND", message: "agent is not hosted here", details: {} } },
      durationNs: 0n,
    };
  } else {
    Atomics.store(ctl, Ctl.replayStartedNs, process.hrtime.bigint());
    try {
      const deadline = req.deadlineNs;
      // A tick not started by the caller's deadline fails the replay there (the engines report a
      // throw from onTick as the failure of that tick); a tick started runs under the tick timeout.
      const inTime = deadline === undefined ? (): void => {} : (): void => {
        const late = process.hrtime.bigint() - deadline;
        if (late > 0n) throw new IgordError(ErrorCode.ReplayDeadline, `the replay passed its deadline (${late / 1_000_000n} ms ago)`);
      };
      // Each tick only restarts the watchdog's clock: the replay's phase and placement, entered once,
      // stay put (no guest call of a replay instance publishes a phase of its own).
      const onTick = deadline === undefined ? restartTickClock : (): void => {
        inTime();
        restartTickClock();
      };
      enter(req.placement, REPLAY_PHASE);
      outcome = Array.isArray(req.items) ? replay(target, req.items, onTick) : replayChain(target, req.items, onTick);
    } finally {
      leave();
      Atomics.store(ctl, Ctl.replayStartedNs, 0n);
    }
  }
  port?.postMessage({ type: "replayed", id: req.id, outcome });
}

port.on("message", (msg: ToWorker) => {
  switch (msg.type) {
    case "load":
      load(msg);
      break;
    case "tick":
      runBatch(msg);
      break;
    case "unload":
      hosted.delete(msg.placement);
      replayOnly.delete(msg.placement);
      break;
    case "replay":
      runReplay(msg);
      break;
  }
});

// Listening now: the pool may move running agents here (see Ctl.booted).
Atomics.store(ctl, Ctl.booted, 1n);
