#!/usr/bin/env node
// Checkpoints persisted per second through the daemon's own path: the node's store options, the
// Checkpointer with the node's receipt interval, history retention and signer threads, each agent
// holding a lease (every write is conditional on it), and each checkpoint carrying the event-log
// segment of the ticks since the previous one (clock, rand and log observations per tick, as the
// survivor agent makes; sealed with the agent's key in runs, like the daemon's). Group-
// committed across agents, per --sync mode. Used by scripts/bench.mjs; runnable alone:
// The leases are renewed by the daemon's own lease fence (its sweep renews the agents due since the
// sweep before, together, on the main connection) at the daemon's rate (each agent once per
// --lease-duration × --lease-renewal-window: ~33/s for 1,000 agents at the defaults), while the
// checkpoints commit: every renewal transaction is another connection's commit to the commit
// thread. --renewals=off leaves them out (the bench before they were measured).
//   node scripts/bench-checkpoints.mjs --sync=full,normal --agents=1000 --seconds=5 [--receipt-interval=0] [--renewals=off] [--state-bytes=1024] [--warmup-seconds=1.5] [--per-thread]
// --per-thread also prints each thread's CPU a checkpoint (Linux), by thread id in the order the
// threads started: the main thread, V8's helpers, then the signer, commit and WAL checkpoint threads
// as they started (the signers do the same work as each other, so they pair up).
// A longer warm-up times checkpoints onto a deeper history (the rate falls as it grows:
// docs/BENCHMARKS.md, "checkpoints onto a deeper history").
import "../dist/shim/promise-with-resolvers.js";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { genesisLease } from "../dist/authority/lease.js";
import { loadConfig } from "../dist/config/load.js";
import { didFromPublicKey } from "../dist/identity/did.js";
import { generateKey } from "../dist/identity/keys.js";
import { HostcallId } from "../dist/hostcalls/registry.js";
import { nodeSignerPool, storeOptions } from "../dist/node/node.js";
import { RUN_SEAL_SEGMENTS } from "../dist/replay/run-seal.js";
import { Checkpointer } from "../dist/scheduler/checkpointer.js";
import { LeaseFence } from "../dist/scheduler/lease-fence.js";
import { DB_FILE, SqliteStore } from "../dist/store/sqlite-store.js";

/** USER_HZ, the unit of /proc's CPU times (100 on Linux). */
const CLOCK_TICKS_PER_S = 100;
/** A bench that stops making progress reports it instead of hanging. */
const STALL_MS = 60_000;
/**
 * Checkpoints run at least this long before the timed part: a saturated daemon's steady state, in
 * which its store has moved group commits to their own thread (they took over a fifth of the main
 * thread)…
 */
const WARMUP_MS = 1500;
/**
 * …and until every agent has written this many: past its first run seal (its 16th segment), whose
 * first occurrence sends V8 back to recompile the checkpoint path on every thread (a new commit field,
 * a new branch of the checkpointer, the codec and the commit; the agents reach it together). A
 * daemon pays that once; a 1.5-s warm-up left it, and seconds of TurboFan on the helper threads, in
 * the timed part (docs/BENCHMARKS.md, "CPU per checkpoint over all threads").
 */
const WARMUP_CHECKPOINTS_PER_AGENT = RUN_SEAL_SEGMENTS + 4;

// Payloads drawn before the timed loop: in the daemon, workers produce logs and hashes off the main thread.
const RAND = randomBytes(16 * 4096);
const HASHES = randomBytes(32 * 4096);
const LINE = Buffer.from("tick survived, state saved");

/** One tick's observations, shaped like the survivor agent's: clock, 16 random bytes, a log line. */
export function tickLog(tick) {
  const i = Number(tick % 4096n);
  const clock = Buffer.alloc(8);
  clock.writeBigInt64LE(tick * 1_000_000_000n);
  return {
    tick,
    entries: [
      { id: HostcallId.clock_now, result: 0, payload: clock },
      { id: HostcallId.rand_bytes, result: 0, payload: RAND.subarray(i * 16, i * 16 + 16) },
      { id: HostcallId.log_emit, result: 0, payload: LINE },
    ],
    postHash: HASHES.subarray(i * 32, i * 32 + 32),
  };
}

