// /metrics of a node that agents pass through: an agent that migrated away or was removed leaves no
// igord_ticks_total{agent} series and no per-agent tally behind, or a node up for months would
// keep one of each per distinct agent id that ever ticked here (and every scrape would carry them).
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { removeAgent } from "../../src/node/agent-lifecycle.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";

afterEach(stopAllNodes);

const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "5ms", "checkpoint-interval": "0", "migration-timeout": "5s", "peer-refresh": "0" };
const heartbeat = join(EXAMPLES, "heartbeat.wasm");

/** The agents /metrics has an igord_ticks_total series for. */
async function tickSeries(t: TestNode): Promise<string[]> {
  const text = await t.node.metrics.render();
  return [...text.matchAll(/^igord_ticks_total\{agent="([^"]+)"\}/gm)].map((m) => m[1]!).sort();
}

const tallies = (t: TestNode): number => (t.node.metrics as unknown as { pendingTicks: Map<string, unknown> }).pendingTicks.size;

async function ticking(t: TestNode, agentId: string): Promise<void> {
  await t.node.addAgent({ wasmPath: heartbeat, agentId });
  await t.waitFor<TickEvent>("tick", (e) => e.agentId === agentId && e.tick >= 1n);
  // Read once while it runs: its ticks are in the counter, not only in its tally.
  expect(await tickSeries(t)).toContain(agentId);
}

describe("metrics of agents that left the node", () => {
  it("an agent that migrated away or was removed has no igord_ticks_total series and no tally here; one that stays keeps its own", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    const to = b.node.migration!.addresses()[0]!;
    await ticking(a, "stayer");
    for (let i = 0; i < 3; i++) {
      await ticking(a, `passer${i}`);
      expect((await a.node.migrate(`passer${i}`, [to])).outcome).toBe("done");
    }
    await ticking(a, "removed");
    await removeAgent(a.node, "removed");
    expect(await tickSeries(a)).toEqual(["stayer"]);
    expect(tallies(a)).toBe(1);
    // The agents that arrived tick on at the target, counted there.
    expect(await tickSeries(b)).toEqual(["passer0", "passer1", "passer2"]);
  }, 60_000);
});
