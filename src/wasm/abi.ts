// The agent lifecycle ABI (igor §1.1): which exports an agent must have, with which signatures.
import { ErrorCode, IgordError } from "../errors.js";
import { type ExportInfo, type FuncType, formatFuncType, type ModuleInfo } from "./module-info.js";

interface ExportRule {
  name: string;
  /** Accepted signatures, as "params->results". */
  accepts: string[];
}

const sig = (t: FuncType): string => `${t.params.join(",")}->${t.results.join(",")}`;

export const REQUIRED_EXPORTS: readonly ExportRule[] = [
  { name: "agent_init", accepts: ["->"] },
  { name: "agent_tick", accepts: ["->i32", "->"] },
  { name: "agent_checkpoint", accepts: ["->i32"] },
  { name: "agent_checkpoint_ptr", accepts: ["->i32"] },
  { name: "agent_resume", accepts: ["i32,i32->"] },
];

export const OPTIONAL_EXPORTS: readonly ExportRule[] = [
  { name: "malloc", accepts: ["i32->i32"] },
  { name: "_initialize", accepts: ["->"] },
  // AssemblyScript runtime (--exportRuntime): the host allocates resume buffers with __pin(__new(n, 1)).
  { name: "__new", accepts: ["i32,i32->i32"] },
  { name: "__pin", accepts: ["i32->i32"] },
];

function checkSignature(rule: ExportRule, exp: ExportInfo): void {
  if (exp.kind !== "function") {
    throw new IgordError(
      ErrorCode.WasmBadExport,
      `export ${rule.name} must be a function, found a ${exp.kind}`,
      {
        details: { export: rule.name },
      },
    );
  }
  if (exp.type !== null && !rule.accepts.includes(sig(exp.type))) {
    const wanted = rule.accepts.map((a) => `(${a.replace("->", ") -> (")})`).join(" or ");
    throw new IgordError(
      ErrorCode.WasmBadExport,
      `export ${rule.name} has signature ${formatFuncType(exp.type)}, expected ${wanted}`,
      { details: { export: rule.name } },
    );
  }
}

/** Throws WASM_MISSING_EXPORT naming every missing lifecycle export, or WASM_BAD_EXPORT. */
export function checkAgentExports(info: ModuleInfo): void {
  const byName = new Map(info.exports.map((e) => [e.name, e]));
  const missing = REQUIRED_EXPORTS.filter((r) => !byName.has(r.name)).map((r) => r.name);
  if (missing.length > 0) {
    throw new IgordError(
      ErrorCode.WasmMissingExport,
      `module is missing required export${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`,
      { details: { missing } },
    );
  }
  for (const rule of [...REQUIRED_EXPORTS, ...OPTIONAL_EXPORTS]) {
    const exp = byName.get(rule.name);
    if (exp) checkSignature(rule, exp);
  }
}
