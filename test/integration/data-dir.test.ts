// Who may touch a data dir: one process running agents at a time (a lock that dies with its
// process), private permissions on the keys it holds, and a database that proves itself sound
// before a node starts on it. Real igord processes and real files throughout.
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { EXAMPLES, tempDir } from "../helpers/node.js";
import { type Daemon, exitWithin, igord, killAll, startDaemon } from "../helpers/process.js";

afterEach(killAll);

const FAST = ["--tick-interval", "100ms", "--checkpoint-interval", "300ms", "--control", "off"];
/** A process refused the data dir must say so and exit well within this. */
const EXIT_AT_ONCE_MS = 10_000;

function agentsDir(root: string): string {
  const agents = join(root, "agents");
  mkdirSync(agents, { recursive: true });
  for (const f of ["heartbeat.wasm", "heartbeat.manifest.json"]) copyFileSync(join(EXAMPLES, f), join(agents, f));
  return agents;
}

function stderrOf(d: Daemon): () => string {
  let text = "";
  d.child.stderr?.on("data", (b: Buffer) => {
    text += b.toString();
  });
  return () => text;
}

const ticked = (agent: string) => (l: Record<string, unknown>) => l.event === "agent_log" && l.agent === agent;

describe("one process per data dir", () => {
  // Acceptance 35: a second daemon or igord run exits at once saying the dir is in use; the daemon's agents untouched.
  it("a second daemon, igord run and igord resume on a live daemon's data dir exit at once naming its pid; inspect, verify and export work beside it", async () => {
    const root = tempDir();
    const data = join(root, "data");
    const first = startDaemon(["--data-dir", data, "--agents-dir", agentsDir(root), ...FAST]);
    await first.waitFor(ticked("heartbeat"));
    const pid = String(first.child.pid);

    const second = startDaemon(["--data-dir", data, "--agents-dir", agentsDir(root), ...FAST]);
    const secondErr = stderrOf(second);
    expect(await exitWithin(second, EXIT_AT_ONCE_MS)).toBe(1);
    expect(secondErr()).toMatch(new RegExp(`data dir .* is in use by pid ${pid}.*\\[DATA_DIR_LOCKED\\]`));
    expect(second.lines.filter((l) => l.event === "agent_started" || l.event === "tick")).toEqual([]);

    const run = startDaemon(["run", join(EXAMPLES, "heartbeat.wasm"), "--data-dir", data, ...FAST]);
    const runErr = stderrOf(run);
    expect(await exitWithin(run, EXIT_AT_ONCE_MS)).toBe(1);
    expect(runErr()).toMatch(new RegExp(`in use by pid ${pid}.*\\[DATA_DIR_LOCKED\\]`));

    // Readers keep working beside the daemon.
    const ex = join(root, "ex");
    expect(igord(["export", "heartbeat", "--out", ex, "--data-dir", data]).status).toBe(0);
    expect(igord(["inspect", "--agent", "heartbeat", "--data-dir", data]).status).toBe(0);
    expect(igord(["verify", "--agent", "heartbeat", "--data-dir", data]).stdout).toMatch(/^VALID/);

    const resume = igord(["resume", "--checkpoint", join(ex, "heartbeat.checkpoint"), "--wasm", join(ex, "heartbeat.wasm"), "--data-dir", data, ...FAST]);
    expect(resume.status).toBe(1);
    expect(resume.stderr).toMatch(new RegExp(`in use by pid ${pid}.*\\[DATA_DIR_LOCKED\\]`));

    // The first daemon never noticed: it still ticks and stops cleanly with a valid history.
    const before = first.lines.filter(ticked("heartbeat")).length;
    await first.waitFor((l) => ticked("heartbeat")(l) && first.lines.filter(ticked("heartbeat")).length > before + 1);
    first.child.kill("SIGINT");
    expect(await first.exit).toBe(0);
    expect(first.lines.filter((l) => l.event === "agent_failed" || l.event === "agent_quarantined")).toEqual([]);
    expect(igord(["verify", "--agent", "heartbeat", "--data-dir", data]).stdout).toMatch(/^VALID/);
  });

  it("the lock dies with its process: after SIGKILL a new daemon starts at once although the old pid file remains", async () => {
    const root = tempDir();
    const data = join(root, "data");
    const first = startDaemon(["--data-dir", data, "--agents-dir", agentsDir(root), ...FAST]);
    await first.waitFor(ticked("heartbeat"));
    first.child.kill("SIGKILL");
    await first.exit;
    expect(readFileSync(join(data, "igord.pid"), "utf8").trim()).toBe(String(first.child.pid));

    const next = startDaemon(["--data-dir", data, "--agents-dir", agentsDir(root), ...FAST]);
    await next.waitFor((l) => l.event === "agent_started" && l.agent === "heartbeat");
    await next.waitFor(ticked("heartbeat"));
    expect(readFileSync(join(data, "igord.pid"), "utf8").trim()).toBe(String(next.child.pid));
    next.child.kill("SIGINT");
    expect(await next.exit).toBe(0);
  });
});