/**
 * `count` agents created through the checkpointer (identity, genesis lease and checkpoint,
 * `stateBytes` of state, 1 KiB by default), as checkpoint subjects: what both checkpoint benches
 * start from.
 */
export function genesisAgents(cp, config, count, stateBytes = 1024) {
  const timing = { durationMs: config.leaseDurationMs, graceMs: config.leaseGraceMs, renewalWindow: config.leaseRenewalWindow };
  const wasm = randomBytes(64);
  const wasmHash = createHash("sha256").update(wasm).digest("hex");
  const subjects = [];
  // Renewal is due with duration × window left: expiries spread over one such span, so the agents
  // come due one after another at the steady rate (renewLeases), not all at once 30 s in.
  const span = timing.durationMs * timing.renewalWindow;
  const start = Date.now();
  const silent = pino({ level: "silent" });
  for (let i = 0; i < count; i++) {
    const identity = generateKey();
    const genesis = genesisLease(timing, start);
    const lease = genesis.expiresAtMs === null ? genesis : { ...genesis, expiresAtMs: start + span + Math.floor((span * i) / count) };
    // What the lease fence reads of an agent besides its lease (renewLeases): its id, and that it runs here.
    const s = { agentId: `a${i}`, id: `a${i}`, status: "running", detaching: false, logger: silent, tick: 0n, budget: 10n ** 12n, price: config.price, state: randomBytes(stateBytes), wasmHash, identity, lease };
    cp.genesis(s, { lease, agentId: s.agentId, did: didFromPublicKey(identity.publicKey), wasmHash, wasmBytes: wasm, manifest: "{}", identity });
    subjects.push(s);
  }
  return subjects;
}

/**
 * What an agent's checkpoint is asked for, with the logs of its ticks since the last one: built as
 * the scheduler's subject() builds it (an object literal, then its logs and lease). It was a spread
 * of the agent's record, `{ ...s, logs }`: V8's IC log showed every read of a subject field in the
 * checkpointer megamorphic with it, missing on every checkpoint (~2 µs of the main thread a
 * checkpoint that the daemon does not pay; docs/BENCHMARKS.md, "The bench's subjects").
 */
export function checkpointSubject(s, logs) {
  const out = { outbox: [], maxStorageBytes: null, agentId: s.agentId, tick: s.tick, budget: s.budget, price: s.price, state: s.state, wasmHash: s.wasmHash, identity: s.identity };
  out.logs = logs;
  out.lease = s.lease;
  return out;
}

/**
 * Renews the subjects' leases as the daemon does: its lease fence's sweep (`LeaseFence.sweep`, at
 * its interval: 1 s at the defaults) renews every agent that came due since the sweep before, in one
 * transaction on the store's main connection that does not wait for the commit thread's write lock
 * (put off, it is tried again every RENEWAL_RETRY_MS). The subjects' leases expire spread over the
 * renewal window (genesisAgents), so they come due at the daemon's steady rate from the start: each
 * agent once per duration × renewal window, ~33/s for 1,000 agents at the defaults. Every renewal is
 * another connection's commit to the commit thread. Returns its counts of renewals and of renewals
 * put off so far, and its stop.
 */
export function renewLeases(store, config, subjects) {
  const timing = { durationMs: config.leaseDurationMs, graceMs: config.leaseGraceMs, renewalWindow: config.leaseRenewalWindow };
  let renewed = 0;
  let deferred = 0;
  const metrics = { leaseTransitions: { inc: () => renewed++ }, leaseRenewalsDeferred: { inc: () => deferred++ } };
  const leases = {
    timing,
    write: (id, expected, next) => store.writeLease(id, expected, next),
    tryRenewAll: (renewals) => store.tryRenewLeases(renewals),
  };
  const fence = new LeaseFence(leases, metrics, {
    finish: (a, _status, reason, error) => {
      throw error ?? new Error(`the lease fence stopped agent ${a.id}: ${reason}`);
    },
  });
  const sweepMs = fence.sweepIntervalMs();
  const timer = sweepMs === null ? null : setInterval(() => fence.sweep(subjects, Date.now()), sweepMs);
  return {
    renewed: () => renewed,
    deferred: () => deferred,
    stop: () => {
      if (timer) clearInterval(timer);
      fence.stop();
    },
  };
}

