// `igord verify --replay --agent <id>`: re-executes the agent's stored history from a checkpoint
// through its stored event logs, in a worker thread under the tick timeout, and confirms every later
// checkpoint's state. Reports the first tick that does not reproduce.
import { setFlagsFromString } from "node:v8";
import { pino } from "pino";
import { printable } from "../log/printable.js";
import { parseCheckpoint } from "../checkpoint/codec.js";
import { ErrorCode, IgordError } from "../errors.js";
import { withAgentIdentity } from "../hostcalls/policy.js";
import { IMPLEMENTED_CAPABILITIES } from "../hostcalls/registry.js";
import { didFromPublicKey } from "../identity/did.js";
import { ModuleCache, moduleBytes, prepareFromBytes } from "../loader/prepare.js";
import { parseManifest } from "../manifest/manifest.js";
import { type AuditSegment, moduleRuns, planAudit } from "../replay/audit-plan.js";
import { hex } from "../hash/bytes.js";
import { segmentSealProblem } from "../replay/segment-seal.js";
import { sealOpenInMemory } from "../replay/run-seal.js";
import { sliceChain } from "../replay/chain.js";
import type { SqliteStore } from "../store/sqlite-store.js";
import { WorkerPool } from "../wasm/pool.js";

/** Ticks replayed per request to the worker (progress is printed between them): each request is a round trip the worker idles through, and a batch crosses as a few byte arrays (replay/chain.ts), so batches are long. */
export const AUDIT_BATCH_TICKS = 10_000;
export const AUDIT_TICK_TIMEOUT_MS = 15_000;

/**
 * A history shorter than this is replayed with V8's optimising compiler for JS held back
 * (AUDIT_SHORT_HISTORY_V8_FLAGS). An audit runs in a fresh process, so the replay's per-tick JS
 * starts cold, and on a short history TurboFan's background compilation of it costs more CPU than
 * the optimised code saves before the replay ends, on a 2-core machine in the replaying thread's
 * way: on a 3,926-tick survivor history it took ~7.5 µs of background CPU a tick and saved the
 * replay thread ~0.8 µs a tick. Around 10,000 ticks the two balance; a longer history keeps V8's defaults
 * (docs/BENCHMARKS.md, "Audit replay: per-tick work and V8's tiers on a short history").
 */
export const AUDIT_SHORT_HISTORY_TICKS = 10_000;

/**
 * For a short history: JS is optimised by TurboFan 8× later than V8's default. A threshold, not a
 * switch: code that stays hot still tiers up. Process-wide (this `igord verify` process only), and
 * set once the worker has started and the agent is loaded, so neither runs under it. V8 11 (Node 20)
 * counts an interrupt budget (default 67,584); V8 12 on (Node 22, 24) counts invocations (default
 * 3,000) and has no --interrupt-budget: setting it there printed "unrecognized flag" to stderr.
 */
export const AUDIT_SHORT_HISTORY_V8_FLAGS: readonly string[] =
  Number(process.versions.v8.split(".")[0]) < 12 ? ["--interrupt-budget=540672"] : ["--invocation-count-for-turbofan=24000"];

/** The V8 flags an audit of `ticks` ticks sets before it replays them. */
export function auditV8Flags(ticks: number): readonly string[] {
  return ticks < AUDIT_SHORT_HISTORY_TICKS ? AUDIT_SHORT_HISTORY_V8_FLAGS : [];
}

const out = (line: string): void => {
  process.stdout.write(`${printable(line, true)}\n`);
};

/** A history to audit: checkpoint blobs and event-log segments, from a store or an export. */
export interface AuditedHistory {
  agentId: string;
  /** The module with this SHA-256 (hex), if at hand. */
  wasm: (hash: string) => Uint8Array | undefined;
  manifest: string;
  checkpoints: Uint8Array[];
  segments: AuditSegment[];
}

/**
 * What `igord verify --replay --agent` audits, read from the store (inside the caller's snapshot,
 * with the chain it checked): the replay then runs with the store no longer read.
 */
