// The agents-dir watcher and an agent away on another node: its file on the node it left is
// replaced (a new build) while it runs elsewhere. That node no longer owns the agent (igord upgrade
// is refused there), so the file is one left behind, not a stale binary to upgrade.
import { writeFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { wat2wasm } from "../helpers/wat.js";
import { COUNTER_V2 as V2, counterInAgentsDir } from "../helpers/upgrade-agents.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(stopAllNodes);

const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "20ms", "checkpoint-interval": "100ms", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };

describe("a file replaced while its agent is away", () => {
  it.each([
    ["", {}],
    [" (--upgrade-agents-dir true)", { "upgrade-agents-dir": "true" }],
  ])("is reported as a file whose agent moved away (agent_file_retired), not as a stale binary to upgrade here%s", async (_flag, upgrades) => {
    const { t: a, file } = await counterInAgentsDir({ ...P2P, ...upgrades });
    const b = await startTestNode(P2P);
    expect((await a.node.migrate("counter", [b.node.migration!.addresses()[0]!])).outcome).toBe("done");
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "counter");

    writeFileSync(file, await wat2wasm(V2));
    await waitUntil(() => a.logs.lines.some((l) => l.path === file && l.event !== undefined && /agent_stale_binary|agent_file_retired|agent_load_failed/.test(l.event)), { timeoutMs: 15_000 });
    // The agent runs on B: A can do nothing with the file (igord upgrade is refused UPGRADE_REFUSED there: "this node does not own it").
    expect(a.logs.events("agent_stale_binary")).toEqual([]);
    expect(a.logs.lines.filter((l) => l.path === file && l.event === "agent_file_retired")).toHaveLength(1);
    expect([...a.node.staleBinaries.keys()]).toEqual([]);
    expect(a.node.status()).not.toMatchObject({ staleBinaries: 1 });
  });
});
