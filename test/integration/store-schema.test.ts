// Forward-only schema migrations on a real SQLite file: a database an earlier igord wrote (its schema
// exactly that version's, rows in every table the checkpoint path writes) opens under this build
// with nothing lost, and every read the daemon makes of it still works.
import { randomBytes } from "node:crypto";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { hex } from "../../src/hash/bytes.js";
import { Checkpointer } from "../../src/scheduler/checkpointer.js";
import { MIGRATIONS } from "../../src/store/schema.js";
import { keyed } from "../../src/store/checkpoint-keys.js";
import { IN_CHECKPOINT_ROW, RECORDED_UNSIGNED_IN_ROWS } from "../../src/store/segment-records.js";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import type { CheckpointRow } from "../../src/store/types.js";
import { agentOnCheckpointer, tickLog } from "../helpers/checkpointer.js";
import { asSchema12, asSchema13, asSchema14, asSchema15, asSchema16, CHECKPOINT_OWN_COLUMNS, freshDbPath, segmentsAsSchema9, segmentsAsSchema10, segmentsInRows, segmentsView } from "../helpers/checkpoint-store.js";

/** The checkpoint path's tables (and the agents row it reads), every row in a stable order. */
const TABLES = ["agents", "checkpoints", "receipts", "event_log_segments", "event_log_runs", "outbox", "lineage_events", "history_bases", "payment_journal"];

/**
 * Every row of those tables; a segment's id is left out (schema 10 renumbers them: `linkedIds`
 * checks those). From schema 11, a checkpoint's row also holds its segment: the checkpoints are
 * their own columns, the segments every one stored (in a row or not), as event_log_segments had them.
 */
function snapshot(path: string): Record<string, unknown[]> {
  const db = new Database(path, { readonly: true });
  try {
    const inRows = segmentsInRows(db);
    if (inRows) segmentsView(db);
    const out: Record<string, unknown[]> = {};
    for (const t of TABLES) {
      const sql = !inRows ? `SELECT * FROM ${t}` : t === "checkpoints" ? `SELECT ${CHECKPOINT_OWN_COLUMNS} FROM checkpoints` : t === "event_log_segments" ? "SELECT * FROM segments" : `SELECT * FROM ${t}`;
      out[t] = (db.prepare(sql).all() as Record<string, unknown>[])
        .map((r) => {
          if (t === "event_log_segments") delete r.id;
          return JSON.stringify(r, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString("hex") : v));
        })
        .sort();
    }
    return out;
  } finally {
    db.close();
  }
}

/** The schema objects (tables, indexes) and their SQL, as sqlite_master holds them. */
function schemaOf(db: Database.Database): string[] {
  return (db.prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").all() as { type: string; name: string; sql: string | null }[]).map(
    (r) => `${r.type} ${r.name}: ${r.sql ?? ""}`,
  );
}

/** The schema objects of an empty database after migrations 1..version. */
function schemaAt(version: number): string[] {
  const reference = new Database(":memory:");
  try {
    reference.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
    for (const m of MIGRATIONS.slice(0, version)) reference.exec(m);
    return schemaOf(reference);
  } finally {
    reference.close();
  }
}

/** A fresh store file with one agent and three checkpoints (64-byte states, a segment each), closed. */
async function threeCheckpoints(): Promise<string> {
  const path = freshDbPath();
  const store = SqliteStore.open(path, { sync: "full" });
  const { cp, base } = agentOnCheckpointer(store, { receiptIntervalMs: 0 });
  for (let tick = 1n; tick <= 3n; tick++) await cp.checkpoint({ ...base, tick, state: randomBytes(64), logs: [tickLog(tick)] }, "periodic", "active", null);
  store.close();
  return path;
}

