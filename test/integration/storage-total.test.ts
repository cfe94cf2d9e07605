// A manifest's max_storage_bytes is checked at every checkpoint's commit against the agent's stored
// bytes (checkpoint blobs, event-log segments and the messages it emitted, its outbox). The connection that commits keeps that figure as
// a running total (store/storage-totals.ts) instead of summing the agent's history each time: with
// the default --history-retention (4,096 checkpoints) the sum read thousands of rows per commit.
// The total must stay exact through everything that changes what is stored: its own appends, history
// pruning, event-log pruning by ticks and by bytes, a rolled-back batch, and another connection's writes.
import { OUTBOX_MESSAGE_OVERHEAD_BYTES } from "../../src/store/tick-records.js";
import { randomBytes } from "node:crypto";
import { CURRENT_VERSION } from "../../src/checkpoint/codec.js";
import type BetterSqlite from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import type { CheckpointCommit } from "../../src/store/types.js";
import { addLeasedAgents, freshDbPath, leasedCommit } from "../helpers/checkpoint-store.js";

const opened: SqliteStore[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});

function open(path: string, opts: Parameters<typeof SqliteStore.open>[1]): SqliteStore {
  const s = SqliteStore.open(path, opts);
  opened.push(s);
  return s;
}

/** Bytes a commit adds to the agent's stored bytes (its outbox messages, each with its row's overhead, before --outbox-retention drops any). */
const added = (c: CheckpointCommit): number =>
  c.blob.byteLength + (c.events ? c.events.blob.byteLength + c.events.postHashes.byteLength : 0) + (c.outbox ?? []).reduce((n, b) => n + b.messages.reduce((m, x) => m + x.byteLength + OUTBOX_MESSAGE_OVERHEAD_BYTES, 0), 0);

/** h's next checkpoint after the stored head, `bytes` of state, pruning the history to `keep` when a plan is due. */
function next(store: SqliteStore, reader: SqliteStore, tick: bigint, opts: { bytes?: number; keep?: number; limit?: bigint; emits?: number } = {}): CheckpointCommit {
  // Random bytes but the version byte: the store refuses a blob that steps its history down a version.
  const blob = randomBytes(opts.bytes ?? 300);
  blob[0] = CURRENT_VERSION;
  const c: CheckpointCommit = { ...leasedCommit("h", tick, reader.head("h")!.hash), blob };
  // The checkpoint's last tick emitted one message of `emits` bytes.
  if (opts.emits) c.outbox = [{ tick, epochMajor: 0n, messages: [randomBytes(opts.emits)] }];
  if (opts.keep) {
    const { plan } = store.prunePlan("h", opts.keep);
    if (plan) c.prune = { baseSeq: plan.baseSeq, base: { ...plan.fields, signature: randomBytes(64) } };
  }
  if (opts.limit !== undefined) c.maxStorageBytes = opts.limit;
  return c;
}

/**
 * Proves the committing connection's figure for h is exactly what is stored (summed afresh on
 * another connection): a checkpoint that would end one byte over the limit is refused, one that
 * ends exactly at it is stored.
 */
function expectExactTotal(store: SqliteStore, reader: SqliteStore, tick: bigint): void {
  const stored = reader.storedBytes("h");
  const over = next(store, reader, tick);
  over.maxStorageBytes = BigInt(stored + added(over) - 1);
  expect(store.commitNow([over])[0]?.code).toBe("STORAGE_LIMIT");
  const at = next(store, reader, tick);
  at.maxStorageBytes = BigInt(stored + added(at));
  expect(store.commitNow([at])[0]).toBeNull();
  // (What is stored now can be less: the commit may have pruned old event logs after the check.)
  expect(reader.storedBytes("h")).toBeLessThanOrEqual(stored + added(at));
}

