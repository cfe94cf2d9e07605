// Node execution receipts are pruned with the history they cover: when --history-retention moves an
// agent's signed base, the receipts whose ticks all lie at or before it go too (they receipt ticks
// no stored checkpoint holds any more), except the newest, where the next receipt's range starts.
// What is kept stays readable by index from 0 (wallet_receipt), oldest first. Real SQLite file.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import type { CheckpointCommit } from "../../src/store/types.js";
import { addLeasedAgents, freshDbPath, leasedCommit } from "../helpers/checkpoint-store.js";

const opened: SqliteStore[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});

/**
 * A store whose agent h checkpointed every 5 ticks through `lastTick`, each checkpoint with a receipt
 * of the ticks since the last, pruning the history to `keep` checkpoints when a plan is due (0: never).
 */
function receipted(lastTick: bigint, keep: number): SqliteStore {
  const store = SqliteStore.open(freshDbPath(), { sync: "normal" });
  opened.push(store);
  addLeasedAgents(store, ["h"]);
  let from = 1n;
  for (let tick = 5n; tick <= lastTick; tick += 5n) {
    const c: CheckpointCommit = { ...leasedCommit("h", tick, store.head("h")!.hash), blob: randomBytes(200) };
    c.receipt = { tickStart: from, tickEnd: tick, cost: tick - from + 1n, budgetAfter: 1_000_000n - tick, nodeId: "node", blob: randomBytes(120) };
    const plan = keep > 0 ? store.prunePlan("h", keep).plan : null;
    if (plan) c.prune = { baseSeq: plan.baseSeq, base: { ...plan.fields, signature: randomBytes(64) } };
    expect(store.commitNow([c])[0]).toBeNull();
    from = tick + 1n;
  }
  return store;
}

describe("receipts under --history-retention", () => {
  it("go with the history they cover: none at or before the signed base is kept but the newest; what is kept reads by index from 0, and the next receipt continues from the newest", () => {
    const store = receipted(400n, 8);
    const base = store.historyBase("h")!;
    expect(base.baseTick).toBeGreaterThan(300n);
    const kept = store.receipts("h");
    // Only receipts of ticks the stored history still holds (the one ending at the base, too: the
    // base checkpoint is stored), and far fewer than the 80 written.
    expect(kept.every((r) => r.tickEnd >= base.baseTick)).toBe(true);
    expect(kept.length).toBeLessThan(20);
    expect(kept.at(-1)?.tickEnd).toBe(400n);
    // By index, oldest first, from 0.
    expect(store.receiptCount("h")).toBe(kept.length);
    kept.forEach((r, i) => expect(Buffer.from(store.receiptAt("h", i)!).equals(Buffer.from(r.blob))).toBe(true));
    expect(store.receiptAt("h", kept.length)).toBeNull();
    expect(store.receiptBase("h")).toEqual({ tick: 400n, budget: 1_000_000n - 400n });
  });

  it("are all kept with --history-retention 0 (keep everything)", () => {
    expect(receipted(200n, 0).receiptCount("h")).toBe(40);
  });
});
