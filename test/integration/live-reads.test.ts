// Read-only commands beside a daemon that keeps checkpointing (docs/OPERATIONS.md: they "work beside a
// running daemon"). Each reads one snapshot of the database: an export that read the head, the
// history, the lineage and the event-log segments in separate statements mixed several moments
// (`igord import` refused it), and a `verify --agent` that read the signed history base before the
// history said INVALID when a retention prune committed in between.
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { verifyCommand } from "../../src/cli/lineage.js";
import { agentsDirWith } from "../helpers/node.js";
import { igord, killAll, startDaemon } from "../helpers/process.js";

afterEach(() => {
  vi.restoreAllMocks();
  killAll();
});

/** Exports taken while the daemon checkpoints: without a snapshot each of them mixed moments. */
const EXPORTS = 3;
/**
 * Verifications run in this process while the daemon prunes: a prune fell between the base's read and
 * the history's in one verification in 15 to 40, so many are run (on the code before, 200 would
 * all pass about once in a hundred runs), within a bounded time: the daemon beside them ticks and
 * checkpoints flat out, a core the suite's other file shares.
 */
const VERIFY_ROUNDS = 200;
const VERIFY_WITHIN_MS = 10_000;

describe("read-only commands beside a daemon that keeps checkpointing", () => {
  it("every export taken while the agent checkpoints imports into a fresh data dir", async () => {
    const { dir, agents, data } = agentsDirWith(["survivor"]);
    const d = startDaemon(["--agents-dir", agents, "--data-dir", data, "--control", "off", "--tick-interval", "2ms", "--checkpoint-interval", "5ms"]);
    await d.waitFor((l) => l.event === "checkpoint_saved" && l.agent === "survivor" && Number(l.tick) >= 200);
    const imports: string[] = [];
    for (let i = 0; i < EXPORTS; i++) {
      const out = join(dir, `export-${i}`);
      const e = igord(["export", "survivor", "--out", out, "--data-dir", data]);
      expect(e.status, e.stderr).toBe(0);
      const imp = igord(["import", out, "--data-dir", join(dir, `imported-${i}`)]);
      imports.push(`export ${i}: import exit ${imp.status} ${imp.stderr.trim()}`);
    }
    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
    expect(imports).toEqual(Array.from({ length: EXPORTS }, (_, i) => `export ${i}: import exit 0 `));
  }, 60_000);

  it("verify --agent says VALID every time for a live history that --history-retention keeps pruning", async () => {
    const { agents, data } = agentsDirWith(["survivor"]);
    const d = startDaemon(["--agents-dir", agents, "--data-dir", data, "--control", "off", "--tick-interval", "1ms", "--checkpoint-interval", "2ms", "--history-retention", "5"]);
    await d.waitFor((l) => l.event === "checkpoint_saved" && l.agent === "survivor" && Number(l.tick) >= 100);
    let printed = "";
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      printed += chunk.toString();
      return true;
    });
    const invalid: string[] = [];
    const until = Date.now() + VERIFY_WITHIN_MS;
    for (let i = 0; i < VERIFY_ROUNDS && Date.now() < until; i++) {
      printed = "";
      if ((await verifyCommand([], { agent: "survivor", dataDir: data })) !== 0) invalid.push(printed.split("\n").filter((l) => l.startsWith("reason")).join(" | "));
    }
    vi.restoreAllMocks();
    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
    // The store itself is sound: once the daemon has stopped, the same command says VALID.
    expect(igord(["verify", "--agent", "survivor", "--data-dir", data]).status).toBe(0);
    expect(invalid).toEqual([]);
  }, 60_000);
});
