// Replay instances, reset instead of rebuilt. Instantiating an agent and running _initialize and
// agent_init costs 60–130 µs; verifying a window of ticks costs a few µs a tick. So each thread keeps,
// per module (and import plan and memory cap), one idle instance and its post-initialisation image:
// every byte of memory (copied by the host), every mutable global and table entry (saved into shadow
// copies inside the instance by the `igord.save` function wasm/reset-exports.ts added at load, put
// back by one call of `igord.restore`), and the WASI layer's host-side state (where its out-of-tick
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
import { RESET_MEMORY_EXPORT, RESET_RESTORE_EXPORT, RESET_SAVE_EXPORT, RESET_SECTION } from "../wasm/reset-exports.js";
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
  bytes: Uint8Array | null;
  /**
   * A view of the instance's memory, kept across resets (no buffer getter, no new view a reset). A
   * memory that grew detached its buffer, so the view's length is then 0 and the instance is dropped.
   */
  view: Uint8Array | null;
  /** The instance's `igord.restore`: globals and tables back to the image, 0 when a size moved. */
  restore: () => number;
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
  const save = exports[RESET_SAVE_EXPORT] as (() => void) | undefined;
  const restore = exports[RESET_RESTORE_EXPORT] as (() => number) | undefined;
  if (!save || !restore) return null;
  save();
  const view = mem ? new Uint8Array(mem.buffer) : null;
  return { bytes: view ? view.slice() : null, view, restore, host: sandbox.hostImage() };
}

/** Whether the instance's memory kept its size (a memory that grew cannot shrink back). */
function memoryKept(image: Image): boolean {
  return image.view === null || image.view.length === image.bytes?.length;
}

/** Puts the instance back to its image; false (nothing to trust) when its memory or a table grew. */
function restore(sandbox: AgentSandbox, image: Image): boolean {
  if (!memoryKept(image) || image.restore() !== 1) return false;
  sandbox.restoreHostImage(image.host);
  if (image.view && image.bytes) image.view.set(image.bytes);
  return true;
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
      imageBytes -= pooled.image?.bytes?.length ?? 0;
      if (pooled.image && restore(pooled.sandbox, pooled.image)) {
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
 * memory kept its size is kept (one whose table grew is dropped when `igord.restore` refuses it);
 * anything else is dropped for the garbage collector.
 */
export function releaseReplayInstance(inst: ReplayInstance, clean: boolean): void {
  if (inst.key === null || !inst.image) return;
  if (!clean || !memoryKept(inst.image)) {
    counters.dropped++;
    return;
  }
  const prev = idle.get(inst.key);
  if (prev) {
    idle.delete(inst.key);
    imageBytes -= prev.image?.bytes?.length ?? 0;
  }
  idle.set(inst.key, inst);
  imageBytes += inst.image.bytes?.length ?? 0;
  for (const [k, v] of idle) {
    if (idle.size <= REPLAY_POOL_MAX_IDLE && imageBytes <= REPLAY_POOL_MAX_IMAGE_BYTES) break;
    idle.delete(k);
    imageBytes -= v.image?.bytes?.length ?? 0;
  }
}
