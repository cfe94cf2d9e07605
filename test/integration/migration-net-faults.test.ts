// Network faults between two nodes during a hop: the source dials its target through a loopback TCP
// proxy (test/helpers/fault-proxy.ts) that stalls, cuts, throttles or partitions the link at a
// chosen moment of the hop. What is checked: the agent runs on one node at most, never runs nowhere
// without a state the operator sees, and what a stalled link holds is bounded by named timeouts.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { controlGet } from "../../src/control/client.js";
import { type InProcessKitNode, startNode, stopAll } from "../../src/testing/index.js";
import type { MigrationHooks } from "../../src/migration/context.js";
import { EXAMPLES } from "../helpers/node.js";
import { FaultProxy } from "../helpers/fault-proxy.js";
import { MIN_ASK_AGAIN_DELAY_MS } from "../../src/migration/retry.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(stopAll);

const survivor = join(EXAMPLES, "survivor.wasm");

const P2P = {
  listen: "/ip4/127.0.0.1/tcp/0",
  "accept-migrations": "any",
  "tick-interval": "10ms",
  "checkpoint-interval": "0",
  "migration-retry-delay": "50ms",
  "migration-max-delay": "200ms",
  "migration-timeout": "1s",
  "peer-refresh": "0",
};

/** The TCP port of a node's listen address. */
function portOf(t: InProcessKitNode): number {
  return Number(/\/tcp\/(\d+)\//.exec(t.address)?.[1]);
}

/**
 * A source A (with a control API) and a target B that A reaches only through a fault proxy.
 * `hooks` get the proxy once it exists (a hook fires during the hop, after both nodes started).
 */
async function behindProxy(
  o: { source?: Record<string, string>; sourceHooks?: (p: () => FaultProxy) => MigrationHooks; targetHooks?: (p: () => FaultProxy) => MigrationHooks } = {},
): Promise<{ a: InProcessKitNode; b: InProcessKitNode; proxy: FaultProxy; to: string }> {
  let proxy: FaultProxy | null = null;
  const get = (): FaultProxy => {
    if (!proxy) throw new Error("the proxy is not up yet");
    return proxy;
  };
  const a = await startNode({ flags: { ...P2P, control: "127.0.0.1:0", ...o.source }, ...(o.sourceHooks ? { migrationHooks: o.sourceHooks(get) } : {}) });
  const b = await startNode({ flags: P2P, ...(o.targetHooks ? { migrationHooks: o.targetHooks(get) } : {}) });
  proxy = await FaultProxy.start(portOf(b));
  return { a, b, proxy, to: proxy.address(b.peerId) };
}

type Listed = { id: string; status: string; reason?: string; target?: string | null; lease?: { state: string; target: string | null } | null; migration?: { state: string; attempts: number } };

describe("a hop whose target's link fails after the handoff", () => {
  it("lists the agent as migrating, with its target and attempts, while the source retries a partitioned target; then running again", async () => {
    const { a, proxy, to } = await behindProxy({ sourceHooks: (p) => ({ afterHandoffRecorded: () => p().partition("blackhole") }) });
    await a.node.addAgent({ wasmPath: survivor });
    await a.waitForTick("survivor", 3n);
    const hop = a.node.migrate("survivor", [to]);
    // The first attempt went into the partition: the agent is detached, handed off, and runs nowhere.
    await waitUntil(() => a.logs.events("migration_attempt_failed", "survivor").some((l) => l.stage === undefined), { what: "a failed attempt after the handoff" });
    expect(a.node.scheduler.has("survivor")).toBe(false);
    const control = a.node.controlAddress!;
    const { agents } = (await controlGet(control, a.config.dataDir, "/v1/agents")) as { agents: Listed[] };
    const listed = agents.find((x) => x.id === "survivor");
    expect(listed).toMatchObject({ status: "migrating", target: to, lease: { state: "HANDOFF_INITIATED", target: to }, migration: { state: "requested" } });
    expect(listed?.migration?.attempts).toBeGreaterThanOrEqual(1);
    expect(listed?.reason).toMatch(/runs nowhere until the hop ends/);
    // The agent itself is found, not "no agent on this node".
    expect(await controlGet(control, a.config.dataDir, "/v1/agents/survivor")).toMatchObject({ id: "survivor", status: "migrating" });
    const status = (await controlGet(control, a.config.dataDir, "/v1/status")) as { agents: Record<string, number> };
    expect(status.agents.migrating).toBe(1);
    const metrics = await a.node.metrics.render();
    expect(metrics).toMatch(/igord_agents\{state="migrating"\} 1/);
    expect(metrics).toMatch(/igord_agent_leases\{state="HANDOFF_INITIATED"\} 1/);
    // Every attempt fails; the handoff is reverted and the agent ticks here again, listed as running.
    const r = await hop;
    expect(r.outcome).toBe("reverted");
    proxy.heal();
    const after = (await controlGet(control, a.config.dataDir, "/v1/agents")) as { agents: Listed[] };
    expect(after.agents.filter((x) => x.id === "survivor").map((x) => x.status)).toEqual(["running"]);
    expect(((await controlGet(control, a.config.dataDir, "/v1/status")) as { agents: Record<string, number> }).agents.migrating).toBeUndefined();
  });
});

describe("an unconfirmed handoff whose target cannot be reached", () => {
  it("with --migration-retry-delay 0 the source asks it at most every MIN_ASK_AGAIN_DELAY_MS, not as fast as its dials are refused", async () => {
    // B stores the agent; then its link goes down before the confirmation: the existing connection
    // is reset and every new one refused at once (a target whose port is closed).
    const { a, b, to } = await behindProxy({
      source: { "migration-retry-delay": "0" },
      targetHooks: (p) => ({
        beforeConfirm: () => {
          p().newConnections = "refuse";
          p().cut("rst");
        },
      }),
    });
    await a.node.addAgent({ wasmPath: survivor });
    await a.waitForTick("survivor", 3n);
    expect((await a.node.migrate("survivor", [to])).outcome).toBe("recovery");
    expect(b.lease("survivor")?.state).toBe("ACTIVE_OWNER");
    await waitUntil(() => a.logs.events("handoff_status_unreachable", "survivor").length >= 4, { what: "four status queries that could not reach the target" });
    const at = a.logs.events("handoff_status_unreachable", "survivor").map((l) => Number(l.time));
    const gaps = at.slice(1).map((t, i) => t - (at[i] as number));
    // Each round waited its floor (timers fire no earlier than asked; a millisecond for the clock's grain).
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(MIN_ASK_AGAIN_DELAY_MS - 1);
  });
});
