// What an agent makes the node hold between two checkpoints is bounded in bytes, not only by the
// checkpoint interval: the event logs of its ticks since the last checkpoint (the next checkpoint's
// segment) are held on the main thread until then. A tick may record 16 MiB (MAX_TICK_EVENT_BYTES);
// an agent that records that every tick and asks to run again at once made the node hold ~0.5 GB
// before a 5 s checkpoint, and encode it all at once (main-thread pauses of 0.4–0.9 s). Once they
// pass MAX_UNCHECKPOINTED_LOG_BYTES, the agent is checkpointed at once.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_UNCHECKPOINTED_LOG_BYTES } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

const MIB = 1024 * 1024;
/** Lines of 1 MiB a tick: 15 MiB recorded every tick. */
const LINES = 15;

const LOUD = watAgent({
  imports: '(import "igor" "log_emit" (func $log (param i32 i32)))',
  memory: '(memory (export "memory") 17)',
  extra: "(global $i (mut i32) (i32.const 0))",
  onTick: `(global.set $i (i32.const 0))
    (block $done (loop $more
      (call $log (i32.const 65536) (i32.const ${MIB}))
      (global.set $i (i32.add (global.get $i) (i32.const 1)))
      (br_if $done (i32.ge_u (global.get $i) (i32.const ${LINES})))
      (br $more)))`,
});

describe("the event logs a node holds for an agent between checkpoints", () => {
  it("past MAX_UNCHECKPOINTED_LOG_BYTES the agent is checkpointed at once, not at the next --checkpoint-interval", async () => {
    const t = await startTestNode({ "tick-interval": "10ms", "checkpoint-interval": "60s", "verify-interval": "0" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "loud", LOUD, CAPS("log")) });
    const first = await t.waitFor<{ agentId: string; tick: bigint; reason: string; outcome: string }>("checkpoint", (e) => e.agentId === "loud" && e.tick > 0n, 20_000);
    // The first tick whose logs pass the bound, not a minute of ticks.
    const perTick = LINES * MIB;
    expect(first.reason).toBe("event_log_bytes");
    expect(first.outcome).toBe("written");
    expect(first.tick).toBe(BigInt(Math.ceil(MAX_UNCHECKPOINTED_LOG_BYTES / perTick)));
    // Its segment holds every one of those ticks' logs.
    const segments = t.node.store.eventSegments("loud");
    expect(segments[0]?.toTick).toBe(first.tick);
  });
});
