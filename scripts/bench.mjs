#!/usr/bin/env node
// igord benchmarks, one run: `npm run bench` (builds first). Prints a Markdown table for
// docs/BENCHMARKS.md. Each figure is measured through the real daemon engine (worker pool,
// scheduler, metering), except the "direct" baseline, which calls the exports in-process.
import "../dist/shim/promise-with-resolvers.js";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, copyFileSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Writable } from "node:stream";
import { pino } from "pino";
import wabtInit from "wabt";
import { loadConfig } from "../dist/config/load.js";
import { IgordNode } from "../dist/node/node.js";
import { checkpointRate } from "./bench-checkpoints.mjs";
import { replayCost } from "./bench-replay.mjs";
import { migrationHops } from "./bench-migration.mjs";
import { cliStartup } from "./bench-cli.mjs";
import { httpCost } from "./bench-http.mjs";
import { densityRows } from "./bench-density.mjs";
import { firstHop, firstHopRow } from "./bench-first-hop.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")));
const seconds = Number(args.get("seconds") ?? 5);

const TRIVIAL = `(module
  (memory (export "memory") 1)
  (global $ticks (mut i32) (i32.const 0))
  (func (export "agent_init"))
  (func (export "agent_tick") (result i32) (global.set $ticks (i32.add (global.get $ticks) (i32.const 1))) (i32.const 1))
  (func (export "agent_checkpoint") (result i32) (i32.store (i32.const 0) (global.get $ticks)) (i32.const 4))
  (func (export "agent_checkpoint_ptr") (result i32) (i32.const 0))
  (func (export "agent_resume") (param i32 i32) (if (i32.eq (local.get 1) (i32.const 4)) (then (global.set $ticks (i32.load (local.get 0))))))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))`;
const HANG = TRIVIAL.replace(
  '(func (export "agent_tick") (result i32) (global.set $ticks (i32.add (global.get $ticks) (i32.const 1))) (i32.const 1))',
  '(func (export "agent_tick") (result i32) (global.set $ticks (i32.add (global.get $ticks) (i32.const 1))) (if (i32.ge_u (global.get $ticks) (i32.const 3)) (then (loop $l (br $l)))) (i32.const 0))',
);

async function wat(text) {
  const w = await wabtInit();
  const m = w.parseWat("b.wat", text);
  const out = new Uint8Array(m.toBinary({}).buffer);
  m.destroy();
  return out;
}

function quietNode(flags) {
  const dir = mkdtempSync(join(tmpdir(), "igord-bench-"));
  const config = loadConfig({ flags: { "agents-dir": join(dir, "agents"), "data-dir": join(dir, "data"), control: "off", "log-level": "warn", ...flags }, env: {} });
  const logger = pino({ level: "warn" }, new Writable({ write: (_c, _e, cb) => cb() }));
  const node = new IgordNode({ config, logger, watchAgentsDir: false });
  return { node, dir, cleanup: async () => { await node.stop(); rmSync(dir, { recursive: true, force: true }); } };
}

// 1. Aggregate ticks/s of a trivial agent that always reports more work, state capture on.
async function tickThroughput(agents) {
  const { node, dir, cleanup } = quietNode({ "tick-interval": "1ms", "fast-tick-interval": "0", price: "0.001" });
  await node.start();
  const path = join(dir, "trivial.wasm");
  writeFileSync(path, await wat(TRIVIAL));
  for (let i = 0; i < agents; i++) await node.addAgent({ wasmPath: path, agentId: `t${i}` });
  let ticks = 0;
  node.scheduler.on("tick", () => ticks++);
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  const start = ticks;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const rate = (ticks - start) / elapsed;
  await cleanup();
  return rate;
}

// 2. The same tick + state capture, calling the exports directly in this thread.
async function directTickNs() {
  const inst = new WebAssembly.Instance(new WebAssembly.Module(await wat(TRIVIAL)));
  const e = inst.exports;
  const mem = e.memory;
  const n = 2_000_000;
  let sink = 0;
  for (let round = 0; round < 2; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      e.agent_tick();
      const size = e.agent_checkpoint();
      const ptr = e.agent_checkpoint_ptr();
      sink += new Uint8Array(mem.buffer, ptr, size).slice()[0];
    }
    const ns = Number(process.hrtime.bigint() - t0) / n;
    if (round === 1) return { ns, sink };
  }
}

// 3. RSS with 1,000 idle agents (AssemblyScript heartbeat), measured in a fresh process.
function idleRss(count) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--child=idle", `--count=${count}`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`idle child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

