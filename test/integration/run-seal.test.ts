// Run seals (segment seal v2) on the daemon's real path: a checkpoint signs its segment's leaf into a
// run, and every RUN_SEAL_SEGMENTS-th signs the run. A segment altered inside a sealed run is refused
// everywhere it is checked (audit of the data dir, audit of an export, migration admission); a run left
// open by a crash is sealed at the next start; a migration in the middle of a run ships it sealed; and
// a store of v1 segments (each signed alone) migrates forward and still verifies.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { parseCheckpoint } from "../../src/checkpoint/codec.js";
import { hex } from "../../src/hash/bytes.js";
import { signBytes } from "../../src/identity/keys.js";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { buildOutgoingPackage } from "../../src/migration/outgoing.js";
import { decodePackage, encodePackage } from "../../src/migration/package.js";
import { decodeSegmentFile, encodeSegmentFile } from "../../src/replay/audit-plan.js";
import { decodeRunProof, RUN_SEAL_SEGMENTS, sealOpenRuns } from "../../src/replay/run-seal.js";
import { segmentSealProblem, segmentSigningBytes } from "../../src/replay/segment-seal.js";
import type { CheckpointEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode, tempDir } from "../helpers/node.js";
import { igord, killAll, startDaemon } from "../helpers/process.js";
import { RoguePeer } from "../helpers/rogue.js";
import { agentOnCheckpointer } from "../helpers/checkpointer.js";
import { segmentsAsSchema9, segmentsDb, segmentsView } from "../helpers/checkpoint-store.js";

const rogues: RoguePeer[] = [];
afterEach(async () => {
  await Promise.all(rogues.splice(0).map((r) => r.stop()));
  await stopAllNodes();
  await killAll();
});

const heartbeat = join(EXAMPLES, "heartbeat.wasm");
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };
const addr = (t: TestNode): string => t.node.migration!.addresses()[0]!;

async function rogue(): Promise<RoguePeer> {
  const r = await RoguePeer.start();
  rogues.push(r);
  return r;
}

/** A node whose heartbeat agent has written `n` periodic checkpoints (each closing a logged segment). */
async function checkpointed(n: number, config: Record<string, string> = {}): Promise<TestNode> {
  const t = await startTestNode({ ...P2P, "tick-interval": "2ms", "checkpoint-interval": "10ms", ...config });
  await t.node.addAgent({ wasmPath: heartbeat });
  let written = 0;
  await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.reason === "periodic" && e.outcome === "written" && ++written >= n, 30_000);
  return t;
}

const runSize = (s: { runProof?: Uint8Array }): number | undefined => (s.runProof ? decodeRunProof(s.runProof)?.count : undefined);

/** One logged line a tick, and a post-state hash made from the tick: the checkpointer tests' tick log. */
function lineLog(tick: bigint) {
  return { tick, entries: [{ id: HostcallId.log_emit, result: 0, payload: new TextEncoder().encode(`line ${tick}`) }], postHash: new Uint8Array(32).fill(Number(tick % 256n)) };
}

