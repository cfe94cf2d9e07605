#!/usr/bin/env node
// Hop latency of an agent with a large state: the migration bench's two in-process nodes (--sync
// full both sides, replay verification of the shipped window), hopping A↔B an agent whose state is
// `bytes` long (a tick counter, then zeros; written from WAT with the wabt dev dependency), each
// hop after 2 ticks; prints the p50 and p90 of the warm hops. Not a row of `npm run bench` (the
// issue's hop target is the survivor's); docs/BENCHMARKS.md, "large states". After npm run build:
//   node scripts/bench-large-state-hops.mjs [bytes=1048576] [hops=60]
import "../dist/shim/promise-with-resolvers.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import wabtInit from "wabt";
import { p2pNode } from "./bench-migration.mjs";

const STATE = Number(process.argv[2] ?? 1024 * 1024);
const HOPS = Number(process.argv[3] ?? 60);
/** Hops before these are not counted (the first is cold: a new connection, the module shipped). */
const WARM_AFTER = 5;
/** Its state at 0, and room past it for the copy the host resumes it from (malloc). */
const pages = Math.ceil((2 * STATE + 1024) / 65536);
const wat = `(module (memory (export "memory") ${pages}) (global $ticks (mut i32) (i32.const 0))
 (func (export "agent_init"))
 (func (export "agent_tick") (result i32) (global.set $ticks (i32.add (global.get $ticks) (i32.const 1))) (i32.const 1))
 (func (export "agent_checkpoint") (result i32) (i32.store (i32.const 0) (global.get $ticks)) (i32.const ${STATE}))
 (func (export "agent_checkpoint_ptr") (result i32) (i32.const 0))
 (func (export "agent_resume") (param $p i32) (param $n i32) (if (i32.eq (local.get $n) (i32.const ${STATE})) (then (global.set $ticks (i32.load (local.get $p))))))
 (func (export "malloc") (param i32) (result i32) (i32.const ${STATE})))`;
const wabt = await wabtInit();
const mod = wabt.parseWat("bigstate.wat", wat, {});
const dir = mkdtempSync(join(tmpdir(), "igord-bench-bigstate-"));
const wasmPath = join(dir, "bigstate.wasm");
writeFileSync(wasmPath, Buffer.from(mod.toBinary({}).buffer));
mod.destroy();
const a = await p2pNode();
const b = await p2pNode();
try {
  await a.node.addAgent({ wasmPath });
  const nodes = [a, b];
  const times = [];
  for (let i = 0; i < HOPS; i++) {
    const from = nodes[i % 2];
    const to = nodes[(i + 1) % 2];
    const at = from.node.scheduler.view("bigstate").tick;
    await new Promise((resolve) => {
      const on = (e) => {
        if (e.agentId === "bigstate" && e.tick >= at + 2n) {
          from.node.scheduler.off("tick", on);
          resolve();
        }
      };
      from.node.scheduler.on("tick", on);
    });
    const t0 = performance.now();
    const r = await from.node.migrate("bigstate", [to.addr]);
    times.push(performance.now() - t0);
    if (r.outcome !== "done") throw new Error(`hop ${i} failed: ${JSON.stringify(r.error)}`);
  }
  const warm = times.slice(WARM_AFTER).sort((x, y) => x - y);
  const pct = (p) => warm[Math.min(warm.length - 1, Math.floor(p * warm.length))].toFixed(2);
  console.log(`state ${STATE.toLocaleString("en-US")} bytes: hop p50 ${pct(0.5)} ms, p90 ${pct(0.9)} ms (${warm.length} warm hops; first, cold: ${times[0].toFixed(1)} ms)`);
} finally {
  await a.cleanup();
  await b.cleanup();
  rmSync(dir, { recursive: true, force: true });
}
