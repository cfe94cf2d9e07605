// Worker scripts run from TypeScript sources resolve to their compiled copy under dist/.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { workerScript } from "../../src/worker-script.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A checkout at `<tmp>/<parent>/repo` with a compiled worker at dist/identity/w.js. */
function checkout(parent: string): string {
  const root = mkdtempSync(join(tmpdir(), "igord-ws-"));
  dirs.push(root);
  const repo = join(root, parent, "repo");
  mkdirSync(join(repo, "dist", "identity"), { recursive: true });
  mkdirSync(join(repo, "src", "identity"), { recursive: true });
  writeFileSync(join(repo, "dist", "identity", "w.js"), "");
  return repo;
}

describe("workerScript", () => {
  it("finds the compiled worker under the checkout's own dist/, even when a folder above the checkout is named src", () => {
    for (const parent of ["work", "src"]) {
      const repo = checkout(parent);
      const from = pathToFileURL(join(repo, "src", "identity", "pool.ts")).href;
      expect(workerScript("./w.js", from).href).toBe(pathToFileURL(join(repo, "dist", "identity", "w.js")).href);
    }
  });

  it("names the path it looked for when nothing is compiled", () => {
    const repo = checkout("work");
    const from = pathToFileURL(join(repo, "src", "identity", "pool.ts")).href;
    expect(() => workerScript("./missing.js", from)).toThrow(/compiled worker not found at .*\/repo\/dist\/identity\/missing\.js/);
  });
});
