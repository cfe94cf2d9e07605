// The agents-dir watcher remembers what it saw of each .wasm path (size and mtime, loaded or not) so
// that an unchanged file is not loaded again; a path whose file is gone is forgotten, or a deploy
// step that drops versioned builds (agent-<build>.wasm) and removes the old ones would leave one
// entry per file ever dropped, for as long as the daemon runs.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AgentsDirWatcher } from "../../../src/loader/agents-dir.js";
import { tempDir } from "../../helpers/node.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function agentsDir(): string {
  const dir = tempDir();
  dirs.push(dir);
  const agents = join(dir, "agents");
  mkdirSync(agents);
  return agents;
}

const remembered = (w: AgentsDirWatcher): number => (w as unknown as { seen: Map<string, unknown> }).seen.size;

describe("the agents-dir watcher", () => {
  it("forgets the paths whose files are gone (builds dropped and removed one after another)", async () => {
    const agents = agentsDir();
    const loaded: string[] = [];
    const w = new AgentsDirWatcher(agents, async (path) => {
      loaded.push(path);
      throw new Error("broken build"); // reported by the loader; the watcher remembers it was handled
    });
    const BUILDS = 50;
    for (let i = 0; i < BUILDS; i++) {
      const path = join(agents, `build-${i}.wasm`);
      writeFileSync(path, `not wasm ${i}`);
      await w.initialScan();
      rmSync(path);
    }
    await w.initialScan();
    expect(loaded).toHaveLength(BUILDS);
    expect(remembered(w)).toBe(0);
  });

  it("loads a file put back after it was removed, and not an unchanged one again", async () => {
    const agents = agentsDir();
    const loaded: string[] = [];
    const w = new AgentsDirWatcher(agents, async (path) => {
      loaded.push(path);
    });
    const path = join(agents, "agent-a.wasm");
    writeFileSync(path, "build a");
    await w.initialScan();
    await w.initialScan();
    expect(loaded).toEqual([path]);
    rmSync(path);
    await w.initialScan();
    writeFileSync(path, "build a");
    await w.initialScan();
    expect(loaded).toEqual([path, path]);
  });
});