async function idleChild(count) {
  const before = process.memoryUsage().rss;
  const { node, dir, cleanup } = quietNode({ "tick-interval": "1s" });
  await node.start();
  const path = join(dir, "heartbeat.wasm");
  copyFileSync(join(root, "agents", "heartbeat.wasm"), path);
  copyFileSync(join(root, "agents", "heartbeat.manifest.json"), join(dir, "heartbeat.manifest.json"));
  const t0 = Date.now();
  for (let i = 0; i < count; i++) await node.addAgent({ wasmPath: path, agentId: `hb${i}` });
  const loadMs = Date.now() - t0;
  // Let every agent tick a few times, then settle.
  await new Promise((r) => setTimeout(r, 3500));
  globalThis.gc?.();
  const rss = process.memoryUsage().rss;
  const ticked = node.scheduler.list().filter((a) => a.tick >= 2n).length;
  await cleanup();
  process.stdout.write(`${JSON.stringify({ rssMiB: rss / 2 ** 20, baseMiB: before / 2 ** 20, loadMs, ticked })}\n`);
}

// 4. A hung agent on a shared worker: do the healthy agents miss ticks?
async function hungNeighbours(healthy) {
  const { node, dir, cleanup } = quietNode({ "tick-interval": "100ms", "tick-timeout": "3s", workers: "2" });
  await node.start();
  const ok = join(dir, "ok.wasm");
  const hang = join(dir, "hang.wasm");
  writeFileSync(ok, await wat(TRIVIAL.replace("(i32.const 1))\n", "(i32.const 0))\n")));
  writeFileSync(hang, await wat(HANG));
  for (let i = 0; i < healthy; i++) await node.addAgent({ wasmPath: ok, agentId: `ok${i}` });
  await node.addAgent({ wasmPath: hang, agentId: "hang" });
  const last = new Map();
  let maxGap = 0;
  node.scheduler.on("tick", (e) => {
    const prev = last.get(e.agentId);
    if (prev !== undefined && e.agentId !== "hang") maxGap = Math.max(maxGap, e.at - prev);
    last.set(e.agentId, e.at);
  });
  const stopped = await new Promise((r) => node.scheduler.on("stopped", (v) => v.id === "hang" && r(v)));
  await new Promise((r) => setTimeout(r, 500));
  await cleanup();
  return { maxGap, reason: stopped.reason };
}

if (args.get("child") === "idle") {
  await idleChild(Number(args.get("count")));
  process.exit(0);
}