/** CPU time of one thread of this process, µs (Linux: /proc; elsewhere, or once it has exited, NaN). */
function threadCpuUs(tid) {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLOCK_TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}

/** CPU time of each thread of this process by thread id, µs (Linux; elsewhere empty). */
function threadsCpuUs() {
  try {
    return new Map(readdirSync("/proc/self/task").map((tid) => [Number(tid), threadCpuUs(tid)]));
  } catch {
    return new Map();
  }
}

/**
 * Flags as the daemon takes them (defaults: the daemon's). Each checkpoint covers
 * --checkpoint-interval ÷ --tick-interval ticks (5 by default), like a periodic checkpoint.
 */
export async function checkpointRate({ sync, agents = 1000, seconds = 3, receiptInterval, renewals = true, stateBytes = 1024, warmupSeconds = WARMUP_MS / 1000 }) {
  const stall = setTimeout(() => {
    console.error(`checkpoint bench (--sync ${sync}) made no progress for ${STALL_MS / 1000}s`);
    process.exit(2);
  }, STALL_MS + (seconds + warmupSeconds) * 1000);
  const dir = mkdtempSync(join(tmpdir(), "igord-ckpt-bench-"));
  const config = loadConfig({ flags: { sync, "data-dir": dir, ...(receiptInterval === undefined ? {} : { "receipt-interval": receiptInterval }) }, env: {} });
  const store = SqliteStore.open(join(dir, DB_FILE), storeOptions(config));
  const signer = nodeSignerPool();
  const cp = new Checkpointer(store, store.nodeKey(), config.receiptIntervalMs, signer, config.historyRetention);
  const ticksPerCheckpoint = Math.max(1, Math.round(config.checkpointIntervalMs / config.tickIntervalMs));
  const subjects = genesisAgents(cp, config, agents, stateBytes);
  const renewal = renewals ? renewLeases(store, config, subjects) : { renewed: () => 0, deferred: () => 0, stop: () => undefined };
  let written = 0;
  const warm = performance.now() + warmupSeconds * 1000;
  // Set when the warm-up ends.
  let deadline = Number.POSITIVE_INFINITY;
  // Agents that have written WARMUP_CHECKPOINTS_PER_AGENT checkpoints.
  let warmAgents = 0;
  // CPU of every thread of the process (main, signer and commit threads): far less sensitive to a
  // shared machine's load than the wall-clock rate. Taken when the warm-up ends.
  let cpu0 = null;
  let threads0 = new Map();
  let t0 = 0;
  let renewed0 = 0;
  let deferred0 = 0;
  // Agent a0's stored checkpoints when the timed part starts: how deep the history it commits onto is.
  let depthAtStart = 0;
  const startTiming = () => {
    if (cpu0 !== null || warmAgents < agents || performance.now() < warm) return;
    cpu0 = process.cpuUsage();
    threads0 = threadsCpuUs();
    t0 = performance.now();
    renewed0 = renewal.renewed();
    deferred0 = renewal.deferred();
    deadline = t0 + seconds * 1000;
    written = 0;
    depthAtStart = store.historyCount("a0");
  };
  // Each agent checkpoints again as soon as its previous checkpoint is durable, as a saturated
  // daemon's agents do (a periodic round never waits for the whole previous round): one agent's next
  // checkpoint is signed while others' commit. An agent's own checkpoints still run one at a time.
  // The ticks since the last checkpoint and the subject that carries their logs, built outside
  // `run`'s async frame: like the daemon's scheduler, the loop does not hold the logs while the
  // checkpoint is in flight (they can die once the checkpointer has encoded them).
  const subject = (s) => {
    const logs = [];
    for (let t = 0; t < ticksPerCheckpoint; t++) {
      s.tick += 1n;
      s.budget -= config.price;
      cp.addCost(s.agentId, config.price);
      logs.push(tickLog(s.tick));
    }
    return checkpointSubject(s, logs);
  };
  const run = async (s) => {
    let own = 0;
    while (performance.now() < deadline) {
      await cp.checkpoint(subject(s), "periodic", "active", null);
      written++;
      if (++own === WARMUP_CHECKPOINTS_PER_AGENT) warmAgents++;
      startTiming();
    }
  };
  await Promise.all(subjects.map(run));
  const elapsedS = (performance.now() - t0) / 1000;
  renewal.stop();
  const rate = written / elapsedS;
  const renewalRate = (renewal.renewed() - renewed0) / elapsedS;
  const deferredRate = (renewal.deferred() - deferred0) / elapsedS;
  const cpu = process.cpuUsage(cpu0);
  // Each thread's CPU a checkpoint over the timed part (threads started during it counted from 0).
  const perThread = [...threadsCpuUs()]
    .sort((a, b) => a[0] - b[0])
    .map(([tid, us]) => ({ tid, main: tid === process.pid, usPerCheckpoint: (us - (threads0.get(tid) ?? 0)) / written }))
    .filter((t) => t.usPerCheckpoint > 0);
  const mainCpuUsPerCheckpoint = perThread.find((t) => t.main)?.usPerCheckpoint ?? Number.NaN;
  const cpuUsPerCheckpoint = (cpu.user + cpu.system) / written;
  // What one agent's rows show the run wrote: the real path, not a shortcut around it.
  const commitThread = store.commitsOnThread;
  const signerThreads = signer.threadsStarted;
  const sample = { depthAtStart, checkpoints: store.historyCount("a0"), segments: store.eventSegments("a0").length, receipts: store.receipts("a0").length };
  await signer.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
  clearTimeout(stall);
  return { rate, renewalRate, deferredRate, written, cpuUsPerCheckpoint, mainCpuUsPerCheckpoint, perThread, ticksPerCheckpoint, receiptIntervalMs: config.receiptIntervalMs, sample, commitThread, signerThreads };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=")));
  for (const sync of (args.get("sync") ?? "full,normal").split(",")) {
    const r = await checkpointRate({ sync, agents: Number(args.get("agents") ?? 1000), seconds: Number(args.get("seconds") ?? 3), receiptInterval: args.get("receipt-interval"), renewals: args.get("renewals") !== "off", stateBytes: Number(args.get("state-bytes") ?? 1024), warmupSeconds: Number(args.get("warmup-seconds") ?? WARMUP_MS / 1000) });
    console.log(
      `--sync ${sync}: ${Math.round(r.rate).toLocaleString("en-US")} checkpoints/s, ${r.cpuUsPerCheckpoint.toFixed(1)} µs CPU each, all threads (main thread ${r.mainCpuUsPerCheckpoint.toFixed(1)}${r.commitThread ? ", commits on their own thread" : ""}${r.signerThreads ? ", signer threads" : ", no signer threads"}) (${r.ticksPerCheckpoint} logged ticks each, receipts every ${r.receiptIntervalMs} ms, ${r.renewalRate.toFixed(0)} lease renewals/s, ${r.deferredRate.toFixed(0)}/s put off; agent a0: ${r.sample.depthAtStart} checkpoints when timing began, ${r.sample.checkpoints} at the end, ${r.sample.segments} event-log segments, ${r.sample.receipts} receipts)`,
    );
    if (args.has("per-thread")) {
      console.log(`  µs of CPU a checkpoint by thread: ${r.perThread.map((t) => `${t.main ? "main" : t.tid} ${t.usPerCheckpoint.toFixed(1)}`).join(", ")}`);
    }
  }
}
