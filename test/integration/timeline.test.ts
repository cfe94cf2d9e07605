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
    // Its payments are looked for in the logs of the ticks after the oldest checkpoint shown
    // (these logs are small: all within TIMELINE_MAX_LOG_BYTES).
    expect((tl as { paymentsAfterTick?: string }).paymentsAfterTick).toBe(tl.checkpoints[0]!.tick);
  }, 90_000);

  it("decodes at most its byte bound of the newest event logs for payments at each poll, and says from which tick", async () => {
    const t = await startTestNode({ "tick-interval": "1ms", "checkpoint-interval": "1ms", "verify-interval": "0" });
    // It reads the clock every tick: every tick has a log.
    const clockReader = watAgent({ imports: '(import "igor" "clock_now" (func $clock (result i64)))', onTick: "(drop (call $clock))" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "logs", clockReader, CAPS("clock")) });
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "logs" && t.node.store.eventSegments("logs").length >= 30, 60_000);
    await t.node.scheduler.pause("logs", "test");
    const segments = t.node.store.eventSegments("logs");
    const bytes = (s: (typeof segments)[number]): number => s.blob.byteLength + s.postHashes.byteLength;
    // A bound that the newest ten segments fill exactly: the eleventh from the newest is not read.
    const bound = segments.slice(-10).reduce((n, s) => n + bytes(s), 0);
    const tl = agentTimeline(t.node.store, new DivergenceLog(), "logs", bound) as { paymentsAfterTick: string; checkpoints: { tick: string }[] };
    expect(BigInt(tl.paymentsAfterTick)).toBe(segments.at(-11)!.toTick);
    expect(BigInt(tl.paymentsAfterTick)).toBeGreaterThan(BigInt(tl.checkpoints[0]!.tick));
    // A bound below the newest segment alone still reads the newest.
    const newest = agentTimeline(t.node.store, new DivergenceLog(), "logs", 1) as { paymentsAfterTick: string };
    expect(BigInt(newest.paymentsAfterTick)).toBe(segments.at(-2)!.toTick);
  }, 90_000);
});