describe("an agent's stored bytes under max_storage_bytes", () => {
  it("the commit connection sums an agent's history once, not at every checkpoint", () => {
    const path = freshDbPath();
    const main = open(path, { sync: "normal" });
    addLeasedAgents(main, ["h"]);
    const commits = open(path, { sync: "normal", commitConnection: true });
    const raw = commits as unknown as { storedBytes: (agentId: string) => number };
    const sum = raw.storedBytes.bind(commits);
    let sums = 0;
    raw.storedBytes = (agentId) => {
      sums++;
      return sum(agentId);
    };
    for (let tick = 5n; tick <= 250n; tick += 5n) expect(commits.commitNow([next(commits, main, tick, { limit: 1n << 40n })])[0]).toBeNull();
    expect(main.historyCount("h")).toBe(51);
    expect(sums).toBeLessThanOrEqual(1);
    expectExactTotal(commits, main, 255n);
  });

  it("stays exact through history pruning and event-log pruning by ticks", () => {
    const path = freshDbPath();
    const main = open(path, { sync: "normal" });
    addLeasedAgents(main, ["h"]);
    const commits = open(path, { sync: "normal", commitConnection: true, eventLogRetention: { ticks: 40n } });
    let tick = 0n;
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 12; i++) {
        tick += 5n;
        expect(commits.commitNow([next(commits, main, tick, { keep: 8, bytes: 200 + ((i * 37) % 150), limit: 1n << 40n })])[0]).toBeNull();
      }
      tick += 5n;
      expectExactTotal(commits, main, tick);
    }
    // Pruning did happen: the history is bounded and the oldest logs are gone.
    expect(main.historyBase("h")?.pruned).toBeGreaterThan(40n);
    expect(main.historyCount("h")).toBeLessThanOrEqual(11);
    expect(main.eventSegments("h")[0]!.fromTick).toBeGreaterThan(tick - 60n);
  });

  it("stays exact through event-log pruning by bytes", () => {
    const path = freshDbPath();
    const main = open(path, { sync: "normal" });
    addLeasedAgents(main, ["h"]);
    const commits = open(path, { sync: "normal", commitConnection: true, eventLogRetention: { bytes: 1000 } });
    let tick = 0n;
    for (let i = 0; i < 30; i++) {
      tick += 5n;
      expect(commits.commitNow([next(commits, main, tick, { limit: 1n << 40n })])[0]).toBeNull();
      if (i % 7 === 6) {
        tick += 5n;
        expectExactTotal(commits, main, tick);
      }
    }
    expect(main.eventSegments("h").length).toBeLessThan(15);
  });

  it("counts the agent's outbox: a checkpoint whose messages would pass the limit is refused with nothing written, and the total stays exact as --outbox-retention drops old ticks", () => {
    const path = freshDbPath();
    const main = open(path, { sync: "normal" });
    addLeasedAgents(main, ["h"]);
    const commits = open(path, { sync: "normal", commitConnection: true, outboxRetentionBytes: 20_000 });
    let tick = 0n;
    for (let i = 0; i < 5; i++) expect(commits.commitNow([next(commits, main, (tick += 5n), { limit: 1n << 40n, emits: 2000 })])[0]).toBeNull();
    const outboxBytes = (): number => main.outbox("h").reduce((n, m) => n + m.payload.byteLength, 0);
    expect(outboxBytes()).toBe(10_000);
    // What is stored counts the outbox, and the committing connection's total is exact.
    const history = main.storedBytes("h") - outboxBytes();
    expect(history).toBeGreaterThan(0);
    expectExactTotal(commits, main, (tick += 5n));
    // A message that would pass the limit: refused, and no message, checkpoint or segment written.
    const stored = main.storedBytes("h");
    const messages = main.outbox("h").length;
    const heavy = next(commits, main, (tick += 5n), { emits: 6000 });
    heavy.maxStorageBytes = BigInt(stored + added(heavy) - 1);
    expect(commits.commitNow([heavy])[0]?.code).toBe("STORAGE_LIMIT");
    expect(main.outbox("h").length).toBe(messages);
    expect(main.storedBytes("h")).toBe(stored);
    // The same at the limit: stored.
    heavy.maxStorageBytes = BigInt(stored + added(heavy));
    expect(commits.commitNow([heavy])[0]).toBeNull();
    // Past --outbox-retention, old ticks are dropped in the commits' transactions: still exact.
    for (let i = 0; i < 12; i++) expect(commits.commitNow([next(commits, main, (tick += 5n), { limit: 1n << 40n, emits: 3000 })])[0]).toBeNull();
    expect(outboxBytes()).toBeLessThanOrEqual(20_000);
    expectExactTotal(commits, main, (tick += 5n));
  });

  it("stays exact when a batch rolls back and when another connection writes the agent's history", () => {
    const path = freshDbPath();
    const main = open(path, { sync: "normal" });
    addLeasedAgents(main, ["h"]);
    const commits = open(path, { sync: "normal", commitConnection: true });
    let tick = 0n;
    for (let i = 0; i < 5; i++) expect(commits.commitNow([next(commits, main, (tick += 5n), { limit: 1n << 40n })])[0]).toBeNull();
    // A batch whose second commit fails unexpectedly (not a refusal): the first is retried alone.
    const good = next(commits, main, (tick += 5n), { limit: 1n << 40n });
    // (its tick does not fit SQLite's integer: the insert throws after every check passed).
    const bad = { ...next(commits, main, 0n, { limit: 1n << 40n }), prevHash: good.hash, tick: 1n << 70n };
    const results = commits.commitNow([good, bad]);
    expect(results[0]).toBeNull();
    expect(results[1]?.code).toBe("STORE_ERROR");
    expectExactTotal(commits, main, (tick += 10n));
    // The main connection appends one (igord resume's path), with a large state.
    main.appendCheckpoint({ ...next(commits, main, (tick += 5n), { bytes: 5000 }), lease: undefined });
    expectExactTotal(commits, main, (tick += 5n));
    // The main connection changes only a stored segment's bytes (no checkpoint added or removed).
    const db = (main as unknown as { db: BetterSqlite.Database }).db;
    db.prepare("UPDATE checkpoints SET seg_blob = ? WHERE agent_id = 'h' AND seq = (SELECT MAX(seq) FROM checkpoints WHERE agent_id = 'h')").run(randomBytes(4000));
    expectExactTotal(commits, main, (tick += 5n));
    // And the main connection as the committer (before the commit thread starts), after the commit connection wrote.
    expectExactTotal(main, main, (tick += 5n));
    expect(commits.commitNow([next(commits, main, (tick += 5n), { bytes: 3000 })])[0]).toBeNull();
    expectExactTotal(main, main, (tick += 5n));
  });
});
