// Density with hibernation: many agents on a long cadence hold a worker only around their ticks.
// Bounded for CI (400 agents, ~3 s); IGORD_SOAK=1 runs the target itself: 10,000 agents on a 60 s
// cadence in at most 1 GiB of RSS (scripts/bench-density.mjs measures the same in a fresh process).
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { agentWithManifest } from "../helpers/manifest-agent.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(stopAllNodes);

const SOAK = process.env.IGORD_SOAK !== undefined;
const COUNT = SOAK ? 10_000 : 400;
const INTERVAL_MS = SOAK ? 60_000 : 1_500;
const HIBERNATE_AFTER = SOAK ? "30s" : "500ms";

describe("density", () => {
  it(`${COUNT} agents on a ${INTERVAL_MS / 1000} s cadence all tick, woken from hibernation, and most of them are off their workers between ticks`, { timeout: SOAK ? 1_800_000 : 60_000 }, async () => {
    const t = await startTestNode({ "tick-interval": "1s", "hibernate-after": HIBERNATE_AFTER, "log-level": "info" });
    const wasm = agentWithManifest(t.dir, "heartbeat", "hb", { tick_interval_ms: INTERVAL_MS });
    const ticks = new Map<string, number>();
    t.node.scheduler.on("tick", (e: TickEvent) => ticks.set(e.agentId, (ticks.get(e.agentId) ?? 0) + 1));
    for (let i = 0; i < COUNT; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, COUNT - i) }, (_, j) => t.node.addAgent({ wasmPath: wasm, agentId: `hb-${i + j}` })));
    }
    // Every agent ticks twice: each time woken from hibernation (its first tick is a full interval away).
    let leastLoaded = COUNT;
    const loaded = (): number => t.node.pool.stats().agentsPerWorker.reduce((s, n) => s + n, 0);
    await waitUntil(
      () => {
        leastLoaded = Math.min(leastLoaded, loaded());
        return ticks.size === COUNT && [...ticks.values()].every((n) => n >= 2);
      },
      { timeoutMs: 4 * INTERVAL_MS + 30_000, what: "every agent to tick twice" },
    );
    expect(t.logs.events("agent_failed")).toEqual([]);
    expect(t.node.scheduler.statusCounts().get("running")).toBe(COUNT);
    // Off their workers between ticks: at some point most of them held no instance at all.
    expect(leastLoaded).toBeLessThan(COUNT / 2);
    expect(t.node.scheduler.hibernatedCount()).toBeGreaterThan(COUNT / 2);
    if (SOAK) expect(process.memoryUsage().rss).toBeLessThan(2 ** 30);
  });
});
