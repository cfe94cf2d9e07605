// Worker threads start as agents need them, up to --workers: each costs ~100 ms of CPU to start and
// ~8 MiB, so a node with one agent runs one (started with the node, so its first agent does not wait
// for it), and the agents spread over the pool as they did when all --workers threads started with
// the node.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EXAMPLES, startTestNode, stopAllNodes } from "../helpers/node.js";
import { watAgent, writeWat } from "../helpers/wat.js";

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

  it("an agent moved off a wedged worker goes to a worker that runs, not to the wedged one's replacement still starting", async () => {
    // Moved to the replacement, the agents waited for its start (~100 ms and more): the longest gap
    // of 100 healthy agents beside a hung one went from 144 ms to 282-324 ms in the bench.
    const t = await startTestNode({ workers: "2", "tick-interval": "20ms", "tick-timeout": "300ms" });
    const moved: { agentId: string; fromWorker: number; toWorker: number }[] = [];
    t.node.pool.on("evacuated", (e) => moved.push(e));
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm"), agentId: "a" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm"), agentId: "b" });
    // On a's worker (the least busy, first of two with one agent each); its first tick never ends.
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "hang", watAgent({ onTick: "(loop $l (br $l))" })) });
    await t.waitFor("stopped", (v: { id: string }) => v.id === "hang", 10_000);
    const a = moved.find((m) => m.agentId === "a");
    expect(a).toBeDefined();
    // Workers 1 and 2 started before the hang; the replacement is 3.
    expect(a?.toWorker).toBe(a?.fromWorker === 1 ? 2 : 1);
    await t.waitFor("tick", (e: { agentId: string; tick: bigint }) => e.agentId === "a");
  });
});
