// Running what an agent author runs (npm, igord) in a project outside this repo.
import { spawnSync } from "node:child_process";
import { stripVTControlCharacters } from "node:util";

/** A generated project's install, build or two-node test, with room for a cold npm cache. */
export const PROJECT_STEPS_TIMEOUT_MS = 300_000;

/** The environment of a shell the author opens: nothing of this vitest run leaks into theirs. */
export function authorEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(VITEST|TEST|NODE_OPTIONS|IGORD_)/.test(k)) env[k] = v;
  return env;
}

export function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv = authorEnv()): { status: number | null; out: string } {
  const r = spawnSync("npm", args, { cwd, env, encoding: "utf8", timeout: PROJECT_STEPS_TIMEOUT_MS });
  // Without the colours, so assertions read the words.
  return { status: r.status, out: stripVTControlCharacters(`${r.stdout}\n${r.stderr}`) };
}
