// A disk that fills for a while (a log burst, a backup landing beside the data dir) and then has room
// again. Every agent whose checkpoint met it failed (DISK_FULL) and stayed failed until an operator
// ran `igord start` for each one, on a node that otherwise ran on: a transient full disk took every
// agent down for good. Now such an agent is started again from its last committed checkpoint once
// the disk has room, retried with backoff while it has none. Real igord process on a small tmpfs
// (root only: skipped else).
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EXAMPLES, tempDir } from "../helpers/node.js";
import { igord, killAll, startDaemon } from "../helpers/process.js";
import { canMount, fillDisk, smallDisk, unmountSmallDisks } from "../helpers/small-disk.js";

afterEach(async () => {
  await killAll();
  unmountSmallDisks();
});

describe.skipIf(!canMount())("a disk full for a while", () => {
  it("an agent failed by it runs again from its last committed checkpoint once the disk has room, with no operator; its history stays VALID", async () => {
    const disk = smallDisk("2m");
    const agents = join(tempDir(), "agents");
    mkdirSync(agents);
    for (const f of ["heartbeat.wasm", "heartbeat.manifest.json"]) copyFileSync(join(EXAMPLES, f), join(agents, f));
    const data = join(disk, "data");
    const d = startDaemon(["--agents-dir", agents, "--data-dir", data, "--control", "off", "--listen", "off", "--tick-interval", "20ms", "--checkpoint-interval", "100ms"]);
    await d.waitFor((l) => l.event === "checkpoint_saved" && l.agent === "heartbeat");

    const filler = join(disk, "filler");
    fillDisk(filler);
    const failed = await d.waitFor((l) => l.event === "checkpoint_failed" && l.agent === "heartbeat" && l.code === "DISK_FULL", 30_000);
    // The last committed tick before the disk filled: what the agent resumes from.
    const saved = d.lines.filter((l) => l.event === "checkpoint_saved" && l.agent === "heartbeat").map((l) => Number(l.tick));
    const committed = Math.max(...saved);
    expect(Number(failed.tick)).toBeGreaterThan(committed);

    // While the disk stays full the agent is tried again at growing intervals, never in a loop.
    await d.waitFor((l) => l.event === "agent_restart_scheduled" && l.agent === "heartbeat" && Number(l.inMs) >= 2_000, 30_000);
    expect(d.lines.filter((l) => l.event === "agent_started" && l.agent === "heartbeat").length).toBeLessThanOrEqual(3);

    // Room again, and more than the history needs from here on.
    rmSync(filler);
    execFileSync("mount", ["-o", "remount,size=32m", disk]);
    const freedAt = d.lines.length;
    await d.waitFor((l) => l.event === "checkpoint_saved" && l.agent === "heartbeat" && Number(l.tick) > Number(failed.tick) + 20, 30_000);
    expect(d.lines.slice(freedAt).filter((l) => l.event === "checkpoint_failed").length).toBeLessThanOrEqual(2);

    // Every start again was from the newest committed checkpoint, with its budget: nothing created,
    // nothing lost. (A checkpoint may still find room in the WAL's used pages while the disk is full.)
    const restarts = d.lines.filter((l) => l.event === "agent_started" && l.agent === "heartbeat" && l.fresh === false);
    expect(restarts.length).toBeGreaterThan(0);
    for (const back of restarts) {
      const last = d.lines.slice(0, d.lines.indexOf(back)).filter((l) => l.event === "checkpoint_saved" && l.agent === "heartbeat").at(-1);
      expect(back.tick).toBe(last?.tick);
      expect(back.budget).toBe(last?.budget);
    }

    d.child.kill("SIGINT");
    expect(await d.exit, await d.ended).toBe(0);
    const v = igord(["verify", "--agent", "heartbeat", "--data-dir", data]);
    expect(v.stdout).toMatch(/^VALID/);
  }, 90_000);

  // A new agent file whose first rows met a full disk was reported `agent_load_failed` with SQLite's
  // bare code SQLITE_FULL, and the agents-dir watcher retried a failed file only when it changed: the
  // agent never started once the disk had room until the operator touched the file or restarted.
  it("a new agent file that meets the full disk says DISK_FULL and loads once the disk has room", async () => {
    const disk = smallDisk("2m");
    const agents = join(tempDir(), "agents");
    mkdirSync(agents);
    const data = join(disk, "data");
    const d = startDaemon(["--agents-dir", agents, "--data-dir", data, "--control", "off", "--listen", "off", "--tick-interval", "20ms"]);
    await d.waitFor((l) => l.event === "agents_loaded");
    const filler = join(disk, "filler");
    fillDisk(filler);
    copyFileSync(join(EXAMPLES, "heartbeat.manifest.json"), join(agents, "heartbeat.manifest.json"));
    copyFileSync(join(EXAMPLES, "heartbeat.wasm"), join(agents, "heartbeat.wasm"));
    const failed = await d.waitFor((l) => l.event === "agent_load_failed", 30_000);
    expect(failed.code).toBe("DISK_FULL");
    rmSync(filler);
    execFileSync("mount", ["-o", "remount,size=32m", disk]);
    await d.waitFor((l) => l.event === "agent_started" && l.agent === "heartbeat", 10_000);
  }, 60_000);
});
