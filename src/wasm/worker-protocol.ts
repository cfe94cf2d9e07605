// Messages between the pool (main thread) and an agent worker, and the shared control block the
// main thread's watchdog reads to see which tick a worker is in and since when.
import type { SerializedError } from "../errors.js";
import type { LogEntry } from "../eventlog/tick-log.js";
import type { ImportPlan } from "../hostcalls/policy.js";
import type { ReplayItem, ReplayOutcome } from "../replay/engine.js";
import type { ReplayChain } from "../replay/chain.js";

export interface LoadRequest {
  type: "load";
  placement: number;
  agentId: string;
  module: WebAssembly.Module;
  plan: ImportPlan;
  memoryCapPages: number;
  /** null: a fresh agent (init, then capture its initial state); else init + resume(state). */
  state: Uint8Array | null;
  budget: bigint;
  price: bigint;
  /** The agent's public key, named in its payment receipts (null: none, receipts carry zeros). */
  publicKey: Uint8Array | null;
  /** A tick may have run after `state` without being committed (resume_interrupted answers 1 in the first tick). */
  interrupted: boolean;
  /** Check the replay rule (resume is the inverse of checkpoint) before the agent first ticks. */
  checkResume: boolean;
  /**
   * The state was checkpointed by an older module (a code upgrade before the new code's first
   * checkpoint): the replay rule is checked on the state the new code makes of it (agent_resume, then
   * agent_checkpoint, must give that state back), not on the old bytes, so a new layout may extend the old.
   */
  stateOfOlderModule?: boolean;
  /**
   * Only replays will run on this placement, never a tick: no live instance is built. The replay
   * rule is checked on a replay instance (replay/instance-pool.ts), the kind the replays run in.
   */
  replayOnly?: boolean;
}

export interface TickItem {
  placement: number;
  tick: bigint;
  budget: bigint;
  price: bigint;
  /** The agent holds ACTIVE_OWNER for this tick (side-effect hostcalls need it). */
  authority: boolean;
  /** Unix ms after which that authority lapses (lease expiry + grace); null = no expiry. */
  authorityUntilMs: number | null;
}

export interface TickBatch {
  type: "tick";
  /** The control block's generation when sent; if it changes, the rest of the batch is skipped. */
  generation: bigint;
  /** The items, packed by packTickItems: one transferred buffer clones far cheaper than objects. */
  packed: ArrayBuffer;
}

// Per item: tick, budget, price as u64 (all non-negative: checkpoints store them as 64-bit), then
// placement, authority (0/1) and authorityUntilMs (NaN = none) as f64.
const PACKED_U64 = 3;
const PACKED_F64 = 3;

/** Index of a u64's low 32-bit word in a Uint32Array view of it (typed arrays use the platform's order). */
const LO_WORD = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;

/** What a tick item carries besides its placement (the pool's TickRequest is one). */
export type TickFields = Pick<TickItem, "tick" | "budget" | "price"> & { authority?: boolean; authorityUntilMs?: number | null };

/** Packs `items[i]` for placement `placements[i]` (no TickItem object per tick on the main thread). */
export function packTickItems(items: readonly TickFields[], placements: readonly number[]): ArrayBuffer {
  const n = items.length;
  const buf = new ArrayBuffer(n * 8 * (PACKED_U64 + PACKED_F64));
  const u = new BigUint64Array(buf, 0, n * PACKED_U64);
  const f = new Float64Array(buf, n * 8 * PACKED_U64, n * PACKED_F64);
  for (let i = 0; i < n; i++) {
    const it = items[i] as TickFields;
    u[i * 3] = it.tick;
    u[i * 3 + 1] = it.budget;
    u[i * 3 + 2] = it.price;
    f[i * 3] = placements[i] as number;
    f[i * 3 + 1] = (it.authority ?? true) ? 1 : 0;
    f[i * 3 + 2] = it.authorityUntilMs ?? Number.NaN;
  }
  return buf;
}

/**
 * Reads packed tick items in place: the worker's loop takes each field when it needs it, so a tick
 * allocates no item object, and its budget and price (bigints) only if a hostcall asks for them.
 */
export class TickItems {
  readonly length: number;
  private readonly u: BigUint64Array;
  /** The same u64 slots as 32-bit words: the tick's bits copied into a result without a bigint. */
  private readonly w: Uint32Array;
  private readonly f: Float64Array;

