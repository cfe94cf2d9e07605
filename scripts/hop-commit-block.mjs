// How long the main thread is blocked in a migration hop's two durable commits (the source's detach
// batch carrying the handoff: SqliteStore.commitHere with an alsoWrite; the target's reception:
// receiveAgent), over the bench's hops (scripts/bench-migration.mjs: 200 hops and 20 round trips);
// and, where their fsync runs off the main thread, that sync's wall time. Development tool
// (docs/BENCHMARKS.md, "the hop's fsyncs off the main thread"); after npm run build in the tree:
//   node scripts/hop-commit-block.mjs [tree] [hops]
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
const root = resolve(process.argv[2] ?? join(fileURLToPath(new URL(".", import.meta.url)), ".."));
const hops = Number(process.argv[3] ?? 200);
await import(join(root, "dist/shim/promise-with-resolvers.js"));
const { SqliteStore } = await import(join(root, "dist/store/sqlite-store.js"));
const P = SqliteStore.prototype;
const detach = [];
const reception = [];
const syncs = [];
const commitHere = P.commitHere;
P.commitHere = function (batch) {
  const t = performance.now();
  try {
    return commitHere.call(this, batch);
  } finally {
    if (batch.some((b) => b.commit.alsoWrite)) detach.push(performance.now() - t);
  }
};
const receiveAgent = P.receiveAgent;
P.receiveAgent = function (inc) {
  const t = performance.now();
  try {
    return receiveAgent.call(this, inc);
  } finally {
    reception.push(performance.now() - t);
  }
};
const open = SqliteStore.open;
SqliteStore.open = function (...args) {
  const s = open.apply(this, args);
  // Trees whose hop commits sync the WAL off the main thread: time each sync too.
  if ("walSync" in s) {
    const sync = s.walSync;
    s.walSync = (fd) => {
      const t = performance.now();
      return sync(fd).finally(() => syncs.push(performance.now() - t));
    };
  }
  return s;
};
const { migrationHops } = await import(join(root, "scripts/bench-migration.mjs"));
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ")[0];
const load0 = load();
const r = await migrationHops({ hops, wasm: join(root, "agents", "survivor.wasm") });
const q = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const p = (n) => s[Math.min(s.length - 1, Math.floor(n * s.length))].toFixed(2);
  return `n ${s.length} p50 ${p(0.5)} p90 ${p(0.9)} p99 ${p(0.99)} max ${s.at(-1).toFixed(2)} mean ${(s.reduce((x, y) => x + y, 0) / s.length).toFixed(2)} ms`;
};
console.log(`${root} load ${load0}→${load()} hop p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} ms`);
console.log(`  main thread in the detach commit: ${q(detach)}`);
console.log(`  main thread in the reception:     ${q(reception)}`);
if (syncs.length > 0) console.log(`  WAL sync off the main thread (wall): ${q(syncs)}`);
process.exit(0);