describe("store schema migrations", () => {
  it("a schema-14 file upgrades to 15 with every row and id kept, each checkpoint's state now the last column of its row (its segment's columns before it), and every read of it unchanged", async () => {
    const path = freshDbPath();
    const store = SqliteStore.open(path, { sync: "full" });
    const { cp, base } = agentOnCheckpointer(store, { receiptIntervalMs: 0 });
    // A state over a page (it spills to overflow pages), as the reorder is for.
    for (let tick = 1n; tick <= 5n; tick++) await cp.checkpoint({ ...base, tick, state: randomBytes(20_000), logs: [tickLog(tick)] }, "periodic", "active", null);
    const reads = (s: SqliteStore) => ({ head: s.head(base.agentId), history: [...s.history(base.agentId)], segments: s.eventSegments(base.agentId), runs: s.openEventRuns(base.agentId) });
    const readBefore = reads(store);
    store.close();
    const v14 = new Database(path);
    asSchema14(v14);
    expect(schemaOf(v14)).toEqual(schemaAt(14));
    const columnsOf = (db: Database.Database) => db.prepare("SELECT name FROM pragma_table_info('checkpoints')").pluck().all() as string[];
    expect(columnsOf(v14).indexOf("blob")).toBeLessThan(columnsOf(v14).indexOf("seg_to_tick"));
    v14.close();
    const upgraded = openUpgraded(path, snapshot(path));
    try {
      expect(reads(upgraded)).toEqual(readBefore);
      // The chain carries on.
      const next = new Checkpointer(upgraded, upgraded.nodeKey(), 0);
      next.track(base.agentId, { hash: readBefore.head!.hash, tick: 5n, budget: readBefore.head!.budget });
      await next.checkpoint({ ...base, tick: 6n, state: randomBytes(20_000), logs: [tickLog(6n)] }, "periodic", "active", null);
      expect(upgraded.head(base.agentId)?.tick).toBe(6n);
    } finally {
      upgraded.close();
    }
    const db = new Database(path, { readonly: true });
    // The state after every column a read of the small ones names; schema 17's tick_at, added after
    // it, is read only with the state (the head's, at a resume or a hop).
    expect(columnsOf(db).slice(-3)).toEqual(["seg_blob", "blob", "tick_at"]);
    expect(schemaOf(db)).toEqual(schemaAt(MIGRATIONS.length));
    db.close();
  });

  it("a schema-16 file upgrades to 17 with every row kept: its checkpoints' tick times are unknown (a resumed agent ticks an interval after it resumes; read-only, too), a checkpoint written after the upgrade stores its own", async () => {
    const path = freshDbPath();
    const store = SqliteStore.open(path, { sync: "full" });
    const { cp, base } = agentOnCheckpointer(store, { receiptIntervalMs: 0 });
    for (let tick = 1n; tick <= 3n; tick++) await cp.checkpoint({ ...base, tick, state: randomBytes(20_000), tickAt: 1_000 + Number(tick) }, "periodic", "active", null);
    expect(store.headTickAt(base.agentId)).toBe(1_003);
    store.close();
    takeBack(path, asSchema16, 16);
    // Read as it is (read-only: igord export, verify), the file has no tick times to give.
    const readOnly = SqliteStore.open(path, { readonly: true });
    try {
      expect(readOnly.headTickAt(base.agentId)).toBeNull();
    } finally {
      readOnly.close();
    }
    const upgraded = openUpgraded(path, snapshot(path));
    try {
      expect(upgraded.headTickAt(base.agentId)).toBeNull();
      const next = new Checkpointer(upgraded, upgraded.nodeKey(), 0);
      next.track(base.agentId, { hash: upgraded.head(base.agentId)!.hash, tick: 3n, budget: upgraded.head(base.agentId)!.budget });
      await next.checkpoint({ ...base, tick: 4n, state: randomBytes(20_000), tickAt: 2_000 }, "periodic", "active", null);
      expect(upgraded.headTickAt(base.agentId)).toBe(2_000);
    } finally {
      upgraded.close();
    }
  });

  it("a schema-15 file upgrades to 16 with every row and id kept, no (agent_id, seq) index on its checkpoints, every key in checkpoint_keys, and every read unchanged; read-only, a schema-15 file reads the same", async () => {
    const path = freshDbPath();
    const store = SqliteStore.open(path, { sync: "full" });
    const { cp, base } = agentOnCheckpointer(store, { receiptIntervalMs: 0 });
    // Past a move of the recent keys (seq 16), so both key tables hold some before the downgrade.
    for (let tick = 1n; tick <= 20n; tick++) await cp.checkpoint({ ...base, tick, state: randomBytes(64), logs: [tickLog(tick)] }, "periodic", "active", null);
    const reads = (s: SqliteStore) => ({
      head: s.head(base.agentId),
      history: [...s.history(base.agentId)],
      segments: s.eventSegments(base.agentId),
      runs: s.openEventRuns(base.agentId),
      count: s.historyCount(base.agentId),
      at: s.checkpointAt(base.agentId, 7n),
      byHash: s.checkpointByHash(base.agentId, s.checkpointAt(base.agentId, 3n)!.hash),
    });
    const readBefore = reads(store);
    store.close();
    takeBack(path, asSchema15, 15);
    const readOnly = SqliteStore.open(path, { readonly: true });
    try {
      expect(reads(readOnly)).toEqual(readBefore);
    } finally {
      readOnly.close();
    }
    const ids = (db: Database.Database) => db.prepare("SELECT agent_id, seq, id FROM checkpoints ORDER BY agent_id, seq").all();
    const v15Again = new Database(path, { readonly: true });
    const idsBefore = ids(v15Again);
    v15Again.close();
    const upgraded = openUpgraded(path, snapshot(path));
    try {
      expect(reads(upgraded)).toEqual(readBefore);
      const next = new Checkpointer(upgraded, upgraded.nodeKey(), 0);
      next.track(base.agentId, { hash: readBefore.head!.hash, tick: 20n, budget: readBefore.head!.budget });
      await next.checkpoint({ ...base, tick: 21n, state: randomBytes(64), logs: [tickLog(21n)] }, "periodic", "active", null);
      expect(upgraded.head(base.agentId)?.tick).toBe(21n);
    } finally {
      upgraded.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      expect(schemaOf(db)).toEqual(schemaAt(MIGRATIONS.length));
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'checkpoints'").pluck().all()).toEqual(["checkpoints_segment_recorded_unsigned"]);
      // Every key the file had is in checkpoint_keys; the one checkpoint written since (seq 22) is recent.
      expect(db.prepare("SELECT agent_id, seq, id FROM checkpoint_keys ORDER BY agent_id, seq").all()).toEqual(idsBefore);
      expect(db.prepare("SELECT seq FROM checkpoint_keys_recent").pluck().safeIntegers().all()).toEqual([22n]);
    } finally {
      db.close();
    }
  });

  it("an upgrade step that fails (here a table in the way of migration 15's rebuild) is STORE_ERROR naming the step and SQLite's code, and leaves the file as it was", async () => {
    const path = await threeCheckpoints();
    const v14 = new Database(path);
    asSchema14(v14);
    v14.exec("CREATE TABLE checkpoints_v14 (x INTEGER)");
    v14.close();
    const before = snapshot(path);
    let err: unknown;
    try {
      SqliteStore.open(path, { sync: "full" }).close();
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "STORE_ERROR" });
    expect((err as Error).message).toContain("schema 14 to 15");
    expect((err as Error).message).toContain("SQLITE_ERROR");
    const db = new Database(path, { readonly: true });
    expect(db.prepare("SELECT MAX(version) FROM schema_version").pluck().get()).toBe(14);
    db.close();
    expect(snapshot(path)).toEqual(before);
  });

  it("a schema-13 file upgrades to 14 with every row kept and an empty pending_receptions table, which then stores, replaces and drops a pending reception", async () => {
    const path = await threeCheckpoints();
    takeBack(path, asSchema13, 13);
    const upgraded = openUpgraded(path, snapshot(path));
    try {
      expect(upgraded.pendingReceptionKeys()).toEqual([]);
      const p = { agentId: "x", did: "did:key:zX", peer: "12D3KooWPeer", epoch: { major: 2n, generation: 1n }, checkpointHash: "ab".repeat(32), package: randomBytes(100), sourceAddrs: ["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWPeer"] };
      await upgraded.recordPendingReception(p);
      expect(upgraded.pendingReception("x")).toEqual({ ...p, package: Buffer.from(p.package) });
      await upgraded.recordPendingReception({ ...p, checkpointHash: "cd".repeat(32) });
      expect(upgraded.pendingReceptionKeys()).toEqual([{ agentId: "x", peer: "12D3KooWPeer" }]);
      // A drop names the checkpoint it drops: the replaced one's is no longer there.
      upgraded.dropPendingReception("x", "ab".repeat(32));
      expect(upgraded.pendingReception("x")?.checkpointHash).toBe("cd".repeat(32));
      upgraded.dropPendingReception("x", "cd".repeat(32));
      expect(upgraded.pendingReception("x")).toBeUndefined();
    } finally {
      upgraded.close();
    }
    const reference = new Database(path, { readonly: true });
    expect(schemaOf(reference)).toEqual(schemaAt(MIGRATIONS.length));
    reference.close();
  });

  it("a schema-8 database with checkpoints, receipts, segments, runs and outbox rows upgrades to 9: every row kept, no index by hash, and each checkpoint still found by its hash", async () => {
    const path = freshDbPath();
    const store = SqliteStore.open(path, { sync: "full" });
    // Receipts with every checkpoint; 40 checkpoints close two runs of 16 segments (run seals).
    const { cp, base } = agentOnCheckpointer(store, { receiptIntervalMs: 0 });
    let tick = 0n;
    for (let i = 0; i < 40; i++) {
      const logs = [tickLog(tick + 1n), tickLog(tick + 2n)];
      tick += 2n;
      await cp.checkpoint({ ...base, tick, state: randomBytes(64), logs, outbox: [{ tick, epochMajor: 0n, messages: [randomBytes(8)] }] }, "periodic", "active", null);
    }
    cp.addLostPayments("a", [{ tick: tick + 1n, receipt: randomBytes(64), oldBudget: 100n, newBudget: 90n }]);
    await cp.checkpoint({ ...base, tick: tick + 1n, budget: 90n, state: randomBytes(64), logs: [tickLog(tick + 1n)] }, "periodic", "active", null);
    await store.journalPayment({ agentId: "a", tick: tick + 5n, receiptHash: randomBytes(32), amount: 1n, recipient: "0xabc", memo: "m", receipt: randomBytes(64) });
    const hashes = [...store.history("a")].map((c) => ({ seq: c.seq, tick: c.tick, hash: c.hash }));
    store.close();

    // Put the file back exactly as igord's schema 8 left it, and prove it is that: the same objects
    // and SQL as migrations 1-8 applied to an empty database.
    const v8 = new Database(path);
    segmentsAsSchema9(v8);
    v8.exec("CREATE INDEX checkpoints_by_hash ON checkpoints(hash); DELETE FROM schema_version WHERE version > 8;");
    expect(schemaOf(v8)).toEqual(schemaAt(8));
    v8.close();
    const before = snapshot(path);
    for (const t of ["checkpoints", "receipts", "event_log_segments", "event_log_runs", "outbox", "lineage_events", "payment_journal"]) {
      expect(before[t]!.length, t).toBeGreaterThan(0);
    }

    const upgraded = openUpgraded(path, before);
    try {
      const db = new Database(path, { readonly: true });
      const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'checkpoints'").all() as { name: string }[]).map((r) => r.name);
      // The lookup by hash walks the agent's keys (schema 16) back from the head.
      const byHash = keyed("k.seq AS seq, c.hash AS hash", "k.agent_id = @agent AND c.hash = @hash", "DESC", { limit: 1 });
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${byHash}`).all({ agent: "a", hash: Buffer.alloc(32) }) as { detail: string }[]).map((r) => r.detail);
      db.close();
      // No index by hash (schema 11 adds a partial one of segments recorded unsigned, empty), nor by agent (schema 16).
      expect(indexes.sort()).toEqual(["checkpoints_segment_recorded_unsigned"]);
      expect(plan).toEqual(mergedKeys(["SEARCH k USING PRIMARY KEY (agent_id=?)", "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"]));
      for (const h of hashes) {
        expect(upgraded.checkpointByHash("a", h.hash)?.seq).toBe(h.seq);
        expect(upgraded.holdsCheckpoint("a", h.hash, h.tick)).toBe(true);
        // The same hash at another tick, or under another agent, is not that checkpoint.
        expect(upgraded.holdsCheckpoint("a", h.hash, h.tick + 1n)).toBe(false);
        expect(upgraded.checkpointByHash("b", h.hash)).toBeUndefined();
      }
      const head = hashes.at(-1)!;
      expect(upgraded.checkpointByHash("a", randomBytes(32))).toBeUndefined();
      expect(upgraded.holdsCheckpoint("a", randomBytes(32), head.tick + 1n)).toBe(false);
      expect(upgraded.holdsCheckpoint("a", randomBytes(32), 1n)).toBe(false);
      expect(upgraded.eventSegments("a").length).toBe(before.event_log_segments!.length);
      expect(upgraded.receipts("a").length).toBe(before.receipts!.length);
      expect(upgraded.outbox("a").length).toBe(before.outbox!.length);
      expect(upgraded.unsettledPayments("a").length).toBe(1);
      // And the history carries on from its head, found by hash once written.
      const next = new Checkpointer(upgraded, upgraded.nodeKey(), 0);
      next.track("a", { hash: head.hash, tick: head.tick, budget: upgraded.head("a")!.budget });
      await next.checkpoint({ ...base, tick: head.tick + 2n, budget: 90n, state: randomBytes(64), logs: [tickLog(head.tick + 1n), tickLog(head.tick + 2n)] }, "periodic", "active", null);
      const appended = upgraded.head("a")!;
      expect([appended.seq, appended.tick]).toEqual([head.seq + 1n, head.tick + 2n]);
      expect(appended.prevHash).toEqual(head.hash);
      expect(upgraded.checkpointByHash("a", appended.hash)?.seq).toBe(appended.seq);
      expect(upgraded.holdsCheckpoint("a", appended.hash, appended.tick)).toBe(true);
    } finally {
      upgraded.close();
    }
  });

  it("a schema-9 database with pruned history, segments, runs, receipts and outbox rows upgrades through 10 to the current schema: every row kept, each segment stored with its checkpoint (or unlinked), every segment read unchanged, and the chain and its pruning carry on", async () => {
    const h = await prunedHistory();
    const { path, headBefore } = h;
    // The file as schema 9 left it, with the two segments schema 10 cannot store by a checkpoint: a
    // second segment for the head checkpoint, and one whose checkpoint is not stored (an import's).
    const v9 = new Database(path);
    segmentsAsSchema9(v9);
    addUnlinkableSegments(v9, headBefore.tick);
    expect(schemaOf(v9)).toEqual(schemaAt(9));
    v9.close();
    const { before, readBefore } = asItIs(h);

    const upgraded = openUpgraded(path, before);
    try {
      expect(reads(upgraded, headBefore.tick)).toEqual(readBefore);
      const db = new Database(path, { readonly: true });
      segmentsView(db);
      // Each linked segment's id is the row id of the checkpoint it closes (same agent, hash, last tick); the two others are unlinked.
      const mismatched = db.prepare("SELECT COUNT(*) AS n FROM segments s JOIN checkpoints c ON c.id = s.id WHERE c.agent_id != s.agent_id OR c.hash != s.checkpoint_hash OR c.tick != s.to_tick").get() as { n: number };
      const unlinked = db.prepare("SELECT to_tick, checkpoint_hash FROM event_log_segments WHERE id < 0 ORDER BY to_tick").all() as { to_tick: number; checkpoint_hash: Buffer }[];
      const linked = db.prepare("SELECT COUNT(*) AS n FROM segments s JOIN checkpoints c ON c.id = s.id").get() as { n: number };
      const floor = db.prepare("SELECT seq, to_tick, unlinked FROM event_log_floors WHERE agent_id = 'a'").get() as { seq: number; to_tick: number; unlinked: number };
      const oldestLinked = db.prepare("SELECT c.seq, s.to_tick FROM segments s JOIN checkpoints c ON c.id = s.id ORDER BY c.seq LIMIT 1").get() as { seq: number; to_tick: number };
      db.close();
      expect(mismatched.n).toBe(0);
      expect(linked.n).toBe(before.event_log_segments!.length - 2);
      expect(unlinked.map((u) => BigInt(u.to_tick))).toEqual([headBefore.tick, headBefore.tick + 1n]);
      // The floor: the oldest linked segment's checkpoint and last tick, and a note that unlinked ones exist.
      expect(floor).toEqual({ ...oldestLinked, unlinked: 1 });
      expectSegmentPlans(path);
      await carriesOn(h, upgraded);
    } finally {
      upgraded.close();
    }
  });

  it("a schema-10 database with pruned history, segments (a second one for a checkpoint, one no checkpoint closes), runs, receipts and outbox rows upgrades to 11: every row kept, each linked segment in its checkpoint's row under the same id, every segment read unchanged, and the chain and its pruning carry on", async () => {
    const h = await prunedHistory();
    const { path, headBefore } = h;
    const v10 = new Database(path);
    segmentsAsSchema10(v10);
    // The two segments schema 10 keeps unlinked (negative ids, below every id in use).
    addUnlinkableSegments(v10, headBefore.tick, [-1, -2]);
    v10.exec("UPDATE event_log_floors SET unlinked = 1 WHERE agent_id = 'a'");
    expect(schemaOf(v10)).toEqual(schemaAt(10));
    const idsBefore = v10.prepare("SELECT id, agent_id, to_tick, checkpoint_hash FROM event_log_segments ORDER BY id").all();
    const floorBefore = v10.prepare("SELECT * FROM event_log_floors").all();
    v10.close();
    const { before, readBefore } = asItIs(h);

    const upgraded = openUpgraded(path, before);
    try {
      expect(reads(upgraded, headBefore.tick)).toEqual(readBefore);
      const db = new Database(path, { readonly: true });
      segmentsView(db);
      // Every segment under the id it had; the linked ones in their checkpoints' rows, the two unlinked ones where they were.
      expect(db.prepare("SELECT id, agent_id, to_tick, checkpoint_hash FROM segments ORDER BY id").all()).toEqual(idsBefore);
      const left = db.prepare("SELECT id FROM event_log_segments ORDER BY id").all() as { id: number }[];
      const inRows = db.prepare("SELECT COUNT(*) AS n FROM checkpoints WHERE seg_blob IS NOT NULL").get() as { n: number };
      expect(db.prepare("SELECT * FROM event_log_floors").all()).toEqual(floorBefore);
      db.close();
      expect(left.map((r) => r.id)).toEqual([-2, -1]);
      expect(inRows.n).toBe(idsBefore.length - 2);
      expectSegmentPlans(path);
      await carriesOn(h, upgraded);
    } finally {
      upgraded.close();
    }
  });
});

describe("migration 13: the outbox's kept-from mark", () => {
  it("a schema-12 file cannot say what its outbox retention dropped: an agent whose oldest kept message is past tick 1 is marked from that tick, one whose outbox starts at tick 1 keeps everything", async () => {
    const path = freshDbPath();
    const store = SqliteStore.open(path, { sync: "full" });
    const { cp, base } = agentOnCheckpointer(store, { receiptIntervalMs: 0 });
    for (let tick = 1n; tick <= 3n; tick++) {
      await cp.checkpoint({ ...base, tick, state: randomBytes(64), logs: [tickLog(tick)], outbox: [{ tick, epochMajor: 0n, messages: [randomBytes(8)] }] }, "periodic", "active", null);
    }
    store.close();
    const v12 = new Database(path);
    asSchema12(v12);
    expect(schemaOf(v12)).toEqual(schemaAt(12));
    v12.close();
    const whole = SqliteStore.open(path, { sync: "full" });
    try {
      expect(whole.schemaVersion()).toBe(MIGRATIONS.length);
      expect(whole.outboxKeptFromTick("a")).toBe(0n);
    } finally {
      whole.close();
    }

    const v12again = new Database(path);
    asSchema12(v12again);
    v12again.exec("DELETE FROM outbox WHERE tick = 1");
    v12again.close();
    const dropped = SqliteStore.open(path, { sync: "full" });
    try {
      expect(dropped.outboxKeptFromTick("a")).toBe(2n);
      expect(dropped.outboxPage("a", 0n, 10, 1024).messages.map((m) => m.tick)).toEqual([2n, 3n]);
    } finally {
      dropped.close();
    }
  });
});

describe("migration 11 keeps what it cannot link", () => {
  it("a schema-10 segment whose row id is a checkpoint it does not close (another hash) is kept whole and unlinked, below every id in use; the agent's floor says it has unlinked segments", async () => {
    const h = await prunedHistory();
    const v10 = new Database(h.path);
    segmentsAsSchema10(v10);
    const stray = v10.prepare("SELECT * FROM event_log_segments WHERE id > 0 ORDER BY id LIMIT 1 OFFSET 5").get() as Record<string, unknown> & { id: number };
    v10.prepare("UPDATE event_log_segments SET checkpoint_hash = ? WHERE id = ?").run(randomBytes(32), stray.id);
    const strayRow = v10.prepare("SELECT * FROM event_log_segments WHERE id = ?").get(stray.id) as Record<string, unknown>;
    const count = (v10.prepare("SELECT COUNT(*) AS n FROM event_log_segments").get() as { n: number }).n;
    v10.close();

    const upgraded = SqliteStore.open(h.path, { sync: "full" });
    try {
      expect(upgraded.schemaVersion()).toBe(MIGRATIONS.length);
      const db = new Database(h.path, { readonly: true });
      try {
        segmentsView(db);
        expect((db.prepare("SELECT COUNT(*) AS n FROM segments").get() as { n: number }).n).toBe(count);
        const left = db.prepare("SELECT * FROM event_log_segments").all() as Record<string, unknown>[];
        expect(left).toEqual([{ ...strayRow, id: -stray.id }]);
        expect(db.prepare("SELECT COUNT(*) AS n FROM checkpoints WHERE id = ? AND seg_blob IS NOT NULL").get(stray.id)).toEqual({ n: 0 });
        expect(db.prepare("SELECT unlinked FROM event_log_floors WHERE agent_id = 'a'").get()).toEqual({ unlinked: 1 });
      } finally {
        db.close();
      }
      // Still read as the agent's (an unlinked segment, merged by its ticks).
      expect(upgraded.eventSegments("a").some((seg) => seg.toTick === BigInt(strayRow.to_tick as number) && Buffer.from(seg.blob).equals(strayRow.blob as Buffer))).toBe(true);
    } finally {
      upgraded.close();
    }
  });
});

/**
 * A file (schema as this build writes it) holding one agent's history of 41 checkpoints with
 * segments, two sealed runs, receipts and outbox rows, pruned by history retention behind a
 * signed base, and a payment journal row.
 */
/** Opens an older file with this code (which upgrades it): at the current schema, every row as it was. */
/** Takes the file back to schema `version` with `asSchema`, and checks it is that schema's. */
function takeBack(path: string, asSchema: (db: Database.Database) => void, version: number): void {
  const db = new Database(path);
  try {
    asSchema(db);
    expect(schemaOf(db)).toEqual(schemaAt(version));
  } finally {
    db.close();
  }
}

function openUpgraded(path: string, before: Record<string, unknown[]>): SqliteStore {
  const upgraded = SqliteStore.open(path, { sync: "full" });
  try {
    expect(upgraded.schemaVersion()).toBe(MIGRATIONS.length);
    expect(snapshot(path)).toEqual(before);
  } catch (e) {
    upgraded.close();
    throw e;
  }
  return upgraded;
}

/**
 * The two segments no checkpoint row can hold: a second segment for the head checkpoint (a copy of
 * its own) and one whose checkpoint is not stored (an import's). `ids`: given explicitly (schema 10
 * keeps unlinked segments under negative ids), else the table's own.
 */
function addUnlinkableSegments(db: Database.Database, headTick: bigint, ids?: [number, number]): void {
  const idColumn = ids ? "id, " : "";
  db.exec(`INSERT INTO event_log_segments (${idColumn}agent_id, from_tick, to_tick, checkpoint_hash, abi_version, engine_version, blob, post_hashes, signature, recorded_unsigned, leaf, run_proof)
    SELECT ${ids ? `${ids[0]}, ` : ""}agent_id, from_tick, to_tick, checkpoint_hash, abi_version, engine_version, blob, post_hashes, signature, recorded_unsigned, leaf, run_proof FROM event_log_segments WHERE to_tick = ${headTick}`);
  db.prepare(`INSERT INTO event_log_segments (${idColumn}agent_id, from_tick, to_tick, checkpoint_hash, abi_version, engine_version, blob, post_hashes) VALUES (${ids ? `${ids[1]}, ` : ""}'a', ?, ?, ?, 1, 1, ?, ?)`).run(
    headTick + 1n, headTick + 1n, Buffer.alloc(32), Buffer.from("orphan"), randomBytes(32),
  );
}

async function prunedHistory() {
  const path = freshDbPath();
  const store = SqliteStore.open(path, { sync: "full" });
  const { cp, base } = agentOnCheckpointer(store, { receiptIntervalMs: 0 });
  const h = { path, base, tick: 0n, headBefore: undefined as unknown as CheckpointRow };
  // 40 checkpoints (two runs sealed), then history retention keeps the newest 30 behind a signed base.
  await periodic(h, cp, 40);
  const head40 = store.head("a")!;
  const pruning = new Checkpointer(store, store.nodeKey(), 0, null, 30);
  pruning.track("a", { hash: head40.hash, tick: head40.tick, budget: head40.budget });
  await periodic(h, pruning, 1);
  await store.journalPayment({ agentId: "a", tick: h.tick + 5n, receiptHash: randomBytes(32), amount: 1n, recipient: "0xabc", memo: "m", receipt: randomBytes(64) });
  h.headBefore = store.head("a")!;
  store.close();
  return h;
}

type History = Awaited<ReturnType<typeof prunedHistory>>;

/** `n` periodic checkpoints of two logged ticks each, with an outbox message. */
async function periodic(h: { base: ReturnType<typeof agentOnCheckpointer>["base"]; tick: bigint }, c: Checkpointer, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const logs = [tickLog(h.tick + 1n), tickLog(h.tick + 2n)];
    h.tick += 2n;
    expect(await c.checkpoint({ ...h.base, tick: h.tick, state: randomBytes(64), logs, outbox: [{ tick: h.tick, epochMajor: 0n, messages: [randomBytes(8)] }] }, "periodic", "active", null)).toBe("written");
  }
}

/** What every segment read returns. */
function reads(st: SqliteStore, headTick: bigint) {
  return {
    all: st.eventSegments("a"),
    after: st.eventSegments("a", headTick - 9n),
    afterHead: st.eventSegments("a", headTick),
    last: st.lastEventSegment("a"),
    open: st.openEventRuns("a"),
    bytes: st.storedBytes("a"),
    unsigned: st.segmentsRecordedUnsigned().length,
  };
}

/** Every row of the older file, and every segment read of it as it is (read-only, not migrated). */
function asItIs(h: History) {
  const before = snapshot(h.path);
  for (const t of ["checkpoints", "receipts", "event_log_segments", "event_log_runs", "outbox", "history_bases", "payment_journal"]) {
    expect(before[t]!.length, t).toBeGreaterThan(0);
  }
  const old = SqliteStore.open(h.path, { readonly: true });
  const readBefore = reads(old, h.headBefore.tick);
  old.close();
  expect(readBefore.all.length).toBe(before.event_log_segments!.length);
  expect(readBefore.afterHead.length).toBe(1);
  return { before, readBefore };
}

/** A read by key's plan: the recent keys' and the others' ordered walks, merged (each arm's steps `arm`). */
function mergedKeys(arm: string[]): string[] {
  return ["MERGE (UNION ALL)", "LEFT", ...arm, "RIGHT", ...arm];
}

/**
 * Every read of linked segments walks the agent's checkpoint keys (schema 16: both tables, merged in seq order) from its floor
 * and reads the segment from the row it finds; unlinked ones come from their partial index; segments
 * have no other index.
 */
function expectSegmentPlans(path: string): void {
  const db = new Database(path, { readonly: true });
  try {
    const plan = (sql: string, ...args: unknown[]) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail);
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event_log_segments'").all() as { name: string }[]).map((r) => r.name);
    expect(indexes).toEqual(["event_log_segments_unlinked"]);
    for (const q of ["linkedAsc", "linkedDesc", "linkedSizesDesc", "oldestLinked"] as const) {
      const arm = (n: number) => ["SEARCH k USING PRIMARY KEY (agent_id=? AND seq>?)", `SCALAR SUBQUERY ${n}`, "SEARCH event_log_floors USING PRIMARY KEY (agent_id=?)", "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"];
      expect(plan(IN_CHECKPOINT_ROW[q], { agent: "a" }), q).toEqual(["MERGE (UNION ALL)", "LEFT", ...arm(1), "RIGHT", ...arm(3)]);
    }
    expect(plan(IN_CHECKPOINT_ROW.oldestLinkedFrom, { agent: "a", seq: 1 })).toEqual(
      mergedKeys(["SEARCH k USING PRIMARY KEY (agent_id=? AND seq>?)", "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"]),
    );
    for (const q of ["unlinked", "unlinkedSizes"] as const) expect(plan(IN_CHECKPOINT_ROW[q], { agent: "a" }), q).toEqual(["SEARCH s USING INDEX event_log_segments_unlinked (agent_id=?)"]);
    // A start seals segments recorded unsigned without reading every checkpoint's row.
    expect(plan(RECORDED_UNSIGNED_IN_ROWS)).toEqual(["SEARCH c USING INDEX checkpoints_segment_recorded_unsigned (seg_recorded_unsigned=?)"]);
  } finally {
    db.close();
  }
}

/**
 * The chain carries on: the next checkpoint's segment is stored in its row (one INSERT), and ticks
 * retention drops linked and unlinked segments alike up to its bound, and raises the floor.
 */
async function carriesOn(h: History, upgraded: SqliteStore): Promise<void> {
  const { path, headBefore } = h;
  const next = new Checkpointer(upgraded, upgraded.nodeKey(), 0, null, 30);
  next.track("a", { hash: headBefore.hash, tick: headBefore.tick, budget: headBefore.budget });
  h.tick = headBefore.tick + 1n;
  const unlinkedBefore = countOf(path, "SELECT COUNT(*) AS n FROM event_log_segments");
  await periodic(h, next, 1);
  const appended = upgraded.head("a")!;
  expect([appended.seq, appended.tick]).toEqual([headBefore.seq + 1n, headBefore.tick + 3n]);
  const newest = upgraded.eventSegments("a").at(-1)!;
  expect([newest.fromTick, newest.toTick, hex(newest.checkpointHash)]).toEqual([headBefore.tick + 1n, appended.tick, hex(appended.hash)]);
  expect(countOf(path, `SELECT COUNT(*) AS n FROM checkpoints WHERE seq = ${appended.seq} AND seg_to_tick = ${appended.tick} AND seg_blob IS NOT NULL`)).toBe(1);
  expect(countOf(path, "SELECT COUNT(*) AS n FROM event_log_segments")).toBe(unlinkedBefore);
  upgraded.eventLogRetention = { ticks: 4n };
  await periodic(h, next, 1);
  const kept = upgraded.eventSegments("a");
  expect(kept.map((k) => k.toTick)).toEqual([appended.tick, appended.tick + 2n]);
  expect(upgraded.lastEventSegment("a")?.toTick).toBe(appended.tick + 2n);
  const after = new Database(path, { readonly: true });
  const floorAfter = after.prepare("SELECT seq, to_tick FROM event_log_floors WHERE agent_id = 'a'").get() as { seq: number; to_tick: number };
  after.close();
  expect([BigInt(floorAfter.seq), BigInt(floorAfter.to_tick)]).toEqual([appended.seq, appended.tick]);
  expect(countOf(path, "SELECT COUNT(*) AS n FROM event_log_segments")).toBe(0);
  expect(countOf(path, "SELECT COUNT(*) AS n FROM checkpoints WHERE seg_blob IS NOT NULL")).toBe(2);
}

function countOf(path: string, sql: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}