  constructor(buf: ArrayBuffer) {
    const n = buf.byteLength / (8 * (PACKED_U64 + PACKED_F64));
    this.length = n;
    this.u = new BigUint64Array(buf, 0, n * PACKED_U64);
    this.w = new Uint32Array(buf, 0, n * PACKED_U64 * 2);
    this.f = new Float64Array(buf, n * 8 * PACKED_U64, n * PACKED_F64);
  }

  placement(i: number): number {
    return this.f[i * 3] as number;
  }
  tick(i: number): bigint {
    return this.u[i * 3] as bigint;
  }
  /** Low and high 32 bits of the tick. */
  tickLo(i: number): number {
    return this.w[i * 6 + LO_WORD] as number;
  }
  tickHi(i: number): number {
    return this.w[i * 6 + 1 - LO_WORD] as number;
  }
  budget(i: number): bigint {
    return this.u[i * 3 + 1] as bigint;
  }
  price(i: number): bigint {
    return this.u[i * 3 + 2] as bigint;
  }
  authority(i: number): boolean {
    return this.f[i * 3 + 1] === 1;
  }
  authorityUntilMs(i: number): number | null {
    const until = this.f[i * 3 + 2] as number;
    return Number.isNaN(until) ? null : until;
  }
}

export function unpackTickItems(buf: ArrayBuffer): TickItem[] {
  const r = new TickItems(buf);
  const out: TickItem[] = [];
  for (let i = 0; i < r.length; i++) {
    out.push({ tick: r.tick(i), budget: r.budget(i), price: r.price(i), placement: r.placement(i), authority: r.authority(i), authorityUntilMs: r.authorityUntilMs(i) });
  }
  return out;
}

export interface UnloadRequest {
  type: "unload";
  placement: number;
}

export interface ReplayRequest {
  type: "replay";
  id: number;
  placement: number;
  /** Items, or a long chain in wire form (replay/chain.ts). */
  items: ReplayItem[] | ReplayChain;
  /**
   * When the replay must end, on process.hrtime's clock (monotonic, the same in every thread of the
   * process): a tick not started by then fails with REPLAY_DEADLINE.
   */
  deadlineNs?: bigint;
}

export type ToWorker = LoadRequest | TickBatch | UnloadRequest | ReplayRequest;

export type LoadReply =
  | { type: "loaded"; placement: number; ok: true; state: Uint8Array; events: LogEntry[] }
  | { type: "loaded"; placement: number; ok: false; error: SerializedError };

export type TickOutcome =
  | {
      placement: number;
      tick: bigint;
      status: "ok";
      more: boolean;
      elapsedNs: bigint;
      state: Uint8Array;
      /** SHA-256 of `state`, computed in the worker. */
      postHash: Uint8Array;
      events: LogEntry[];
    }
  | {
      placement: number;
      tick: bigint;
      status: "error";
      elapsedNs: bigint;
      error: SerializedError;
      events: LogEntry[];
    }
  | { placement: number; tick: bigint; status: "skipped" };

/**
 * A worker sends a batch's tick results in one message, but holds a finished result at most this
 * long while the batch's next ticks run (a hung tick then costs its worker-mates no more than being
 * queued behind it does: they are re-run elsewhere from their committed state).
 */
export const RESULT_HOLD_NS = 250_000n;

export interface TickResults {
  type: "results";
  items: TickOutcome[];
  /** Successful outcomes with small states, packed by packOkOutcomes (see there). */
  packed?: ArrayBuffer;
}

export type OkOutcome = Extract<TickOutcome, { status: "ok" }>;

/**
 * States up to this size travel packed with their outcome; larger ones are transferred on their
 * own. Cloning an outcome object (three bigints, typed arrays, an events array) costs 4–6 µs of CPU
 * between the two threads; a packed one ~0.1 µs plus a copy of its bytes.
 */
export const PACKED_STATE_MAX = 4096;

export function packable(o: TickOutcome): o is OkOutcome {
  return o.status === "ok" && o.state.length <= PACKED_STATE_MAX;
}

// Per outcome: f64 placement, u64 tick, u64 elapsedNs, u8 more, u8 hash length, u32 state length,
// state, hash, u32 entry count, then per entry u32 id, i32 result, u32 length, payload. LE.
const OUTCOME_HEAD = 8 + 8 + 8 + 1 + 1 + 4;

/**
 * Packs successful outcomes as each tick finishes, straight from the guest's memory: no copy of the
 * state, no outcome object, no second pass to size the buffer. take() hands over one buffer to
 * transfer and starts again.
 */
