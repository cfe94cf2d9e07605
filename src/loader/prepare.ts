// Turns a .wasm file (and its manifest) into something the pool can instantiate, refusing bad input
// with a specific error before anything runs or is stored: unreadable or malformed bytes, missing
// lifecycle exports, imports the manifest does not grant, capabilities the node does not offer,
// memory above the manifest's cap.
import { basename, dirname, resolve } from "node:path";
import { ErrorCode, IgordError } from "../errors.js";
import { sha256Hex } from "../hash/bytes.js";
import { describeProblem, FileReadError, readRegularFile } from "../files/regular-file.js";
import { type ImportPlan, planImports } from "../hostcalls/policy.js";
import { type AgentManifest, loadManifest, memoryCapPages } from "../manifest/manifest.js";
import { checkAgentExports } from "../wasm/abi.js";
import { describeRefusedInstruction, findRefusedInstruction } from "../wasm/code-scan.js";
import { type ModuleInfo, readModuleInfo, withMemoryMaximum, withTableMaxima } from "../wasm/module-info.js";
import { withoutResetMarker, withResetExports } from "../wasm/reset-exports.js";

/** Refuse agent modules larger than this. */
export const MAX_WASM_BYTES = 64 * 1024 * 1024;
const AGENT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface PreparedAgent {
  agentId: string;
  wasmPath: string;
  /** SHA-256 of the exact file bytes, hex. */
  wasmHash: string;
  bytes: Uint8Array;
  module: WebAssembly.Module;
  manifest: AgentManifest;
  plan: ImportPlan;
  memoryCapPages: number;
}

/** igor's rule: the file name without .wasm; "agent.wasm" (or an empty name) takes its folder's name. */
export function deriveAgentId(wasmPath: string): string {
  const stem = basename(wasmPath).replace(/\.wasm$/, "");
  if (stem === "" || stem === "agent") return basename(dirname(resolve(wasmPath)));
  return stem;
}

export function checkAgentId(id: string): string {
  if (!AGENT_ID_RE.test(id)) {
    throw new IgordError(
      ErrorCode.AgentIdInvalid,
      `agent id "${id}" is not valid (1-128 characters: letters, digits, ".", "_", "-"; starting with a letter or digit)`,
    );
  }
  return id;
}


/**
 * Distinct modules (and validated byte strings) a node keeps at once, the least recently used
 * module (the oldest byte string) dropped first: every module a peer or an operator brought stays otherwise. A dropped one an agent still
 * runs is held by that agent; the cache only saves compiling it again.
 */
export const MODULE_CACHE_SIZE = 256;
/**
 * Bytes of modules the cache keeps at once, counted as the bytes each was compiled from (V8 keeps
 * them with the module; compiled code comes on top). A count alone let a dev loop (each save of a
 * module with MiB of debug info an upgrade) keep every version ever saved, though only the newest
 * runs. 64 MiB (MAX_WASM_BYTES) holds hundreds of ordinary modules or a few big ones; the newest is
 * kept even alone above it, since the agent being loaded holds it anyway.
 */
export const MODULE_CACHE_BYTES = 64 * 1024 * 1024;

function setBounded<V>(map: Map<string, V>, key: string, value: V): void {
  if (map.size >= MODULE_CACHE_SIZE) map.delete(map.keys().next().value as string);
  map.set(key, value);
}

/** Compiled modules by (hash, memory cap): V8 only reuses compiled code while a Module is alive. */
export class ModuleCache {
  /** Least recently used first, with the size of the bytes each was compiled from. */
  private readonly modules = new Map<string, { module: WebAssembly.Module; bytes: number }>();
  private held = 0;
  /**
   * What WebAssembly.validate accepted, by SHA-256 (hex) of the bytes, with the module's parsed
   * imports, exports and memory: validating and parsing again cost ~0.5 ms per load of the same bytes.
   */
  private readonly valid = new Map<string, ModuleInfo>();

  /** The parsed module of bytes with this hash, validated once (`read` runs only the first time). */
  validInfo(wasmHash: string, read: () => ModuleInfo): ModuleInfo {
    let info = this.valid.get(wasmHash);
    if (!info) {
      info = read();
      setBounded(this.valid, wasmHash, info);
    }
    return info;
  }

