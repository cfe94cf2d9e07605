// One agent instance and its lifecycle ABI: instantiate → _initialize → agent_init → [agent_resume]
// → agent_tick / state capture. Used inside worker threads for live ticks and, later, by replay.
// Errors come out as IgordError with AGENT_TRAP / AGENT_ABORT / AGENT_BAD_STATE / WASM_LINK codes.
import { ErrorCode, IgordError } from "../errors.js";
import { ZERO_SOURCE } from "../eventlog/recorder.js";
import type { HostContext } from "../hostcalls/context.js";
import { readAsString } from "../hostcalls/context.js";
import { buildImports } from "../hostcalls/imports.js";
import type { ImportPlan } from "../hostcalls/policy.js";
import { OutputTail } from "../hostcalls/output-tail.js";
import { CAPABILITY_OF_CALL, type RefusedCall, type WasiImage, WasiExit, WasiHost } from "../wasi/host.js";

/** An abort's message and file name are cut to this many characters (a guest may pass 32 Mi). */
export const MAX_ABORT_TEXT_CHARS = 1000;

/** AssemblyScript's env.abort, raised out of the guest and reported with its message and location. */
class GuestAbort extends Error {
  constructor(
    readonly abortMessage: string,
    readonly file: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`agent aborted: ${abortMessage} at ${file}:${line}:${column}`);
  }
}

export interface SandboxOptions {
  module: WebAssembly.Module;
  plan: ImportPlan;
  memoryCapPages: number;
  context: Omit<HostContext, "memory">;
  /** Told before each guest call (start, _initialize, agent_init, agent_tick, ...): the worker publishes it. */
  onPhase?: (phase: string) => void;
}

type Exports = {
  agent_init: () => void;
  agent_tick: () => number | undefined;
  agent_checkpoint: () => number;
  agent_checkpoint_ptr: () => number;
  agent_resume: (ptr: number, len: number) => void;
  malloc?: (n: number) => number;
  _initialize?: () => void;
  __new?: (size: number, id: number) => number;
  __pin?: (ptr: number) => number;
  memory?: WebAssembly.Memory;
};

/** AssemblyScript's runtime type id of ArrayBuffer, for __new. */
const AS_ARRAYBUFFER_ID = 1;

function isWasmException(e: unknown): boolean {
  const Exception = (WebAssembly as { Exception?: new (...args: never[]) => unknown }).Exception;
  return Exception !== undefined && e instanceof Exception;
}

/** What a failed guest call's error adds to the trap or exit. */
export interface FailureNotes {
  /** What the call last wrote (log lines, stdout/stderr), lines joined with " | ", or null. */
  output: string | null;
  /** The WASI calls it was refused ENOTCAPABLE. */
  refused: readonly RefusedCall[];
}

/**
 * `notes`: what the failed call last wrote (its output tail) and which WASI calls it was refused for
 * want of a capability, reported by a trap and a non-zero proc_exit: a runtime prints its reason
 * there (Rust's panic message, "memory allocation of N bytes failed", a C assert, a no_std panic
 * handler's log_emit) and then traps with a bare `unreachable`.
 */
export function toAgentError(e: unknown, during: string, notes: FailureNotes | null = null): IgordError {
  if (e instanceof IgordError) return e;
  const said: string[] = [];
  const extra: Record<string, unknown> = {};
  if (notes !== null && notes.output !== null) {
    said.push(`its last output: ${notes.output}`);
    extra.output = notes.output;
  }
  if (notes !== null && notes.refused.length > 0) {
    const each = notes.refused.map((c) => `${c} needs "${CAPABILITY_OF_CALL[c]}"`).join(", ");
    said.push(`WASI calls refused ENOTCAPABLE, the manifest not granting their capability: ${each}`);
    extra.refused = notes.refused;
  }
  const quoted = (msg: string): string => (said.length === 0 ? msg : `${msg} (${said.join("; ")})`);
  const withNotes = (details: Record<string, unknown>): Record<string, unknown> => ({ ...details, ...extra });
  if (e instanceof WasiExit) {
    const msg = `agent called proc_exit(${e.exitCode}) during ${during}`;
    if (e.exitCode === 0) return new IgordError(ErrorCode.AgentExit, msg, { details: { exitCode: e.exitCode, during } });
    return new IgordError(ErrorCode.AgentExit, quoted(msg), { details: withNotes({ exitCode: e.exitCode, during }) });
  }
  if (e instanceof GuestAbort) {
    return new IgordError(
      ErrorCode.AgentAbort,
      `agent aborted during ${during}: ${e.abortMessage} (${e.file}:${e.line}:${e.column})`,
      {
        details: { abortMessage: e.abortMessage, file: e.file, line: e.line, column: e.column, during },
      },
    );
  }
  // A WebAssembly exception the guest threw and never caught is no Error: String() of it says nothing.
  const msg = e instanceof Error ? e.message : isWasmException(e) ? "an uncaught WebAssembly exception (throw without a catch)" : String(e);
  return new IgordError(ErrorCode.AgentTrap, quoted(`agent trapped during ${during}: ${msg}`), {
    details: withNotes({ trap: msg, during }),
  });
}

