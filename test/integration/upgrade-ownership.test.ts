// igord upgrade and a budget set on load act for the agent's owner: each signs a lineage event with
// the agent's key (code_upgrade, budget_override) after its head here. A node that no longer owns
// the agent (it moved away) must refuse before it signs, and nothing it stores may follow the agent
// when it comes back.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { upgradeAgent } from "../../src/node/code-upgrade.js";
import type { CheckpointEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

const CLOCK = '(import "igor" "clock_now" (func $clock (result i64)))';
/** Counts its ticks, reading the clock each (every tick logged); the other adds 10 a tick. */
const COUNTS = watAgent({ imports: CLOCK, onTick: "(drop (call $clock))" });
const TENS = watAgent({ imports: CLOCK, onTick: "(drop (call $clock)) (global.set $ticks (i32.add (global.get $ticks) (i32.const 9)))" });

afterEach(stopAllNodes);
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "50ms", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };

describe("signed acts for an agent this node does not own", () => {
  it("an agent that moved away is refused UPGRADE_REFUSED: no lineage event, no new module pointed at, and it returns and runs with its own code", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    const v1 = await writeWat(join(a.dir, "wasm"), "counter", COUNTS, CAPS("clock"));
    const v2 = await writeWat(join(a.dir, "v2"), "counter", TENS, CAPS("clock"));
    await a.node.addAgent({ wasmPath: v1 });
    await a.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "counter" && e.outcome === "written" && e.tick >= 3n);
    expect((await a.node.migrate("counter", [b.node.migration!.addresses()[0]!])).outcome).toBe("done");
    expect(a.node.store.lease("counter")?.state).toBe("RETIRED");
    const before = { events: a.node.store.lineageEvents("counter").length, wasm: a.node.store.agent("counter")?.wasmHash };
    await expect(upgradeAgent(a.node, "counter", v2)).rejects.toMatchObject({ code: "UPGRADE_REFUSED", details: { lease: "RETIRED" } });
    expect({ events: a.node.store.lineageEvents("counter").length, wasm: a.node.store.agent("counter")?.wasmHash }).toEqual(before);
    expect(a.node.scheduler.has("counter")).toBe(false);
    // It comes back, and runs on A with the code it ran on B.
    expect((await b.node.migrate("counter", [a.node.migration!.addresses()[0]!])).outcome).toBe("done");
    expect({ events: a.node.store.lineageEvents("counter").length, wasm: a.node.store.agent("counter")?.wasmHash }).toEqual(before);
    const back = a.node.store.head("counter")!.tick;
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick >= back + 2n);
  });

  it("loading its file again with a budget (igord run --budget) is refused LEASE_RETIRED before the budget override is signed: no lineage event", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    const v1 = await writeWat(join(a.dir, "wasm"), "counter", COUNTS, CAPS("clock"));
    await a.node.addAgent({ wasmPath: v1 });
    await a.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "counter" && e.outcome === "written" && e.tick >= 3n);
    expect((await a.node.migrate("counter", [b.node.migration!.addresses()[0]!])).outcome).toBe("done");
    await expect(a.node.addAgent({ wasmPath: v1, budget: 5_000_000n })).rejects.toMatchObject({ code: "LEASE_RETIRED" });
    expect(a.node.store.lineageEvents("counter")).toEqual([]);
    expect(a.node.scheduler.has("counter")).toBe(false);
  });
});
