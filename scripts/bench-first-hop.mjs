#!/usr/bin/env node
// First hop of a long-lived agent to a node that never held it: the agent runs until its history
// holds `ticks` ticks (a checkpoint every --checkpoint-interval), then migrates once, over libp2p
// on loopback, to a fresh node. With --history-retention the package ships the agent-signed base
// and the target verifies from there; with the default (keep all) it verifies from genesis.
//
//   node scripts/bench-first-hop.mjs                        # 100,000 ticks, retention 16 and keep-all
//   node scripts/bench-first-hop.mjs --ticks=100000 --retention=16
import "../dist/shim/promise-with-resolvers.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import wabtInit from "wabt";
import { p2pNode } from "./bench-migration.mjs";
const HEARTBEAT = fileURLToPath(new URL("../agents/heartbeat.wasm", import.meta.url));

// Always reports more work: with --fast-tick-interval 0 it ticks as fast as the pool allows.
const BUSY = `(module
  (memory (export "memory") 1)
  (global $ticks (mut i32) (i32.const 0))
  (func (export "agent_init"))
  (func (export "agent_tick") (result i32) (global.set $ticks (i32.add (global.get $ticks) (i32.const 1))) (i32.const 1))
  (func (export "agent_checkpoint") (result i32) (i32.store (i32.const 0) (global.get $ticks)) (i32.const 4))
  (func (export "agent_checkpoint_ptr") (result i32) (i32.const 0))
  (func (export "agent_resume") (param i32 i32) (if (i32.eq (local.get 1) (i32.const 4)) (then (global.set $ticks (i32.load (local.get 0))))))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))`;

/** Runs one first hop; returns its time and what the history held. */
export async function firstHop({ ticks = 100_000, retention = 0, checkpointIntervalMs = 10 }) {
  const dir = mkdtempSync(join(tmpdir(), "igord-bench-hop1-"));
  const flags = { "tick-interval": "1ms", "fast-tick-interval": "0", "checkpoint-interval": `${checkpointIntervalMs}ms`, price: "0.000001" };
  const { node: a, cleanup: stopA } = await p2pNode({ ...flags, ...(retention > 0 ? { "history-retention": String(retention) } : {}) });
  const { node: b, addr, cleanup: stopB } = await p2pNode(flags);
  try {
    const w = await wabtInit();
    const m = w.parseWat("busy.wat", BUSY);
    const wasm = join(dir, "busy.wasm");
    writeFileSync(wasm, new Uint8Array(m.toBinary({}).buffer));
    m.destroy();
    const t0 = Date.now();
    await a.addAgent({ wasmPath: wasm, agentId: "busy", budget: 10_000_000n });
    await new Promise((resolve) => {
      const on = (e) => {
        if (e.tick >= BigInt(ticks)) {
          a.scheduler.off("tick", on);
          resolve();
        }
      };
      a.scheduler.on("tick", on);
    });
    const buildMs = Date.now() - t0;
    // A warm connection, as between nodes that talk: another agent hops first (the hop measured
    // is the agent's first to B, not the nodes' first contact).
    await a.addAgent({ wasmPath: HEARTBEAT, agentId: "warm-up" });
    if ((await a.migrate("warm-up", [addr])).outcome !== "done") throw new Error("warm-up hop failed");
    await a.scheduler.settled();
    const checkpoints = a.store.historyCount("busy");
    const base = a.store.historyBase("busy");
    const h0 = performance.now();
    const r = await a.migrate("busy", [addr]);
    const hopMs = performance.now() - h0;
    if (r.outcome !== "done") throw new Error(`first hop failed: ${JSON.stringify(r.error)}`);
    return { ticks: Number(b.store.head("busy").tick), retention, checkpointsKept: checkpoints, pruned: base ? Number(base.pruned) : 0, received: b.store.historyCount("busy"), hopMs, buildMs };
  } finally {
    await stopA();
    await stopB();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function firstHopRow(r) {
  const how = r.retention > 0 ? `--history-retention ${r.retention}: ${r.checkpointsKept} checkpoints kept behind a signed base (${r.pruned.toLocaleString("en-US")} pruned), ${r.received} shipped` : `keep all: ${r.checkpointsKept.toLocaleString("en-US")} checkpoints from genesis, ${r.received.toLocaleString("en-US")} shipped`;
  return [`First hop to a node that never held the agent, ${r.ticks.toLocaleString("en-US")}-tick history`, `${how}; a checkpoint every 10 ms of fast-path ticking`, `${r.hopMs.toFixed(1)} ms`, r.retention > 0 ? "≤ 50 ms" : "—"];
}

if (fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")));
  const ticks = Number(args.get("ticks") ?? 100_000);
  const runs = args.has("retention") ? [Number(args.get("retention"))] : [16, 0];
  console.log("| Measure | Setup | Result | Target |\n|---|---|---|---|");
  for (const retention of runs) {
    const r = await firstHop({ ticks, retention });
    console.error(JSON.stringify(r));
    console.log(`| ${firstHopRow(r).join(" | ")} |`);
  }
}
