// `igord new <name>` names the agent's class after the project; a name whose class would collide with
// what the generated source imports from the SDK ("agent", "encoder", "decoder") gets "The…": the
// project compiles. It failed with "Duplicate identifier 'Agent'" before.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import asc from "assemblyscript/asc";
import { describe, expect, it } from "vitest";
import { agentClassName, newProject } from "../../src/authoring/new-project.js";
import { isIgordError } from "../../src/errors.js";
import { ROOT, tempDir } from "../helpers/node.js";

describe("igord new: the agent's class name", () => {
  it("is the name in PascalCase, or The… when the SDK's imports take it", () => {
    expect(["counter", "price-watcher", "agent", "encoder", "decoder", "map"].map(agentClassName)).toEqual(["Counter", "PriceWatcher", "TheAgent", "TheEncoder", "TheDecoder", "Map"]);
  });

  for (const name of ["agent", "decoder"]) {
    it(`a project named "${name}" compiles`, async () => {
      const { dir } = newProject({ name, dir: join(tempDir(), name) });
      // What npm install links: igord itself (file:), whose SDK the source imports as igord/sdk.
      mkdirSync(join(dir, "node_modules"));
      symlinkSync(ROOT, join(dir, "node_modules", "igord"));
      const { error, stderr } = await asc.main(["assembly/index.ts", "--outFile", "build/out.wasm", "--baseDir", dir]);
      expect(stderr.toString()).not.toMatch(/ERROR/);
      expect(error).toBeNull();
    }, 60_000);
  }

  it("--dir naming a file is refused CONFIG_INVALID, naming it (it was a bare ENOTDIR); --lang as is AssemblyScript", () => {
    const file = join(tempDir(), "a-file");
    writeFileSync(file, "x");
    let err: unknown = null;
    try {
      newProject({ name: "hello", dir: file });
    } catch (e) {
      err = e;
    }
    expect(isIgordError(err) ? err.code : err).toBe("CONFIG_INVALID");
    expect((err as Error).message).toContain(`${file} exists and is not a directory`);
    const dir = join(tempDir(), "as-project");
    const r = spawnSync(process.execPath, [join(ROOT, "dist", "cli", "main.js"), "new", "hello", "--lang", "as", "--dir", dir], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(existsSync(join(dir, "assembly", "index.ts"))).toBe(true);
  });
});
