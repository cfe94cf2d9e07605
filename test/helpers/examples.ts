// igor's demo agents (examples/<name>/agent.ts + agent.manifest.json), run by real igord processes.
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error: a plain .mjs script without types
import * as buildScript from "../../scripts/build-agents.mjs";
import { ROOT } from "./node.js";

/**
 * scripts/build-agents.mjs's buildAgent: one AssemblyScript module; `defines` are compile-time
 * integer constants (`--use NAME=VALUE`), `force` rebuilds even when the output is newer.
 */
export const buildAgent = (buildScript as {
  buildAgent(source: string, out: string, o?: { force?: boolean; defines?: Record<string, number> }): Promise<boolean>;
}).buildAgent;

export const EXAMPLES_DIR = join(ROOT, "examples");

/** Daemon flags for one example: `agentsDir` as the agents dir, no control API, no p2p (TEST_ENV). */
export function exampleArgs(agentsDir: string, dataDir: string, extra: string[] = []): string[] {
  return ["--agents-dir", agentsDir, "--data-dir", dataDir, "--control", "off", "--budget", "10", ...extra];
}

/**
 * Builds example `name` into `<root>/<name>/agent.wasm` with its manifest beside it, aimed at servers
 * on the given ports (`{ IGOR_PAYWALL_PORT: 40123 }`); returns that directory (an agents dir).
 */
export async function buildExampleFor(root: string, name: string, defines: Record<string, number>): Promise<string> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  await buildAgent(join(EXAMPLES_DIR, name, "agent.ts"), join(dir, "agent.wasm"), { force: true, defines });
  copyFileSync(join(EXAMPLES_DIR, name, "agent.manifest.json"), join(dir, "agent.manifest.json"));
  return dir;
}

export function agentLogs(lines: Record<string, unknown>[]): string[] {
  return lines.filter((l) => l.event === "agent_log").map((l) => String(l.msg));
}
