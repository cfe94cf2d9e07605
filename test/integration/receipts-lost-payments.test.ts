// The node's execution receipts and the agent's lost payments together account for every unit that
// left its budget, whatever the order of events: here a paying tick thrown away right after a
// periodic checkpoint that carried no receipt (--receipt-interval 1 min), so the failure's receipt is
// written on its own after the head, with the lost payment. Real node, real SQLite file, real WASM.
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { startAgent } from "../../src/node/agent-lifecycle.js";
import type { AgentView, CheckpointEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { startTestNode, stopAllNodes, storedHead, type TestNode } from "../helpers/node.js";
import { watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

const PAID = 1000n;
const BUDGET = 1_000_000n;

// Pays 1000 µ¢ at its 3rd tick and traps in the same tick, but only in an instance that was never
// resumed (the live one of a fresh agent): after igord start it ticks on normally.
const PAYS_THEN_TRAPS = watAgent({
  imports: '(import "igor" "wallet_pay" (func $pay (param i64 i32 i32 i32 i32 i32 i32) (result i32)))',
  omit: ["agent_resume"],
  onTick: `(if (i32.and (i32.eq (global.get $ticks) (i32.const 3)) (i32.eqz (global.get $resumed)))
    (then (drop (call $pay (i64.const ${PAID}) (i32.const 100) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 2048) (i32.const 1024))) unreachable))`,
  extra: `(global $resumed (mut i32) (i32.const 0))
    (data (i32.const 100) "p")
    (func (export "agent_resume") (param $p i32) (param $n i32)
      (global.set $resumed (i32.const 1))
      (if (i32.eq (local.get $n) (i32.const 4)) (then (global.set $ticks (i32.load (local.get $p))))))`,
});
const MANIFEST = { capabilities: { x402: { version: 1, options: {} } } };

/** Runs the agent until its paying tick traps (the failure's receipt is written on its own, after tick 2's head). */
async function failsAfterPaying(t: TestNode): Promise<void> {
  const path = await writeWat(join(t.dir, "wasm"), "payer", PAYS_THEN_TRAPS, MANIFEST);
  await t.node.addAgent({ wasmPath: path, budget: BUDGET });
  // Tick 2's periodic checkpoint (no receipt) is written before tick 3 runs, pays and traps.
  await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "payer" && e.tick === 2n && e.outcome === "written");
  const failed = await t.waitFor<AgentView>("stopped", (v) => v.id === "payer");
  expect(failed.status).toBe("failed");
  await t.node.scheduler.settled();
}

/** The operator starts it again; it ticks on (its trap was only in its first instance), then the node stops (a receipt with the stop). */
async function startedAgainThenStopped(t: TestNode): Promise<void> {
  await startAgent(t.node, "payer");
  await t.waitFor<TickEvent>("tick", (e) => e.agentId === "payer" && e.tick === 5n);
  await t.stop();
}

/** Receipts with a negative cost, and whether receipts plus lost payments add up to what left the budget. */
function accounts(dataDir: string): { negative: bigint[]; lost: bigint; billedPlusLost: bigint; spent: bigint; budgetAfterMismatches: bigint[] } {
  const final = storedHead(dataDir, "payer")!.budget;
  const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
  try {
    const receipts = store.receipts("payer");
    const lost = store.lineageEvents("payer").filter((e) => e.kind === "lost_payment").reduce((s, e) => s + (e.oldBudget - e.newBudget), 0n);
    return {
      negative: receipts.filter((r) => r.cost < 0n).map((r) => r.cost),
      lost,
      billedPlusLost: receipts.reduce((s, r) => s + r.cost, 0n) + lost,
      spent: BUDGET - final,
      // Each receipt's budget after is its last tick's checkpoint's: lineage events after it are not in it.
      budgetAfterMismatches: receipts.filter((r) => r.budgetAfter !== store.checkpointAtTick("payer", r.tickEnd)!.budget).map((r) => r.tickEnd),
    };
  } finally {
    store.close();
  }
}

describe("node receipts and lost payments", () => {
  it("a paying tick thrown away after a periodic checkpoint without a receipt: every receipt bills a cost >= 0, ends at its checkpoint's budget, and receipts plus the lost payment add up to what left the budget", async () => {
    const t = await startTestNode({ "tick-interval": "200ms", "checkpoint-interval": "20ms", "verify-interval": "0" });
    await failsAfterPaying(t);
    await startedAgainThenStopped(t);
    const a = accounts(t.config.dataDir);
    expect({ ...a, billedPlusLost: a.billedPlusLost === a.spent }).toEqual({ negative: [], lost: PAID, billedPlusLost: true, spent: a.spent, budgetAfterMismatches: [] });
  });

  it("a store whose failure receipt already lacks the lost payment (signed before receipts ended at their checkpoint's budget) starts the next receipt at 0, says so, and bills nothing twice", async () => {
    const flags = { "tick-interval": "200ms", "checkpoint-interval": "20ms", "verify-interval": "0" };
    const t = await startTestNode(flags);
    await failsAfterPaying(t);
    await t.stop();
    // What the earlier code stored: the failure's receipt ended at the budget the lost payment had already left.
    const db = new Database(join(t.config.dataDir, DB_FILE));
    db.prepare("UPDATE receipts SET budget_after = budget_after - ? WHERE agent_id = 'payer' AND seq = (SELECT MAX(seq) FROM receipts WHERE agent_id = 'payer')").run(PAID);
    db.close();

    const t2 = await startTestNode(flags, { dir: t.dir });
    await startedAgainThenStopped(t2);
    expect(t2.logs.events("receipt_position_inconsistent", "payer")).toHaveLength(1);
    const a = accounts(t2.config.dataDir);
    expect({ negative: a.negative, lost: a.lost, adds: a.billedPlusLost === a.spent }).toEqual({ negative: [], lost: PAID, adds: true });
  });
});
