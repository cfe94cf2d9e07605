// The real igord binary: help, usage errors, config errors, the daemon with its SIGINT shutdown,
// `igord status` / `igord agents` against it, and `igord run`.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EXAMPLES, ROOT, tempDir } from "../helpers/node.js";
import { BIN, igord, killAll, startDaemon } from "../helpers/process.js";

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
      ["--capabilities", "clock,emit,log,pricing,rand,wallet"],
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

  it("unknown commands and flags fail with usage and a non-zero exit", () => {
    const cmd = igord(["frobnicate"]);
    expect(cmd.status).not.toBe(0);
    expect(cmd.stderr).toMatch(/too many arguments|unknown command/);
    const flag = igord(["--no-such-flag"]);
    expect(flag.status).not.toBe(0);
    expect(flag.stderr).toMatch(/unknown option '--no-such-flag'/);
    expect(flag.stderr).toMatch(/Usage: igord/);
  });

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
});
