// igord migrate on a node that holds only a retired copy of the agent (it moved on) is refused at
// once, naming why, before any peer is contacted or any migration record written: it contacted the
// target (the preflight), wrote a failed migration record, and only then said AGENT_NOT_RUNNING.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type InProcessKitNode, startCluster, stopAll } from "../../src/testing/index.js";
import { EXAMPLES } from "../helpers/node.js";

afterEach(stopAll);

const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "0", "peer-refresh": "0" };

describe("migrate on a node that no longer owns the agent", () => {
  it("a retired copy is refused AGENT_NOT_RUNNING at once: no migration record, no offer to the target", async () => {
    const [a, b, c] = (await startCluster(3, { flags: P2P })).nodes as [InProcessKitNode, InProcessKitNode, InProcessKitNode];
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    await a.waitForTick("heartbeat", 2n);
    expect((await a.migrate("heartbeat", b)).outcome).toBe("done");
    const records = a.node.store.migrations({ agentId: "heartbeat" }).length;
    await expect(a.migrate("heartbeat", c)).rejects.toMatchObject({ code: "AGENT_NOT_RUNNING", message: expect.stringMatching(/retired on this node \(it migrated to /) });
    expect(a.node.store.migrations({ agentId: "heartbeat" })).toHaveLength(records);
    expect(c.node.store.migrations({ agentId: "heartbeat" })).toHaveLength(0);
  });
});
