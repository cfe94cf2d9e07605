// Decides, before anything is instantiated, whether an agent's imports may be satisfied: igor
// hostcalls only when the manifest grants their capability (deny by default), capabilities only when
// this node offers them, and the AssemblyScript runtime imports only in forms that keep the agent
// deterministic. The result is an ImportPlan the sandbox builds its import object from.
import { ErrorCode, IgordError } from "../errors.js";
import type { AgentManifest } from "../manifest/manifest.js";
import { type FuncType, formatFuncType, type ImportInfo, type ModuleInfo } from "../wasm/module-info.js";
import { type HttpOptions, parseHttpOptions } from "./http.js";
import { HOSTCALLS, hostcallByName } from "./registry.js";
import { type PayOptions, parsePayOptions } from "./wallet-pay.js";
import type { WasiPlan } from "../wasi/host.js";
import { WASI_MODULE, wasiSignature } from "../wasi/preview1.js";

/** Runtime imports AssemblyScript emits that igord provides, and the capability each needs. */
export const ENV_IMPORTS = {
  abort: { capability: null, params: ["i32", "i32", "i32", "i32"], results: [] },
  trace: { capability: "log", params: ["i32", "i32", "f64", "f64", "f64", "f64", "f64"], results: [] },
  "Date.now": { capability: "clock", params: [], results: ["f64"] },
} as const;
export type EnvImportName = keyof typeof ENV_IMPORTS;

/** Imports refused with a specific reason (they would read the host's clock or entropy unrecorded) and the fix. */
const REFUSED_ENV: Record<string, { reason: string; fix: string }> = {
  seed: {
    reason: "seeds Math.random from host entropy outside the event log, and its PRNG state is not checkpointed",
    fix: "use a PRNG seeded from igor.rand_bytes and keep its state in the checkpoint",
  },
  "performance.now": { reason: "reads the host clock outside the event log", fix: "use igor.clock_now" },
  "crypto.getRandomValuesN": { reason: "reads host entropy outside the event log", fix: "use igor.rand_bytes" },
  "console.log": { reason: "writes output outside the event log", fix: "use igor.log_emit" },
};

/** One import the policy will not satisfy: what, why, and what the agent's author can do. */
export interface ImportProblem {
  import: string;
  reason: string;
  fix: string;
  /** For an import the manifest does not grant: the capability to add. */
  capability?: string;
}

export interface ImportPlan {
  igor: string[];
  env: EnvImportName[];
  /** An imported memory the host must create (capped at the manifest's limit). */
  /** `maximumPages`: the module's own declared maximum (null: none); the host's memory never offers more. */
  importedMemory: { module: string; name: string; initialPages: number; maximumPages: number | null } | null;
  /** The manifest's `http` options, when it grants the capability. */
  http?: HttpOptions;
  /** The manifest's `x402` options, when it grants the capability. */
  x402?: PayOptions;
  /** The module's `wasi_snapshot_preview1` imports, served by src/wasi (null = none). */
  wasi: WasiPlan | null;
}

function describe(problems: readonly ImportProblem[]): string {
  const one = (p: ImportProblem): string => `${p.import}: ${p.reason}; fix: ${p.fix}`;
  if (problems.length === 1) return one(problems[0] as ImportProblem);
  return problems.map((p, i) => `(${i + 1}) ${one(p)}`).join("; ");
}

/**
 * Every problem at once, so an author fixes a module in one round: any refused import makes the
 * error IMPORT_REFUSED (listing the ungranted ones too); only ungranted ones, CAPABILITY_NOT_GRANTED.
 */
function refuseAll(problems: readonly ImportProblem[]): void {
  if (problems.length === 0) return;
  const ungranted = problems.filter((p) => p.capability !== undefined);
  const details = { imports: problems.map((p) => ({ ...p })), import: problems[0]?.import };
  if (ungranted.length === problems.length) {
    const capabilities = [...new Set(ungranted.map((p) => p.capability as string))].sort();
    throw new IgordError(ErrorCode.CapabilityNotGranted, `${problems.length === 1 ? "an import" : `${problems.length} imports`} its manifest does not grant: ${describe(problems)}`, {
      details: { ...details, capabilities, capability: capabilities[0] },
    });
  }
  const head = problems.length === 1 ? "import refused" : `${problems.length} imports are refused`;
  throw new IgordError(ErrorCode.ImportRefused, `${head}: ${describe(problems)}`, { details });
}

/**
 * The plan an instance of this agent runs under: WASI's out-of-tick random stream is derived from the
 * agent's DID, so every path that instantiates it (live, replay, audit, migration admission) binds it.
 */
export function withAgentIdentity(plan: ImportPlan, did: string): ImportPlan {
  return plan.wasi ? { ...plan, wasi: { ...plan.wasi, identity: did } } : plan;
}

function sameSig(t: FuncType | null, params: readonly string[], results: readonly string[]): boolean {
  return t === null || (t.params.join(",") === params.join(",") && t.results.join(",") === results.join(","));
}

/** CE-2: every capability the manifest declares must be offered by this node. */
export function checkOffered(manifest: AgentManifest, offered: ReadonlySet<string>): void {
  const missing = [...manifest.capabilities.keys()].filter((c) => !offered.has(c)).sort();
  if (missing.length > 0) {
    throw new IgordError(
      ErrorCode.CapabilityNotOffered,
      `manifest requires capabilit${missing.length > 1 ? "ies" : "y"} ${missing.map((c) => `"${c}"`).join(", ")} that this node does not offer (offered: ${[...offered].sort().join(", ") || "none"})`,
      { details: { missing } },
    );
  }
}