describe("run seals", () => {
  it("a segment altered inside a run the checkpointer sealed is refused by the data dir's audit, an export's audit and migration admission; untouched, all accept it", { timeout: 90_000 }, async () => {
    const a = await checkpointed(RUN_SEAL_SEGMENTS + 6);
    const c = await startTestNode({ ...P2P, "replay-mode": "on-migrate" });
    // The checkpointer sealed a whole run with one signature (one row, RUN_SEAL_SEGMENTS leaves).
    const db0 = new Database(join(a.config.dataDir, DB_FILE), { readonly: true });
    const full = db0.prepare("SELECT from_tick, to_tick, length(leaves) AS n FROM event_log_runs WHERE agent_id = 'heartbeat' ORDER BY to_tick LIMIT 1").get() as { from_tick: number; to_tick: number; n: number };
    db0.close();
    expect(full.n).toBe(32 * RUN_SEAL_SEGMENTS);
    // Migration admission: the package's segments all carry run seals; one altered inside the full run is refused.
    await a.node.scheduler.pause("heartbeat", "recorded");
    const lease = a.node.store.lease("heartbeat")!;
    const pkg = decodePackage(buildOutgoingPackage(a.node.store, { agentId: "heartbeat", epoch: lease.epoch, checkpointHash: hex(a.node.store.head("heartbeat")!.hash), haveWasm: false, baseHash: null }));
    expect(pkg.segments.length).toBeGreaterThan(RUN_SEAL_SEGMENTS);
    expect(pkg.segments.every((s) => s.runProof && s.signature?.byteLength === 64)).toBe(true);
    const i = pkg.segments.findIndex((s) => runSize(s) === RUN_SEAL_SEGMENTS && s.blob.byteLength > 0);
    expect(i).toBeGreaterThanOrEqual(0);
    const victim = pkg.segments[i]!;
    const forged = pkg.segments.map((s, j) => (j === i ? { ...s, postHashes: new Uint8Array(s.postHashes.byteLength) } : s));
    expect(await (await rogue()).send(addr(c), encodePackage({ ...pkg, segments: forged }))).toMatchObject({ ok: false, code: "EVENT_LOG_FORGED" });
    expect(c.node.store.agent("heartbeat")).toBeUndefined();
    // Without its seal (the proof dropped) it is refused as well.
    const { runProof: _p, ...unsealed } = victim;
    const stripped = pkg.segments.map((s, j) => (j === i ? unsealed : s));
    expect(await (await rogue()).send(addr(c), encodePackage({ ...pkg, segments: stripped }))).toMatchObject({ ok: false, code: "EVENT_LOG_FORGED" });
    expect(await (await rogue()).send(addr(c), encodePackage(pkg))).toMatchObject({ stage: "result", ok: true });
    expect(c.node.store.eventSegments("heartbeat").every((s) => s.runProof && s.signature)).toBe(true);
    await a.stop();
    await c.stop();
    const dataDir = a.config.dataDir;
    for (const dir of [dataDir, c.config.dataDir]) {
      const r = igord(["verify", "--agent", "heartbeat", "--replay", "--data-dir", dir]);
      expect(r.stdout, dir).toMatch(/replay: VALID/);
      expect(r.status, dir).toBe(0);
    }
    // An export carries the seals (segment file format 3) and audits VALID; a segment file altered inside the full run does not.
    const out = join(tempDir(), "export");
    expect(igord(["export", "heartbeat", "--out", out, "--data-dir", dataDir]).status).toBe(0);
    expect(igord(["verify", "--replay", out]).stdout).toMatch(/replay: VALID/);
    const events = join(out, "history", "heartbeat", "events");
    const file = readdirSync(events).find((f) => {
      const s = decodeSegmentFile(new Uint8Array(readFileSync(join(events, f))), f);
      return runSize(s) === RUN_SEAL_SEGMENTS && s.blob.byteLength > 0;
    })!;
    const seg = decodeSegmentFile(new Uint8Array(readFileSync(join(events, file))), file);
    expect(readFileSync(join(events, file))[4]).toBe(3);
    writeFileSync(join(events, file), encodeSegmentFile({ ...seg, postHashes: new Uint8Array(seg.postHashes.byteLength) }));
    const e = igord(["verify", "--replay", out]);
    expect(e.stdout).toMatch(/reason: EVENT_LOG_FORGED: event-log segment \d+\.\.\d+ is not signed by the agent's key in its sealed run/);
    expect(e.status).toBe(1);
    // The data dir: a row of the full run altered in place.
    const db = segmentsDb(join(dataDir, DB_FILE));
    db.prepare("UPDATE segments SET post_hashes = zeroblob(length(post_hashes)) WHERE agent_id = 'heartbeat' AND to_tick = ?").run(full.to_tick);
    db.close();
    const r = igord(["verify", "--agent", "heartbeat", "--replay", "--data-dir", dataDir]);
    expect(r.stdout).toMatch(new RegExp(`reason: EVENT_LOG_FORGED: event-log segment \\d+\\.\\.${full.to_tick} is not signed by the agent's key in its sealed run`));
    expect(r.status).toBe(1);
  });

  it("a daemon killed with its run open seals it at its next start; the history audits VALID before and after", { timeout: 90_000 }, async () => {
    const root = tempDir();
    const agentsDir = join(root, "agents");
    mkdirSync(agentsDir);
    copyFileSync(heartbeat, join(agentsDir, "heartbeat.wasm"));
    copyFileSync(join(EXAMPLES, "heartbeat.manifest.json"), join(agentsDir, "heartbeat.manifest.json"));
    const dataDir = join(root, "data");
    const run = (interval: string): ReturnType<typeof startDaemon> =>
      startDaemon(["--agents-dir", agentsDir, "--data-dir", dataDir, "--control", "off", "--tick-interval", interval, "--lease-duration", "2h", "--checkpoint-interval", "10ms"]);
    const open = (): { toTick: bigint; leaves: number } | undefined => {
      const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
      try {
        const db = (store as unknown as { db: Database.Database }).db;
        segmentsView(db);
        const rows = db
          .prepare("SELECT to_tick, leaf FROM segments WHERE agent_id = 'heartbeat' AND leaf IS NOT NULL AND to_tick > COALESCE((SELECT MAX(to_tick) FROM event_log_runs WHERE agent_id = 'heartbeat'), -1) ORDER BY to_tick")
          .all() as { to_tick: number }[];
        return rows.length > 0 ? { toTick: BigInt(rows.at(-1)!.to_tick), leaves: rows.length } : undefined;
      } finally {
        store.close();
      }
    };
    // Killed mid-run (a kill right after a run closed leaves none open: kill again).
    let left: ReturnType<typeof open>;
    for (let kill = 0; kill < 4 && !left; kill++) {
      const d = run("2ms");
      let seen = 0;
      await d.waitFor((l) => l.event === "checkpoint_saved" && l.reason === "periodic" && ++seen >= 5 + kill);
      d.child.kill("SIGKILL");
      await d.exit;
      left = open();
    }
    expect(left?.leaves).toBeGreaterThan(0);
    // The audit of the crashed data dir, and an export of it (read-only: the open run is sealed in memory), are VALID.
    expect(igord(["verify", "--agent", "heartbeat", "--replay", "--data-dir", dataDir]).stdout).toMatch(/replay: VALID/);
    const out = join(root, "export");
    expect(igord(["export", "heartbeat", "--out", out, "--data-dir", dataDir]).status).toBe(0);
    const exported = readdirSync(join(out, "history", "heartbeat", "events")).map((f) => decodeSegmentFile(new Uint8Array(readFileSync(join(out, "history", "heartbeat", "events", f))), f));
    expect(runSize(exported.find((s) => s.toTick === left!.toTick)!)).toBe(left!.leaves);
    expect(igord(["verify", "--replay", out]).stdout).toMatch(/replay: VALID/);
    // The next start seals it before the agent runs again (with a long tick interval nothing new is recorded).
    const d = run("1h");
    const sealed = await d.waitFor((l) => l.event === "runs_sealed");
    expect(sealed.count).toBeGreaterThanOrEqual(1);
    await d.waitFor((l) => l.event === "agent_started");
    d.child.kill("SIGKILL");
    await d.exit;
    expect(open()).toBeUndefined();
    const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
    const segs = store.eventSegments("heartbeat");
    store.close();
    const last = segs.find((s) => s.toTick === left!.toTick)!;
    expect(runSize(last)).toBe(left!.leaves);
    const r = igord(["verify", "--agent", "heartbeat", "--replay", "--data-dir", dataDir]);
    expect(r.stdout).toMatch(/replay: VALID/);
    expect(r.status).toBe(0);
  });

  it("a migration in the middle of a run ships the open run sealed; the target admits, stores and audits it", { timeout: 90_000 }, async () => {
    // No periodic checkpoints: each pause, and the handoff, closes one segment, so the run is open with three.
    const a = await startTestNode({ ...P2P, "tick-interval": "2ms", "checkpoint-interval": "1h" });
    const b = await startTestNode({ ...P2P, "replay-mode": "full" });
    await a.node.addAgent({ wasmPath: heartbeat });
    for (let i = 0; i < 2; i++) {
      const at = a.node.store.head("heartbeat")!.tick;
      await a.waitFor<TickEvent>("tick", (e) => e.tick > at + 3n);
      await a.node.scheduler.pause("heartbeat", "recorded");
      expect(a.node.store.openEventRuns("heartbeat")[0]?.leaves.length).toBe(i + 1);
      await a.node.resumeAgent("heartbeat");
    }
    const at = a.node.store.head("heartbeat")!.tick;
    await a.waitFor<TickEvent>("tick", (e) => e.tick > at + 3n);
    expect((await a.node.migrate("heartbeat", [addr(b)])).outcome).toBe("done");
    // The source sealed the open run, three segments under one signature, before the package left.
    expect(a.node.store.openEventRuns("heartbeat")).toEqual([]);
    const shipped = b.node.store.eventSegments("heartbeat");
    expect(shipped.length).toBe(3);
    expect(shipped.every((s) => s.runProof && runSize(s) === 3 && s.signature?.byteLength === 64)).toBe(true);
    expect(new Set(shipped.map((s) => hex(s.signature!))).size).toBe(1);
    expect(b.logs.events("migration_received")[0]?.replayed).toBeGreaterThan(0);
    await b.stop();
    const r = igord(["verify", "--agent", "heartbeat", "--replay", "--data-dir", b.config.dataDir]);
    expect(r.stdout).toMatch(/replay: VALID/);
    expect(r.status).toBe(0);
  });

  it("a store of v1 segments (each signed alone, schema 7) migrates forward losing nothing, still audits VALID, and carries on with run seals", { timeout: 90_000 }, async () => {
    const a = await checkpointed(6);
    await a.stop();
    const dataDir = a.config.dataDir;
    // Rewrite the store as an igord before run seals left it: each segment with observations signed alone.
    const store = SqliteStore.open(join(dataDir, DB_FILE));
    const key = store.identity("heartbeat");
    const segs = store.eventSegments("heartbeat");
    const v1 = segs.map((s) => {
      const closing = parseCheckpoint(store.checkpointByHash("heartbeat", s.checkpointHash)!.blob);
      return { toTick: s.toTick, signature: s.blob.byteLength > 0 ? signBytes(key, segmentSigningBytes(closing.prevHash, s)) : null };
    });
    store.close();
    const db = new Database(join(dataDir, DB_FILE));
    segmentsAsSchema9(db);
    for (const s of v1) db.prepare("UPDATE event_log_segments SET signature = ? WHERE agent_id = 'heartbeat' AND to_tick = ?").run(s.signature, s.toTick);
    db.exec("DROP TABLE event_log_runs; ALTER TABLE event_log_segments DROP COLUMN leaf; ALTER TABLE event_log_segments DROP COLUMN run_proof; DELETE FROM schema_version WHERE version > 7;");
    db.close();
    expect(v1.filter((s) => s.signature).length).toBeGreaterThan(3);
    // Read as it is (schema 7, read-only), and exported as v1 segment files (format 2), then migrated forward by a start.
    expect(igord(["verify", "--agent", "heartbeat", "--replay", "--data-dir", dataDir]).stdout).toMatch(/replay: VALID/);
    const out = join(tempDir(), "v1-export");
    expect(igord(["export", "heartbeat", "--out", out, "--data-dir", dataDir]).status).toBe(0);
    const events = join(out, "history", "heartbeat", "events");
    const formats = readdirSync(events).map((f) => readFileSync(join(events, f))).filter((b) => b.byteLength > 4 && b.subarray(0, 4).toString() === "IGSG").map((b) => b[4]);
    expect(formats.length).toBeGreaterThan(3);
    expect(new Set(formats)).toEqual(new Set([2]));
    expect(igord(["verify", "--replay", out]).stdout).toMatch(/replay: VALID/);
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "10ms" }, { dir: join(dataDir, ".."), resumeStored: true });
    let written = 0;
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.reason === "periodic" && e.outcome === "written" && ++written >= 4, 30_000);
    await t.stop();
    const after = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
    const kept = after.eventSegments("heartbeat");
    after.close();
    // Every v1 signature is still there, byte for byte; the segments since carry run seals.
    for (const s of v1.filter((x) => x.signature)) {
      const row = kept.find((k) => k.toTick === s.toTick)!;
      expect(row.runProof).toBeUndefined();
      expect(hex(row.signature!)).toBe(hex(s.signature!));
    }
    expect(kept.filter((k) => k.runProof).length).toBeGreaterThan(0);
    const r = igord(["verify", "--agent", "heartbeat", "--replay", "--data-dir", dataDir]);
    expect(r.stdout).toMatch(/replay: VALID/);
    expect(r.status).toBe(0);
  });

  it("on the checkpointer's path, a checkpoint that fails at a run's end leaves the run whole, retention drops runs whose segments are gone, and every kept segment verifies", async () => {
    const store = SqliteStore.open(join(tempDir(), DB_FILE), { eventLogRetention: { ticks: 40n } });
    try {
      const { cp, identity, base } = agentOnCheckpointer(store);
      const broken = { ...identity, privateKeyObject: identity.publicKeyObject, secretKey: new Uint8Array(0) };
      const runs = (): number => {
        const db = new Database(store.path, { readonly: true });
        try {
          return (db.prepare("SELECT COUNT(*) AS n FROM event_log_runs").get() as { n: number }).n;
        } finally {
          db.close();
        }
      };
      for (let tick = 1n; tick <= BigInt(RUN_SEAL_SEGMENTS * 6); tick++) {
        // The checkpoint that would close the first run cannot sign: its logs go with the next one, which closes it.
        if (tick === BigInt(RUN_SEAL_SEGMENTS)) {
          await expect(cp.checkpoint({ ...base, identity: broken, tick, state: new Uint8Array([1]), logs: [lineLog(tick)] }, "periodic", "active", null)).rejects.toThrow();
          expect(runs()).toBe(0);
          continue;
        }
        expect(await cp.checkpoint({ ...base, tick, state: new Uint8Array([Number(tick % 256n)]), logs: [lineLog(tick)] }, "periodic", "active", null)).toBe("written");
        if (tick === BigInt(RUN_SEAL_SEGMENTS + 1)) {
          // The first run: 16 segments (the last one holding the failed checkpoint's ticks too), each sealed.
          expect(runs()).toBe(1);
          const first = store.eventSegments("a");
          expect(first.length).toBe(RUN_SEAL_SEGMENTS);
          expect(first.at(-1)).toMatchObject({ fromTick: tick - 1n, toTick: tick });
          for (const s of first) expect(segmentSealProblem(s, parseCheckpoint(store.checkpointByHash("a", s.checkpointHash)!.blob))).toBeNull();
        }
      }
      // 96 ticks in 95 segments: 5 runs closed; the ticks retention keeps (40) span at most 4 of them.
      expect(runs()).toBeLessThanOrEqual(4);
      expect(sealOpenRuns(store)).toBe(1);
      const segs = store.eventSegments("a");
      expect(segs.length).toBeGreaterThan(30);
      for (const s of segs) {
        const closing = parseCheckpoint(store.checkpointByHash("a", s.checkpointHash)!.blob);
        expect(segmentSealProblem(s, closing), `${s.fromTick}..${s.toTick}`).toBeNull();
      }
    } finally {
      store.close();
    }
  });
});

