#!/usr/bin/env node
// http_request costs, through the real node: (1) a tick that makes one GET to a loopback server
// against a plain fetch of the same URL from Node's main thread (the hostcall adds the hand-off to
// the main thread and back, and the tick itself); (2) replaying such a tick (self-verification,
// from the recorded response) against executing it live.
//   node scripts/bench-http.mjs --seconds=4   (after npm run build)
import "../dist/shim/promise-with-resolvers.js";
import { createServer } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import wabtInit from "wabt";
import { loadConfig } from "../dist/config/load.js";
import { IgordNode } from "../dist/node/node.js";
import { createHttpClient } from "../dist/hostcalls/http-fetch.js";
import { DestinationPolicy } from "../dist/hostcalls/http-destination.js";

const BODY = "x".repeat(256);

function agentWat(url) {
  const u = Buffer.from(url);
  const esc = [...u].map((b) => `\\${b.toString(16).padStart(2, "0")}`).join("");
  // State: tick counter, last status, then the response ([u32 len][body]) — replay must reproduce it.
  return `(module
  (import "igor" "http_request" (func $http (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 65536) "GET")
  (data (i32.const 65600) "${esc}")
  (func (export "agent_init"))
  (func (export "agent_tick") (result i32)
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (i32.store (i32.const 4) (call $http (i32.const 65536) (i32.const 3) (i32.const 65600) (i32.const ${u.length}) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 1024)))
    (i32.const 0))
  (func (export "agent_checkpoint") (result i32) (i32.const 1040))
  (func (export "agent_checkpoint_ptr") (result i32) (i32.const 0))
  (func (export "agent_resume") (param $p i32) (param $n i32) (if (i32.eq (local.get $n) (i32.const 1040)) (then (memory.copy (i32.const 0) (local.get $p) (local.get $n)))))
  (func (export "malloc") (param i32) (result i32) (i32.const 4096)))`;
}

// The hand-off alone: a tick that asks the main thread a question answered at once (no network).
const HANDOFF_WAT = `(module
  (import "igor" "wallet_receipt_count" (func $count (result i32)))
  (memory (export "memory") 1)
  (func (export "agent_init"))
  (func (export "agent_tick") (result i32) (i32.store (i32.const 4) (call $count)) (i32.const 0))
  (func (export "agent_checkpoint") (result i32) (i32.const 8))
  (func (export "agent_checkpoint_ptr") (result i32) (i32.const 0))
  (func (export "agent_resume") (param $p i32) (param $n i32))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))`;

async function wasm(text) {
  const w = await wabtInit();
  const m = w.parseWat("http.wat", text, { bulk_memory: true });
  const out = new Uint8Array(m.toBinary({}).buffer);
  m.destroy();
  return out;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

export async function httpCost({ seconds = 4 } = {}) {
  const server = createServer((_req, res) => res.end(BODY));
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}/data`;

  // Baseline: sequential fetches from the main thread, body read, keep-alive, interleaved with the
  // host's own request path (node:http with its destination check, deadline, header handling and
  // capped read), after a warm-up. The server is on loopback, which the node opens explicitly.
  const client = createHttpClient(new DestinationPolicy(["127.0.0.0/8"]));
  const fetchNs = [];
  const hostNs = [];
  const call = { method: "GET", url, headers: [], body: null, timeoutMs: 10_000, readLimit: 1024 * 1024 + 1 };
  const until = Date.now() + 1000 + seconds * 500;
  for (let i = 0; Date.now() < until; i++) {
    let t0 = process.hrtime.bigint();
    await (await fetch(url)).arrayBuffer();
    if (i >= 200) fetchNs.push(Number(process.hrtime.bigint() - t0));
    t0 = process.hrtime.bigint();
    await client.perform(call);
    if (i >= 200) hostNs.push(Number(process.hrtime.bigint() - t0));
  }

  const dir = mkdtempSync(join(tmpdir(), "igord-http-bench-"));
  const config = loadConfig({
    flags: { "agents-dir": join(dir, "agents"), "data-dir": join(dir, "data"), control: "off", listen: "off", "tick-interval": "1ms", "verify-interval": "5", "replay-window": "16", "checkpoint-interval": "500ms", "http-private-networks": "127.0.0.0/8" },
    env: {},
  });
  const node = new IgordNode({ config, logger: pino({ level: "silent" }, new Writable({ write: (_c, _e, cb) => cb() })), watchAgentsDir: false });
  await node.start();
  const path = join(dir, "fetcher.wasm");
  writeFileSync(path, await wasm(agentWat(url)));
  writeFileSync(join(dir, "fetcher.manifest.json"), JSON.stringify({ capabilities: { http: { version: 1, options: { allowed_hosts: ["127.0.0.1"] } } } }));
  await node.addAgent({ wasmPath: path });
  const handoff = join(dir, "handoff.wasm");
  writeFileSync(handoff, await wasm(HANDOFF_WAT));
  writeFileSync(join(dir, "handoff.manifest.json"), JSON.stringify({ capabilities: { wallet: { version: 1 } } }));
  await node.addAgent({ wasmPath: handoff });
  const tickNs = [];
  const handoffNs = [];
  let replayNs = 0n;
  let replayTicks = 0;
  let measuring = false;
  node.scheduler.on("tick", (e) => {
    if (measuring) (e.agentId === "fetcher" ? tickNs : handoffNs).push(Number(e.elapsedNs));
  });
  node.scheduler.on("verified", (e) => {
    if (!measuring || e.agentId !== "fetcher") return;
    replayNs += e.durationNs;
    replayTicks += e.ticks.length;
  });
  await new Promise((r) => setTimeout(r, 1000));
  measuring = true;
  // The same fetch from the main thread while the node runs: the baseline under the same load.
  const busyFetchNs = [];
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const t0 = process.hrtime.bigint();
    await (await fetch(url)).arrayBuffer();
    busyFetchNs.push(Number(process.hrtime.bigint() - t0));
    await new Promise((r) => setTimeout(r, 1));
  }
  measuring = false;
  await node.stop();
  rmSync(dir, { recursive: true, force: true });
  client.close();
  server.close();
  const fetchMedian = median(fetchNs);
  const tickMedian = median(tickNs);
  const tickMean = tickNs.reduce((a, b) => a + b, 0) / tickNs.length;
  const replayPerTick = Number(replayNs) / replayTicks;
  return {
    fetchMedianUs: fetchMedian / 1000,
    hostPathMedianUs: median(hostNs) / 1000,
    hostPathRatio: median(hostNs) / fetchMedian,
    fetches: fetchNs.length,
    tickMedianUs: tickMedian / 1000,
    ticks: tickNs.length,
    ratio: tickMedian / fetchMedian,
    handOffUs: median(handoffNs) / 1000,
    ratioLessHandOff: (tickMedian - median(handoffNs)) / fetchMedian,
    busyFetchMedianUs: median(busyFetchNs) / 1000,
    busyRatioLessHandOff: (tickMedian - median(handoffNs)) / median(busyFetchNs),
    replayPerTickUs: replayPerTick / 1000,
    replayTicks,
    replayRatio: replayPerTick / tickMean,
    liveMeanUs: tickMean / 1000,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")));
  console.log(await httpCost({ seconds: Number(args.get("seconds") ?? 4) }));
}
