// `igord new`: the C skeleton builds with clang and passes the project's test on real nodes of the
// test kit; names and directories it refuses; the asc flags it writes. The AssemblyScript project,
// installed from the npm registry, built and tested, is walked through by authoring.test.ts.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ASC_FLAGS, IGORD_ROOT } from "../../src/authoring/new-project.js";
import { igord } from "../helpers/process.js";
import { ROOT, tempDir } from "../helpers/node.js";
import { authorEnv, npm, PROJECT_STEPS_TIMEOUT_MS } from "../helpers/author.js";


const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function workDir(): string {
  const d = tempDir("igord-new-");
  dirs.push(d);
  return d;
}

/** npm run build writes the agent; npm test passes both of the project's tests on real nodes. */
function buildAndTest(dir: string, name: string): void {
  const build = npm(["run", "build"], dir);
  expect(build.out).toContain(`built build/${name}.wasm`);
  expect(build.status).toBe(0);
  const test = npm(["test"], dir);
  expect(test.out).toMatch(/Tests\s+2 passed/);
  expect(test.status).toBe(0);
}

function clangTargetsWasm(): boolean {
  const r = spawnSync("clang", ["--print-targets"], { encoding: "utf8" });
  return r.status === 0 && /wasm32/.test(r.stdout) && spawnSync("wasm-ld", ["--version"]).status === 0;
}

describe("igord new", () => {
  it.skipIf(!clangTargetsWasm())(
    "--lang c writes a C skeleton over igor.h that builds with clang and passes the same test",
    async () => {
      const cwd = workDir();
      const made = igord(["new", "hello-c", "--lang", "c"], authorEnv(), cwd);
      expect(made.status).toBe(0);
      const dir = join(cwd, "hello-c");
      const source = readFileSync(join(dir, "hello-c.c"), "utf8");
      expect(source).toContain('#include "igor.h"');
      for (const name of ["agent_init", "agent_tick", "agent_checkpoint", "agent_checkpoint_ptr", "agent_resume", "malloc"]) {
        expect(source).toContain(`IGOR_EXPORT(${name})`);
      }
      // igord's own C header when this install has one, else the declarations igord new writes.
      const header = readFileSync(join(dir, "igor.h"), "utf8");
      const shipped = join(ROOT, "sdk", "c", "igor.h");
      if (existsSync(shipped)) expect(header).toBe(readFileSync(shipped, "utf8"));
      else for (const name of ["clock_now", "log_emit"]) expect(header).toContain(`IGOR_IMPORT(${name})`);
      // What npm install links, linked by hand: this test is about the C project, not the registry.
      mkdirSync(join(dir, "node_modules", ".bin"), { recursive: true });
      symlinkSync(IGORD_ROOT, join(dir, "node_modules", "igord"));
      symlinkSync(join(ROOT, "node_modules", "vitest"), join(dir, "node_modules", "vitest"));
      symlinkSync(join("..", "vitest", "vitest.mjs"), join(dir, "node_modules", ".bin", "vitest"));
      buildAndTest(dir, "hello-c");
    },
    PROJECT_STEPS_TIMEOUT_MS * 2,
  );

  it("refuses a name that cannot be an agent id and package name, and a directory that holds files", () => {
    const cwd = workDir();
    const bad = igord(["new", "Hello_World"], authorEnv(), cwd);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/project name "Hello_World" must start with a lowercase letter.*\[AGENT_ID_INVALID\]/);
    mkdirSync(join(cwd, "taken"));
    symlinkSync("x", join(cwd, "taken", "file"));
    const taken = igord(["new", "taken"], authorEnv(), cwd);
    expect(taken.status).toBe(1);
    expect(taken.stderr).toMatch(/taken exists and is not empty.*\[CONFIG_INVALID\]/);
  });

  it("writes the asc flags the example agents are built with", async () => {
    // @ts-expect-error: a plain .mjs script without types
    const { ASC_FLAGS: examples } = (await import("../../scripts/build-agents.mjs")) as { ASC_FLAGS: string[] };
    expect([...ASC_FLAGS]).toEqual(examples);
    const cwd = workDir();
    igord(["new", "flags"], authorEnv(), cwd);
    expect(readFileSync(join(cwd, "flags", "build.mjs"), "utf8")).toContain(`const ASC_FLAGS = ${JSON.stringify(examples)};`);
  });
});
