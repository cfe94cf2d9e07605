// wallet_receipt_count and wallet_receipt are answered by the main thread (the node's receipts of the
// agent: its lost payments', then its execution receipts). Each call must cost the main thread what
// one receipt costs, not what the agent's whole history of receipts does: an agent calls them as
// often as its tick allows (up to --tick-timeout), and a long-lived agent has a receipt a minute.
// Real node, real SQLite file, real WASM.
import Database from "better-sqlite3";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HostcallId, HostcallResult } from "../../src/hostcalls/registry.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE } from "../../src/store/types.js";
import { HTTP_TICK_MARGIN_MS } from "../../src/wasm/host-io.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

const CALLS = 50;
const RECEIPTS = 100_000;

// Each tick: CALLS × wallet_receipt_count, then the last receipt into memory at 1024.
const READER = watAgent({
  imports: `(import "igor" "wallet_receipt_count" (func $count (result i32)))
  (import "igor" "wallet_receipt" (func $receipt (param i32 i32 i32) (result i32)))`,
  onTick: `(local.set $i (i32.const 0)) (local.set $n (i32.const 0))
    (block $done (loop $next (br_if $done (i32.ge_u (local.get $i) (i32.const ${CALLS}))) (local.set $n (call $count)) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $next)))
    (if (i32.gt_s (local.get $n) (i32.const 0)) (then (drop (call $receipt (i32.sub (local.get $n) (i32.const 1)) (i32.const 1024) (i32.const 4096)))))`,
}).replace('(func (export "agent_tick") (result i32)', '(func (export "agent_tick") (result i32) (local $i i32) (local $n i32)');

function blob(i: number): Buffer {
  const b = Buffer.alloc(120, 0x5a);
  b.writeUInt32LE(i, 0);
  return b;
}

describe("the node's receipts as the agent reads them", () => {
  it(`${CALLS} wallet_receipt_count calls over ${RECEIPTS} stored receipts cost a tick well under a second, and the count and the last receipt are right`, async () => {
    const t = await startTestNode({ "tick-interval": "100ms", "checkpoint-interval": "0", "verify-interval": "0" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "reader", READER, CAPS("wallet")) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "reader" && e.tick >= 1n);
    // A long history of execution receipts (a year of one a minute is five times as many).
    const db = new Database(join(t.config.dataDir, DB_FILE));
    try {
      const insert = db.prepare("INSERT INTO receipts (agent_id, seq, tick_start, tick_end, cost, budget_after, node_id, checkpoint_hash, blob) VALUES ('reader', ?, ?, ?, 1, 1, 'n', zeroblob(32), ?)");
      db.transaction(() => {
        for (let i = 1; i <= RECEIPTS; i++) insert.run(i, 0, 0, blob(i));
      })();
    } finally {
      db.close();
    }
    const seen = t.node.scheduler.view("reader")!.tick;
    const tick = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "reader" && e.tick > seen + 1n, 60_000);
    const count = tick.events.filter((e) => e.id === HostcallId.wallet_receipt_count);
    expect(count).toHaveLength(CALLS);
    expect([...new Set(count.map((e) => e.result))]).toEqual([RECEIPTS]);
    expect(Buffer.from(tick.events.find((e) => e.id === HostcallId.wallet_receipt)!.payload)).toEqual(blob(RECEIPTS));
    expect(Number(tick.elapsedNs) / 1e6).toBeLessThan(1_000);
  }, 90_000);
});

// Tick: wallet_receipt_count into memory at 64, wallet_receipt(0) into 68 (the receipt at 1024).
const ASKER = watAgent({
  imports: `(import "igor" "wallet_receipt_count" (func $count (result i32)))
  (import "igor" "wallet_receipt" (func $receipt (param i32 i32 i32) (result i32)))`,
  onTick: `(i32.store (i32.const 64) (call $count)) (i32.store (i32.const 68) (call $receipt (i32.const 0) (i32.const 1024) (i32.const 4096)))`,
});

describe("when the node cannot answer the agent's receipt questions", () => {
  it("with no time left in the tick to ask the main thread, wallet_receipt_count and wallet_receipt answer -5 (unanswered), not 0 receipts or a bad index, and replay returns the same", async () => {
    // A tick timeout inside the host-io margin leaves a tick no time to wait for the main thread.
    const t = await startTestNode({ "tick-timeout": `${HTTP_TICK_MARGIN_MS - 50}ms`, "tick-interval": "10ms", "checkpoint-interval": "20ms", "receipt-interval": "0", "verify-interval": "1" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "asker", ASKER, CAPS("wallet")) });
    // Receipts exist (one per checkpoint), so 0 and -1 would be wrong answers, not merely unhelpful ones.
    await waitUntil(() => t.node.store.receiptCount("asker") > 0, { timeoutMs: 10_000, what: "a stored receipt" });
    const seen = t.node.scheduler.view("asker")!.tick;
    const tick = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "asker" && e.tick > seen, 10_000);
    const answers = tick.events.filter((e) => e.id === HostcallId.wallet_receipt_count || e.id === HostcallId.wallet_receipt);
    expect(answers.map((e) => [e.id, e.result, e.payload.byteLength])).toEqual([
      [HostcallId.wallet_receipt_count, HostcallResult.unanswered, 0],
      [HostcallId.wallet_receipt, HostcallResult.unanswered, 0],
    ]);
    await t.waitFor<{ agentId: string; ticks: bigint[] }>("verified", (v) => v.agentId === "asker" && v.ticks.includes(tick.tick), 10_000);
    expect(t.logs.events("replay_divergence")).toEqual([]);
  }, 30_000);
});
