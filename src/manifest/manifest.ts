// The agent's capability manifest (igor's agent.manifest.json): deny-by-default capabilities,
// resource limits and migration policy. Parsing is strict about types and names every bad field.
import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ErrorCode, IgordError } from "../errors.js";
import { describeProblem, FileReadError, readRegularFile } from "../files/regular-file.js";

export const WASM_PAGE_BYTES = 65_536;
/** Default and maximum linear memory of an agent: 64 MiB (1,024 pages). */
export const MAX_AGENT_MEMORY_BYTES = 64 * 1024 * 1024;
/** Manifests larger than this are refused before parsing. */
export const MAX_MANIFEST_BYTES = 256 * 1024;
/**
 * Bounds of the manifest's tick_interval_ms. Below 10 ms a tick's own round trip through a worker
 * (tens of µs) and the timer's 1 ms resolution dominate; the fast path (--fast-tick-interval) is the
 * way to tick faster. Above one day Node's timers overflow long before anything useful happens.
 */
export const MIN_AGENT_TICK_INTERVAL_MS = 10;
export const MAX_AGENT_TICK_INTERVAL_MS = 86_400_000;

export interface CapabilityGrant {
  version: number;
  options: Readonly<Record<string, unknown>>;
}

export interface AgentManifest {
  capabilities: ReadonlyMap<string, CapabilityGrant>;
  resourceLimits: {
    maxMemoryBytes: number;
    maxCpuMillis: bigint | null;
    maxStorageBytes: bigint | null;
  };
  migrationPolicy: {
    enabled: boolean;
    /** Microcents per second; null = no ceiling. */
    maxPricePerSecond: bigint | null;
    preferredRegions: readonly string[];
  };
  /** The agent's own cadence (tick_interval_ms); null = the node's --tick-interval. */
  tickIntervalMs: number | null;
  /** The exact bytes parsed (travel with the agent so every node sees the same manifest). */
  source: string;
}

