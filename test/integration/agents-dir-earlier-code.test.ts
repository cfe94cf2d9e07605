// An agent loaded from node A's agents dir (--upgrade-agents-dir true) migrates to B, is upgraded
// there with igord upgrade, and comes back to A. A's agents dir still holds the file it was first
// loaded from, unchanged since: code the agent ran before its current one. A's restart must not take
// that file for a new build and "upgrade" the agent back to its old code; a real new build still is,
// and so is earlier code written while the daemon watches (a write made now is meant).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { upgradeAgent } from "../../src/node/code-upgrade.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { CAPS, wat2wasm, watAgent, writeWat } from "../helpers/wat.js";
import { waitUntil } from "../helpers/wait.js";
import { CLOCK, COUNTER_V1, COUNTER_V2 as V2, counterInAgentsDir } from "../helpers/upgrade-agents.js";

afterEach(stopAllNodes);

const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "20ms", "checkpoint-interval": "100ms", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };

describe("the agents dir at a restart with --upgrade-agents-dir true", () => {
  it("the file of the code an agent ran before (it came back upgraded) is a stale binary, not an upgrade back to that code", async () => {
    const { t: a, file } = await counterInAgentsDir({ ...P2P, "upgrade-agents-dir": "true" });
    const v1 = a.node.store.agent("counter")!.wasmHash;

    const b = await startTestNode(P2P);
    expect((await a.node.migrate("counter", [b.node.migration!.addresses()[0]!])).outcome).toBe("done");
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "counter");
    const up = await upgradeAgent(b.node, "counter", await writeWat(join(b.dir, "v2"), "counter", V2, CAPS("clock")));
    const v2 = up.toWasm as string;
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick >= BigInt(up.tick as string) + 2n);
    expect((await b.node.migrate("counter", [a.node.migration!.addresses()[0]!])).outcome).toBe("done");
    await waitUntil(() => a.node.scheduler.view("counter")?.status === "running");
    expect(a.node.store.agent("counter")!.wasmHash).toBe(v2);
    await a.stop();

    // A restarts; nobody touched counter.wasm since A first loaded it.
    const again = await startTestNode({ ...P2P, "upgrade-agents-dir": "true" }, { dir: a.dir, watch: true, resumeStored: true });
    await again.node.whenLoaded();
    await again.waitFor<TickEvent>("tick", (e) => e.agentId === "counter");
    expect(again.logs.events("code_upgraded", "counter")).toEqual([]);
    expect(again.node.store.agent("counter")!.wasmHash).toBe(v2);
    // Listed with the command that switches it back, should the operator mean it.
    expect(again.node.staleBinaries.get("counter")).toMatchObject({ path: file, wasmHash: v1, command: `igord upgrade counter --wasm ${file}` });
  });

  it("a new build (code the agent never ran) put in place while the daemon was down is taken as an upgrade", async () => {
    const { t, file } = await counterInAgentsDir({ "tick-interval": "20ms", "checkpoint-interval": "100ms", "upgrade-agents-dir": "true" });
    await t.stop();
    writeFileSync(file, await wat2wasm(watAgent({ imports: CLOCK, onTick: "(drop (call $clock)) (nop)" })));
    const again = await startTestNode({ "tick-interval": "20ms", "upgrade-agents-dir": "true" }, { dir: t.dir, watch: true, resumeStored: true });
    await again.node.whenLoaded();
    expect(again.logs.events("code_upgraded", "counter")).toHaveLength(1);
    expect(again.node.staleBinaries.size).toBe(0);
    expect(again.node.scheduler.view("counter")?.status).toBe("running");
  });

  it("while it watches, the earlier code written back (the dev loop's undo) is taken: a write made now is meant", async () => {
    const { t, file } = await counterInAgentsDir({ "tick-interval": "20ms", "upgrade-agents-dir": "true" });
    const v1 = t.node.store.agent("counter")!.wasmHash;
    writeFileSync(file, await wat2wasm(V2));
    await waitUntil(() => t.logs.events("code_upgraded", "counter").length === 1, { timeoutMs: 15_000 });
    writeFileSync(file, await wat2wasm(COUNTER_V1));
    await waitUntil(() => t.logs.events("code_upgraded", "counter").length === 2, { timeoutMs: 15_000 });
    expect(t.node.store.agent("counter")!.wasmHash).toBe(v1);
    expect(t.node.staleBinaries.size).toBe(0);
  });
});
