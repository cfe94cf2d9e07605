// 1,000 idle agents fit in one node: all load, all tick, spread over the pool, in bounded memory.
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(stopAllNodes);

describe("scale", () => {
  it("runs 1,000 idle AssemblyScript agents, each ticking, within 500 MiB of added RSS", async () => {
    const t = await startTestNode({ "tick-interval": "1s", "log-level": "info" });
    const dir = join(t.dir, "wasm");
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(EXAMPLES, "heartbeat.wasm"), join(dir, "heartbeat.wasm"));
    copyFileSync(join(EXAMPLES, "heartbeat.manifest.json"), join(dir, "heartbeat.manifest.json"));
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 1000; i++) await t.node.addAgent({ wasmPath: join(dir, "heartbeat.wasm"), agentId: `hb-${i}` });
    const ticked = new Set<string>();
    t.node.scheduler.on("tick", (e: TickEvent) => ticked.add(e.agentId));
    await waitUntil(() => ticked.size === 1000, { emitter: t.node.scheduler, event: "tick", timeoutMs: 10_000, what: "every agent to tick" });
    const added = (process.memoryUsage().rss - before) / 2 ** 20;
    expect(added).toBeLessThan(500);
    const perWorker = t.node.pool.stats().agentsPerWorker;
    expect(perWorker.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(Math.min(...perWorker)).toBeGreaterThan(400);
  });
});