export class OkOutcomeWriter {
  private buf: ArrayBuffer;
  private dv: DataView;
  private bytes: Uint8Array;
  private at = 4;
  count = 0;

  constructor(initialBytes = 16 * 1024) {
    this.buf = new ArrayBuffer(initialBytes);
    this.dv = new DataView(this.buf);
    this.bytes = new Uint8Array(this.buf);
  }

  write(placement: number, tick: bigint, more: boolean, elapsedNs: bigint, state: Uint8Array, postHash: Uint8Array, events: readonly LogEntry[]): void {
    this.writeWords(placement, Number(tick & 0xffff_ffffn), Number(tick >> 32n), more, elapsedNs, state, postHash, events);
  }

  /** write() with the tick as its low and high 32-bit words (the worker copies them from the batch: no bigint). */
  writeWords(placement: number, tickLo: number, tickHi: number, more: boolean, elapsedNs: bigint, state: Uint8Array, postHash: Uint8Array, events: readonly LogEntry[]): void {
    let size = OUTCOME_HEAD + state.length + postHash.length + 4;
    for (const e of events) size += 12 + e.payload.length;
    this.reserve(size);
    const dv = this.dv;
    let at = this.at;
    dv.setFloat64(at, placement, true);
    dv.setUint32(at + 8, tickLo, true);
    dv.setUint32(at + 12, tickHi, true);
    dv.setBigUint64(at + 16, elapsedNs, true);
    dv.setUint8(at + 24, more ? 1 : 0);
    dv.setUint8(at + 25, postHash.length);
    dv.setUint32(at + 26, state.length, true);
    at += OUTCOME_HEAD;
    this.bytes.set(state, at);
    at += state.length;
    this.bytes.set(postHash, at);
    at += postHash.length;
    dv.setUint32(at, events.length, true);
    at += 4;
    for (const e of events) {
      dv.setUint32(at, e.id, true);
      dv.setInt32(at + 4, e.result, true);
      dv.setUint32(at + 8, e.payload.length, true);
      this.bytes.set(e.payload, at + 12);
      at += 12 + e.payload.length;
    }
    this.at = at;
    this.count++;
  }

  /** The outcomes written since the last take(), in one buffer of their size. */
  take(): ArrayBuffer {
    this.dv.setUint32(0, this.count, true);
    const out = this.buf.slice(0, this.at);
    this.at = 4;
    this.count = 0;
    return out;
  }

  private reserve(size: number): void {
    if (this.at + size <= this.buf.byteLength) return;
    const grown = new ArrayBuffer(Math.max(this.buf.byteLength * 2, this.at + size));
    new Uint8Array(grown).set(this.bytes.subarray(0, this.at));
    this.buf = grown;
    this.dv = new DataView(grown);
    this.bytes = new Uint8Array(grown);
  }
}

export function packOkOutcomes(items: readonly OkOutcome[]): ArrayBuffer {
  const w = new OkOutcomeWriter(64);
  for (const o of items) w.write(o.placement, o.tick, o.more, o.elapsedNs, o.state, o.postHash, o.events);
  return w.take();
}

const NO_HASH = new Uint8Array(0);

/**
 * Reads packed outcomes one at a time, in place: next() reads an outcome's head; then either take()
 * copies its state, hash and log out, or the next next() skips them. The pool checks the head
 * against the tick it has in flight before copying anything.
 */
export class OkOutcomeReader {
  private readonly dv: DataView;
  private readonly bytes: Uint8Array;
  private readonly n: number;
  private read = 0;
  /** Where the current outcome's body starts and the next one's head does. */
  private body = 4;
  private end = 4;
  placement = 0;
  more = false;
  elapsedNs = 0n;
  private tickLo = 0;
  private tickHi = 0;
  private stateLen = 0;
  private hashLen = 0;

  constructor(buf: ArrayBuffer) {
    this.dv = new DataView(buf);
    this.bytes = new Uint8Array(buf);
    this.n = this.dv.getUint32(0, true);
  }

