// Resolves a worker thread's script. Compiled JavaScript sits next to the module that starts it;
// when running from TypeScript sources (tests), use the compiled copy that `npm test` builds first.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export function workerScript(relative: string, from: string): URL {
  const here = new URL(relative, from);
  if (existsSync(fileURLToPath(here))) return here;
  const compiled = new URL(here.href.replace("/src/", "/dist/"));
  if (!existsSync(fileURLToPath(compiled))) throw new Error(`compiled worker not found at ${compiled.pathname}: run npm run build`);
  return compiled;
}