  get(key: string, bytes: number, compile: () => WebAssembly.Module): WebAssembly.Module {
    const hit = this.modules.get(key);
    if (hit) {
      this.modules.delete(key);
      this.modules.set(key, hit);
      return hit.module;
    }
    const module = compile();
    this.modules.set(key, { module, bytes });
    this.held += bytes;
    for (const [k, e] of this.modules) {
      if (this.modules.size === 1 || (this.modules.size <= MODULE_CACHE_SIZE && this.held <= MODULE_CACHE_BYTES)) break;
      this.modules.delete(k);
      this.held -= e.bytes;
    }
    return module;
  }

  get size(): number {
    return this.modules.size;
  }

  get bytes(): number {
    return this.held;
  }
}

export function readWasm(path: string): Uint8Array<ArrayBuffer> {
  try {
    return readRegularFile(path, MAX_WASM_BYTES);
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    const p = e.problem;
    if (p.kind === "missing") throw new IgordError(ErrorCode.WasmNotFound, `cannot read ${path}: ${p.detail}`);
    if (p.kind === "too_large") {
      throw new IgordError(ErrorCode.WasmMalformed, `${path} is ${p.size} bytes, above the ${p.limit}-byte limit for agent modules`);
    }
    throw new IgordError(ErrorCode.WasmMalformed, `${path} ${describeProblem(p)}`);
  }
}

/**
 * Refuses a module file that could never load (not there, unreadable, too large, not WebAssembly)
 * before anything is built for it: `igord run` checks it so before its node takes a data dir.
 */
export function checkWasmFile(path: string): void {
  compileOrExplain(readWasm(path), path);
}

function compileOrExplain(bytes: Uint8Array<ArrayBuffer>, path: string): void {
  if (bytes.length === 0)
    throw new IgordError(ErrorCode.WasmMalformed, `${path} is empty (0 bytes), not a WebAssembly module`);
  // Before the engine's own check: Node 20 refuses relaxed SIMD as invalid, 22 and 24 accept it.
  const refused = findRefusedInstruction(bytes);
  if (refused) {
    throw new IgordError(ErrorCode.WasmInstructionRefused, `${path} ${describeRefusedInstruction(refused)}`, {
      details: { reason: refused.reason, instruction: refused.instruction, functionIndex: refused.functionIndex, offset: refused.offset },
    });
  }
  if (WebAssembly.validate(bytes)) return;
  try {
    new WebAssembly.Module(bytes);
  } catch (e) {
    throw new IgordError(
      ErrorCode.WasmMalformed,
      `${path} is not a valid WebAssembly module: ${(e as Error).message}`,
    );
  }
  throw new IgordError(ErrorCode.WasmMalformed, `${path} is not a valid WebAssembly module`);
}

export interface PrepareOptions {
  wasmPath: string;
  agentId?: string;
  manifestPath?: string;
  /** The node's offered capabilities, a snapshot taken once for this load. */
  offered: ReadonlySet<string>;
  cache: ModuleCache;
}

export function prepareAgent(o: PrepareOptions): PreparedAgent {
  const agentId = checkAgentId(o.agentId ?? deriveAgentId(o.wasmPath));
  const bytes = readWasm(o.wasmPath);
  compileOrExplain(bytes, o.wasmPath);
  const manifest = loadManifest(o.wasmPath, o.manifestPath);
  return prepareFromBytes({ agentId, bytes, manifest, source: o.wasmPath, offered: o.offered, cache: o.cache });
}

/** Prepares an agent from bytes already in hand (stored modules, imports, migrations). */
/**
 * Entries an agent's tables hold at most, all its tables together. Tables are host memory beside the
 * agent's linear memory that max_memory_bytes does not count (tens of bytes an entry, twice over
 * with a replay instance's shadow copy): one table of 10 million entries took ~300 MB and seconds to
 * instantiate. Toolchains' tables hold one entry per function whose address is taken.
 */
export const MAX_TABLE_ENTRIES = 100_000;

/**
 * Each table's maximum so that all of them together hold at most MAX_TABLE_ENTRIES (what is left
 * after their initial sizes, shared evenly; a smaller declared maximum kept), or null when every
 * table's declared maximum is within that already. table.grow past it returns -1 inside the agent.
 */
