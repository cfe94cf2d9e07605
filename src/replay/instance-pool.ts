// Replay instances, reset instead of rebuilt. Instantiating an agent and running _initialize and
// agent_init costs 60–130 µs; verifying a window of ticks costs a few µs a tick. So each thread keeps,
// per module (and import plan and memory cap), one idle instance and its post-initialisation image:
// every byte of memory, every mutable global, every table entry, read through the exports
// wasm/reset-exports.ts added at load, and the WASI layer's host-side state (where its out-of-tick
// random stream is: a reused instance's agent_resume must read the bytes a fresh one reads). Reusing it restores that image, which is the state a fresh
// instance reaches after _initialize + agent_init: the replay then resumes the pre-tick state into it
// exactly as it would into a fresh one, and state the checkpoint does not capture (a global, a table
// entry, memory outside the state) is back at its initial value, so it still diverges.
//
// An instance is not reused when it may differ from a fresh one in a way the image cannot undo:
// its memory grew or a table grew (neither can shrink), or its run failed (trap, divergence).
// Modules the rewriter left alone (no RESET_SECTION) are always instantiated fresh.
import type { ObservationSource } from "../eventlog/recorder.js";
import type { ImportPlan } from "../hostcalls/policy.js";
import { RESET_GLOBAL_PREFIX, RESET_MEMORY_EXPORT, RESET_SECTION, RESET_TABLE_PREFIX } from "../wasm/reset-exports.js";
import { AgentSandbox } from "../wasm/sandbox.js";
import type { WasiImage } from "../wasi/host.js";

/** Memories larger than this are not pooled: copying the image would cost more than instantiating. */
export const RESET_IMAGE_MAX_BYTES = 4 * 1024 * 1024;
/** Idle instances kept per thread, across modules (least recently used go first). */
export const REPLAY_POOL_MAX_IDLE = 16;
/** Memory images kept per thread, in bytes (each idle instance holds its own memory as well). */
export const REPLAY_POOL_MAX_IMAGE_BYTES = 32 * 1024 * 1024;

export interface PoolTarget {
  module: WebAssembly.Module;
  plan: ImportPlan;
  memoryCapPages: number;
}

/** What the hostcalls of a replay instance answer from; the engine sets it before each guest call. */
export interface ReplayIO {
  source: ObservationSource;
  budget: bigint;
  price: bigint;
}

interface Image {
  memory: WebAssembly.Memory | null;
  bytes: Uint8Array | null;
  globals: { global: WebAssembly.Global; value: unknown }[];
  tables: { table: WebAssembly.Table; entries: unknown[] }[];
  /** The WASI layer's host-side state (its out-of-tick random stream's position, its phase). */
  host: WasiImage | null;
}

export interface ReplayInstance {
  sandbox: AgentSandbox;
  io: ReplayIO;
  /** Set when the instance can go back to the pool. */
  readonly key: string | null;
  readonly image: Image | null;
}

const NO_WORLD = {
  nowNs: (): bigint => {
    throw new Error("replay must not read the clock");
  },
  randomFill: (): void => {
    throw new Error("replay must not read entropy");
  },
};

const idle = new Map<string, ReplayInstance>();
const keys = new WeakMap<WebAssembly.Module, string | null>();
let imageBytes = 0;
const counters = { created: 0, reused: 0, dropped: 0 };

/** How many replay instances this thread created, reused and dropped (tests and benches read it). */
export function replayPoolStats(): { created: number; reused: number; dropped: number; idle: number } {
  return { ...counters, idle: idle.size };
}

/** Drops every idle instance (tests compare pooled against fresh runs). */
export function clearReplayPool(): void {
  idle.clear();
  imageBytes = 0;
}

const targetKeys = new WeakMap<PoolTarget, string | null>();

