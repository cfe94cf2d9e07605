// An example agent copied under another id with fields merged into its manifest.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXAMPLES } from "./node.js";

/** agents/<name>.wasm copied to <dir>/wasm/<id>.wasm, its manifest with `extra` merged in. */
export function agentWithManifest(dir: string, name: string, id: string, extra: Record<string, unknown>): string {
  const out = join(dir, "wasm");
  mkdirSync(out, { recursive: true });
  copyFileSync(join(EXAMPLES, `${name}.wasm`), join(out, `${id}.wasm`));
  const manifest = JSON.parse(readFileSync(join(EXAMPLES, `${name}.manifest.json`), "utf8")) as Record<string, unknown>;
  writeFileSync(join(out, `${id}.manifest.json`), JSON.stringify({ ...manifest, ...extra }));
  return join(out, `${id}.wasm`);
}