function tableCaps(info: ModuleInfo): number[] | null {
  const tables = info.definedTables;
  if (tables === null) throw new IgordError(ErrorCode.WasmTableLimit, "module declares a table igord does not support (only funcref and externref tables with 32-bit limits)");
  if (tables.length === 0) return null;
  const initial = tables.reduce((n, t) => n + t.initial, 0);
  if (initial > MAX_TABLE_ENTRIES) {
    throw new IgordError(ErrorCode.WasmTableLimit, `module declares tables of ${initial} entries in all, above the ${MAX_TABLE_ENTRIES} an agent's tables may hold`, {
      details: { entries: initial, limit: MAX_TABLE_ENTRIES },
    });
  }
  const share = Math.floor((MAX_TABLE_ENTRIES - initial) / tables.length);
  const maxima = tables.map((t) => Math.min(t.maximum ?? Number.POSITIVE_INFINITY, t.initial + share));
  return tables.every((t, i) => t.maximum === maxima[i]) ? null : maxima;
}

/**
 * Module bytes as prepareFromBytes takes them: a view of the same memory (a module may be tens of
 * MiB: a copy per caller kept each alive twice), a copy only of bytes on shared memory.
 */
export function moduleBytes(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b.buffer instanceof ArrayBuffer ? new Uint8Array(b.buffer, b.byteOffset, b.length) : new Uint8Array(b);
}

export function prepareFromBytes(o: {
  agentId: string;
  bytes: Uint8Array<ArrayBuffer>;
  manifest: AgentManifest;
  /** Names the module in errors. */
  source: string;
  offered: ReadonlySet<string>;
  cache: ModuleCache;
}): PreparedAgent {
  const { agentId, bytes, manifest } = o;
  // Bytes are named by their hash: the same hash validated once (a migration admits, then resumes,
  // the same module) need not be validated again.
  const wasmHash = sha256Hex(bytes);
  const info = o.cache.validInfo(wasmHash, () => {
    compileOrExplain(bytes, o.source);
    return readModuleInfo(bytes);
  });
  checkAgentExports(info);
  const plan = planImports(info, manifest, o.offered);
  const capPages = memoryCapPages(manifest);
  if (info.memoryCount > 1)
    throw new IgordError(ErrorCode.WasmMemoryLimit, "module declares more than one memory");
  let capGrowth = false;
  const mem = info.definedMemory;
  if (mem) {
    if (mem.shared || mem.memory64)
      throw new IgordError(ErrorCode.WasmMemoryLimit, "shared and 64-bit memories are not supported");
    if (mem.initialPages > capPages) {
      throw new IgordError(
        ErrorCode.WasmMemoryLimit,
        `module declares ${mem.initialPages} pages (${mem.initialPages * 64} KiB) of initial memory, above its limit of ${capPages} pages (max_memory_bytes ${manifest.resourceLimits.maxMemoryBytes})`,
        { details: { initialPages: mem.initialPages, capPages } },
      );
    }
    // Cap growth in the binary itself: memory.grow past the cap then returns -1 inside the agent.
    capGrowth = mem.maximumPages === null || mem.maximumPages > capPages;
  }
  if (plan.importedMemory && plan.importedMemory.initialPages > capPages) {
    throw new IgordError(
      ErrorCode.WasmMemoryLimit,
      `module imports a memory of ${plan.importedMemory.initialPages} pages, above its limit of ${capPages} pages`,
    );
  }
  const tableMaxima = tableCaps(info);
  const key = `${wasmHash}:${capPages}`;
  // Exports every mutable global and table so replay can reset a pooled instance (wasm/reset-exports.ts).
  const module = o.cache.get(key, bytes.length, () => {
    const memoryCapped = capGrowth ? withMemoryMaximum(bytes, capPages) : bytes;
    const runBytes = tableMaxima ? withTableMaxima(memoryCapped, tableMaxima) : memoryCapped;
    const rewritten = withResetExports(runBytes, key);
    if (rewritten) {
      try {
        return new WebAssembly.Module(rewritten);
      } catch (e) {
        // The additions took a module at one of WebAssembly's limits past it (exports, functions,
        // types): it runs as it is, its replay instances fresh. The module itself compiled above.
        if (!(e instanceof WebAssembly.CompileError)) throw e;
      }
    }
    return new WebAssembly.Module(withoutResetMarker(runBytes));
  });
  return { agentId, wasmPath: o.source, wasmHash, bytes, module, manifest, plan, memoryCapPages: capPages };
}
