// Empty emitted messages are stored as outbox rows too, so each message counts its row's overhead
// (OUTBOX_MESSAGE_OVERHEAD_BYTES) as well as its bytes, toward --outbox-retention and the
// manifest's max_storage_bytes. Before, emit(ptr, 0) counted 0: retention never ran for an agent
// that emitted only empty messages, and no storage limit saw them (800,000 rows under a 1 KiB
// --outbox-retention in one test of the probe's).
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentView, CheckpointEvent } from "../../src/scheduler/scheduler.js";
import { OUTBOX_MESSAGE_OVERHEAD_BYTES } from "../../src/store/tick-records.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

const PER_TICK = 1_000;
/** Emits PER_TICK empty messages every tick. */
const EMPTY_EMITS = watAgent({
  imports: '(import "igor" "emit" (func $emit (param i32 i32) (result i32)))',
  onTick: `(global.set $i (i32.const 0))
    (block $done (loop $more
      (drop (call $emit (i32.const 256) (i32.const 0)))
      (global.set $i (i32.add (global.get $i) (i32.const 1)))
      (br_if $done (i32.ge_u (global.get $i) (i32.const ${PER_TICK})))
      (br $more)))`,
  extra: "(global $i (mut i32) (i32.const 0))",
});

describe("empty emitted messages", () => {
  it("--outbox-retention bounds them: with 1 KiB, only the newest tick's messages stay", async () => {
    const t = await startTestNode({ "tick-interval": "20ms", "checkpoint-interval": "40ms", "verify-interval": "0", "outbox-retention": "1KiB" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "blank", EMPTY_EMITS, CAPS("emit")) });
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "blank" && e.tick >= 6n && e.outcome === "written", 30_000);
    const rows = t.node.store.outbox("blank", -1n, 100 * PER_TICK);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThanOrEqual(PER_TICK);
    expect(new Set(rows.map((m) => m.tick)).size).toBe(1);
  });

  it("max_storage_bytes counts them: an agent that emits only empty messages reaches its limit", async () => {
    const t = await startTestNode({ "tick-interval": "10ms", "checkpoint-interval": "20ms", "verify-interval": "0" });
    const limit = 20 * PER_TICK * OUTBOX_MESSAGE_OVERHEAD_BYTES;
    const manifest = { ...CAPS("emit"), resource_limits: { max_storage_bytes: limit } };
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "blank", EMPTY_EMITS, manifest) });
    const stopped = await t.waitFor<AgentView>("stopped", (v) => v.id === "blank", 30_000);
    expect(stopped.error?.code).toBe("STORAGE_LIMIT");
    expect(t.node.store.storedBytes("blank")).toBeLessThanOrEqual(limit);
  });
});