describe("data dir permissions", () => {
  const mode = (p: string): number => statSync(p).mode & 0o777;

  // Acceptance 35: data dir 0700, files 0600.
  it("a new data dir is 0700 and its database files 0600", async () => {
    const root = tempDir();
    const data = join(root, "data");
    const d = startDaemon(["--data-dir", data, "--agents-dir", agentsDir(root), ...FAST]);
    await d.waitFor(ticked("heartbeat"));
    expect(mode(data)).toBe(0o700);
    for (const f of ["igord.db", "igord.db-wal", "igord.db-shm", "igord.lock", "igord.pid"]) {
      expect(existsSync(join(data, f)), f).toBe(true);
      expect(mode(join(data, f)), f).toBe(0o600);
    }
    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
  });

  it("an existing data dir left readable by others is made private at start, and so is one igord import creates", async () => {
    const root = tempDir();
    const data = join(root, "data");
    const a = startDaemon(["run", join(EXAMPLES, "heartbeat.wasm"), "--data-dir", data, ...FAST]);
    await a.waitFor(ticked("heartbeat"));
    a.child.kill("SIGINT");
    expect(await a.exit).toBe(0);
    chmodSync(data, 0o755);
    chmodSync(join(data, "igord.db"), 0o644);

    const b = startDaemon(["run", join(EXAMPLES, "heartbeat.wasm"), "--data-dir", data, ...FAST]);
    await b.waitFor((l) => l.event === "run_started");
    expect(mode(data)).toBe(0o700);
    expect(mode(join(data, "igord.db"))).toBe(0o600);
    expect(mode(join(data, "igord.db-wal"))).toBe(0o600);
    b.child.kill("SIGINT");
    expect(await b.exit).toBe(0);

    const ex = join(root, "ex");
    expect(igord(["export", "heartbeat", "--out", ex, "--data-dir", data]).status).toBe(0);
    const other = join(root, "other");
    expect(igord(["import", ex, "--data-dir", other, "--control", "off"]).status).toBe(0);
    expect(mode(other)).toBe(0o700);
    expect(mode(join(other, "igord.db"))).toBe(0o600);
  });
});

describe("a --data-dir that is another program's directory", () => {
  it("is refused, CONFIG_INVALID naming it, and left as it was: its mode and files unchanged (it was made 0700 and igord's files written among them)", () => {
    const dir = join(tempDir(), "www");
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "index.html"), "<p>hello</p>");
    const r = igord(["run", join(EXAMPLES, "heartbeat.wasm"), "--data-dir", dir, "--control", "off", "--listen", "off"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`--data-dir ${dir} holds other files (index.html) and no igord database`);
    expect(r.stderr).toContain("CONFIG_INVALID");
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    expect(readdirSync(dir)).toEqual(["index.html"]);
  });
});

describe("a corrupt database", () => {
  it("refuses to start with STORE_CORRUPT instead of running a healthy-looking empty node", async () => {
    const root = tempDir();
    const data = join(root, "data");
    const first = startDaemon(["--data-dir", data, "--agents-dir", agentsDir(root), ...FAST]);
    await first.waitFor((l) => l.event === "checkpoint_saved" && l.reason === "periodic");
    first.child.kill("SIGINT");
    expect(await first.exit).toBe(0);
    // Garbage over the root page of the checkpoint history, as a bad sector would leave it.
    const db = new Database(join(data, "igord.db"));
    const pageSize = db.pragma("page_size", { simple: true }) as number;
    const root_ = (db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'checkpoints'").get() as { rootpage: number }).rootpage;
    db.close();
    const fd = openSync(join(data, "igord.db"), "r+");
    writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (root_ - 1) * pageSize);
    closeSync(fd);

    const again = startDaemon(["--data-dir", data, "--agents-dir", agentsDir(root), ...FAST]);
    const err = stderrOf(again);
    expect(await exitWithin(again, EXIT_AT_ONCE_MS)).toBe(1);
    expect(err()).toMatch(/igord\.db is corrupt .*quick_check.*\[STORE_CORRUPT\]/);
    expect(again.lines.filter((l) => l.event === "node_starting")).toEqual([]);
    const run = igord(["run", join(EXAMPLES, "heartbeat.wasm"), "--data-dir", data, ...FAST]);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/\[STORE_CORRUPT\]/);
  });
});
