// An agent's dashboard timeline stays a small answer however long its history: the newest
// TIMELINE_MAX_CHECKPOINTS checkpoints and what belongs to their ticks. The dashboard asks for it
// every DASHBOARD_POLL_MS while an agent is selected. Real node, real SQLite file, real WASM.
import { afterEach, describe, expect, it } from "vitest";
import { agentTimeline, DivergenceLog, TIMELINE_MAX_CHECKPOINTS } from "../../src/control/timeline.js";
import type { CheckpointEvent } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";
import { join } from "node:path";

afterEach(stopAllNodes);

describe("the dashboard timeline", () => {
  it("holds the newest TIMELINE_MAX_CHECKPOINTS checkpoints and only the receipts of their ticks, not every receipt the agent ever had", async () => {
    // A receipt with every checkpoint, a checkpoint every tick or two.
    const t = await startTestNode({ "tick-interval": "1ms", "checkpoint-interval": "1ms", "receipt-interval": "0", "verify-interval": "0" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "long", watAgent(), CAPS()) });
    const more = TIMELINE_MAX_CHECKPOINTS + 100;
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "long" && t.node.store.historyCount("long") >= more, 60_000);
    await t.node.scheduler.pause("long", "test");
    expect(t.node.store.receipts("long").length).toBeGreaterThan(TIMELINE_MAX_CHECKPOINTS + 50);
    const tl = agentTimeline(t.node.store, new DivergenceLog(), "long") as { checkpoints: { tick: string }[]; receipts: { tickEnd: string }[] };
    expect(tl.checkpoints.length).toBe(TIMELINE_MAX_CHECKPOINTS);
    const oldest = BigInt(tl.checkpoints[0]!.tick);
    expect(tl.receipts.length).toBeGreaterThan(0);
    expect(tl.receipts.length).toBeLessThanOrEqual(TIMELINE_MAX_CHECKPOINTS);
    for (const r of tl.receipts) expect(BigInt(r.tickEnd)).toBeGreaterThanOrEqual(oldest);
  }, 90_000);
});
