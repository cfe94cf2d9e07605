// An operator who takes igord.lock for a stale lock file and deletes it (or its pid file with it)
// under a live daemon: the daemon's lock is on the deleted file, which a new process can no longer
// see. A second daemon then started on the data dir took a fresh lock and ran the same agents,
// re-running ticks the first had already committed (two owners at once). The second daemon is
// refused, naming the live one, and the live daemon puts its lock file back. Real igord processes.
import { existsSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { agentsDirWith } from "../helpers/node.js";
import { type Daemon, exitWithin, igord, killAll, startDaemon } from "../helpers/process.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(killAll);

const FAST = ["--tick-interval", "50ms", "--checkpoint-interval", "200ms", "--control", "off", "--listen", "off"];
/** A process refused the data dir says so and exits well within this. */
const EXIT_AT_ONCE_MS = 10_000;

const ticked = (l: Record<string, unknown>): boolean => l.event === "agent_log" && l.agent === "heartbeat";

async function liveNode(): Promise<{ agents: string; data: string; first: Daemon }> {
  const { agents, data } = agentsDirWith(["heartbeat"]);
  const first = startDaemon(["--data-dir", data, "--agents-dir", agents, ...FAST]);
  await first.waitFor(ticked);
  return { agents, data, first };
}

/** The second daemon on the same data dir: refused at once, naming the live one, running nothing. */
async function expectRefused(agents: string, data: string, holder: Daemon, why = /./): Promise<void> {
  const second = startDaemon(["--data-dir", data, "--agents-dir", agents, ...FAST]);
  expect(await exitWithin(second, EXIT_AT_ONCE_MS)).toBe(1);
  const said = await second.ended;
  expect(said).toMatch(new RegExp(`data dir .* is in use by pid ${String(holder.child.pid)}.*\\[DATA_DIR_LOCKED\\]`));
  expect(said).toMatch(why);
  expect(second.lines.filter((l) => l.event === "agent_started" || l.event === "agent_log")).toEqual([]);
}

async function stopsCleanAndValid(first: Daemon, data: string): Promise<void> {
  const before = first.lines.filter(ticked).length;
  await first.waitFor((l) => ticked(l) && first.lines.filter(ticked).length > before + 1);
  first.child.kill("SIGINT");
  expect(await first.exit).toBe(0);
  expect(first.lines.filter((l) => l.event === "checkpoint_failed" || l.event === "agent_failed")).toEqual([]);
  expect(igord(["verify", "--agent", "heartbeat", "--data-dir", data]).stdout).toMatch(/^VALID/);
}

describe("a lock file deleted under a live daemon", () => {
  it("a second daemon started after igord.lock was deleted (the live daemon paused, not yet putting it back) is refused DATA_DIR_LOCKED naming the live daemon's pid, and runs no agent", async () => {
    const { agents, data, first } = await liveNode();
    // Paused, the live daemon cannot put the file back first: the new process must find it alone.
    first.child.kill("SIGSTOP");
    try {
      rmSync(join(data, "igord.lock"));
      await expectRefused(agents, data, first, /which holds its lock file igord\.lock although that file was deleted/);
    } finally {
      first.child.kill("SIGCONT");
    }
    await stopsCleanAndValid(first, data);
  }, 60_000);

  it("the live daemon puts igord.lock and igord.pid back when both are deleted, and a second daemon is then refused", async () => {
    const { agents, data, first } = await liveNode();
    rmSync(join(data, "igord.lock"));
    rmSync(join(data, "igord.pid"));
    await first.waitFor((l) => l.event === "data_dir_lock_restored");
    await waitUntil(() => existsSync(join(data, "igord.pid")), { what: "igord.pid put back" });
    expect(readFileSync(join(data, "igord.pid"), "utf8").trim()).toBe(String(first.child.pid));
    await expectRefused(agents, data, first);
    await stopsCleanAndValid(first, data);
  }, 60_000);

  it("a lock file replaced by one another process holds stops the live daemon: data_dir_lock_lost, exit 1 with DATA_DIR_LOCKED", async () => {
    const { data, first } = await liveNode();
    // Another process's lock, moved over igord.lock in one rename (as a second igord that made its
    // own file would hold it).
    const other = new Database(join(data, "igord.lock.other"), { timeout: 0 });
    try {
      other.pragma("locking_mode = EXCLUSIVE");
      other.exec("BEGIN EXCLUSIVE; CREATE TABLE holder (pid INTEGER NOT NULL); COMMIT");
      renameSync(join(data, "igord.lock.other"), join(data, "igord.lock"));
      const lost = await first.waitFor((l) => l.event === "data_dir_lock_lost");
      expect(lost.code).toBe("DATA_DIR_LOCKED");
      expect(await exitWithin(first, EXIT_AT_ONCE_MS)).toBe(1);
      expect(await first.ended).toMatch(/\[DATA_DIR_LOCKED\]/);
    } finally {
      other.close();
    }
    expect(igord(["verify", "--agent", "heartbeat", "--data-dir", data]).stdout).toMatch(/^VALID/);
  }, 60_000);
});