export class AgentSandbox {
  private constructor(
    private readonly exports: Exports,
    private readonly memory: WebAssembly.Memory | null,
    private readonly onPhase: (phase: string) => void,
    /** The instance's WASI layer (null when it imports none): told when ticks begin and end. */
    private readonly wasi: WasiHost | null,
    /** What its hostcalls observe through: swapped for ZERO_SOURCE while agent_checkpoint runs. */
    private readonly ctx: HostContext,
    /** What the current guest call wrote: quoted by its failure. */
    private readonly tail: OutputTail,
  ) {}

  /** A guest call starts: its failure reports what it writes and is refused, not an earlier call's. */
  private beginCall(): void {
    this.tail.clear();
    this.wasi?.beginCall();
  }

  private failureNotes(): FailureNotes {
    return { output: this.tail.text(), refused: this.wasi?.refusedCalls() ?? [] };
  }

  static instantiate(opts: SandboxOptions): AgentSandbox {
    let memory: WebAssembly.Memory | null = null;
    if (opts.plan.importedMemory) {
      const initial = opts.plan.importedMemory.initialPages;
      if (initial > opts.memoryCapPages) {
        throw new IgordError(
          ErrorCode.WasmMemoryLimit,
          `module imports a memory of ${initial} pages, above its limit of ${opts.memoryCapPages} pages`,
        );
      }
      // At most the module's own maximum: linking refuses a memory that may grow past what it declares.
      const declared = opts.plan.importedMemory.maximumPages;
      memory = new WebAssembly.Memory({ initial, maximum: declared === null ? opts.memoryCapPages : Math.min(declared, opts.memoryCapPages) });
    }
    const ref: { mem: WebAssembly.Memory | null } = { mem: memory };
    const tail = new OutputTail();
    const ctx: HostContext = { ...opts.context, memory: () => ref.mem, tail };
    // The guest's text, cut: the error goes to the main thread, the log, the agent's status.
    const text = (ptr: number): string | null => {
      const s = readAsString(ctx, ptr, MAX_ABORT_TEXT_CHARS + 1);
      return s !== null && s.length > MAX_ABORT_TEXT_CHARS ? `${s.slice(0, MAX_ABORT_TEXT_CHARS)}…` : s;
    };
    const abort = (msg: number, file: number, line: number, col: number): never => {
      throw new GuestAbort(
        text(msg) ?? "(no message)",
        text(file) ?? "(unknown)",
        line >>> 0,
        col >>> 0,
      );
    };
    const onPhase = opts.onPhase ?? ((): void => undefined);
    const wasi = opts.plan.wasi ? new WasiHost(ctx, opts.plan.wasi) : null;
    let instance: WebAssembly.Instance;
    onPhase("start");
    try {
      instance = new WebAssembly.Instance(opts.module, buildImports(opts.plan, ctx, abort, memory, wasi));
    } catch (e) {
      if (e instanceof WebAssembly.LinkError) {
        throw new IgordError(ErrorCode.WasmLink, `cannot link agent: ${e.message}`);
      }
      throw toAgentError(e, "start");
    }
    const exports = instance.exports as unknown as Exports;
    if (!ref.mem && exports.memory instanceof WebAssembly.Memory) ref.mem = exports.memory;
    const sandbox = new AgentSandbox(exports, ref.mem, onPhase, wasi, ctx, tail);
    if (exports._initialize) sandbox.call("_initialize", () => exports._initialize?.());
    return sandbox;
  }

  /** The instance's exports and memory: what the replay pool reads and restores (replay/instance-pool.ts). */
  get raw(): { exports: WebAssembly.Exports; memory: WebAssembly.Memory | null } {
    return { exports: this.exports as unknown as WebAssembly.Exports, memory: this.memory };
  }

  /** The WASI layer's host-side state (null without WASI): the replay pool's image holds it too. */
  hostImage(): WasiImage | null {
    return this.wasi?.image() ?? null;
  }

