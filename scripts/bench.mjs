#!/usr/bin/env node
// igord benchmarks, one run: `npm run bench` (builds first). Prints a Markdown table for
// docs/BENCHMARKS.md: every row with its target and the floor it is measured against. Each figure is
// measured through the real daemon engine (worker pool, scheduler, metering), except the "direct"
// baseline, which calls the exports in-process.
//   node scripts/bench.mjs [--seconds=5] [--only=ticks,replay,...] [--check] [--in-process]
// --check (`npm run bench:check`) exits 1 when a row misses its target in this run. Not for CI: the
// machines are noisy; compare ratios within one run.
// Each section runs in a fresh process of its own, so what one section leaves behind (its heap and
// its garbage, a stopped node's last timers) does not weigh on the next one's figures, as it does
// not on a daemon's; --in-process runs them all in this process, one after the other.
import "../dist/shim/promise-with-resolvers.js";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, copyFileSync, readFileSync } from "node:fs";
import { tmpdir, cpus, loadavg } from "node:os";
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
import { largeStateHops } from "./bench-large-state-hops.mjs";
import { cliStartup } from "./bench-cli.mjs";
import { httpCost } from "./bench-http.mjs";
import { DENSITY_TARGETS, densityRow, densityRss } from "./bench-density.mjs";
import { firstHop, firstHopRow } from "./bench-first-hop.mjs";
import { formatRow, misses, TABLE_HEADER } from "./bench-rows.mjs";

/** The informational large-state checkpoint row: this many agents, each with a state this long. */
const LARGE_STATE_AGENTS = 16;
const LARGE_STATE_BYTES = 1024 * 1024;
/**
 * The informational deep-history checkpoint row: checkpoints committed for this long before the
 * timed part (~600 per agent), so they land on a history as deep as a daemon's after a minute, not
 * the ~130 of the target row's (before schema 16, each checkpoint's entry in the (agent_id, seq)
 * index then wrote a WAL page of its own: docs/BENCHMARKS.md, "checkpoints onto a deeper history").
 */
const DEEP_HISTORY_WARMUP_S = 30;

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
  const config = loadConfig({ flags: { "agents-dir": join(dir, "agents"), "data-dir": join(dir, "data"), control: "off", "log-level": "warn", listen: ["/ip4/127.0.0.1/tcp/0"], ...flags }, env: {} });
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
  // Committed ticks, read from the scheduler's agents: no "tick" listener, so the scheduler builds no
  // event object per tick (the daemon has none; the event and its emit took ~2–3 % of the main thread in a profile).
  const committed = () => node.scheduler.list().reduce((n, a) => n + a.tick, 0n);
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  const start = committed();
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpuUs();
  const sched0 = mainThreadSchedstat();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const main1 = mainThreadCpuUs();
  const sched1 = mainThreadSchedstat();
  const n = Number(committed() - start);
  const rate = n / elapsed;
  await cleanup();
  // CPU per tick is far less sensitive to other load on the machine than the wall-clock rate.
  return {
    rate,
    cpuNsPerTick: ((cpu.user + cpu.system) * 1000) / n,
    mainNsPerTick: main0 === null || main1 === null ? null : ((main1 - main0) * 1000) / n,
    // Time the main thread (the serial stage of the tick path) was ready to run but had no core.
    mainWaitNsPerTick: sched0 === null || sched1 === null ? null : (sched1.waitNs - sched0.waitNs) / n,
  };
}

/**
 * The main thread's scheduler statistics (Linux: /proc/<pid>/task/<pid>/schedstat, in ns): time on a
 * core and time runnable but waiting for one. Null elsewhere.
 */
function mainThreadSchedstat() {
  try {
    const [onCpuNs, waitNs] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8").split(" ").map(Number);
    return { onCpuNs, waitNs };
  } catch {
    return null;
  }
}

/** CPU time of this process's main thread in µs (Linux: /proc; null elsewhere). process.cpuUsage() sums all threads. */
function mainThreadCpuUs() {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1e6) / 100; // clock ticks (USER_HZ 100)
  } catch {
    return null;
  }
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
const only = args.has("only") ? new Set(String(args.get("only")).split(",")) : null;
const wanted = (section) => only === null || only.has(section);
const fmt = (n) => Math.round(n).toLocaleString("en-US");
/** Runs one section in a fresh process (this script with --only and --section-json) and returns its rows. */
function sectionInChild(name) {
  const passed = [...args].filter(([k]) => k === "seconds" || k === "agents").map(([k, v]) => `--${k}=${v}`);
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), `--only=${name}`, "--section-json", ...passed], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 16 * 2 ** 20,
  });
  if (r.status !== 0) throw new Error(`bench section ${name} failed (exit ${r.status})`);
  return JSON.parse(r.stdout.trim().split("\n").pop());
}
const sectionJson = args.has("section-json");
const isolated = !sectionJson && !args.has("in-process");

