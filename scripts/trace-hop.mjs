// The critical path of a migration hop as a timeline: wraps the methods on a hop's path (store,
// checkpointer, scheduler, worker pool, frames, migration source and target) and records when each
// call starts and settles relative to the hop's start, over the bench's hops (survivor A↔B, each
// after 2 ticks). Prints each span's median per hop, then every span of the median hop (ALL=1:
// also the short ones), and per hop the two WAL syncs (the source's detach, the target's reception)
// and what follows each on the path: the package sent, the confirmation sent. Development tool
// (docs/BENCHMARKS.md "hop latency"); also per-step medians (sync → `durable`, the replay, frame
// writes per hop) and, with TAIL=1, the slowest 5 % hop by hop. After npm run build (TREE=<dir>:
// trace that tree's build):
//   node scripts/trace-hop.mjs [hops]
import { join } from "node:path";
import { fileURLToPath } from "node:url";
const root = process.env.TREE ?? join(fileURLToPath(new URL(".", import.meta.url)), "..");
const hops = Number(process.argv[2] ?? 80);
const d = (p) => import(join(root, "dist", p));
const spans = [];
let t0 = null;
const now = () => performance.now();
function wrap(proto, label, filter = () => true) {
  for (let p = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const k of Object.getOwnPropertyNames(p)) {
      if (k === "constructor" || !filter(k)) continue;
      const desc = Object.getOwnPropertyDescriptor(p, k);
      if (!desc || typeof desc.value !== "function" || desc.value.__w) continue;
      const f = desc.value;
      const w = function (...args) {
        if (t0 === null) return f.apply(this, args);
        const s = now();
        const rec = { n: `${label}.${k}`, s: s - t0, e: null };
        spans.push(rec);
        let r;
        try { r = f.apply(this, args); } catch (e) { rec.e = now() - t0; throw e; }
        if (r && typeof r.then === "function") { rec.sync = now() - s; return r.finally(() => { rec.e = now() - t0; }); }
        rec.e = now() - t0;
        return r;
      };
      w.__w = true;
      p[k] = w;
    }
  }
}
const store = await d("store/sqlite-store.js");
wrap(store.SqliteStore.prototype, "store", (k) => !["sql"].includes(k));
wrap((await d("migration/source.js")).MigrationSource.prototype, "src");
wrap((await d("migration/target.js")).MigrationTarget.prototype, "tgt");
wrap((await d("migration/service.js")).MigrationService.prototype, "svc", (k) => ["open", "probe"].includes(k));
wrap((await d("p2p/frames.js")).FrameChannel.prototype, "ch", (k) => ["send", "receive", "close"].includes(k));
wrap((await d("p2p/host.js")).P2pHost.prototype, "p2p", (k) => ["open"].includes(k));
wrap((await d("wasm/pool.js")).WorkerPool.prototype, "pool", (k) => ["place", "replay", "unload", "rewind"].includes(k));
wrap((await d("scheduler/scheduler.js")).Scheduler.prototype, "sched", (k) => ["detach", "checkpoint", "add", "verifyStored"].includes(k));
wrap((await d("scheduler/checkpointer.js")).Checkpointer.prototype, "ckpt");
wrap((await d("node/node.js")).IgordNode.prototype, "node", (k) => ["resumeAgent"].includes(k));
wrap((await d("loader/prepare.js")).ModuleCache.prototype, "cache");
wrap((await d("store/wal-sync.js")).WalSyncer.prototype, "wal", (k) => k === "syncNow");
await import(join(root, "dist/shim/promise-with-resolvers.js"));
// Each frame write (FrameChannel.sendAll, which send and sendJson go through), and each control
// message in it by type (msg.offer, msg.durable...), as zero-length spans.
{
  const FC = (await d("p2p/frames.js")).FrameChannel.prototype;
  const sendAll = FC.sendAll;
  FC.sendAll = function (frames) {
    if (t0 !== null) {
      spans.push({ n: "write", s: now() - t0, e: now() - t0 });
      for (const f of frames) {
        const m = /^\{"type":"([a-z_]+)"/.exec(Buffer.from(f.subarray(0, 24)).toString());
        if (m) spans.push({ n: `msg.${m[1]}`, s: now() - t0, e: now() - t0 });
      }
    }
    return sendAll.call(this, frames);
  };
}
const { p2pNode } = await import(join(root, "scripts/bench-migration.mjs"));
const a = await p2pNode(); const b = await p2pNode();
await a.node.addAgent({ wasmPath: join(root, "agents", "survivor.wasm") });
const nodes = [a, b];
const hopsOut = [];
for (let i = 0; i < hops; i++) {
  const from = nodes[i % 2], to = nodes[(i + 1) % 2];
  const at = from.node.scheduler.view("survivor").tick;
  await new Promise((resolve) => { const on = (e) => { if (e.agentId === "survivor" && e.tick >= at + 2n) { from.node.scheduler.off("tick", on); resolve(); } }; from.node.scheduler.on("tick", on); });
  spans.length = 0;
  t0 = now();
  const r = await from.node.migrate("survivor", [to.addr]);
  const total = now() - t0;
  t0 = null;
  if (r.outcome !== "done") throw new Error("hop failed");
  hopsOut.push({ i, total, spans: spans.map((x) => ({ ...x })), side: i % 2 });
}
await a.cleanup(); await b.cleanup();
const warm = hopsOut.slice(5).sort((x, y) => x.total - y.total);
const med = warm[Math.floor(warm.length / 2)];
console.log(`hops ${hops}: p50 ${med.total.toFixed(2)} ms, p90 ${warm[Math.floor(warm.length * 0.9)].total.toFixed(2)}, min ${warm[0].total.toFixed(2)}`);
// Per warm hop: each of its two WAL syncs (wal.syncNow: the detach's on the source, then the
// reception's on the target), and from the end of each to what it releases: the package sent
// (src.transferAccepted starts; negative: sent during the sync) and the reception stored on the
// target (store.receiveAgent starts), and the result sent (the target's first ch.send after its sync).
const gaps = { detachSync: [], syncToPackage: [], syncToStore: [], receptionSync: [], syncToResult: [] };
for (const h of warm) {
  const [det, rec] = h.spans.filter((x) => x.n === "wal.syncNow");
  const sent = h.spans.find((x) => x.n === "src.transferAccepted");
  if (det?.e == null || rec?.e == null || !sent) continue;
  // The result goes through send, or sendAll when the deferred transfer_reply goes with it.
  const result = h.spans.find((x) => (x.n === "ch.send" || x.n === "write") && x.s > rec.e);
  const stored = h.spans.find((x) => x.n === "store.receiveAgent");
  if (!result || !stored) continue;
  gaps.syncToStore.push(stored.s - det.e);
  gaps.detachSync.push(det.e - det.s);
  gaps.syncToPackage.push(sent.s - det.e);
  gaps.receptionSync.push(rec.e - rec.s);
  gaps.syncToResult.push(result.s - rec.e);
}
const mid = (xs) => (xs.length ? xs.slice().sort((x, y) => x - y)[Math.floor(xs.length / 2)].toFixed(3) : "-");
console.log(`p50s: detach sync ${mid(gaps.detachSync)} ms → package sent ${mid(gaps.syncToPackage)} ms later, stored on the target ${mid(gaps.syncToStore)} ms later; reception sync ${mid(gaps.receptionSync)} ms → result sent ${mid(gaps.syncToResult)} ms later`);
// Aggregate: per span name, median duration and count per hop, over warm hops.
const agg = new Map();
for (const h of warm) {
  const per = new Map();
  for (const s of h.spans) { const v = per.get(s.n) ?? { c: 0, t: 0, first: s.s }; v.c++; v.t += (s.e ?? s.s) - s.s; per.set(s.n, v); }
  for (const [n, v] of per) { const a = agg.get(n) ?? []; a.push(v); agg.set(n, a); }
}
const rows = [...agg].map(([n, vs]) => { const ts = vs.map((v) => v.t).sort((x, y) => x - y); const fs = vs.map((v) => v.first).sort((x, y) => x - y); return { n, c: vs[0].c, med: ts[Math.floor(ts.length / 2)], first: fs[Math.floor(fs.length / 2)] }; }).sort((x, y) => x.first - y.first);
for (const r of rows) if (r.med > 0.05 || r.n.startsWith("ch.")) console.log(`${r.first.toFixed(2).padStart(7)} ms  ${r.n.padEnd(36)} x${r.c}  median total ${(r.med * 1000).toFixed(0)} µs`);
console.log("--- median hop timeline");
for (const s of med.spans) { const dur = (s.e ?? s.s) - s.s; if (process.env.ALL || dur > 0.05 || s.n.startsWith("ch.") || s.n.startsWith("src.") || s.n.startsWith("tgt.")) console.log(`${s.s.toFixed(3).padStart(8)} → ${(s.e ?? NaN).toFixed(3).padStart(8)}  ${(dur * 1000).toFixed(0).padStart(6)} µs  ${s.n}${s.sync !== undefined ? ` (sync ${(s.sync * 1000).toFixed(0)} µs)` : ""}`); }
// The target's admission, from its first store read (the module) to the reception's commit.
{
  const adm = [];
  for (const h of warm) {
    const w = h.spans.find((s) => s.n === "store.wasm");
    const r = h.spans.find((s) => s.n === "store.receiveAgent");
    if (w && r) adm.push(r.s - w.s);
  }
  adm.sort((x, y) => x - y);
  if (adm.length > 0) console.log(`admission (store.wasm → store.receiveAgent): p50 ${adm[Math.floor(adm.length / 2)].toFixed(3)} p25 ${adm[Math.floor(adm.length / 4)].toFixed(3)} p10 ${adm[Math.floor(adm.length / 10)].toFixed(3)} ms`);
}
// Per-step medians over the warm hops: the source's detach sync → `durable` written, the package
// sent → the target's last replay done, `durable` written → the reception stored, frame writes per hop.
{
  const m = { syncToDurable: [], pkgToReplayEnd: [], durableToStored: [], writes: [] };
  for (const h of warm) {
    const sync = h.spans.find((x) => x.n === "wal.syncNow");
    const dur = h.spans.find((x) => x.n === "msg.durable");
    const pkg = h.spans.find((x) => x.n === "src.transferAccepted");
    const replays = h.spans.filter((x) => x.n === "pool.replay");
    const stored = h.spans.find((x) => x.n === "store.receiveAgent");
    if (sync?.e != null && dur) m.syncToDurable.push(dur.s - sync.e);
    if (pkg && replays.at(-1)?.e != null) m.pkgToReplayEnd.push(replays.at(-1).e - pkg.s);
    if (dur && stored) m.durableToStored.push(stored.s - dur.s);
    m.writes.push(h.spans.filter((x) => x.n === "write").length);
  }
  const q = (xs, p) => (xs.length ? xs.slice().sort((x, y) => x - y)[Math.floor(xs.length * p)].toFixed(3) : "-");
  console.log(`steps: detach sync → durable written p50 ${q(m.syncToDurable, 0.5)} p90 ${q(m.syncToDurable, 0.9)} ms; package sent → replay done p50 ${q(m.pkgToReplayEnd, 0.5)} p90 ${q(m.pkgToReplayEnd, 0.9)} ms; durable written → reception stored p50 ${q(m.durableToStored, 0.5)} ms; frame writes per hop p50 ${q(m.writes, 0.5)}`);
}
// The slowest 5 % (TAIL=1): per hop, when its phases came (ms from its start) and its synchronous
// spans over 1 ms (a main thread descheduled inside a call reads as one).
if (process.env.TAIL) {
  const at = (h, n, end = false) => {
    const x = h.spans.find((s) => s.n === n);
    return x ? (end ? x.e : x.s) : NaN;
  };
  const fmt = (v) => (typeof v === "number" ? v.toFixed(1) : String(v));
  for (const h of warm.slice(Math.floor(warm.length * 0.95))) {
    const syncs = h.spans.filter((s) => s.n === "wal.syncNow");
    const phases = {
      total: h.total,
      detachSync: syncs[0] ? `${fmt(syncs[0].s)}→${fmt(syncs[0].e)}` : "-",
      packageSent: at(h, "src.transferAccepted"),
      firstPlace: at(h, "pool.place"),
      placeEnd: at(h, "pool.place", true),
      replayEnd: at(h, "pool.replay", true),
      stored: at(h, "store.receiveAgent"),
      receptionSync: syncs[1] ? `${fmt(syncs[1].s)}→${fmt(syncs[1].e)}` : "-",
    };
    console.log(Object.entries(phases).map(([k, v]) => `${k}=${fmt(v)}`).join(" "));
    const long = h.spans.filter((s) => (s.sync ?? (s.e ?? s.s) - s.s) > 1 && !s.n.startsWith("src.") && s.n !== "ch.receive" && s.n !== "wal.syncNow");
    console.log(`    long synchronous spans: ${long.slice(0, 12).map((s) => `${s.n}@${fmt(s.s)}: ${fmt(s.sync ?? (s.e ?? s.s) - s.s)}`).join(", ")}`);
  }
}