const agents = Number(args.get("agents") ?? 200);
console.error(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model})`);
const rate = await tickThroughput(agents);
const direct = await directTickNs();
const idle = idleRss(1000);
const hung = await hungNeighbours(100);
const ckptFull = await checkpointRate({ sync: "full", agents: 1000, seconds });
const ckptNormal = await checkpointRate({ sync: "normal", agents: 1000, seconds });
const ckptReceipts = await checkpointRate({ sync: "full", agents: 1000, seconds, receiptInterval: "0" });
const ckptSetup = `1,000 agents, lease-checked, ${ckptFull.ticksPerCheckpoint} logged ticks (event-log segment) each, receipts every ${ckptFull.receiptIntervalMs / 1000} s (default), group commit, 2 signer threads`;
const replay5 = await replayCost({ seconds, verifyInterval: 5, window: 16 });
const replay16 = await replayCost({ seconds, verifyInterval: 16, window: 16 });
const hops = await migrationHops({ hops: 200, wasm: join(root, "agents", "survivor.wasm") });
const cli = await cliStartup(9);
const http = await httpCost({ seconds });
const density = densityRows();
const hop1 = await firstHop({ ticks: 100_000, retention: 16 });
const nodeBase = cli.find((c) => c.name === "node -e 0");
const rows = [
  ["Aggregate ticks/s, trivial agent, state capture on", `${agents} agents, fast path, 2 workers`, `${Math.round(rate).toLocaleString("en-US")} ticks/s`, "≥ 50,000"],
  ["Direct export call: agent_tick + state capture", "same module, main thread, no runtime", `${direct.ns.toFixed(0)} ns/tick`, "—"],
  ["Runtime cost per tick (wall time ÷ ticks, 2 workers)", "scheduler + pool + metering", `${(1e9 / rate).toFixed(0)} ns/tick`, "—"],
  ["Runtime overhead per tick vs direct call", "", `${(1e9 / rate - direct.ns).toFixed(0)} ns/tick`, "—"],
  ["RSS with 1,000 idle agents (heartbeat, 1 s ticks)", `load ${idle.loadMs} ms, ${idle.ticked} ticked ≥ 2×`, `${idle.rssMiB.toFixed(0)} MiB (process base ${idle.baseMiB.toFixed(0)} MiB)`, "≤ 500 MiB"],
  ["Longest gap of 100 healthy agents at 100 ms while one agent hangs", `hung agent ${hung.reason}`, `${hung.maxGap} ms`, "no missed tick (< 200 ms)"],
  ["Signed checkpoints persisted/s, 1 KiB state, `--sync full`", ckptSetup, `${Math.round(ckptFull.rate).toLocaleString("en-US")}/s`, "≥ 10,000"],
  ["Signed checkpoints persisted/s, 1 KiB state, `--sync normal`", "same", `${Math.round(ckptNormal.rate).toLocaleString("en-US")}/s`, "≥ 20,000"],
  ["Same, `--sync full --receipt-interval 0`", "a node-signed receipt with every checkpoint", `${Math.round(ckptReceipts.rate).toLocaleString("en-US")}/s`, "—"],
  ["Verifying a survivor tick vs executing it, `--verify-interval 5` (default)", `4 survivors, 1 ms ticks; live ${(replay5.liveNsPerTick / 1000).toFixed(1)} µs, replay ${(replay5.replayNsPerTick / 1000).toFixed(1)} µs per tick`, `${replay5.ratio.toFixed(2)}×`, "≤ 1.5×"],
  ["Verifying a survivor tick vs executing it, `--verify-interval 16`", `live ${(replay16.liveNsPerTick / 1000).toFixed(1)} µs, replay ${(replay16.replayNsPerTick / 1000).toFixed(1)} µs per tick`, `${replay16.ratio.toFixed(2)}×`, "≤ 1.5×"],
  ["Migration hop latency, loopback libp2p (p50 / p99)", `survivor A↔B, ${hops.hops} hops, each after 2 ticks; --sync full both sides, replay verification of the shipped window, fresh checkpoint, durable leases`, `${hops.p50.toFixed(1)} ms / ${hops.p99.toFixed(1)} ms (first, cold: ${hops.first.toFixed(0)} ms)`, "p50 ≤ 20 ms"],
  ["20 migration round trips, back to back", "same two nodes, warm connection", `${hops.roundTrips.toFixed(0)} ms`, "≤ 1 s"],
  ["`http_request`'s request path on the main thread vs a plain `fetch` (loopback GET, 256 B body)", `interleaved, idle node; fetch p50 ${http.fetchMedianUs.toFixed(0)} µs, host path ${http.hostPathMedianUs.toFixed(0)} µs (deadline, headers, capped read)`, `${http.hostPathRatio.toFixed(2)}×`, "≤ 1.2×"],
  ["`http_request` tick vs a plain `fetch` from Node (loopback GET, 256 B body)", `1 ms ticks, p50s under the same load: fetch ${http.busyFetchMedianUs.toFixed(0)} µs, HTTP tick ${http.tickMedianUs.toFixed(0)} µs, tick hand-off to the main thread and back ${http.handOffUs.toFixed(0)} µs`, `${http.busyRatioLessHandOff.toFixed(2)}× + hand-off (${(http.tickMedianUs / http.busyFetchMedianUs).toFixed(2)}× overall)`, "≤ 1.2× + hand-off"],
  ["Replaying an HTTP tick vs executing it live", `self-verification, --verify-interval 5; live ${http.liveMeanUs.toFixed(0)} µs, replay ${http.replayPerTickUs.toFixed(0)} µs per tick (${http.replayTicks} ticks)`, `${http.replayRatio.toFixed(3)}×`, "≤ 0.2×"],
  firstHopRow(hop1),
  ...density,
  ["Audit replay speed (`igord verify --replay`)", `${replay5.audited} survivor ticks from genesis`, `${replay5.auditTicksPerSec.toLocaleString("en-US")} ticks/s`, "—"],
  ...cli
    .filter((c) => c !== nodeBase)
    .map((c) => [`CLI start-up: \`${c.name}\``, `median of 9, against a running daemon; \`node -e 0\` ${nodeBase.medianMs.toFixed(0)} ms in the same run`, `${c.medianMs.toFixed(0)} ms (${c.ratio.toFixed(2)}×)`, "≤ 2× node -e 0"]),
];
console.log("| Measure | Setup | Result | Target |\n|---|---|---|---|");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
