// An idle daemon's agents-dir scan (every AGENTS_DIR_SCAN_MS) reads every agent file's size and
// mtime and looks for its manifest: four to five stat calls a file, all on the main thread. At
// 2,000 files that was 63 ms a scan (13 % of a core, the main thread held 63 ms every 500 ms), at
// 10,000 ~300 ms. A plain file is known regular from its directory entry, its manifest from the
// names listed, and loaded files are read again in turns of MAX_FILES_RECHECKED_PER_SCAN.
import { mkdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AgentsDirWatcher, MAX_FILES_RECHECKED_PER_SCAN } from "../../../src/loader/agents-dir.js";
import { tempDir } from "../../helpers/node.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const FILES = 2 * MAX_FILES_RECHECKED_PER_SCAN;

/** An agents dir of FILES agent files, every other one with its manifest. */
function bigAgentsDir(): { agents: string; paths: string[] } {
  const dir = tempDir();
  dirs.push(dir);
  const agents = join(dir, "agents");
  mkdirSync(agents);
  const paths: string[] = [];
  for (let i = 0; i < FILES; i++) {
    const path = join(agents, `a${String(i).padStart(5, "0")}.wasm`);
    writeFileSync(path, "x");
    if (i % 2 === 0) writeFileSync(join(agents, `a${String(i).padStart(5, "0")}.manifest.json`), "{}");
    paths.push(path);
  }
  return { agents, paths };
}

const scan = (w: AgentsDirWatcher): Promise<void> => (w as unknown as { scan(immediate: boolean): Promise<void> }).scan(false);

/** The least of `n` timings of `a` and of `b`, in ms, taken in turns (a busy moment costs both alike). */
async function fastestOfEach(n: number, a: () => unknown, b: () => unknown): Promise<[number, number]> {
  const best: [number, number] = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
  for (let i = 0; i < n; i++) {
    for (const [k, f] of [a, b].entries()) {
      const t = performance.now();
      await f();
      best[k] = Math.min(best[k] as number, performance.now() - t);
    }
  }
  return best;
}

describe("the agents-dir scan of a big agents dir", () => {
  it(`costs an idle daemon less than 2.5 stats' time per file a scan, not four or five (${FILES} files, half with manifests)`, async () => {
    const { agents, paths } = bigAgentsDir();
    let loads = 0;
    const w = new AgentsDirWatcher(agents, async () => {
      loads++;
    });
    await w.initialScan();
    expect(loads).toBe(FILES);
    const [scanMs, statMs] = await fastestOfEach(
      15,
      () => scan(w),
      () => {
        for (const p of paths) statSync(p);
      },
    );
    // Nothing changed: nothing loaded again.
    expect(loads).toBe(FILES);
    // Before: 4–5 stats a file (and two existence checks for the manifests of those without): 4–5×.
    expect(scanMs / statMs, `scan ${scanMs.toFixed(1)} ms against one stat a file ${statMs.toFixed(1)} ms`).toBeLessThan(2.5);
  });

  it("a loaded file that changes is loaded again within a round of turns, and a new file within two scans", async () => {
    const { agents, paths } = bigAgentsDir();
    const loaded: string[] = [];
    const w = new AgentsDirWatcher(agents, async (path) => {
      loaded.push(path);
    });
    await w.initialScan();
    loaded.length = 0;
    const changed = paths[FILES - 1]!;
    writeFileSync(changed, "xy");
    const later = new Date(Date.now() + 5_000);
    utimesSync(changed, later, later);
    const fresh = join(agents, "zz-new.wasm");
    writeFileSync(fresh, "new");
    let scans = 0;
    while (!loaded.includes(changed) && scans < 10) {
      await scan(w);
      scans++;
      if (scans === 2) expect(loaded).toContain(fresh);
    }
    // Seen at its turn (at most FILES / MAX_FILES_RECHECKED_PER_SCAN scans), loaded once settled (one more).
    expect(loaded).toContain(changed);
    expect(scans).toBeLessThanOrEqual(Math.ceil(FILES / MAX_FILES_RECHECKED_PER_SCAN) + 2);
  });
});
