// Decides, before anything is instantiated, whether an agent's imports may be satisfied: igor
// hostcalls only when the manifest grants their capability (deny by default), capabilities only when
// this node offers them, and the AssemblyScript runtime imports only in forms that keep the agent
// deterministic. The result is an ImportPlan the sandbox builds its import object from.
import { ErrorCode, IgordError } from "../errors.js";
import type { AgentManifest } from "../manifest/manifest.js";
import { type FuncType, formatFuncType, type ImportInfo, type ModuleInfo } from "../wasm/module-info.js";
import { hostcallByName } from "./registry.js";

/** Runtime imports AssemblyScript emits that igord provides, and the capability each needs. */
export const ENV_IMPORTS = {
  abort: { capability: null, params: ["i32", "i32", "i32", "i32"], results: [] },
  trace: { capability: "log", params: ["i32", "i32", "f64", "f64", "f64", "f64", "f64"], results: [] },
  "Date.now": { capability: "clock", params: [], results: ["f64"] },
} as const;
export type EnvImportName = keyof typeof ENV_IMPORTS;

/** Imports refused with a specific reason: they would read the host's clock or entropy unrecorded. */
const REFUSED_ENV: Record<string, string> = {
  seed:
    "seeds Math.random from host entropy outside the event log, and its PRNG state is not checkpointed; " +
    "use a PRNG seeded from igor.rand_bytes and keep its state in the checkpoint",
  "performance.now": "reads the host clock outside the event log; use igor.clock_now",
  "crypto.getRandomValuesN": "reads host entropy outside the event log; use igor.rand_bytes",
  "console.log": "writes output outside the event log; use igor.log_emit",
};

export interface ImportPlan {
  igor: string[];
  env: EnvImportName[];
  /** An imported memory the host must create (capped at the manifest's limit). */
  importedMemory: { module: string; name: string; initialPages: number } | null;
}

function refuse(imp: ImportInfo, why: string): never {
  throw new IgordError(ErrorCode.ImportRefused, `import ${imp.module}.${imp.name} is refused: ${why}`, {
    details: { import: `${imp.module}.${imp.name}` },
  });
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

export function planImports(
  info: ModuleInfo,
  manifest: AgentManifest,
  offered: ReadonlySet<string>,
): ImportPlan {
  checkOffered(manifest, offered);
  const plan: ImportPlan = { igor: [], env: [], importedMemory: null };
  for (const imp of info.imports) {
    if (imp.kind === "memory") {
      if (imp.module !== "env" || imp.name !== "memory") refuse(imp, "only env.memory may be imported");
      if (imp.memory?.shared || imp.memory?.memory64)
        refuse(imp, "shared and 64-bit memories are not supported");
      plan.importedMemory = {
        module: imp.module,
        name: imp.name,
        initialPages: imp.memory?.initialPages ?? 0,
      };
      continue;
    }
    if (imp.kind !== "function") refuse(imp, `igord provides no ${imp.kind} imports`);
    if (imp.module === "igor") {
      const spec = hostcallByName(imp.name);
      if (!spec) refuse(imp, "igor has no such hostcall");
      if (!manifest.capabilities.has(spec.capability)) {
        throw new IgordError(
          ErrorCode.CapabilityNotGranted,
          `agent imports igor.${imp.name} but its manifest does not grant capability "${spec.capability}"`,
          { details: { import: `igor.${imp.name}`, capability: spec.capability } },
        );
      }
      if (!sameSig(imp.type, spec.params, spec.results)) {
        refuse(
          imp,
          `signature ${formatFuncType(imp.type)} does not match (${spec.params.join(", ")}) -> (${spec.results.join(", ")})`,
        );
      }
      plan.igor.push(imp.name);
      continue;
    }
    if (imp.module === "env") {
      const refused = REFUSED_ENV[imp.name];
      if (refused) refuse(imp, refused);
      const known = ENV_IMPORTS[imp.name as EnvImportName];
      if (!known)
        refuse(imp, "igord does not provide it (agents reach the host only through igor.* hostcalls)");
      if (!sameSig(imp.type, known.params, known.results))
        refuse(imp, `unexpected signature ${formatFuncType(imp.type)}`);
      if (known.capability !== null && !manifest.capabilities.has(known.capability)) {
        throw new IgordError(
          ErrorCode.CapabilityNotGranted,
          `agent imports env.${imp.name}, which igord serves through capability "${known.capability}", but its manifest does not grant it`,
          { details: { import: `env.${imp.name}`, capability: known.capability } },
        );
      }
      plan.env.push(imp.name as EnvImportName);
      continue;
    }
    refuse(imp, `igord provides only the "igor" and "env" modules`);
  }
  return plan;
}
