// igord remove: "this node never runs it again" (node/agent-lifecycle.ts). That holds for an agent
// offered back by migration too: the agent, which moved away before it was removed here, is refused
// and keeps running where it is.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { removeAgent } from "../../src/node/agent-lifecycle.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes } from "../helpers/node.js";

afterEach(stopAllNodes);
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };

describe("a removed agent offered back by migration", () => {
  it("is refused AGENT_REMOVED at the offer (the hop is reverted); it keeps running on the node that sent it, and nothing stored here changes", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    expect((await a.node.migrate("heartbeat", [b.node.migration!.addresses()[0]!])).outcome).toBe("done");
    await removeAgent(a.node, "heartbeat");
    const before = { row: a.node.store.agent("heartbeat"), lease: a.node.store.lease("heartbeat"), head: a.node.store.head("heartbeat")?.hash };
    expect(before.row?.status).toBe("removed");

    const back = await b.node.migrate("heartbeat", [a.node.migration!.addresses()[0]!]);
    expect(back).toMatchObject({ outcome: "reverted", error: { code: "AGENT_REMOVED" } });
    expect({ row: a.node.store.agent("heartbeat"), lease: a.node.store.lease("heartbeat"), head: a.node.store.head("heartbeat")?.hash }).toEqual(before);
    expect(a.node.scheduler.has("heartbeat")).toBe(false);
    const at = b.node.store.head("heartbeat")!.tick;
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick > at + 2n);
  });
});