  /** Reads the next outcome's head; false when there is none. */
  next(): boolean {
    if (this.read === this.n) return false;
    this.read++;
    const dv = this.dv;
    let at = this.end;
    this.placement = dv.getFloat64(at, true);
    this.tickLo = dv.getUint32(at + 8, true);
    this.tickHi = dv.getUint32(at + 12, true);
    this.elapsedNs = dv.getBigUint64(at + 16, true);
    this.more = dv.getUint8(at + 24) === 1;
    this.hashLen = dv.getUint8(at + 25);
    this.stateLen = dv.getUint32(at + 26, true);
    at += OUTCOME_HEAD;
    this.body = at;
    at += this.stateLen + this.hashLen;
    const count = dv.getUint32(at, true);
    at += 4;
    for (let k = 0; k < count; k++) at += 12 + dv.getUint32(at + 8, true);
    this.end = at;
    return true;
  }

  /** Whether the current outcome is for `tick` (compared as numbers while exact: no bigint made). */
  isTick(tick: bigint): boolean {
    if (this.tickHi < 0x20_0000) return Number(tick) === this.tickHi * 0x1_0000_0000 + this.tickLo;
    return tick === this.tick();
  }

  tick(): bigint {
    return (BigInt(this.tickHi) << 32n) | BigInt(this.tickLo);
  }

  /** Set by take(): the current outcome's state, hash and log. */
  state: Uint8Array = NO_HASH;
  postHash: Uint8Array = NO_HASH;
  events: LogEntry[] = [];

  /** Copies out the current outcome's state, hash and log, each on its own (nothing keeps the message alive). */
  take(): void {
    const bytes = this.bytes;
    let at = this.body;
    const state = bytes.slice(at, at + this.stateLen);
    at += this.stateLen;
    // Most ticks observe nothing and carry no hash: one shared empty array (nothing can be written to it).
    const postHash = this.hashLen === 0 ? NO_HASH : bytes.slice(at, at + this.hashLen);
    at += this.hashLen;
    const dv = this.dv;
    const count = dv.getUint32(at, true);
    at += 4;
    const events: LogEntry[] = [];
    for (let k = 0; k < count; k++) {
      const len = dv.getUint32(at + 8, true);
      events.push({ id: dv.getUint32(at, true), result: dv.getInt32(at + 4, true), payload: bytes.slice(at + 12, at + 12 + len) });
      at += 12 + len;
    }
    this.state = state;
    this.postHash = postHash;
    this.events = events;
  }
}

export function unpackOkOutcomes(buf: ArrayBuffer): OkOutcome[] {
  const r = new OkOutcomeReader(buf);
  const out: OkOutcome[] = [];
  while (r.next()) {
    r.take();
    out.push({ placement: r.placement, tick: r.tick(), status: "ok", more: r.more, elapsedNs: r.elapsedNs, state: r.state, postHash: r.postHash, events: r.events });
  }
  return out;
}

export interface ReplayReply {
  type: "replayed";
  id: number;
  outcome: ReplayOutcome;
}

export type FromWorker = LoadReply | TickResults | ReplayReply;

/** Slots of the BigInt64Array control block shared with each worker. */
export const Ctl = {
  /** Placement whose tick is running, or -1 when idle. */
  current: 0,
  /** process.hrtime.bigint() when that tick started. */
  startedNs: 1,
  /** Bumped by the main thread to cancel the rest of an in-flight batch (evacuation). */
  generation: 2,
  /** Index in GUEST_PHASES of the guest call running (what a timeout names). */
  phase: 3,
  /**
   * process.hrtime.bigint() when the replay running now started (0: none). Each replayed tick has
   * the tick timeout from its own start, but the worker's other agents wait for the whole replay:
   * the watchdog's stall check counts from here.
   */
  replayStartedNs: 4,
  /**
   * Set to 1 by the worker once its code has loaded and it listens for requests. A worker just
   * spawned takes tens of milliseconds to get there: agents rebalanced onto it before then would wait
   * out its start-up as well as their loads, past their next tick.
   */
  booted: 5,
  size: 6,
} as const;

/**
 * Every way a worker runs guest code. Each is published in the control block while it runs, so the
 * watchdog bounds all of them by the tick timeout (not only agent_tick) and names the one that hung.
 */
export const GUEST_PHASES = [
  "agent_tick",
  "start",
  "_initialize",
  "agent_init",
  "agent_resume",
  "malloc",
  "agent_checkpoint",
  "agent_checkpoint_ptr",
  "replay",
  // A live tick waiting for the main thread to perform its HTTP request (wasm/host-io.ts).
  "http_request",
] as const;
export type GuestPhase = (typeof GUEST_PHASES)[number];

export function phaseIndex(phase: string): number {
  const i = (GUEST_PHASES as readonly string[]).indexOf(phase);
  return i < 0 ? 0 : i;
}
