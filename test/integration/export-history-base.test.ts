// An export of a history pruned by --history-retention carries the agent-signed base, so the export
// verifies (chain and audit replay) from the base, not as a history cut by someone, and `igord
// import` brings it to another node with the base. A forged or missing base is refused.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { hex } from "../../src/hash/bytes.js";
import { openStoreReadonly } from "../../src/cli/data-dir-store.js";
import type { CheckpointEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { igord } from "../helpers/process.js";

afterEach(stopAllNodes);

/** A stopped node whose survivor agent's history was pruned to its newest 4 checkpoints behind a signed base. */
async function prunedHistory(): Promise<TestNode> {
    const a = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "10ms", "history-retention": "4" });
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
    let written = 0;
    await a.waitFor<CheckpointEvent>("checkpoint", (e) => e.outcome === "written" && ++written >= 12, 10_000);
    await a.stop();
  return a;
}

describe("an export of a pruned history", () => {
  it("carries its signed base: the export verifies and audits VALID from the base, and import stores the base", async () => {
    const a = await prunedHistory();
    const base = openStoreReadonly(a.config.dataDir).historyBase("survivor")!;
    expect(base.pruned).toBeGreaterThan(4n);

    const ex = join(a.dir, "ex");
    expect(igord(["export", "survivor", "--out", ex, "--data-dir", a.config.dataDir]).status).toBe(0);
    const note = `history pruned before tick ${base.baseTick}: ${base.pruned} earlier checkpoints removed by retention (signed base`;
    const chain = igord(["verify", ex]);
    expect(chain.stdout).toMatch(/^VALID/);
    expect(chain.stdout).toContain(note);
    const audit = igord(["verify", "--replay", ex]);
    expect(audit.stdout).toMatch(/^VALID/);
    expect(audit.stdout).toMatch(/replay: VALID/);
    expect(audit.status).toBe(0);

    const other = join(a.dir, "other");
    expect(igord(["import", ex, "--data-dir", other, "--control", "off"]).status).toBe(0);
    const imported = openStoreReadonly(other);
    try {
      expect(hex(imported.historyBase("survivor")!.signature)).toBe(hex(base.signature));
      expect(imported.historyBase("survivor")!.pruned).toBe(base.pruned);
    } finally {
      imported.close();
    }
    const onOther = igord(["verify", "--agent", "survivor", "--replay", "--data-dir", other]);
    expect(onOther.stdout).toMatch(/^VALID/);
    expect(onOther.stdout).toContain(note);
    expect(onOther.stdout).toMatch(/replay: VALID/);
  });

  it("with its base altered or removed, the export is INVALID and import stores nothing", async () => {
    const a = await prunedHistory();
    const ex = join(a.dir, "ex");
    expect(igord(["export", "survivor", "--out", ex, "--data-dir", a.config.dataDir]).status).toBe(0);
    const baseFile = join(ex, "history", "survivor", "history-base.json");
    const honest = readFileSync(baseFile, "utf8");

    const forged = JSON.parse(honest) as { pruned: string };
    forged.pruned = String(BigInt(forged.pruned) - 1n);
    writeFileSync(baseFile, JSON.stringify(forged));
    const altered = igord(["verify", ex]);
    expect(altered.stdout).toMatch(/^INVALID/);
    expect(altered.stdout).toMatch(/signed history base .* signature INVALID/);
    expect(igord(["import", ex, "--data-dir", join(a.dir, "o1"), "--control", "off"]).status).not.toBe(0);
    expect(existsSync(join(a.dir, "o1", "igord.db"))).toBe(false);

    writeFileSync(baseFile, "{ not json");
    const garbled = igord(["verify", ex]);
    expect(garbled.stdout).toMatch(/^INVALID/);
    expect(garbled.stdout).toContain("history-base.json");

    // Without it the history reads as one that starts after genesis, and import refuses it (as
    // migration refuses a package without its base).
    rmSync(baseFile);
    expect(igord(["verify", ex]).stdout).toContain("history starts after genesis");
    const cut = igord(["import", ex, "--data-dir", join(a.dir, "o2"), "--control", "off"]);
    expect(cut.status).not.toBe(0);
    expect(cut.stderr).toMatch(/after its genesis, and carries no signed history base \(history-base.json\)/);
    expect(cut.stderr).toContain("CHECKPOINT_CHAIN_BROKEN");
    expect(existsSync(join(a.dir, "o2", "igord.db"))).toBe(false);
  });

  it("a history-base.json or overrides.json that is a FIFO or far too large is named, not read: verify and import answer at once", async () => {
    const a = await prunedHistory();
    const ex = join(a.dir, "ex");
    expect(igord(["export", "survivor", "--out", ex, "--data-dir", a.config.dataDir]).status).toBe(0);
    const folder = join(ex, "history", "survivor");
    for (const name of ["history-base.json", "overrides.json"]) {
      const file = join(folder, name);
      const honest = existsSync(file) ? readFileSync(file) : null;
      // A FIFO nobody writes to: reading it would wait for ever.
      rmSync(file, { force: true });
      expect(spawnSync("mkfifo", [file]).status).toBe(0);
      const fifo = igord(["verify", ex]);
      expect(fifo.stdout, name).toMatch(/^INVALID/);
      expect(fifo.stdout, name).toContain(name);
      expect(igord(["import", ex, "--data-dir", join(a.dir, `o-${name}`), "--control", "off"]).status, name).not.toBe(0);
      // 2 GiB (sparse): refused by its size, not read.
      rmSync(file);
      writeFileSync(file, "");
      truncateSync(file, 2 * 1024 ** 3);
      const huge = igord(["verify", ex]);
      expect(huge.stdout, name).toMatch(/^INVALID/);
      expect(huge.stdout, name).toContain(name);
      rmSync(file);
      if (honest) writeFileSync(file, honest);
    }
  });
});