  restoreHostImage(image: WasiImage | null): void {
    if (image) this.wasi?.restore(image);
  }

  private call<T>(during: string, fn: () => T): T {
    this.onPhase(during);
    this.beginCall();
    try {
      return fn();
    } catch (e) {
      throw toAgentError(e, during, this.failureNotes());
    }
  }

  init(): void {
    this.call("agent_init", () => this.exports.agent_init());
    this.wasi?.settle();
  }

  /** Restores state; an empty state calls agent_resume(0, 0). */
  resume(state: Uint8Array): void {
    if (state.length === 0) {
      this.call("agent_resume", () => this.exports.agent_resume(0, 0));
      this.wasi?.settle();
      return;
    }
    const ptr = this.call("malloc", () => this.alloc(state.length));
    if (ptr === 0) {
      throw new IgordError(
        ErrorCode.AgentBadState,
        `agent could not allocate ${state.length} bytes to resume (allocator returned 0)`,
      );
    }
    const mem = this.requireMemory();
    if (ptr + state.length > mem.buffer.byteLength) {
      throw new IgordError(ErrorCode.AgentBadState, `agent allocator returned ${ptr}, outside its memory`);
    }
    new Uint8Array(mem.buffer, ptr, state.length).set(state);
    this.call("agent_resume", () => this.exports.agent_resume(ptr, state.length));
    this.wasi?.settle();
  }

  private alloc(n: number): number {
    const { malloc, __new, __pin } = this.exports;
    if (malloc) return malloc(n) >>> 0;
    if (__new && __pin) return __pin(__new(n, AS_ARRAYBUFFER_ID)) >>> 0;
    throw new IgordError(
      ErrorCode.WasmMissingExport,
      "agent has state to resume but exports no allocator (malloc, or AssemblyScript's __new and __pin via --exportRuntime)",
    );
  }

  private requireMemory(): WebAssembly.Memory {
    if (!this.memory) throw new IgordError(ErrorCode.AgentBadState, "agent has state but exports no memory");
    return this.memory;
  }

  /** Runs agent_tick; true when the agent reports more work pending. */
  tick(): boolean {
    this.wasi?.beginTick();
    // As call() does, without a closure: this and stateView run every tick, often in cold code.
    this.onPhase("agent_tick");
    this.beginCall();
    let r: number | undefined;
    try {
      r = this.exports.agent_tick();
    } catch (e) {
      throw toAgentError(e, "agent_tick", this.failureNotes());
    }
    this.wasi?.endTick();
    return typeof r === "number" && r !== 0;
  }

  /** agent_checkpoint + agent_checkpoint_ptr, copied out of guest memory. */
  captureState(): Uint8Array {
    return this.stateView().slice();
  }

  /**
   * agent_checkpoint + agent_checkpoint_ptr as a view of guest memory, valid until guest code runs
   * again or memory grows: for a caller that copies it at once (the worker packs it into its results).
   */
  stateView(): Uint8Array {
    let size: number;
    let ptr: number;
    // Serialising the state observes and acts on nothing (ZERO_SOURCE, WASI output dropped): the
    // node runs agent_checkpoint after every tick and at every load, replay only where it checks a
    // state, so nothing it does may be recorded, performed or carried into the next tick.
    const source = this.ctx.source;
    this.ctx.source = ZERO_SOURCE;
    this.wasi?.beginCheckpoint();
    try {
      this.onPhase("agent_checkpoint");
      this.beginCall();
      try {
        size = this.exports.agent_checkpoint();
      } catch (e) {
        throw toAgentError(e, "agent_checkpoint", this.failureNotes());
      }
      if (size < 0)
        throw new IgordError(ErrorCode.AgentBadState, `agent_checkpoint returned a negative size (${size})`);
      if (size === 0) return new Uint8Array(0);
      this.onPhase("agent_checkpoint_ptr");
      try {
        ptr = this.exports.agent_checkpoint_ptr() >>> 0;
      } catch (e) {
        throw toAgentError(e, "agent_checkpoint_ptr", this.failureNotes());
      }
    } finally {
      this.ctx.source = source;
      this.wasi?.endCheckpoint();
    }
    // Re-read the buffer: the calls above may have grown memory and detached the old one.
    const mem = this.requireMemory();
    if (ptr + size > mem.buffer.byteLength) {
      throw new IgordError(
        ErrorCode.AgentBadState,
        `agent checkpoint [${ptr}, ${ptr + size}) lies outside its ${mem.buffer.byteLength}-byte memory`,
      );
    }
    return new Uint8Array(mem.buffer, ptr, size);
  }
}