function poolKey(t: PoolTarget): string | null {
  const known = targetKeys.get(t);
  if (known !== undefined) return known;
  let base = keys.get(t.module);
  if (base === undefined) {
    const section = WebAssembly.Module.customSections(t.module, RESET_SECTION)[0];
    base = section ? new TextDecoder().decode(section) : null;
    keys.set(t.module, base);
  }
  const plan = JSON.stringify(t.plan, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
  const key = base === null ? null : `${base}|${t.memoryCapPages}|${plan}`;
  targetKeys.set(t, key);
  return key;
}

function captureImage(sandbox: AgentSandbox): Image | null {
  const { exports, memory } = sandbox.raw;
  const mem = memory ?? (exports[RESET_MEMORY_EXPORT] as WebAssembly.Memory | undefined) ?? null;
  if (mem && mem.buffer.byteLength > RESET_IMAGE_MAX_BYTES) return null;
  const image: Image = { memory: mem, bytes: mem ? new Uint8Array(mem.buffer).slice() : null, globals: [], tables: [], host: sandbox.hostImage() };
  for (const [name, value] of Object.entries(exports)) {
    if (name.startsWith(RESET_GLOBAL_PREFIX)) {
      const global = value as WebAssembly.Global;
      image.globals.push({ global, value: global.value });
    } else if (name.startsWith(RESET_TABLE_PREFIX)) {
      const table = value as WebAssembly.Table;
      const entries: unknown[] = [];
      for (let i = 0; i < table.length; i++) entries.push(table.get(i));
      image.tables.push({ table, entries });
    }
  }
  return image;
}

/** Whether the instance still has the shape of its image (memory and tables cannot shrink back). */
function sameShape(image: Image): boolean {
  if (image.memory && image.memory.buffer.byteLength !== image.bytes?.byteLength) return false;
  return image.tables.every((t) => t.table.length === t.entries.length);
}

function restore(sandbox: AgentSandbox, image: Image): void {
  sandbox.restoreHostImage(image.host);
  if (image.memory && image.bytes) new Uint8Array(image.memory.buffer).set(image.bytes);
  for (const g of image.globals) g.global.value = g.value;
  for (const t of image.tables) for (let i = 0; i < t.entries.length; i++) t.table.set(i, t.entries[i]);
}

/**
 * A replay instance in its post-initialisation state (agent_init has run with every observation
 * answered by `initSource`): a pooled one reset to its image, or a fresh one. `onPhase` is told of
 * each guest call a fresh instance makes (the worker's watchdog bounds them).
 */
export function acquireReplayInstance(target: PoolTarget, initSource: ObservationSource, onPhase?: (phase: string) => void): ReplayInstance {
  const key = poolKey(target);
  if (key !== null) {
    const pooled = idle.get(key);
    if (pooled) {
      idle.delete(key);
      imageBytes -= pooled.image?.bytes?.byteLength ?? 0;
      if (pooled.image && sameShape(pooled.image)) {
        restore(pooled.sandbox, pooled.image);
        counters.reused++;
        pooled.io.source = initSource;
        pooled.io.budget = 0n;
        pooled.io.price = 0n;
        return pooled;
      }
      counters.dropped++;
    }
  }
  const io: ReplayIO = { source: initSource, budget: 0n, price: 0n };
  const sandbox = AgentSandbox.instantiate({
    module: target.module,
    plan: target.plan,
    memoryCapPages: target.memoryCapPages,
    // No authority: a replayed side effect returns its recorded result and never acts again.
    context: {
      source: { observe: (id, live, check) => io.source.observe(id, live, check) },
      budget: () => io.budget,
      price: () => io.price,
      authority: () => false,
      world: NO_WORLD,
    },
    ...(onPhase ? { onPhase } : {}),
  });
  sandbox.init();
  counters.created++;
  const image = key === null ? null : captureImage(sandbox);
  return { sandbox, io, key: image ? key : null, image };
}

/**
 * Hands an instance back after a run. Only a run that completed (`clean`) on an instance whose
 * memory and tables kept their size is kept; anything else is dropped for the garbage collector.
 */
export function releaseReplayInstance(inst: ReplayInstance, clean: boolean): void {
  if (inst.key === null || !inst.image) return;
  if (!clean || !sameShape(inst.image)) {
    counters.dropped++;
    return;
  }
  const prev = idle.get(inst.key);
  if (prev) {
    idle.delete(inst.key);
    imageBytes -= prev.image?.bytes?.byteLength ?? 0;
  }
  idle.set(inst.key, inst);
  imageBytes += inst.image.bytes?.byteLength ?? 0;
  for (const [k, v] of idle) {
    if (idle.size <= REPLAY_POOL_MAX_IDLE && imageBytes <= REPLAY_POOL_MAX_IMAGE_BYTES) break;
    idle.delete(k);
    imageBytes -= v.image?.bytes?.byteLength ?? 0;
  }
}