const HOSTCALL_NAMES = HOSTCALLS.map((h) => h.name).join(", ");

export function planImports(
  info: ModuleInfo,
  manifest: AgentManifest,
  offered: ReadonlySet<string>,
  /** The agent's DID: seeds WASI random_get outside ticks (bind it later with withAgentIdentity). */
  identity = "",
): ImportPlan {
  checkOffered(manifest, offered);
  const plan: ImportPlan = { igor: [], env: [], importedMemory: null, wasi: null };
  const wasi: string[] = [];
  const problems: ImportProblem[] = [];
  const refuse = (imp: ImportInfo, reason: string, fix: string): void => {
    problems.push({ import: `${imp.module}.${imp.name}`, reason, fix });
  };
  const ungranted = (imp: ImportInfo, reason: string, capability: string): void => {
    problems.push({ import: `${imp.module}.${imp.name}`, reason, fix: `grant capability "${capability}" in the manifest (and run it on a node that offers it)`, capability });
  };
  for (const imp of info.imports) {
    if (imp.kind === "memory") {
      if (imp.module !== "env" || imp.name !== "memory") refuse(imp, "only env.memory may be imported", "import the memory as env.memory, or define and export it");
      else if (imp.memory?.shared || imp.memory?.memory64) refuse(imp, "shared and 64-bit memories are not supported", "use a 32-bit, unshared memory");
      else plan.importedMemory = { module: imp.module, name: imp.name, initialPages: imp.memory?.initialPages ?? 0, maximumPages: imp.memory?.maximumPages ?? null };
      continue;
    }
    if (imp.kind !== "function") {
      refuse(imp, `igord provides no ${imp.kind} imports`, `define the ${imp.kind} inside the module`);
      continue;
    }
    if (imp.module === "igor") {
      const spec = hostcallByName(imp.name);
      if (!spec) refuse(imp, "igor has no such hostcall", `use one of: ${HOSTCALL_NAMES}`);
      else if (spec.capability !== null && !manifest.capabilities.has(spec.capability)) ungranted(imp, `its manifest does not grant capability "${spec.capability}"`, spec.capability);
      else if (!sameSig(imp.type, spec.params, spec.results)) {
        const want = `(${spec.params.join(", ")}) -> (${spec.results.join(", ")})`;
        refuse(imp, `signature ${formatFuncType(imp.type)} does not match ${want}`, `declare it as ${want}`);
      } else plan.igor.push(imp.name);
      continue;
    }
    if (imp.module === "env") {
      const refused = REFUSED_ENV[imp.name];
      const known = ENV_IMPORTS[imp.name as EnvImportName] as (typeof ENV_IMPORTS)[EnvImportName] | undefined;
      if (refused) refuse(imp, refused.reason, refused.fix);
      else if (!known) refuse(imp, "igord does not provide it (agents reach the host only through igor.* hostcalls)", "remove the import, or replace it with an igor.* hostcall");
      else if (!sameSig(imp.type, known.params, known.results)) {
        const want = `(${known.params.join(", ")}) -> (${known.results.join(", ")})`;
        refuse(imp, `unexpected signature ${formatFuncType(imp.type)}`, `declare it as ${want}`);
      } else if (known.capability !== null && !manifest.capabilities.has(known.capability)) {
        ungranted(imp, `igord serves it through capability "${known.capability}", which its manifest does not grant`, known.capability);
      } else plan.env.push(imp.name as EnvImportName);
      continue;
    }
    if (imp.module === WASI_MODULE) {
      // Linked whatever the manifest grants: clock, rand and stdout answer ENOTCAPABLE at call time
      // without their capability, so a module that imports more than it uses still loads.
      const sig = wasiSignature(imp.name);
      if (!sig) refuse(imp, `${WASI_MODULE} has no function "${imp.name}"`, "remove the import (igord serves the preview1 functions of the WASI spec)");
      else if (!sameSig(imp.type, sig.params, sig.results)) {
        const want = `(${sig.params.join(", ")}) -> (${sig.results.join(", ")})`;
        refuse(imp, `signature ${formatFuncType(imp.type)} does not match WASI preview1's ${want}`, `declare it as ${want}`);
      } else wasi.push(imp.name);
      continue;
    }
    refuse(
      imp,
      `igord provides only the "igor", "env" and "${WASI_MODULE}" modules`,
      imp.module.startsWith("wasi")
        ? `build for ${WASI_MODULE} (clang --target=wasm32-wasi, rustc --target wasm32-wasip1, tinygo -target=wasi), or without WASI and use igor.* hostcalls`
        : "remove the import, or replace it with an igor.* hostcall",
    );
  }
  refuseAll(problems);
  const http = manifest.capabilities.get("http");
  if (http) plan.http = parseHttpOptions(http.options);
  const x402 = manifest.capabilities.get("x402");
  if (x402) plan.x402 = parsePayOptions(x402.options);
  if (wasi.length > 0) {
    const has = (c: string): boolean => manifest.capabilities.has(c);
    plan.wasi = { functions: wasi, clock: has("clock"), rand: has("rand"), log: has("log"), identity };
  }
  return plan;
}