export function storedAudit(store: SqliteStore, agentId: string): AuditedHistory {
  const row = store.agent(agentId);
  if (!row) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${agentId}" in ${store.path}`);
  const checkpoints = [...store.history(agentId)].map((c) => c.blob);
  // Every module the history ran, by hash: ticks are replayed with the code that ran them.
  const modules = new Map<string, Uint8Array>();
  for (const hash of namedModules(checkpoints)) {
    const bytes = store.wasm(hash);
    if (bytes) modules.set(hash, bytes);
  }
  return {
    agentId,
    wasm: (hash) => modules.get(hash),
    manifest: row.manifest,
    checkpoints,
    // The open run (a store this reader may not write) is sealed in memory with the agent's key.
    segments: sealOpenInMemory(store.eventSegments(agentId), store.identity(agentId)),
  };
}

/** The modules a history's checkpoints name (hex SHA-256); a checkpoint that does not parse names none (the chain check reports it). */
export function namedModules(checkpoints: readonly Uint8Array[]): Set<string> {
  const named = new Set<string>();
  for (const bytes of checkpoints) {
    try {
      named.add(hex(parseCheckpoint(bytes).wasmHash));
    } catch {
      // Reported by the chain check, which read the same bytes.
    }
  }
  return named;
}

/** Audits a history given as checkpoint blobs and event-log segments (from a store or an export). */
export async function auditHistory(h: AuditedHistory): Promise<number> {
  const agentId = h.agentId;
  const manifest = parseManifest(h.manifest, `manifest of agent "${agentId}"`);
  const cache = new ModuleCache();
  const prepare = (hash: string): ReturnType<typeof prepareFromBytes> => {
    const bytes = h.wasm(hash);
    if (!bytes) throw new IgordError(ErrorCode.StoreError, `WASM ${hash.slice(0, 16)}… that ran part of agent "${agentId}"'s history is not at hand`);
    return prepareFromBytes({ agentId, bytes: moduleBytes(bytes), manifest, source: `WASM ${hash.slice(0, 16)}… of agent "${agentId}"`, offered: new Set(IMPLEMENTED_CAPABILITIES), cache });
  };
  const parsed = h.checkpoints.map((b) => parseCheckpoint(b));
  // WASI's out-of-tick random stream is derived from the agent's DID (src/wasi/host.ts).
  const head = parsed.at(-1);
  const did = head ? didFromPublicKey(head.publicKey) : "";
  // Every segment must be the agent's signed record of the ticks before a checkpoint of this history.
  // Replay still runs over a forged one, to name the tick it changes.
  const byTick = new Map(parsed.map((c) => [c.tick, c]));
  const forged = h.segments.map((s) => segmentSealProblem(s, byTick.get(s.toTick))).filter((p): p is string => p !== null);
  if (forged.length > 0) {
    out("replay: INVALID (event logs that are not the agent's)");
    for (const p of forged) out(`reason: ${ErrorCode.EventLogForged}: ${p}`);
  }
  // One checkpoint (an agent that never ticked, or a history pruned to its newest): no tick after it
  // to replay, which is no reason to fail a script that audits every agent.
  if (parsed.length === 1 && head && forged.length === 0) {
    out(`replay: VALID (nothing to replay: no tick after the checkpoint at tick ${head.tick})`);
    return 0;
  }
  const checkpoints = parsed.map((c) => ({ tick: c.tick, state: c.state }));
  const plan = planAudit(checkpoints, h.segments);
  if (plan.problems.length > 0 || !plan.start || !plan.chain) {
    out("replay: CANNOT AUDIT");
    for (const p of plan.problems) out(`reason: ${p}`);
    return 1;
  }
  const chain = plan.chain;
  const first = chain.chain.fromTick;
  const total = chain.chain.count;
  const ticks = Array.from({ length: total }, (_, i) => ({ tick: first + BigInt(i) }));
  const runs = moduleRuns(ticks, parsed.map((c) => ({ tick: c.tick, wasmHash: hex(c.wasmHash) })));
  const v8Flags = auditV8Flags(total);
  const pool = new WorkerPool({ size: 1, tickTimeoutMs: AUDIT_TICK_TIMEOUT_MS, tickIntervalMs: AUDIT_TICK_TIMEOUT_MS, logger: pino({ level: "silent" }) });
  const started = process.hrtime.bigint();
  const cpuStarted = process.cpuUsage();
  // The speed is the replay's own: the worker's start and each module's load (its compilation, its
  // instantiation on the worker) are a set-up cost.
  let setupNs = 0n;
  let setupCpuUs = 0;
  const setUp = async <T>(step: () => T | Promise<T>): Promise<T> => {
    const wall = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    try {
      return await step();
    } finally {
      setupNs += process.hrtime.bigint() - wall;
      const used = process.cpuUsage(cpu);
      setupCpuUs += used.user + used.system;
    }
  };
  await setUp(() => pool.start());
  try {
    let failed: string | null = null;
    pool.on("result", (r) => {
      if (r.status === "error") failed = `${r.error.code}: ${r.error.message}`;
    });
    let done = 0;
    let state: Uint8Array = plan.start.state;
    // The module that made `state`: the start checkpoint's (a retention base may be the last
    // checkpoint of the code before an upgrade), then each run's.
    let stateModule = hex((byTick.get(plan.start.tick) as { wasmHash: Uint8Array }).wasmHash);
    for (const [n, run] of runs.entries()) {
      // A module per run: at a code upgrade the new module resumes the state the old one reached.
      if (n > 0) pool.unload(agentId);
      await setUp(async () => {
        const prepared = prepare(run.wasmHash);
        // After an upgrade the state is the old module's, which the new one may read into a new layout;
        // the same module's state keeps the replay rule's plain check.
        await pool.place({ agentId, module: prepared.module, plan: withAgentIdentity(prepared.plan, did), memoryCapPages: prepared.memoryCapPages }, { state, budget: 0n, price: 0n, stateOfOlderModule: stateModule !== run.wasmHash });
      });
      stateModule = run.wasmHash;
      // After the set-up (its one-off JS gains from the default thresholds), before the first tick.
      if (n === 0) for (const flag of v8Flags) setFlagsFromString(flag);
      for (let i = run.from; i < run.to; i += AUDIT_BATCH_TICKS) {
        // The ticks go to the worker as their encoded logs and hashes (replay/chain.ts), not as objects.
        const batch = sliceChain(chain, i, Math.min(i + AUDIT_BATCH_TICKS, run.to), state);
        const outcome = await pool.replay(agentId, batch).catch((e: unknown) => {
          throw new IgordError(ErrorCode.TickTimeout, `replay stopped: ${failed ?? (e as Error).message}`);
        });
        done += outcome.verified;
        if (outcome.failure) {
          out(`replay: INVALID at tick ${outcome.failure.tick}`);
          out(`reason: ${outcome.failure.error.code}: ${outcome.failure.error.message}`);
          out(`reproduced: ${done} ticks from tick ${plan.start.tick + 1n}`);
          return 1;
        }
        if (outcome.finalState) state = outcome.finalState;
        if (total > AUDIT_BATCH_TICKS) process.stderr.write(`replayed ${done}/${total} ticks…\n`);
      }
    }
    const secs = Number(process.hrtime.bigint() - started - setupNs) / 1e9;
    const setupMs = Number(setupNs) / 1e6;
    // CPU of every thread (main, worker, V8's compilers and GC): a loaded machine moves it less than wall time.
    const cpu = process.cpuUsage(cpuStarted);
    const cpuUs = cpu.user + cpu.system - setupCpuUs;
    if (forged.length > 0) {
      out(`replayed ${done} ticks, but ${forged.length} event-log segments fail their signatures`);
      return 1;
    }
    out(`replay: VALID`);
    const tickAt = (i: number): bigint => first + BigInt(i);
    if (runs.length > 1) out(`modules: ${runs.map((r) => `${r.wasmHash.slice(0, 16)}… ticks ${tickAt(r.from)}..${tickAt(r.to - 1)}`).join(", ")}`);
    out(`replayed ${done} ticks (${plan.start.tick + 1n}..${tickAt(total - 1)}) from the checkpoint at tick ${plan.start.tick}`);
    out(`confirmed ${plan.checkpointTicks.length} later checkpoints`);
    out(`speed: ${Math.round(done / Math.max(secs, 1e-9))} ticks/s (set-up ${Math.round(setupMs)} ms: worker start, agent load; replay CPU ${(cpuUs / Math.max(done, 1)).toFixed(1)} µs a tick, all threads${v8Flags.length > 0 ? `; JS optimisation held back for a history under ${AUDIT_SHORT_HISTORY_TICKS} ticks` : ""})`);
    return 0;
  } finally {
    await pool.stop();
  }
}
