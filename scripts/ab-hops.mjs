// Two builds' migration hops interleaved in one process, for comparing a change under a shared
// machine's changing load: each build gets its own two nodes (survivor A↔B, each hop after the agent
// ticked twice, as scripts/bench-migration.mjs), and their hops alternate, so a burst of load falls
// on both. Prints each build's CPU inside migrate(): the whole process (all threads) and the main
// thread alone (Linux: /proc/self/task/<pid>/stat, 10 ms ticks summed over the hops; both include
// what the other build's agent ticks meanwhile). Development tool (docs/BENCHMARKS.md, "hop
// latency"); after npm run build in each tree:
//   node scripts/ab-hops.mjs <tree A> <tree B> [hops]
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
const roots = [resolve(process.argv[2]), resolve(process.argv[3])];
const hops = Number(process.argv[4] ?? 200);
await import(join(roots[0], "dist/shim/promise-with-resolvers.js"));
const setups = [];
for (const root of roots) {
  const { p2pNode } = await import(join(root, "scripts/bench-migration.mjs"));
  const a = await p2pNode(); const b = await p2pNode();
  await a.node.addAgent({ wasmPath: join(root, "agents", "survivor.wasm") });
  setups.push({ root, nodes: [a, b], times: [], cpuAll: 0, cpuMain: 0 });
}
const load0 = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
// utime + stime of the main thread, in ms (clock ticks of 10 ms).
const mainThreadMs = () => {
  const f = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
};
for (let i = 0; i < hops; i++) {
  for (const s of (i % 2 ? [...setups].reverse() : setups)) {
    const from = s.nodes[i % 2], to = s.nodes[(i + 1) % 2];
    const at = from.node.scheduler.view("survivor").tick;
    await new Promise((resolve) => { const on = (e) => { if (e.agentId === "survivor" && e.tick >= at + 2n) { from.node.scheduler.off("tick", on); resolve(); } }; from.node.scheduler.on("tick", on); });
    const m0 = mainThreadMs();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await from.node.migrate("survivor", [to.addr]);
    s.times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    if (i >= 5) {
      s.cpuAll += (c.user + c.system) / 1000;
      s.cpuMain += mainThreadMs() - m0;
    }
    if (r.outcome !== "done") throw new Error("hop failed");
  }
}
const load1 = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
for (const s of setups) { for (const n of s.nodes) await n.cleanup(); }
const pct = (a, p) => a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))];
for (const s of setups) {
  const w = s.times.slice(5).sort((x, y) => x - y);
  console.log(`${s.root.padEnd(16)} load ${load0}→${load1} hops ${hops} p50 ${pct(w, 50).toFixed(2)} p90 ${pct(w, 90).toFixed(2)} p99 ${pct(w, 99).toFixed(2)} min ${w[0].toFixed(2)} ms; CPU per hop all threads ${(s.cpuAll / w.length).toFixed(2)} main ${(s.cpuMain / w.length).toFixed(2)} ms`);
}
