#!/usr/bin/env node
// What the C agents cost per tick, live (tick + state capture, recorded) and in chained replay, in
// process (no worker, no scheduler): the freestanding c-ticker against c-wasi-clock, whose printf,
// time() and clock_gettime() go through the WASI layer.
//   npm run build:ts && node scripts/bench-wasi.mjs --ticks=20000
import "../dist/shim/promise-with-resolvers.js";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LiveRecorder } from "../dist/eventlog/recorder.js";
import { planImports, withAgentIdentity } from "../dist/hostcalls/policy.js";
import { parseManifest } from "../dist/manifest/manifest.js";
import { replay } from "../dist/replay/engine.js";
import { readModuleInfo } from "../dist/wasm/module-info.js";
import { AgentSandbox } from "../dist/wasm/sandbox.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const ticks = Number(process.argv.find((a) => a.startsWith("--ticks="))?.slice(8) ?? 20_000);

for (const name of ["c-ticker", "c-wasi-clock"]) {
  const bytes = readFileSync(join(root, "agents", `${name}.wasm`));
  const manifest = parseManifest(readFileSync(join(root, "agents", `${name}.manifest.json`), "utf8"));
  const plan = withAgentIdentity(planImports(readModuleInfo(bytes), manifest, new Set(manifest.capabilities.keys())), "did:key:bench");
  const target = { module: new WebAssembly.Module(bytes), plan, memoryCapPages: 256 };
  const rec = new LiveRecorder();
  let clock = 1_700_000_000_000_000_000n;
  const world = { nowNs: () => (clock += 1000n), randomFill: () => undefined };
  const sb = AgentSandbox.instantiate({ ...target, context: { source: rec, budget: () => 1n, price: () => 1n, authority: () => true, world } });
  sb.init();
  const items = [];
  const first = sb.captureState();
  let post = first;
  const t0 = process.hrtime.bigint();
  for (let i = 1; i <= ticks; i++) {
    sb.tick();
    post = sb.captureState();
    items.push({ tick: BigInt(i), entries: rec.take(), budget: 1n, price: 1n });
  }
  const liveNs = Number(process.hrtime.bigint() - t0) / ticks;
  items[0].preState = first;
  items[ticks - 1].expectedPostHash = new Uint8Array(createHash("sha256").update(post).digest());
  const t1 = process.hrtime.bigint();
  const out = replay(target, items);
  const replayNs = Number(process.hrtime.bigint() - t1) / ticks;
  console.log(
    `${name}: ${bytes.length} B; live tick + capture ${(liveNs / 1000).toFixed(1)} µs; chained replay ${(replayNs / 1000).toFixed(1)} µs/tick; verified ${out.verified}/${ticks}${out.failure ? ` (${out.failure.error.code})` : ""}`,
  );
}
