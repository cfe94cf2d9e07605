// Agents moving between in-process nodes over real libp2p on loopback TCP: state, manifest, DID and
// budget travel; exactly one node owns the agent at a time; every failure path ends with one owner.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseCheckpoint } from "../../src/checkpoint/codec.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";

afterEach(async () => {
  await stopAllNodes();
});

const heartbeat = join(EXAMPLES, "heartbeat.wasm");
const survivor = join(EXAMPLES, "survivor.wasm");

const P2P = {
  listen: "/ip4/127.0.0.1/tcp/0",
  "tick-interval": "10ms",
  "checkpoint-interval": "0",
  "migration-retry-delay": "10ms",
  "migration-timeout": "5s",
  "peer-refresh": "0",
};

async function p2pNode(flags: Record<string, string> = {}): Promise<TestNode> {
  return startTestNode({ ...P2P, ...flags });
}

function addr(t: TestNode): string {
  const a = t.node.migration?.addresses()[0];
  if (!a) throw new Error("node has no p2p address");
  return a;
}

function owner(t: TestNode, agentId: string): string | undefined {
  return t.node.store.lease(agentId)?.state;
}

describe("migration between two nodes", () => {
  it("moves a running agent with its state, DID and budget; the source retires it and the target ticks it", async () => {
    const a = await p2pNode();
    const b = await p2pNode();
    const before = await a.node.addAgent({ wasmPath: survivor });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= 5n);
    const r = await a.node.migrate("survivor", [addr(b)]);
    expect(r.outcome).toBe("done");
    expect(r.attempts).toBe(1);
    expect(r.epoch).toEqual({ major: 1n, generation: 0n });
    // Source: retired, not running, history kept.
    expect(owner(a, "survivor")).toBe("RETIRED");
    expect(a.node.scheduler.view("survivor")).toBeUndefined();
    const sourceHead = a.node.store.head("survivor")!;
    // Target: owner at (1,0), ticking from the handed-off checkpoint with the same identity.
    expect(owner(b, "survivor")).toBe("ACTIVE_OWNER");
    const moved = await b.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor");
    expect(moved.tick).toBe(sourceHead.tick + 1n);
    const view = b.node.scheduler.view("survivor")!;
    expect(view.did).toBe(before.did);
    expect(view.budget).toBeLessThanOrEqual(sourceHead.budget);
    expect(b.node.store.head("survivor")!.hash).toEqual(sourceHead.hash);
    expect(b.node.store.historyCount("survivor")).toBe(a.node.store.historyCount("survivor"));
    expect(b.node.store.agent("survivor")!.manifest).toBe(a.node.store.agent("survivor")!.manifest);
    const out = a.node.store.migrations({ agentId: "survivor" })[0]!;
    expect(out.state).toBe("done");
    expect(Object.keys(out.at).sort()).toEqual(["awaiting_confirmation", "done", "requested", "transferring"]);
    expect(await a.node.metrics.render()).toMatch(/igord_migrations_total\{direction="out",outcome="done"\} 1/);
    // The target's next checkpoint carries the new epoch.
    await b.node.scheduler.pause("survivor", "test");
    const cp = parseCheckpoint(b.node.store.head("survivor")!.blob);
    expect(cp.epochMajor).toBe(1n);
  });
});
