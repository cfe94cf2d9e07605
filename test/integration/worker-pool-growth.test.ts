// Worker threads start as agents need them, up to --workers: each costs ~100 ms of CPU to start and
// ~8 MiB, so a node with one agent runs one (started with the node, so its first agent does not wait
// for it), and the agents spread over the pool as they did when all --workers threads started with
// the node.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EXAMPLES, startTestNode, stopAllNodes } from "../helpers/node.js";

afterEach(stopAllNodes);

describe("the worker pool", () => {
  it("starts one worker with the node, one more per agent up to --workers, then places agents on the least busy", async () => {
    const t = await startTestNode({ workers: "2", "tick-interval": "20ms" });
    expect(t.node.pool.stats()).toMatchObject({ workers: 1, agentsPerWorker: [0] });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm"), agentId: "a" });
    expect(t.node.pool.stats()).toMatchObject({ workers: 1, agentsPerWorker: [1] });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm"), agentId: "b" });
    expect(t.node.pool.stats()).toMatchObject({ workers: 2, agentsPerWorker: [1, 1] });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm"), agentId: "c" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm"), agentId: "d" });
    expect(t.node.pool.stats()).toMatchObject({ workers: 2, agentsPerWorker: [2, 2] });
    for (const id of ["a", "b", "c", "d"]) await t.waitFor("tick", (e: { agentId: string }) => e.agentId === id);
  });
});
