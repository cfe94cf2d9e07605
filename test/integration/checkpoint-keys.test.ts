// The checkpoints' keys (store/checkpoint-keys.ts, schema 16): no index led by the agent on the
// checkpoints table; each checkpoint's key goes into checkpoint_keys_recent and an agent's recent
// keys move into checkpoint_keys 16 at a time. Every read by agent and seq finds every checkpoint
// wherever its key is, a second row for an agent's seq is refused whichever table holds its key,
// a deleted row takes its key with it, and no statement the store prepares walks the whole table.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { CHECKPOINT_KEYS_MOVE_EVERY } from "../../src/store/checkpoint-keys.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { agentOnCheckpointer, tickLog } from "../helpers/checkpointer.js";
import { tempDir } from "../helpers/node.js";

const opened: { close(): void }[] = [];
afterEach(() => {
  for (const s of opened.splice(0).reverse()) s.close();
});

/** A store whose agent "a" has checkpoints at ticks 0 (genesis, seq 1) to `ticks` (seq ticks + 1), each closing a segment. */
async function agentWith(ticks: number, opts: { historyRetention?: number } = {}) {
  const store = SqliteStore.open(join(tempDir(), DB_FILE), { sync: "normal" });
  opened.push(store);
  const { cp, base } = agentOnCheckpointer(store, { receiptIntervalMs: 0, historyRetention: opts.historyRetention });
  for (let tick = 1n; tick <= BigInt(ticks); tick++) {
    expect(await cp.checkpoint({ ...base, tick, state: randomBytes(100), logs: [tickLog(tick)] }, "periodic", "active", null)).toBe("written");
  }
  const db = new Database(store.path);
  db.defaultSafeIntegers(true);
  opened.push(db);
  return { store, db };
}

const seqsIn = (db: Database.Database, table: string): bigint[] => db.prepare(`SELECT seq FROM ${table} WHERE agent_id = 'a' ORDER BY seq`).pluck().all() as bigint[];
const range = (from: number, to: number): bigint[] => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i));

