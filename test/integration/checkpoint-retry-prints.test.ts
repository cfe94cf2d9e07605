// A checkpoint refused LEASE_STALE because this node itself moved the agent's lease on while it was
// being written (a recovery at the next major epoch) is taken again under the new lease, and the
// refused one's messages go with it (scheduler.ts checkpoint). Those messages are published with
// the retry, so they are printed with it too: only the retry's own (none) were.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Lease } from "../../src/authority/lease.js";
import { stopAgent } from "../../src/node/agent-lifecycle.js";
import type { AgentRuntime } from "../../src/scheduler/agent-runtime.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

/** Emits the 4-byte message "tick" every tick. */
const EMITTER = watAgent({
  imports: '(import "igor" "emit" (func $emit (param i32 i32) (result i32)))',
  extra: '(data (i32.const 1024) "tick")',
  onTick: "(drop (call $emit (i32.const 1024) (i32.const 4)))",
});

describe("a checkpoint taken again under a lease this node moved on", () => {
  it("prints the messages the refused one carried, which the retry publishes", async () => {
    const t = await startTestNode({ "tick-interval": "10ms", "checkpoint-interval": "1h", "verify-interval": "0", "lease-duration": "60s" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "emitter", EMITTER, CAPS("emit")) });
    await t.waitFor<{ agentId: string; tick: bigint }>("tick", (e) => e.agentId === "emitter" && e.tick >= 3n);
    // While the next checkpoint is on its way, the node recovers the agent's lease at the next major
    // epoch (what its lease fence does after an expiry): the checkpoint, captured under the old one,
    // is refused LEASE_STALE and taken again.
    const runtime = (t.node.scheduler as unknown as { agents: Map<string, AgentRuntime> }).agents.get("emitter") as AgentRuntime;
    const cp = t.node.checkpointer;
    const original = cp.checkpoint.bind(cp);
    let moved = false;
    cp.checkpoint = (...args: Parameters<typeof cp.checkpoint>) => {
      if (!moved && args[0].agentId === "emitter") {
        moved = true;
        const old = runtime.lease as Lease;
        const next: Lease = { ...old, epoch: { major: old.epoch.major + 1n, generation: 0n } };
        t.node.store.writeLease("emitter", old, next);
        runtime.lease = next;
      }
      return original(...args);
    };
    await stopAgent(t.node, "emitter");
    const stored = t.node.store.outbox("emitter").map((m) => m.tick);
    expect(moved).toBe(true);
    expect(stored.length).toBeGreaterThanOrEqual(3);
    await waitUntil(() => t.logs.events("checkpoint_saved", "emitter").length > 0, { what: "the stop's checkpoint saved" });
    const printed = t.logs.events("agent_output", "emitter").map((l) => BigInt(String(l.tick)));
    expect(printed).toEqual(stored);
  });
});