function fail(where: string, msg: string): never {
  throw new IgordError(ErrorCode.ManifestInvalid, `manifest ${where}: ${msg}`, {
    details: { manifest: where },
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function optionalInt(v: unknown, where: string, field: string): bigint | null {
  if (v === undefined || v === null) return null;
  if (typeof v === "string" && /^\d+$/.test(v)) return BigInt(v);
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  return fail(
    where,
    `${field} must be a non-negative integer (a string for values above 2^53), got ${JSON.stringify(v)}`,
  );
}

/** Parses manifest JSON. `where` names the source in errors (a path, or "<inline>"). */
export function parseManifest(text: string, where = "<inline>"): AgentManifest {
  if (text.length > MAX_MANIFEST_BYTES)
    fail(where, `is ${text.length} bytes, more than ${MAX_MANIFEST_BYTES}`);
  const trimmed = text.trim();
  let doc: unknown = {};
  if (trimmed.length > 0) {
    try {
      doc = JSON.parse(trimmed);
    } catch (e) {
      fail(where, `is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (!isObject(doc)) fail(where, "must be a JSON object");

  const capabilities = new Map<string, CapabilityGrant>();
  const caps = doc.capabilities;
  if (caps !== undefined) {
    if (!isObject(caps)) fail(where, `"capabilities" must be an object of {"<name>": {"version": 1}}`);
    for (const [name, grant] of Object.entries(caps)) {
      if (!/^[a-z][a-z0-9_]*$/.test(name)) fail(where, `capability name "${name}" is not valid`);
      if (!isObject(grant)) fail(where, `capability "${name}" must be an object like {"version": 1}`);
      const version = grant.version;
      if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
        fail(where, `capability "${name}" version must be an integer >= 1, got ${JSON.stringify(version)}`);
      }
      const options = grant.options ?? {};
      if (!isObject(options)) fail(where, `capability "${name}" options must be an object`);
      capabilities.set(name, { version, options });
    }
  }

  const limits = doc.resource_limits ?? {};
  if (!isObject(limits)) fail(where, `"resource_limits" must be an object`);
  let maxMemoryBytes = MAX_AGENT_MEMORY_BYTES;
  if (limits.max_memory_bytes !== undefined) {
    const m = limits.max_memory_bytes;
    if (typeof m !== "number" || !Number.isSafeInteger(m) || m < 0) {
      fail(
        where,
        `resource_limits.max_memory_bytes must be a non-negative integer, got ${JSON.stringify(m)}`,
      );
    }
    if (m > MAX_AGENT_MEMORY_BYTES) {
      fail(
        where,
        `resource_limits.max_memory_bytes ${m} is above the maximum ${MAX_AGENT_MEMORY_BYTES} (64 MiB)`,
      );
    }
    if (m !== 0 && m < WASM_PAGE_BYTES) {
      fail(
        where,
        `resource_limits.max_memory_bytes ${m} is below one WebAssembly page (${WASM_PAGE_BYTES} bytes)`,
      );
    }
    maxMemoryBytes = m === 0 ? MAX_AGENT_MEMORY_BYTES : m;
  }

  const policy = doc.migration_policy;
  let migrationPolicy: AgentManifest["migrationPolicy"] = {
    enabled: true,
    maxPricePerSecond: null,
    preferredRegions: [],
  };
  if (policy !== undefined) {
    if (!isObject(policy)) fail(where, `"migration_policy" must be an object`);
    // igor treats an omitted "enabled" as false, silently disabling migration; omitted means enabled here.
    if (policy.enabled !== undefined && typeof policy.enabled !== "boolean") {
      fail(where, `migration_policy.enabled must be true or false`);
    }
    const regions = policy.preferred_regions ?? [];
    if (!Array.isArray(regions) || regions.some((r) => typeof r !== "string")) {
      fail(where, `migration_policy.preferred_regions must be an array of strings`);
    }
    const maxPrice = optionalInt(policy.max_price_per_second, where, "migration_policy.max_price_per_second");
    migrationPolicy = {
      enabled: policy.enabled !== false,
      maxPricePerSecond: maxPrice === 0n ? null : maxPrice,
      preferredRegions: regions as string[],
    };
  }

  return {
    capabilities,
    tickIntervalMs: tickInterval(doc.tick_interval_ms, where),
    resourceLimits: {
      maxMemoryBytes,
      maxCpuMillis: optionalInt(limits.max_cpu_millis, where, "resource_limits.max_cpu_millis"),
      maxStorageBytes: optionalInt(limits.max_storage_bytes, where, "resource_limits.max_storage_bytes"),
    },
    migrationPolicy,
    source: text,
  };
}

function tickInterval(v: unknown, where: string): number | null {
  if (v === undefined || v === null) return null;
  const ms = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof ms !== "number" || !Number.isSafeInteger(ms)) fail(where, `tick_interval_ms must be an integer number of milliseconds, got ${JSON.stringify(v)}`);
  if (ms < MIN_AGENT_TICK_INTERVAL_MS) {
    fail(where, `tick_interval_ms ${ms} is below the minimum of ${MIN_AGENT_TICK_INTERVAL_MS} ms (an agent with more work uses the node's fast path: report more from agent_tick)`);
  }
  if (ms > MAX_AGENT_TICK_INTERVAL_MS) fail(where, `tick_interval_ms ${ms} is above the maximum of ${MAX_AGENT_TICK_INTERVAL_MS} ms (one day)`);
  return ms;
}

export function memoryCapPages(m: AgentManifest): number {
  return Math.floor(m.resourceLimits.maxMemoryBytes / WASM_PAGE_BYTES);
}

/**
 * Finds an agent's manifest: `<name>.manifest.json` next to `<name>.wasm`, else `agent.manifest.json`
 * in the same folder. Returns null when there is none (the agent then has no capabilities).
 */
export function findManifest(wasmPath: string): string | null {
  const dir = dirname(wasmPath);
  const stem = basename(wasmPath).replace(/\.wasm$/, "");
  for (const candidate of [join(dir, `${stem}.manifest.json`), join(dir, "agent.manifest.json")]) {
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/** Loads the manifest at an explicit path (must exist) or the one found next to the wasm. */
export function loadManifest(wasmPath: string, explicitPath?: string): AgentManifest {
  const path = explicitPath ?? findManifest(wasmPath);
  if (path === null) return parseManifest("{}", "<none>");
  let text: string;
  try {
    text = new TextDecoder().decode(readRegularFile(path, MAX_MANIFEST_BYTES));
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    const notFound = explicitPath !== undefined && e.problem.kind === "missing";
    throw new IgordError(notFound ? ErrorCode.ManifestNotFound : ErrorCode.ManifestInvalid, `manifest ${path} ${describeProblem(e.problem)}`, {
      details: { manifest: path },
    });
  }
  return parseManifest(text, path);
}
