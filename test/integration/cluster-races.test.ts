// Clusters of three to five in-process nodes over real libp2p on loopback, with operators racing
// each other and nodes stopping mid-hop. Invariants: never two owners; every tick once, in order,
// only by its owner; epochs only go up along the agent's path; the lineage verifies on every node.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES } from "../helpers/node.js";
import { type InProcessKitNode, startCluster, startNode, stopAll } from "../../src/testing/index.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(stopAll);

const heartbeat = join(EXAMPLES, "heartbeat.wasm");
const FLAGS = { "tick-interval": "10ms", "checkpoint-interval": "50ms", "migration-retry-delay": "10ms", "migration-timeout": "3s" };

type Node = InProcessKitNode;

/** Every tick of `agentId` on these nodes, with the node and its lease state at that moment. */
type Ran = { node: string; tick: bigint; owner: string | undefined; start: number; end: number }[] & { attach(t: Node): void };

/** Every tick of `agentId` on these nodes, with the node and its lease state at that moment; `attach` a node again after its restart. */
function recordTicks(nodes: readonly Node[], agentId: string): Ran {
  const ran = [] as unknown as Ran;
  ran.attach = (t) => {
    t.node.scheduler.on("tick", (e: TickEvent) => {
      if (e.agentId === agentId) ran.push({ node: t.name, tick: e.tick, owner: t.node.store.lease(agentId)?.state, start: e.at - Number(e.elapsedNs) / 1e6, end: e.at });
    });
  };
  for (const t of nodes) ran.attach(t);
  return ran;
}

function expectOneOwnerEverywhere(nodes: readonly Node[], agentId: string): Node {
  const owners = nodes.filter((n) => n.lease(agentId)?.state === "ACTIVE_OWNER");
  expect(owners.map((n) => n.name), nodes.map((n) => `${n.name}: ${n.lease(agentId)?.state ?? "none"}`).join(", ")).toHaveLength(1);
  const running = nodes.filter((n) => n.running && n.node.scheduler.view(agentId)?.status === "running");
  expect(running.map((n) => n.name)).toEqual(owners.map((n) => n.name));
  return owners[0]!;
}

describe("two operators at once", () => {
  it("the owner is told to move the agent to B and to C at the same moment: one hop, the other refused MIGRATION_IN_PROGRESS, one owner", async () => {
    const cluster = await startCluster(3, { flags: FLAGS });
    const [a, b, c] = cluster.nodes as [Node, Node, Node];
    await a.load(heartbeat);
    await a.waitForTick("heartbeat", 3n);
    const results = await Promise.allSettled([a.migrate("heartbeat", b), a.migrate("heartbeat", c)]);
    const done = results.filter((r) => r.status === "fulfilled" && r.value.outcome === "done");
    const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as { code?: string });
    expect(done).toHaveLength(1);
    expect(refused.map((e) => e.code)).toEqual(["MIGRATION_IN_PROGRESS"]);
    const owner = expectOneOwnerEverywhere([a, b, c], "heartbeat");
    expect(owner).toBe(b);
    expect(c.node.store.agent("heartbeat")).toBeUndefined();
  });

  it("a node holding a retired copy is told to move it while its owner moves it elsewhere: the retired copy never leaves, the owner's hop goes through", async () => {
    const cluster = await startCluster(4, { flags: FLAGS });
    const [a, b, c, d] = cluster.nodes as [Node, Node, Node, Node];
    const ran = recordTicks([a, b, c, d], "heartbeat");
    await a.load(heartbeat);
    await a.waitForTick("heartbeat", 3n);
    expect((await a.migrate("heartbeat", b)).outcome).toBe("done");
    await b.waitForTick("heartbeat", b.node.store.head("heartbeat")!.tick + 2n);
    expect((await b.migrate("heartbeat", a)).outcome).toBe("done");
    // B holds a retired copy; A owns the agent. Both are told to move it, at once.
    const [fromA, fromB] = await Promise.allSettled([a.migrate("heartbeat", c), b.migrate("heartbeat", d)]);
    expect(fromA.status === "fulfilled" && fromA.value.outcome).toBe("done");
    expect(fromB.status).toBe("rejected");
    expect(d.node.store.agent("heartbeat")).toBeUndefined();
    expect(b.lease("heartbeat")?.state).toBe("RETIRED");
    expectOneOwnerEverywhere([a, b, c, d], "heartbeat");
    expect(c.lease("heartbeat")?.state).toBe("ACTIVE_OWNER");
    const last = ran.at(-1)!.tick;
    await c.waitForTick("heartbeat", last + 2n);
    const ticks = ran.map((r) => r.tick);
    expect(ticks).toEqual(ticks.map((_, i) => BigInt(i + 1)));
    expect(ran.every((r) => r.owner === "ACTIVE_OWNER")).toBe(true);
  });
});