describe("runs whose segments are all gone", () => {
  // Each retention that drops segments: by bytes, and history retention (whose pruned checkpoints
  // take their segments with them). After the checkpoint that seals a run, no stored run may end
  // before the agent's oldest kept segment, and every kept one still verifies.
  const retentions: [string, Parameters<typeof SqliteStore.open>[1], number][] = [
    ["event-log retention by bytes", { eventLogRetention: { bytes: 3000 } }, 0],
    ["history retention", {}, 32],
  ];
  for (const [name, storeOpts, historyRetention] of retentions) {
    it(`are dropped when the next run is sealed, under ${name}`, async () => {
      const store = SqliteStore.open(join(tempDir(), DB_FILE), storeOpts);
      try {
        const { cp, base } = agentOnCheckpointer(store, { historyRetention });
        const runs = (): { from_tick: bigint; to_tick: bigint }[] => {
          const db = new Database(store.path, { readonly: true });
          try {
            return db.prepare("SELECT from_tick, to_tick FROM event_log_runs WHERE agent_id = 'a' ORDER BY to_tick").safeIntegers().all() as { from_tick: bigint; to_tick: bigint }[];
          } finally {
            db.close();
          }
        };
        let sealed = 0;
        for (let tick = 1n; tick <= BigInt(RUN_SEAL_SEGMENTS * 8); tick++) {
          expect(await cp.checkpoint({ ...base, tick, state: new Uint8Array([Number(tick % 256n)]), logs: [lineLog(tick)] }, "periodic", "active", null)).toBe("written");
          if (tick % BigInt(RUN_SEAL_SEGMENTS) !== 0n) continue;
          // This checkpoint sealed a run.
          sealed++;
          const oldest = store.eventSegments("a")[0]!.toTick;
          const stored = runs();
          expect(stored.at(-1)?.to_tick).toBe(tick);
          for (const r of stored) expect(r.to_tick, `run ${r.from_tick}..${r.to_tick}, oldest segment ends at ${oldest}`).toBeGreaterThanOrEqual(oldest);
        }
        expect(sealed).toBe(8);
        // Retention dropped segments of at least the first four runs, and their runs with them.
        expect(store.eventSegments("a")[0]!.toTick).toBeGreaterThan(BigInt(RUN_SEAL_SEGMENTS * 4));
        expect(runs().length).toBeLessThan(5);
        for (const s of store.eventSegments("a")) {
          expect(segmentSealProblem(s, parseCheckpoint(store.checkpointByHash("a", s.checkpointHash)!.blob)), `${s.fromTick}..${s.toTick}`).toBeNull();
        }
      } finally {
        store.close();
      }
    });
  }
});

