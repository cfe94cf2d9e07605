// Forward-only schema migrations on a real SQLite file: a database an earlier igord wrote (its schema
// exactly that version's, rows in every table the checkpoint path writes) opens under this build
// with nothing lost, and every read the daemon makes of it still works.
import { randomBytes } from "node:crypto";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { Checkpointer } from "../../src/scheduler/checkpointer.js";
import { MIGRATIONS } from "../../src/store/schema.js";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import { agentOnCheckpointer } from "../helpers/checkpointer.js";
import { freshDbPath } from "../helpers/checkpoint-store.js";

/** The checkpoint path's tables (and the agents row it reads), every row in a stable order. */
const TABLES = ["agents", "checkpoints", "receipts", "event_log_segments", "event_log_runs", "outbox", "lineage_events", "history_bases", "payment_journal"];

function snapshot(path: string): Record<string, unknown[]> {
  const db = new Database(path, { readonly: true });
  try {
    const out: Record<string, unknown[]> = {};
    for (const t of TABLES) {
      out[t] = (db.prepare(`SELECT * FROM ${t}`).all() as Record<string, unknown>[])
        .map((r) => JSON.stringify(r, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString("hex") : v)))
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

function tickLog(tick: bigint) {
  const clock = Buffer.alloc(8);
  clock.writeBigInt64LE(tick);
  return {
    tick,
    entries: [
      { id: HostcallId.clock_now, result: 0, payload: clock },
      { id: HostcallId.log_emit, result: 0, payload: Buffer.from(`tick ${tick}`) },
    ],
    postHash: randomBytes(32),
  };
}

describe("store schema migrations", () => {
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
    store.journalPayment({ agentId: "a", tick: tick + 5n, receiptHash: randomBytes(32), amount: 1n, recipient: "0xabc", memo: "m", receipt: randomBytes(64) });
    const hashes = [...store.history("a")].map((c) => ({ seq: c.seq, tick: c.tick, hash: c.hash }));
    store.close();

    // Put the file back exactly as igord's schema 8 left it, and prove it is that: the same objects
    // and SQL as migrations 1-8 applied to an empty database.
    const v8 = new Database(path);
    v8.exec("CREATE INDEX checkpoints_by_hash ON checkpoints(hash); DELETE FROM schema_version WHERE version > 8;");
    const reference = new Database(":memory:");
    reference.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
    for (const m of MIGRATIONS.slice(0, 8)) reference.exec(m);
    expect(schemaOf(v8)).toEqual(schemaOf(reference));
    reference.close();
    v8.close();
    const before = snapshot(path);
    for (const t of ["checkpoints", "receipts", "event_log_segments", "event_log_runs", "outbox", "lineage_events", "payment_journal"]) {
      expect(before[t]!.length, t).toBeGreaterThan(0);
    }

    const upgraded = SqliteStore.open(path, { sync: "full" });
    try {
      expect(upgraded.schemaVersion()).toBe(MIGRATIONS.length);
      expect(snapshot(path)).toEqual(before);
      const db = new Database(path, { readonly: true });
      const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'checkpoints'").all() as { name: string }[]).map((r) => r.name);
      // The lookup by hash walks the agent's (agent_id, seq) index back from the head.
      const plan = (db.prepare("EXPLAIN QUERY PLAN SELECT * FROM checkpoints WHERE agent_id = ? AND hash = ? ORDER BY seq DESC LIMIT 1").all("a", Buffer.alloc(32)) as { detail: string }[]).map((r) => r.detail);
      db.close();
      expect(indexes).toEqual(["sqlite_autoindex_checkpoints_1"]);
      expect(plan).toEqual(["SEARCH checkpoints USING INDEX sqlite_autoindex_checkpoints_1 (agent_id=?)"]);
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
      next.track("a", { hash: head.hash, tick: head.tick });
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
});
