// A long tick moves its worker-mates to the other workers (isolation). Once it is over, the agents
// spread over the workers again — otherwise one worker ran every tick while the other idled for the
// rest of the node's life — and no agent's tick runs twice or out of order on the way.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";
import { watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

// Tick 3 spins 300 million iterations (far past the stall threshold, far below the tick timeout).
const SLOW_TICK_3 = watAgent({
  extra: "(global $n (mut i32) (i32.const 0))",
  onTick: `(if (i32.eq (global.get $ticks) (i32.const 3)) (then
    (loop $spin (global.set $n (i32.add (global.get $n) (i32.const 1))) (br_if $spin (i32.lt_u (global.get $n) (i32.const 300000000))))))`,
});
const HEALTHY = watAgent();

describe("rebalancing after a stall", () => {
  it("agents moved off a stalled worker spread over both workers again once it recovers, each tick committed once and in order", async () => {
    const INTERVAL = 20;
    const t = await startTestNode({ workers: "2", "tick-interval": `${INTERVAL}ms`, "tick-timeout": "20s" });
    const dir = join(t.dir, "wasm");
    // Placed alternately, the slow agent last: its worker already holds half of the healthy ones
    // when its tick 3 stalls. (Added first, on a loaded machine its tick 3 could stall before a
    // worker-mate was placed: nothing to evacuate, and the later agents went to the other worker.)
    const healthy = ["h1", "h2", "h3", "h4", "h5", "h6", "h7"];
    for (const n of healthy) await t.node.addAgent({ wasmPath: await writeWat(dir, n, HEALTHY) });
    await t.node.addAgent({ wasmPath: await writeWat(dir, "slow", SLOW_TICK_3) });
    const ticks = new Map<string, bigint[]>();
    t.node.scheduler.on("tick", (e: TickEvent) => ticks.set(e.agentId, [...(ticks.get(e.agentId) ?? []), e.tick]));
    const spread = (): number[] => t.node.pool.stats().agentsPerWorker;

    // The slow tick's worker-mates are moved away while it runs...
    await waitUntil(() => t.logs.events("agent_evacuated").length > 0, { pollMs: 5, what: "an evacuation" });
    // ...and once it has finished, the agents even out again.
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "slow" && e.tick === 3n, 20_000);
    await waitUntil(() => {
      const n = spread();
      // A worker spawned if both stalled at once (a loaded machine) is drained and retired.
      return n.length === 2 && Math.max(...n) - Math.min(...n) <= 1;
    }, { pollMs: 5, what: "agents spread over both workers" });
    expect(spread().reduce((a, b) => a + b, 0)).toBe(8);
    expect(t.logs.events("agent_rebalanced").length).toBeGreaterThan(0);

    // Every agent keeps ticking, and committed each tick exactly once, in order.
    const after = Date.now();
    for (const n of [...healthy, "slow"]) await t.waitFor<TickEvent>("tick", (e) => e.agentId === n && e.at > after + 3 * INTERVAL);
    for (const n of [...healthy, "slow"]) {
      const seen = ticks.get(n) ?? [];
      expect(seen.length).toBeGreaterThan(2);
      seen.forEach((tick, i) => expect(tick, `${n}'s tick events ${seen.join(",")}`).toBe((seen[0] as bigint) + BigInt(i)));
      expect(t.node.scheduler.view(n)?.status).toBe("running");
    }
    expect(t.logs.events("tick_out_of_order")).toEqual([]);
  });
});
