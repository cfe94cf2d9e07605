#!/usr/bin/env node
// CLI start-up: wall time of `igord --help`, `igord status` and `igord agents` against a running
// daemon, next to `node -e 0` on the same machine in the same run (median of N runs each, runs
// interleaved so drift hits all alike). Target: each within 2x of `node -e 0`.
// Run on its own: `node scripts/bench-cli.mjs [--runs=9]` (after `npm run build`).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(root, "dist", "cli", "main.js");

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeRun(args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { encoding: "utf8", env: { ...process.env, IGORD_LISTEN: "off" } });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return ms;
}

/** Starts a real daemon on temp dirs and resolves with its control address once it listens. */
function startDaemon(dir) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "--agents-dir", join(dir, "agents"), "--data-dir", join(dir, "data"), "--control", "127.0.0.1:0", "--listen", "off"], { stdio: ["ignore", "pipe", "inherit"] });
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d.toString();
      for (const line of buf.split("\n")) {
        if (!line.includes('"control_listening"')) continue;
        const l = JSON.parse(line);
        resolve({ child, control: `${l.host}:${l.port}` });
      }
    });
    child.on("exit", (code) => reject(new Error(`daemon exited ${code}`)));
  });
}

export async function cliStartup(runs = 9) {
  const dir = mkdtempSync(join(tmpdir(), "igord-bench-cli-"));
  const { child, control } = await startDaemon(dir);
  const cases = {
    "node -e 0": ["-e", "0"],
    "igord --help": [BIN, "--help"],
    "igord status": [BIN, "status", "--control", control, "--data-dir", join(dir, "data")],
    "igord agents": [BIN, "agents", "--control", control, "--data-dir", join(dir, "data")],
  };
  const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  try {
    for (let i = 0; i < runs; i++) for (const [k, args] of Object.entries(cases)) times[k].push(timeRun(args));
  } finally {
    child.kill("SIGINT");
    await new Promise((r) => child.once("exit", r));
    rmSync(dir, { recursive: true, force: true });
  }
  const base = median(times["node -e 0"]);
  return Object.entries(times).map(([name, xs]) => ({ name, medianMs: median(xs), ratio: median(xs) / base }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const runs = Number(new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("="))).get("runs") ?? 9);
  console.log(`| Command | Median wall time (${runs} runs) | × node -e 0 |`);
  console.log("|---|---|---|");
  for (const r of await cliStartup(runs)) console.log(`| \`${r.name}\` | ${r.medianMs.toFixed(0)} ms | ${r.ratio.toFixed(2)}× |`);
}
