#!/usr/bin/env node
// Hop latency of an agent with a large state: the migration bench's two in-process nodes (--sync
// full both sides, replay verification of the shipped window), hopping A↔B an agent whose state is
// `bytes` long (a tick counter, then zeros; written from WAT with the wabt dev dependency), each
// hop after 2 ticks; the p50 and p90 of the warm hops. An informational row of `npm run bench` (the
// issue's hop target is the survivor's); docs/BENCHMARKS.md, "large states". After npm run build:
//   node scripts/bench-large-state-hops.mjs [bytes=1048576] [hops=60]
import "../dist/shim/promise-with-resolvers.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import wabtInit from "wabt";
import { p2pNode, timedHops } from "./bench-migration.mjs";

/** Hops before these are not counted (the first is cold: a new connection, the module shipped). */
const WARM_AFTER = 5;

/** A module whose state is `bytes` long: its tick counter at 0, and room past it for the copy the host resumes it from (malloc). */
async function bigStateModule(bytes) {
  const pages = Math.ceil((2 * bytes + 1024) / 65536);
  const wat = `(module (memory (export "memory") ${pages}) (global $ticks (mut i32) (i32.const 0))
 (func (export "agent_init"))
 (func (export "agent_tick") (result i32) (global.set $ticks (i32.add (global.get $ticks) (i32.const 1))) (i32.const 1))
 (func (export "agent_checkpoint") (result i32) (i32.store (i32.const 0) (global.get $ticks)) (i32.const ${bytes}))
 (func (export "agent_checkpoint_ptr") (result i32) (i32.const 0))
 (func (export "agent_resume") (param $p i32) (param $n i32) (if (i32.eq (local.get $n) (i32.const ${bytes})) (then (global.set $ticks (i32.load (local.get $p))))))
 (func (export "malloc") (param i32) (result i32) (i32.const ${bytes})))`;
  const wabt = await wabtInit();
  const mod = wabt.parseWat("bigstate.wat", wat, {});
  try {
    return Buffer.from(mod.toBinary({}).buffer);
  } finally {
    mod.destroy();
  }
}

/** `hops` migrations A↔B of an agent with a `bytes`-long state, each after it ticked twice; p50 and p90 of the warm ones, ms. */
export async function largeStateHops({ bytes = 1024 * 1024, hops = 60 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "igord-bench-bigstate-"));
  const wasmPath = join(dir, "bigstate.wasm");
  writeFileSync(wasmPath, await bigStateModule(bytes));
  const a = await p2pNode();
  const b = await p2pNode();
  try {
    await a.node.addAgent({ wasmPath });
    const times = await timedHops([a, b], "bigstate", hops);
    const warm = times.slice(WARM_AFTER).sort((x, y) => x - y);
    const pct = (p) => warm[Math.min(warm.length - 1, Math.floor(p * warm.length))];
    return { bytes, p50: pct(0.5), p90: pct(0.9), warm: warm.length, first: times[0] };
  } finally {
    await a.cleanup();
    await b.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await largeStateHops({ bytes: Number(process.argv[2] ?? 1024 * 1024), hops: Number(process.argv[3] ?? 60) });
  console.log(`state ${r.bytes.toLocaleString("en-US")} bytes: hop p50 ${r.p50.toFixed(2)} ms, p90 ${r.p90.toFixed(2)} ms (${r.warm} warm hops; first, cold: ${r.first.toFixed(1)} ms)`);
}
