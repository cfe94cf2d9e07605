// Resolves a worker thread's script. Compiled JavaScript sits next to the module that starts it;
// when running from TypeScript sources (tests), use the compiled copy that `npm test` builds first.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export function workerScript(relative: string, from: string): URL {
  const here = new URL(relative, from);
  if (existsSync(fileURLToPath(here))) return here;
  // The checkout's own src/ (the last one in the path): a folder above it may be named src too.
  const at = here.href.lastIndexOf("/src/");
  const compiled = new URL(at < 0 ? here.href : `${here.href.slice(0, at)}/dist/${here.href.slice(at + "/src/".length)}`);
  if (!existsSync(fileURLToPath(compiled))) throw new Error(`compiled worker not found at ${compiled.pathname}: run npm run build`);
  return compiled;
}