describe("run seals through the commit thread", () => {
  it("segments and the run seal the checkpointer writes travel through the commit thread and every segment verifies against its closing checkpoint", async () => {
    const store = SqliteStore.open(join(tempDir(), DB_FILE), { commitThread: true });
    try {
      expect(store.commitsOnThread).toBe(true);
      const { cp, base } = agentOnCheckpointer(store);
      const last = BigInt(RUN_SEAL_SEGMENTS * 2 + 3);
      for (let tick = 1n; tick <= last; tick++) {
        expect(await cp.checkpoint({ ...base, tick, state: new Uint8Array([Number(tick % 256n)]), logs: [lineLog(tick)] }, "periodic", "active", null)).toBe("written");
      }
      const db = new Database(store.path, { readonly: true });
      const runs = (db.prepare("SELECT COUNT(*) AS n FROM event_log_runs WHERE agent_id = 'a'").get() as { n: number }).n;
      db.close();
      expect(runs).toBe(2);
      expect(sealOpenRuns(store)).toBe(1);
      const segs = store.eventSegments("a");
      expect(segs.length).toBe(Number(last));
      for (const s of segs) {
        expect(runSize(s), `${s.fromTick}..${s.toTick}`).toBeGreaterThan(0);
        expect(segmentSealProblem(s, parseCheckpoint(store.checkpointByHash("a", s.checkpointHash)!.blob)), `${s.fromTick}..${s.toTick}`).toBeNull();
      }
    } finally {
      store.close();
    }
  });
});