if (!sectionJson) console.error(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model}), load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);

// Sections, each returning rows (see scripts/bench-rows.mjs for the row format). Other benches
// (density, hop, http) add a section here and their rows fit the same table and check.
const SECTIONS = {
  async ticks() {
    const { rate, cpuNsPerTick, mainNsPerTick, mainWaitNsPerTick } = await tickThroughput(agents);
    const direct = await directTickNs();
    const overhead = 1e9 / rate - direct.ns;
    return [
      { measure: "Aggregate ticks/s, trivial agent, state capture on", setup: `${agents} agents, fast path, 2 workers`, result: `${fmt(rate)} ticks/s`, value: rate, target: { op: ">=", limit: 250_000, text: "≥ 250,000" }, floor: "direct call below" },
      { measure: "Direct export call: agent_tick + state capture", setup: "same module, main thread, no runtime", result: `${direct.ns.toFixed(0)} ns/tick`, floor: "~100 ns (JS → wasm ~3–20 ns + 1 KiB copy)" },
      { measure: "Runtime cost per tick (wall time ÷ ticks, 2 workers)", setup: "scheduler + pool + metering", result: `${(1e9 / rate).toFixed(0)} ns/tick` },
      { measure: "Runtime overhead per tick vs direct call", setup: "", result: `${overhead.toFixed(0)} ns/tick`, value: overhead / 1000, target: { op: "<=", limit: 3, text: "≤ 3 µs" }, floor: "SAB handshake 0.1–10 µs per batch, not per tick" },
      { measure: "CPU per tick, all threads (main thread)", setup: "same run; less sensitive to other load than the rate", result: `${cpuNsPerTick.toFixed(0)} ns${mainNsPerTick === null ? "" : ` (${mainNsPerTick.toFixed(0)} ns)`}` },
      ...(mainWaitNsPerTick === null ? [] : [{ measure: "Main thread ready but without a core, per tick", setup: "same run (/proc schedstat): the main thread is the tick path's serial stage; 2 workers and it share 2 cores", result: `${mainWaitNsPerTick.toFixed(0)} ns` }]),
    ];
  },
  async idle() {
    const idle = idleRss(1000);
    return [{ measure: "RSS with 1,000 idle agents (heartbeat, 1 s ticks)", setup: `load ${idle.loadMs} ms, ${idle.ticked} ticked ≥ 2×`, result: `${idle.rssMiB.toFixed(0)} MiB (process base ${idle.baseMiB.toFixed(0)} MiB)`, value: idle.rssMiB, target: { op: "<=", limit: 500, text: "≤ 500 MiB" }, floor: "~8 MiB per worker + module + state" }];
  },
  async hang() {
    const hung = await hungNeighbours(100);
    return [{ measure: "Longest gap of 100 healthy agents at 100 ms while one agent hangs", setup: `hung agent ${hung.reason}`, result: `${hung.maxGap} ms`, value: hung.maxGap, target: { op: "<", limit: 200, text: "no missed tick (< 200 ms)" }, floor: "terminate() 1.5–1.9 ms" }];
  },
  async checkpoints() {
    const full = await checkpointRate({ sync: "full", agents: 1000, seconds });
    const normal = await checkpointRate({ sync: "normal", agents: 1000, seconds });
    const receipts = await checkpointRate({ sync: "full", agents: 1000, seconds, receiptInterval: "0" });
    const large = await checkpointRate({ sync: "normal", agents: LARGE_STATE_AGENTS, seconds, stateBytes: LARGE_STATE_BYTES });
    const deep = await checkpointRate({ sync: "normal", agents: 1000, seconds, warmupSeconds: DEEP_HISTORY_WARMUP_S });
    const depth = (r) => `${r.sample.depthAtStart}–${r.sample.checkpoints}`;
    const setup = `1,000 agents each checkpointing again once its last is durable, lease-checked, leases renewed by the lease fence's sweep at the daemon's rate (${full.renewalRate.toFixed(0)}/s, those due since the sweep before in one transaction), ${full.ticksPerCheckpoint} logged ticks (event-log segment) each, receipts every ${full.receiptIntervalMs / 1000} s (default), group commit${full.commitThread ? " on the commit thread (after a warm-up of ≥ 1.5 s and 20 checkpoints an agent, past its first run seal)" : ""}, ${full.signerThreads ? "2 signer threads (started once signing measured busy)" : "signed on the main thread"}`;
    const cpu = (r) => `${fmt(r.rate)}/s (${r.cpuUsPerCheckpoint.toFixed(0)} µs CPU each, main thread ${r.mainCpuUsPerCheckpoint.toFixed(0)})`;
    const floor = "Ed25519 sign ~34 µs per core (1 + 1/16 signatures per checkpoint: a run seal per 16 segments); WAL batched ~130k rows/s";
    return [
      { measure: "Signed checkpoints persisted/s, 1 KiB state, `--sync full`", setup, result: cpu(full), value: full.rate, target: { op: ">=", limit: 15_000, text: "≥ 15,000" }, floor },
      { measure: "Signed checkpoints persisted/s, 1 KiB state, `--sync normal`", setup: "same", result: cpu(normal), value: normal.rate, target: { op: ">=", limit: 25_000, text: "≥ 25,000" }, floor },
      { measure: "Same, `--sync full --receipt-interval 0`", setup: "a node-signed receipt with every checkpoint", result: cpu(receipts) },
      { measure: "Signed checkpoints persisted/s, 1 MiB state, `--sync normal`", setup: `${LARGE_STATE_AGENTS} agents, otherwise the same`, result: cpu(large) },
      { measure: "Same as `--sync normal`, onto a deeper history", setup: `after ${DEEP_HISTORY_WARMUP_S} s of checkpoints: each agent's history ${depth(deep)} checkpoints deep while timed (the row's above: ${depth(normal)})`, result: cpu(deep) },
    ];
  },
  async replay() {
    const r5 = await replayCost({ seconds, verifyInterval: 5, window: 16 });
    const r16 = await replayCost({ seconds, verifyInterval: 16, window: 16 });
    const floor = "1.0× (the same guest code; a reset costs a 64 KiB copy, an instance 60–130 µs)";
    return [
      { measure: "Verifying a survivor tick vs executing it, `--verify-interval 5` (default)", setup: `4 survivors, 1 ms ticks; live ${(r5.liveNsPerTick / 1000).toFixed(1)} µs, replay ${(r5.replayNsPerTick / 1000).toFixed(1)} µs per tick`, result: `${r5.ratio.toFixed(2)}×`, value: r5.ratio, target: { op: "<=", limit: 1.3, text: "≤ 1.3×" }, floor },
      { measure: "Verifying a survivor tick vs executing it, `--verify-interval 16`", setup: `live ${(r16.liveNsPerTick / 1000).toFixed(1)} µs, replay ${(r16.replayNsPerTick / 1000).toFixed(1)} µs per tick`, result: `${r16.ratio.toFixed(2)}×`, value: r16.ratio, target: { op: "<=", limit: 1.3, text: "≤ 1.3×" }, floor },
      { measure: "Audit replay speed (`igord verify --replay`)", setup: `${r5.audited} survivor ticks from genesis; replay only (set-up ${r5.auditSetupMs} ms: worker start, load); CPU ${r5.auditCpuUsPerTick} µs a tick, all threads; median of ${r5.auditSpeeds.length} audits in fresh processes (${fmt(Math.min(...r5.auditSpeeds))}–${fmt(Math.max(...r5.auditSpeeds))})`, result: `${fmt(r5.auditTicksPerSec)} ticks/s`, value: r5.auditTicksPerSec, target: { op: ">=", limit: 100_000, text: "≥ 100,000" }, floor: "live tick + state hash per tick" },
    ];
  },
  async migration() {
    const hops = await migrationHops({ hops: 200, wasm: join(root, "agents", "survivor.wasm") });
    const big = await largeStateHops({ bytes: 1024 * 1024, hops: 40 });
    return [
      { measure: "Migration hop latency, loopback libp2p (p50 / p99)", setup: `survivor A↔B, ${hops.hops} hops, each after 2 ticks; --sync full both sides, replay verification of the shipped window, fresh checkpoint, durable leases`, result: `${hops.p50.toFixed(1)} ms / ${hops.p99.toFixed(1)} ms (first, cold: ${hops.first.toFixed(0)} ms)`, value: [hops.p50, hops.p99], target: { op: "<=", limit: [8, 15], text: "p50 ≤ 8 ms, p99 ≤ 15 ms" }, floor: "3–5 ms on a warm connection" },
      { measure: "20 migration round trips, back to back", setup: "same two nodes, warm connection", result: `${hops.roundTrips.toFixed(0)} ms`, value: hops.roundTrips, target: { op: "<=", limit: 1000, text: "≤ 1 s" } },
      { measure: "Hop latency of a 1 MiB state (p50 / p90)", setup: `the same, with an agent whose state is 1 MiB, ${big.warm} warm hops of ${big.warm + 5}`, result: `${big.p50.toFixed(1)} ms / ${big.p90.toFixed(1)} ms` },
    ];
  },
  async http() {
    const http = await httpCost({ seconds });
    return [
      { measure: "`http_request`'s request path on the main thread vs a plain `fetch` (loopback GET, 256 B body)", setup: `interleaved, idle node; fetch p50 ${http.fetchMedianUs.toFixed(0)} µs, host path ${http.hostPathMedianUs.toFixed(0)} µs (node:http: destination check, deadline, headers, capped read)`, result: `${http.hostPathRatio.toFixed(2)}×`, value: http.hostPathRatio, target: { op: "<=", limit: 1.2, text: "≤ 1.2×" }, floor: "a plain `fetch`" },
      { measure: "`http_request` tick vs a plain `fetch` from Node (loopback GET, 256 B body)", setup: `1 ms ticks, p50s under the same load: fetch ${http.busyFetchMedianUs.toFixed(0)} µs, HTTP tick ${http.tickMedianUs.toFixed(0)} µs, tick hand-off to the main thread and back ${http.handOffUs.toFixed(0)} µs`, result: `${http.busyRatioLessHandOff.toFixed(2)}× + hand-off (${(http.tickMedianUs / http.busyFetchMedianUs).toFixed(2)}× overall)`, value: http.busyRatioLessHandOff, target: { op: "<=", limit: 1.2, text: "≤ 1.2× + hand-off" }, floor: "a plain `fetch`" },
      { measure: "Replaying an HTTP tick vs executing it live", setup: `self-verification, --verify-interval 5; live ${http.liveMeanUs.toFixed(0)} µs, replay ${http.replayPerTickUs.toFixed(0)} µs per tick (${http.replayTicks} ticks)`, result: `${http.replayRatio.toFixed(3)}×`, value: http.replayRatio, target: { op: "<=", limit: 0.2, text: "≤ 0.2×" } },
    ];
  },
  async density() {
    // Limits in MiB for the targets bench-density.mjs names.
    const limits = { "≤ 250 MiB": 250, "≤ 1 GiB": 1024 };
    return DENSITY_TARGETS.map((t) => {
      const r = densityRss(t);
      const [measure, setup, result] = densityRow(r, t.target);
      return { measure, setup, result, value: r.rssMiB, target: { op: "<=", limit: limits[t.target], text: t.target }, floor: "~8 MiB per worker; hibernated agents hold only their state" };
    });
  },
  async firstHop() {
    const r = await firstHop({ ticks: 100_000, retention: 16 });
    const [measure, setup, result] = firstHopRow(r);
    return [{ measure, setup, result, value: r.hopMs, target: { op: "<=", limit: 50, text: "≤ 50 ms" }, floor: "a warm hop 3–5 ms" }];
  },
  async cli() {
    const cli = await cliStartup(9);
    const base = cli.find((c) => c.name === "node -e 0");
    return cli
      .filter((c) => c !== base)
      .map((c) => ({ measure: `CLI start-up: \`${c.name}\``, setup: `median of 9, against a running daemon; \`node -e 0\` ${base.medianMs.toFixed(0)} ms in the same run`, result: `${c.medianMs.toFixed(0)} ms (${c.ratio.toFixed(2)}×)`, value: c.ratio, target: { op: "<=", limit: 2, text: "≤ 2× node -e 0" }, floor: "`node -e 0`" }));
  },
};

// Rows are printed as each section finishes, so a run that stalls late still shows what it measured.
const rows = [];
if (!sectionJson) console.log(TABLE_HEADER);
for (const [name, run] of Object.entries(SECTIONS)) {
  if (!wanted(name)) continue;
  const got = isolated ? sectionInChild(name) : await run();
  if (!sectionJson) for (const r of got) console.log(formatRow(r));
  rows.push(...got);
}
if (sectionJson) {
  console.log(JSON.stringify(rows));
  process.exit(0);
}
console.error(`load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
if (args.has("check")) {
  const missed = misses(rows);
  for (const r of missed) console.error(`missed: ${r.measure}: ${r.result} (target ${r.target.text})`);
  process.exit(missed.length > 0 ? 1 : 0);
}
