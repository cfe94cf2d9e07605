// The real igord binary: help, usage errors, config errors, the daemon with its SIGINT shutdown,
// `igord status` / `igord agents` against it, and `igord run`.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { agentsDirWith, EXAMPLES, ROOT, tempDir } from "../helpers/node.js";
import { BIN, igord, killAll, startDaemon } from "../helpers/process.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";
import { formatAgents } from "../../src/cli/status.js";
import { DB_FILE } from "../../src/store/sqlite-store.js";
import { FIELDS } from "../../src/config/schema.js";
import Database from "better-sqlite3";

afterEach(killAll);

describe("igord CLI", () => {
  it("--help lists every flag with its default, and each subcommand has help", () => {
    const r = igord(["--help"]);
    expect(r.status).toBe(0);
    const help = r.stdout.replace(/\s+/g, " ");
    for (const [flag, def] of [
      ["--agents-dir", "./agents"],
      ["--data-dir", "./data"],
      ["--price", "0.001"],
      ["--budget", "1.0"],
      ["--capabilities", "clock,emit,http,log,pricing,rand,wallet,x402"],
      ["--tick-interval", "1s"],
      ["--fast-tick-interval", "10ms"],
      ["--tick-timeout", "15s"],
      ["--control", "127.0.0.1:7420"],
      ["--log-level", "info"],
      ["--config", "none"],
    ]) {
      const entry = help.slice(help.indexOf(`${flag} <`)).split(" --")[0] ?? "";
      expect(entry).toContain(`(default: "${def}")`);
    }
    for (const sub of ["run", "status", "agents"]) {
      const h = igord([sub, "--help"]);
      expect(h.status).toBe(0);
      expect(h.stdout).toContain("default:");
    }
  });

  // Acceptance 31: --help and each subcommand's help list every flag with its default.
  it("--help lists every flag of the config schema with its default and variable, and every subcommand answers --help (scenario 31)", () => {
    const out = igord(["--help"]).stdout;
    const help = out.replace(/\s+/g, " ");
    for (const f of FIELDS) {
      const at = help.search(new RegExp(`--${f.flag} [<[]`));
      expect(at, `--${f.flag} in --help`).toBeGreaterThanOrEqual(0);
      // The entry runs to its variable and default (a description may name other flags; a
      // repeatable flag's default is shown unquoted).
      const entry = /^.*?\[env (IGORD_[A-Z_]+)\] \(default: "?([^")]*)"?\)/.exec(help.slice(at));
      expect(entry, `--${f.flag}`).not.toBeNull();
      expect(entry?.[2], `--${f.flag}`).toBe(f.defaultText);
      expect(entry?.[1], `--${f.flag}`).toBe(`IGORD_${f.flag.toUpperCase().replace(/-/g, "_")}`);
    }
    const commands = [...out.slice(out.indexOf("Commands:")).matchAll(/^ {2}([a-z-]+) /gm)].map((m) => m[1] as string).filter((c) => c !== "help");
    expect(commands.length).toBeGreaterThanOrEqual(20);
    for (const sub of commands) {
      const h = igord([sub, "--help"]);
      expect(h.status, `igord ${sub} --help`).toBe(0);
      expect(h.stdout, `igord ${sub} --help`).toMatch(new RegExp(`^Usage: igord ${sub}`, "m"));
    }
  });

  // Acceptance 31: --replay-window -1, --replay-on-divergence bogus refused naming the flag.
  it("--replay-window -1 and --replay-on-divergence bogus are refused at start naming the flag", () => {
    const window = igord(["--replay-window", "-1", "--control", "off"]);
    expect(window.status).toBe(1);
    expect(window.stderr).toMatch(/invalid --replay-window "-1".*\[CONFIG_INVALID\]/);
    const policy = igord(["--replay-on-divergence", "bogus", "--control", "off"]);
    expect(policy.status).toBe(1);
    expect(policy.stderr).toMatch(/invalid --replay-on-divergence "bogus".*\[CONFIG_INVALID\]/);
  });

  // Acceptance 31: unknown commands and flags fail with usage, non-zero exit.
  it("unknown commands and flags fail with usage and a non-zero exit", () => {
    const cmd = igord(["frobnicate"]);
    expect(cmd.status).not.toBe(0);
    expect(cmd.stderr).toMatch(/too many arguments|unknown command/);
    const flag = igord(["--no-such-flag"]);
    expect(flag.status).not.toBe(0);
    expect(flag.stderr).toMatch(/unknown option '--no-such-flag'/);
    expect(flag.stderr).toMatch(/Usage: igord/);
  });

  // Acceptance 31: --price 0 refused naming the flag.
  it("invalid values are refused at start naming the flag", () => {
    const r = igord(["--price", "0", "--control", "off"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/invalid --price "0": must be greater than 0 \[CONFIG_INVALID\]/);
    const env = spawnSync(process.execPath, [BIN, "--control", "off"], {
      encoding: "utf8",
      env: { ...process.env, IGORD_TICK_TIMEOUT: "soon" },
    });
    expect(env.status).toBe(1);
    expect(env.stderr).toMatch(/IGORD_TICK_TIMEOUT/);
  });

  it("a --bootstrap address whose /p2p/ part is no peer id is refused naming --bootstrap, not the listen address", () => {
    const bad = `/ip4/127.0.0.1/tcp/9/p2p/${"1".repeat(46)}`;
    const dir = tempDir();
    const r = igord(["--data-dir", join(dir, "data"), "--agents-dir", join(dir, "agents"), "--control", "off", "--listen", "/ip4/127.0.0.1/tcp/0", "--bootstrap", bad]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/invalid --bootstrap .* is not a peer id .*\[CONFIG_INVALID\]/);
    expect(r.stderr).not.toMatch(/P2P_UNAVAILABLE/);
  });

  it("a --trusted-peer that is no peer id is refused at start (it was taken and could never match)", () => {
    const dir = tempDir();
    // An agents dir that is a file ends a start that took the peer id, so the command ends either way.
    const notADir = join(dir, "agents");
    writeFileSync(notADir, "");
    const r = igord(["--data-dir", join(dir, "data"), "--agents-dir", notADir, "--control", "off", "--listen", "off", "--trusted-peer", "1".repeat(46)]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/invalid --trusted-peer .* is not a peer id .*\[CONFIG_INVALID\]/);
    expect(existsSync(join(dir, "data"))).toBe(false);
  });

  it("contradicting settings are refused at start, naming each value and where it came from", () => {
    const peer = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp";
    const r = igord(["--bootstrap", peer, "--control", "off"], { ...process.env, IGORD_LISTEN: "off" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`--bootstrap ${peer} (flag) needs the p2p service, but --listen off (IGORD_LISTEN)`);
    const lease = igord(["--lease-duration", "500ms", "--control", "off"], { ...process.env, IGORD_LISTEN: "off", IGORD_TICK_INTERVAL: "1s" });
    expect(lease.status).toBe(1);
    expect(lease.stderr).toMatch(/--lease-duration 500ms \(flag\) is shorter than --tick-interval 1s \(IGORD_TICK_INTERVAL\).*\[CONFIG_INVALID\]/);
  });

  it("the daemon runs the agents directory, answers igord status/agents, and exits 0 on SIGINT", async () => {
    const dir = tempDir();
    const agents = join(dir, "agents");
    mkdirSync(agents);
    for (const f of [
      "heartbeat.wasm",
      "heartbeat.manifest.json",
      "survivor.wasm",
      "survivor.manifest.json",
    ]) {
      copyFileSync(join(EXAMPLES, f), join(agents, f));
    }
    const d = startDaemon([
      "--agents-dir",
      agents,
      "--data-dir",
      join(dir, "data"),
      "--control",
      "127.0.0.1:0",
      "--tick-interval",
      "100ms",
    ]);
    const listening = await d.waitFor((l) => l.event === "control_listening");
    const control = `127.0.0.1:${listening.port}`;
    await d.waitFor(
      (l) => l.event === "agent_log" && l.agent === "survivor" && /tick 2 /.test(String(l.msg)),
    );

    const status = igord(["status", "--control", control, "--data-dir", join(dir, "data")]);
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/agents: 2 running/);
    const list = igord(["agents", "--control", control, "--data-dir", join(dir, "data"), "--json"]);
    expect(list.status).toBe(0);
    expect((JSON.parse(list.stdout) as { agents: { id: string }[] }).agents.map((a) => a.id).sort()).toEqual([
      "heartbeat",
      "survivor",
    ]);
    const noToken = igord(["status", "--control", control, "--data-dir", join(dir, "elsewhere")]);
    expect(noToken.status).toBe(1);
    expect(noToken.stderr).toMatch(/control token/);

    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
    const saved = d.lines
      .filter((l) => l.event === "checkpoint_saved" && l.reason === "shutdown")
      .map((l) => l.agent);
    expect(saved.sort()).toEqual(["heartbeat", "survivor"]);
    expect(d.lines.at(-1)?.event).toBe("node_stopped");
  });

  it("igord run ticks one agent in the foreground and exits 0 on SIGTERM", async () => {
    const dir = tempDir();
    const d = startDaemon([
      "run",
      join(EXAMPLES, "heartbeat.wasm"),
      "--budget",
      "10",
      "--data-dir",
      join(dir, "data"),
      "--tick-interval",
      "50ms",
    ]);
    const started = await d.waitFor((l) => l.event === "run_started");
    expect(started.agent).toBe("heartbeat");
    expect(started.budget).toBe("10.000000");
    await d.waitFor((l) => l.event === "agent_log" && /tick 3 /.test(String(l.msg)));
    d.child.kill("SIGTERM");
    expect(await d.exit).toBe(0);
  });

  it("igord run with a broken module exits 1 naming the problem", () => {
    const r = igord(["run", join(ROOT, "package.json"), "--data-dir", join(tempDir(), "data")]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/package\.json is not a valid WebAssembly module.*\[WASM_MALFORMED\]/);
  });

  // Acceptance 6 (the CLI clause): an explicit --manifest path that does not exist is an error.
  it("igord run with an explicit --manifest path that does not exist exits 1 naming the path, and stores no agent", () => {
    const dir = tempDir();
    const missing = join(dir, "nope.manifest.json");
    const r = igord(["run", join(EXAMPLES, "heartbeat.wasm"), "--manifest", missing, "--data-dir", join(dir, "data")]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`manifest ${missing} does not exist (ENOENT)`);
    expect(r.stderr).toContain("[MANIFEST_NOT_FOUND]");
    const db = new Database(join(dir, "data", DB_FILE), { readonly: true });
    expect(db.prepare("SELECT count(*) AS n FROM agents").get()).toEqual({ n: 0 });
    expect(db.prepare("SELECT count(*) AS n FROM checkpoints").get()).toEqual({ n: 0 });
    db.close();
  });

  it("igord agents and status list the files that failed to load (path, code, message) and never print undefined", async () => {
    const dir = tempDir();
    const agents = join(dir, "agents");
    mkdirSync(agents);
    copyFileSync(join(EXAMPLES, "heartbeat.wasm"), join(agents, "heartbeat.wasm"));
    copyFileSync(join(EXAMPLES, "heartbeat.manifest.json"), join(agents, "heartbeat.manifest.json"));
    writeFileSync(join(agents, "broken.wasm"), "garbage");
    await writeWat(agents, "greedy", watAgent({ imports: '(import "env" "seed" (func (result f64))) (import "env" "console.log" (func (param i32)))' }), CAPS());
    const d = startDaemon(["--agents-dir", agents, "--data-dir", join(dir, "data"), "--control", "127.0.0.1:0", "--tick-interval", "100ms"]);
    const control = `127.0.0.1:${(await d.waitFor((l) => l.event === "control_listening")).port}`;
    // The control API opens before the agents load: wait for both failures and a tick.
    await d.waitFor((l) => l.event === "agent_log" && l.agent === "heartbeat");
    await d.waitFor(() => d.lines.filter((l) => l.event === "agent_load_failed").length === 2);
    const list = igord(["agents", "--control", control, "--data-dir", join(dir, "data")]);
    expect(list.status).toBe(0);
    expect(list.stdout).not.toMatch(/undefined|null/);
    expect(list.stdout).toMatch(/^heartbeat\s+running/m);
    expect(list.stdout).toContain("failed to load:");
    expect(list.stdout).toContain(`${join(agents, "broken.wasm")}  [WASM_MALFORMED]`);
    expect(list.stdout).toMatch(/greedy\.wasm {2}\[IMPORT_REFUSED\] 2 imports are refused: \(1\) env\.seed.*fix: .*\(2\) env\.console\.log.*fix: use igor\.log_emit/);
    const status = igord(["status", "--control", control, "--data-dir", join(dir, "data")]);
    expect(status.stdout).toMatch(/agents: 1 running, 0 stopped, 0 failed, 2 failed to load/);
    expect(status.stdout).not.toMatch(/undefined/);
    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
  });

  it("the agents table prints quarantined agents and unresolved handoffs without undefined cells", () => {
    const out = formatAgents([
      { id: "q", status: "quarantined", reason: "checkpoint_signature", error: { code: "CHECKPOINT_SIGNATURE", message: "bad" }, since: "2026-01-01T00:00:00.000Z" },
      { id: "h", status: "handoff_unresolved", reason: "awaiting the migration target's answer", lease: null },
      { id: "f", status: "failed", tick: "3", budget: "0.9", reason: null, error: { code: "AGENT_TRAP", message: "trap" } },
    ]);
    expect(out).not.toMatch(/undefined|null/);
    expect(out).toMatch(/^q\s+quarantined\s+-\s+-\s+-\s+checkpoint_signature$/m);
    expect(out).toMatch(/^f\s+failed\s+3\s+0\.9\s+-\s+AGENT_TRAP$/m);
    expect(formatAgents([])).toBe("ID  STATUS  TICK  BUDGET  DIVERGENCES  REASON\n");
  });

  it("a shutdown whose checkpoints fail exits non-zero and names the agents", async () => {
    const { dir, agents } = agentsDirWith(["heartbeat", "survivor"]);
    const d = startDaemon(["--agents-dir", agents, "--data-dir", join(dir, "data"), "--control", "off", "--tick-interval", "50ms", "--checkpoint-interval", "0"]);
    await d.waitFor((l) => l.event === "agent_log" && l.agent === "survivor" && /tick 2 /.test(String(l.msg)));
    await d.waitFor((l) => l.event === "agent_log" && l.agent === "heartbeat" && /tick 2 /.test(String(l.msg)));
    // Another process (an operator's sqlite3 shell, a stuck igord import) holds the write lock.
    const db = new Database(join(dir, "data", DB_FILE));
    db.exec("BEGIN IMMEDIATE");
    try {
      const stderr: string[] = [];
      d.child.stderr?.on("data", (b: Buffer) => stderr.push(b.toString()));
      d.child.kill("SIGINT");
      expect(await d.exit).toBe(1);
      const failed = d.lines.filter((l) => l.event === "checkpoint_failed" && l.reason === "shutdown").map((l) => l.agent);
      expect(failed.sort()).toEqual(["heartbeat", "survivor"]);
      expect(d.lines.find((l) => l.event === "shutdown_checkpoints_failed")?.agents).toEqual(["heartbeat", "survivor"]);
      expect(stderr.join("")).toMatch(/2 agents could not be checkpointed at shutdown: heartbeat \(STORE_ERROR\), survivor \(STORE_ERROR\).*\[SHUTDOWN_CHECKPOINT_FAILED\]/);
    } finally {
      db.exec("ROLLBACK");
      db.close();
    }
  }, 45_000);
});