describe("a stale node", () => {
  it("A loses B's confirmation and is stopped; the agent goes B → C → D; A restarted asks B, retires, and never ticks it", async () => {
    let lose = true;
    const a = await startNode({ flags: FLAGS });
    const b = await startNode({ flags: FLAGS, migrationHooks: { beforeConfirm: (_id, abort) => lose && abort(new Error("confirmation lost")) } });
    const c = await startNode({ flags: FLAGS });
    const d = await startNode({ flags: FLAGS });
    const nodes = [a, b, c, d];
    const ran = recordTicks(nodes, "heartbeat");
    await a.load(heartbeat);
    await a.waitForTick("heartbeat", 3n);
    // The status query must not settle it before A stops: B not answered yet is fine either way.
    const r = await a.migrate("heartbeat", b);
    expect(r.outcome).toBe("recovery");
    lose = false;
    await a.stop();
    expect(["RECOVERY_REQUIRED", "RETIRED"]).toContain(a.lease("heartbeat")?.state);
    await b.waitForTick("heartbeat", b.node.store.head("heartbeat")!.tick + 2n);
    expect((await b.migrate("heartbeat", c)).outcome).toBe("done");
    await c.waitForTick("heartbeat", c.node.store.head("heartbeat")!.tick + 2n);
    expect((await c.migrate("heartbeat", d)).outcome).toBe("done");
    await a.restart();
    ran.attach(a);
    await a.node.migration!.resolved("heartbeat");
    expect(a.lease("heartbeat")?.state).toBe("RETIRED");
    const last = ran.at(-1)!.tick;
    await d.waitForTick("heartbeat", last + 2n);
    expectOneOwnerEverywhere(nodes, "heartbeat");
    const ticks = ran.map((x) => x.tick);
    expect(ticks).toEqual(ticks.map((_, i) => BigInt(i + 1)));
    expect(ran.every((x) => x.owner === "ACTIVE_OWNER")).toBe(true);
  });
});

describe("a target stopped during reception with a fallback configured", () => {
  it("B stops after storing the agent, before its confirmation: A is left asking B (C, its fallback, is never offered the agent); B restarted, A retires and B alone ticks it", async () => {
    let fire: (() => void) | null = null;
    const a = await startNode({ flags: FLAGS });
    const b = await startNode({ flags: FLAGS, migrationHooks: { beforeConfirm: () => fire?.() } });
    const c = await startNode({ flags: FLAGS });
    const nodes = [a, b, c];
    const ran = recordTicks(nodes, "heartbeat");
    await a.load(heartbeat);
    await a.waitForTick("heartbeat", 3n);
    let stopping: Promise<void> | null = null;
    fire = () => {
      fire = null;
      stopping = b.stop();
    };
    const bAddress = b.address;
    const r = await a.node.migrate("heartbeat", [bAddress, c.address]);
    await stopping;
    expect(r).toMatchObject({ outcome: "recovery", target: bAddress, fallbacks: 0 });
    expect(nodes.filter((n) => n.lease("heartbeat")?.state === "ACTIVE_OWNER")).toEqual([b]);
    expect(c.node.store.agent("heartbeat")).toBeUndefined();
    // B comes back on another port and calls A (as a node with --bootstrap does): A's status query reaches it.
    await b.restart();
    ran.attach(b);
    await b.node.migration!.queryPrice(a.address);
    await a.node.migration!.resolved("heartbeat");
    expect(a.lease("heartbeat")?.state).toBe("RETIRED");
    await waitUntil(() => b.node.scheduler.view("heartbeat")?.status === "running", { what: "heartbeat running on B" });
    expect(expectOneOwnerEverywhere(nodes, "heartbeat")).toBe(b);
    await b.waitForTick("heartbeat", ran.at(-1)!.tick + 2n);
    const ticks = ran.map((x) => x.tick);
    expect(ticks).toEqual(ticks.map((_, i) => BigInt(i + 1)));
    expect(ran.every((x) => x.owner === "ACTIVE_OWNER")).toBe(true);
    expect(c.node.store.agent("heartbeat")).toBeUndefined();
  });
});
