import "../dist/shim/promise-with-resolvers.js";
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import wabtInit from "wabt";
import { loadConfig } from "../dist/config/load.js";
import { IgordNode } from "../dist/node/node.js";
const TRIVIAL = `(module
  (memory (export "memory") 1)
  (global $ticks (mut i32) (i32.const 0))
  (func (export "agent_init"))
  (func (export "agent_tick") (result i32) (global.set $ticks (i32.add (global.get $ticks) (i32.const 1))) (i32.const 1))
  (func (export "agent_checkpoint") (result i32) (i32.store (i32.const 0) (global.get $ticks)) (i32.const 4))
  (func (export "agent_checkpoint_ptr") (result i32) (i32.const 0))
  (func (export "agent_resume") (param i32 i32) (if (i32.eq (local.get 1) (i32.const 4)) (then (global.set $ticks (i32.load (local.get 0))))))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))`;
const w = await wabtInit(); const m = w.parseWat("b.wat", TRIVIAL); const bin = new Uint8Array(m.toBinary({}).buffer);
const seconds = Number(process.argv[2] ?? 5);
const dir = mkdtempSync(join(tmpdir(), "igord-bench-"));
const config = loadConfig({ flags: { "agents-dir": join(dir, "agents"), "data-dir": join(dir, "data"), control: "off", "log-level": "warn", listen: ["/ip4/127.0.0.1/tcp/0"], "tick-interval": "1ms", "fast-tick-interval": "0", price: "0.001" }, env: {} });
const logger = pino({ level: "warn" }, new Writable({ write: (_c, _e, cb) => cb() }));
const node = new IgordNode({ config, logger, watchAgentsDir: false });
await node.start();
const path = join(dir, "trivial.wasm"); writeFileSync(path, bin);
for (let i = 0; i < 200; i++) await node.addAgent({ wasmPath: path, agentId: `t${i}` });
let tk = 0; if (process.env.LISTEN) node.scheduler.on("tick", () => tk++); const total = () => process.env.LISTEN ? tk : node.scheduler.list().reduce((n, a) => n + Number(a.tick), 0);
await new Promise((r) => setTimeout(r, 1000));
const ss = () => readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number); const s0 = ss(); const start = total(); const t0 = performance.now(); const c0 = process.cpuUsage();
await new Promise((r) => setTimeout(r, seconds * 1000));
const el = (performance.now() - t0) / 1000; const c = process.cpuUsage(c0); const n = total() - start; const s1 = ss(); console.log('main on-cpu ns/tick', ((s1[0]-s0[0])/n).toFixed(0), 'runqueue wait ns/tick', ((s1[1]-s0[1])/n).toFixed(0), 'slices', s1[2]-s0[2]);
console.log(Math.round(n / el), "ticks/s", ((c.user + c.system) * 1000 / n).toFixed(0), "ns CPU/tick");
await node.stop(); rmSync(dir, { recursive: true, force: true });
