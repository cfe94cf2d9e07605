// An --agents-dir that is not a directory: refused at start with the daemon's own error line naming
// the flag; replaced by a file while the daemon runs, reported once, and the agents loaded from it
// run on. Both were an uncaught ENOTDIR from the directory scan: a Node stack trace at start, and
// at run time the daemon died (exit 1) without its shutdown checkpoints.
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { agentsDirWith, tempDir } from "../helpers/node.js";
import { igord, killAll, startDaemon } from "../helpers/process.js";

afterEach(killAll);

describe("an --agents-dir that is not a directory", () => {
  it("at start: refused with igord's error line naming the flag and the code, not a stack trace", () => {
    const dir = tempDir();
    const file = join(dir, "agents-file");
    writeFileSync(file, "x");
    const r = igord(["--listen", "off", "--control", "off", "--data-dir", join(dir, "data"), "--agents-dir", file, "--log-level", "error"]);
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/at readdirSync|node:fs/);
    expect(r.stderr).toContain(`igord: error: --agents-dir ${file} is not a directory`);
    expect(r.stderr).toContain("CONFIG_INVALID");
  });

  it("replaced by a file while the daemon runs: reported once, and its agents tick on", async () => {
    const { agents, data } = agentsDirWith(["heartbeat"]);
    const d = startDaemon(["--listen", "off", "--control", "off", "--data-dir", data, "--agents-dir", agents, "--tick-interval", "50ms"]);
    await d.waitFor((l) => l.event === "agent_log" && l.agent === "heartbeat");
    renameSync(agents, `${agents}.moved`);
    writeFileSync(agents, "x");
    const skipped = await d.waitFor((l) => l.event === "agent_file_skipped" && l.path === agents);
    expect(String(skipped.reason)).toMatch(/not a directory/);
    const ticks = d.lines.filter((l) => l.event === "agent_log" && l.agent === "heartbeat").length;
    await d.waitFor(() => d.lines.filter((l) => l.event === "agent_log" && l.agent === "heartbeat").length >= ticks + 5);
    // Several scans later, still reported once.
    expect(d.lines.filter((l) => l.event === "agent_file_skipped" && l.path === agents)).toHaveLength(1);
  }, 30_000);
});
