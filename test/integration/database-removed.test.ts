// An operator who deletes igord.db under a live daemon (taking it for a stale copy, or "resetting"
// a node), or moves another file over it: the daemon's connections keep the file they opened, so
// every checkpoint after went into a file no path reached, lost for good when the process ended,
// with the whole history before it. The daemon notices within LOCK_CHECK_INTERVAL_MS, stops (exit 1,
// STORE_REMOVED) and first writes the database it holds back to its path; a file found there is
// kept beside it, never overwritten. Real igord processes.
import { existsSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { agentsDirWith } from "../helpers/node.js";
import { type Daemon, exitWithin, igord, killAll, startDaemon } from "../helpers/process.js";

afterEach(killAll);

const FAST = ["--tick-interval", "50ms", "--checkpoint-interval", "200ms", "--control", "off", "--listen", "off"];
/** A daemon that lost its database stops well within this. */
const STOPS_WITHIN_MS = 15_000;

async function liveNode(): Promise<{ data: string; agents: string; d: Daemon }> {
  const { agents, data } = agentsDirWith(["heartbeat"]);
  const d = startDaemon(["--data-dir", data, "--agents-dir", agents, ...FAST]);
  await d.waitFor((l) => l.event === "checkpoint_saved" && l.agent === "heartbeat");
  return { data, agents, d };
}

/** The daemon stopped on its own, said why, and the database at the path holds every checkpoint it saved: it verifies, and a start resumes from the last. */
async function stopsWithEverySave(d: Daemon, data: string, agents: string, writesBack = true): Promise<void> {
  const removed = await d.waitFor((l) => l.event === "store_removed", STOPS_WITHIN_MS);
  expect(removed.code).toBe("STORE_REMOVED");
  expect(await exitWithin(d, STOPS_WITHIN_MS)).toBe(1);
  expect(await d.ended).toMatch(/\[STORE_REMOVED\]/);
  expect(d.lines.some((l) => l.event === "store_written_back")).toBe(writesBack);
  const saved = d.lines.filter((l) => l.event === "checkpoint_saved" && l.agent === "heartbeat").map((l) => BigInt(String(l.tick)));
  const last = saved.reduce((a, b) => (b > a ? b : a));
  expect(igord(["verify", "--agent", "heartbeat", "--data-dir", data]).stdout).toMatch(/^VALID/);
  const again = startDaemon(["--data-dir", data, "--agents-dir", agents, ...FAST]);
  const started = await again.waitFor((l) => l.event === "agent_started" && l.agent === "heartbeat");
  expect(started.fresh).toBe(false);
  expect(BigInt(String(started.tick))).toBe(last);
  again.child.kill("SIGINT");
  expect(await again.exit).toBe(0);
}

describe("the database deleted or replaced under a live daemon", () => {
  it("deleted: the daemon writes it back to its path and stops (exit 1, STORE_REMOVED); every checkpoint it saved, the ones after the deletion too, is there, verifies, and the next start resumes from the last", async () => {
    const { data, agents, d } = await liveNode();
    rmSync(join(data, "igord.db"));
    const at = d.lines.length;
    // Saved after the deletion, into the file only the daemon still holds.
    await d.waitFor((l) => l.event === "checkpoint_saved" && d.lines.indexOf(l) >= at).catch(() => undefined);
    await stopsWithEverySave(d, data, agents);
  }, 60_000);

  it("its write-ahead log deleted: the daemon stops (exit 1, STORE_REMOVED), its commits copied into the database as it closes: every checkpoint it saved is there, verifies, and the next start resumes from the last", async () => {
    const { data, agents, d } = await liveNode();
    rmSync(join(data, "igord.db-wal"));
    await stopsWithEverySave(d, data, agents, false);
  }, 60_000);

  it("replaced by another file: that file is kept beside it (igord.db.replaced-<ms>), never overwritten, and the daemon's database is written back to the path", async () => {
    const { data, agents, d } = await liveNode();
    writeFileSync(join(data, "other.db"), "an operator's file");
    renameSync(join(data, "other.db"), join(data, "igord.db"));
    await stopsWithEverySave(d, data, agents);
    const kept = readdirSync(data).filter((f) => /^igord\.db\.replaced-\d+$/.test(f));
    expect(kept).toHaveLength(1);
    expect(existsSync(join(data, kept[0]!))).toBe(true);
  }, 60_000);
});