describe("checkpoint keys", () => {
  it("an agent's keys move from checkpoint_keys_recent into checkpoint_keys 16 at a time, and every read finds every checkpoint wherever its key is", async () => {
    const { store, db } = await agentWith(40);
    expect(CHECKPOINT_KEYS_MOVE_EVERY).toBe(16);
    // Seqs 1..41: moved at 16 and 32.
    expect(seqsIn(db, "checkpoint_keys")).toEqual(range(1, 32));
    expect(seqsIn(db, "checkpoint_keys_recent")).toEqual(range(33, 41));
    const rows = db.prepare("SELECT seq, id, tick, hash FROM checkpoints WHERE agent_id = 'a' ORDER BY seq").all() as { seq: bigint; id: bigint; tick: bigint; hash: Buffer }[];
    expect(rows.map((r) => r.seq)).toEqual(range(1, 41));
    expect([...store.history("a")].map((c) => c.seq)).toEqual(range(1, 41));
    expect([...store.history("a", 30n)].map((c) => c.seq)).toEqual(range(31, 41));
    expect(store.head("a")?.seq).toBe(41n);
    expect(store.historyCount("a")).toBe(41);
    for (const r of rows) {
      expect(store.checkpointAt("a", r.seq)?.tick, `seq ${r.seq}`).toBe(r.tick);
      expect(store.checkpointAtTick("a", r.tick)?.seq, `seq ${r.seq}`).toBe(r.seq);
      expect(store.checkpointByHash("a", r.hash)?.seq, `seq ${r.seq}`).toBe(r.seq);
      expect(store.holdsCheckpoint("a", r.hash, r.tick), `seq ${r.seq}`).toBe(true);
    }
    // Each segment is read in chain order across both tables.
    expect(store.eventSegments("a").map((s) => s.toTick)).toEqual(range(1, 40));
    expect(store.lastEventSegment("a")?.toTick).toBe(40n);
  });

  it("a second row for an agent's seq is refused whether its key was moved or is recent, and nothing stored changes", async () => {
    const { store, db } = await agentWith(20);
    const before = db.prepare("SELECT COUNT(*) FROM checkpoints").pluck().get();
    const copy = db.prepare(
      "INSERT INTO checkpoints (agent_id, seq, tick, hash, prev_hash, budget, reason, blob, created_at) SELECT agent_id, seq, tick, ?, prev_hash, budget, reason, blob, created_at FROM checkpoints WHERE agent_id = 'a' AND seq = ?",
    );
    for (const seq of [5n, 16n, 18n, 21n]) {
      expect(() => copy.run(randomBytes(32), seq), `seq ${seq}`).toThrow(/UNIQUE constraint failed/);
    }
    expect(db.prepare("SELECT COUNT(*) FROM checkpoints").pluck().get()).toBe(before);
    expect(seqsIn(db, "checkpoint_keys")).toEqual(range(1, 16));
    expect(seqsIn(db, "checkpoint_keys_recent")).toEqual(range(17, 21));
    // A row's key columns do not change under it.
    expect(() => db.prepare("UPDATE checkpoints SET seq = 99 WHERE agent_id = 'a' AND seq = 3").run()).toThrow(/do not change/);
    expect(store.checkpointAt("a", 3n)?.seq).toBe(3n);
  });

  it("a deleted row takes its key with it: a foreign writer's delete, and pruning behind a history base", async () => {
    const { store, db } = await agentWith(20);
    db.prepare("DELETE FROM checkpoints WHERE agent_id = 'a' AND seq IN (4, 19)").run();
    expect(seqsIn(db, "checkpoint_keys")).not.toContain(4n);
    expect(seqsIn(db, "checkpoint_keys_recent")).not.toContain(19n);
    expect(store.checkpointAt("a", 4n)).toBeUndefined();
    expect(store.historyCount("a")).toBe(19);

    // --history-retention 8: the store keeps the newest 8 to 9 (pruned 2 at a time) and their keys only.
    const pruned = await agentWith(40, { historyRetention: 8 });
    const kept = [...pruned.store.history("a")].map((c) => c.seq);
    expect(kept.length).toBeGreaterThanOrEqual(8);
    expect(kept.length).toBeLessThan(8 + 2);
    expect([...seqsIn(pruned.db, "checkpoint_keys"), ...seqsIn(pruned.db, "checkpoint_keys_recent")]).toEqual(kept);
    expect(pruned.store.historyCount("a")).toBe(kept.length);
  });

  it("no statement the store prepared while writing, pruning and reading an agent's history walks the whole checkpoints table", async () => {
    const { store } = await agentWith(40, { historyRetention: 8 });
    const head = store.head("a")!;
    expect([...store.history("a")].length).toBeGreaterThan(8);
    store.checkpointAt("a", head.seq);
    store.checkpointAtTick("a", head.tick);
    store.checkpointByHash("a", head.hash);
    store.holdsCheckpoint("a", head.hash, head.tick);
    store.historyCount("a");
    store.storedBytes("a");
    store.eventSegments("a", 30n);
    store.lastEventSegment("a");
    store.receiptBase("a");
    store.prunePlan("a", 8);
    // The store's own cache of prepared statements (store-base.ts: `sql`).
    const cached = store as unknown as { statements: Map<string, unknown>; bigintStatements: Map<string, unknown> };
    const texts = [...cached.statements.keys(), ...cached.bigintStatements.keys()].filter((t) => /\bcheckpoints\b/.test(t));
    expect(texts.length).toBeGreaterThan(15);
    const db = new Database(store.path, { readonly: true });
    opened.push(db);
    for (const text of texts) {
      const params = Object.fromEntries([...text.matchAll(/@(\w+)/g)].map((m) => [m[1], 1]));
      const anonymous = (text.match(/\?/g) ?? []).map(() => 1);
      const plan = (Object.keys(params).length ? db.prepare(`EXPLAIN QUERY PLAN ${text}`).all(params) : db.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...anonymous)) as { detail: string }[];
      for (const step of plan) expect(step.detail, text).not.toMatch(/^SCAN (checkpoints|c)\b/);
    }
  });
});
