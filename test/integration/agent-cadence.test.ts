// A per-agent tick interval (the manifest's tick_interval_ms): the real scheduler, pool and leases.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { startAgent, stopAgent } from "../../src/node/agent-lifecycle.js";
import { startNode, stopAll } from "../../src/testing/index.js";
import { agentWithManifest } from "../helpers/manifest-agent.js";
import { igord } from "../helpers/process.js";
import { startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(stopAllNodes);
afterEach(stopAll);

/** Unix ms of each tick of `agentId` from now on. */
function tickTimes(t: TestNode, agentId: string): number[] {
  const at: number[] = [];
  t.node.scheduler.on("tick", (e: TickEvent) => {
    if (e.agentId === agentId) at.push(e.at);
  });
  return at;
}

const gaps = (at: number[]): number[] => at.slice(1).map((x, i) => x - (at[i] as number));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

describe("per-agent tick interval", () => {
  it("an agent's tick_interval_ms sets its cadence while the others keep the node's --tick-interval", async () => {
    const t = await startTestNode({ "tick-interval": "300ms" });
    const fast = tickTimes(t, "fast");
    const slow = tickTimes(t, "slow");
    await t.node.addAgent({ wasmPath: agentWithManifest(t.dir, "heartbeat", "fast", { tick_interval_ms: 40 }) });
    await t.node.addAgent({ wasmPath: agentWithManifest(t.dir, "heartbeat", "slow", {}) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "slow" && e.tick === 4n, 10_000);
    const fastGaps = gaps(fast);
    const slowGaps = gaps(slow);
    expect(median(fastGaps)).toBeGreaterThanOrEqual(39);
    expect(median(fastGaps)).toBeLessThan(150);
    expect(Math.min(...slowGaps)).toBeGreaterThanOrEqual(299);
    expect(fastGaps.length).toBeGreaterThan(3 * slowGaps.length);
    expect(t.node.scheduler.view("fast")?.tickIntervalMs).toBe(40);
    expect(t.node.scheduler.view("slow")?.tickIntervalMs).toBeNull();
    expect(t.node.agentsJson().find((a) => a.id === "fast")?.tickIntervalMs).toBe(40);
  });

  it("the interval comes from the stored manifest: a restarted node ticks the agent at the same cadence", async () => {
    const t = await startTestNode({ "tick-interval": "5s" });
    await t.node.addAgent({ wasmPath: agentWithManifest(t.dir, "heartbeat", "hb", { tick_interval_ms: 30 }) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "hb" && e.tick === 3n, 5_000);
    await t.stop();
    const t2 = await startTestNode({ "tick-interval": "5s" }, { dir: t.dir, resumeStored: true });
    const first = await t2.waitFor<TickEvent>("tick", (e) => e.agentId === "hb");
    const third = await t2.waitFor<TickEvent>("tick", (e) => e.agentId === "hb" && e.tick === first.tick + 2n, 2_000);
    expect(third.at - first.at).toBeLessThan(1_000); // at the node's 5 s it would take 10 s
    expect(t2.node.scheduler.view("hb")?.tickIntervalMs).toBe(30);
  });

  it("a cadence longer than the lease: the lease is renewed between ticks, never lapses or recovers", async () => {
    // --lease-duration must cover the node's --tick-interval, but an agent may ask for longer: its
    // lease is renewed by the lease sweep while it waits (and while it is hibernated), like any idle agent's.
    // A 1 s lease renewed with 500 ms left and lapsing 1 s past expiry: a loaded machine may stall this
    // process for over a second without the lease lapsing.
    const t = await startTestNode({ "tick-interval": "100ms", "lease-duration": "1s", "lease-grace": "1s", "hibernate-after": "0" });
    await t.node.addAgent({ wasmPath: agentWithManifest(t.dir, "heartbeat", "slow", { tick_interval_ms: 2500 }) });
    // From the first tick on (a short genesis lease can lapse while a loaded machine places the agent).
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "slow" && e.tick === 1n, 5_000);
    const genesis = t.node.scheduler.view("slow")!.lease!;
    const logsBefore = t.logs.lines.length;
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "slow" && e.tick === 3n, 10_000);
    const since = t.logs.lines.slice(logsBefore).filter((l) => l.agent === "slow");
    const lease = t.node.scheduler.view("slow")!.lease!;
    expect(lease.state).toBe("ACTIVE_OWNER");
    expect(lease.epoch.major).toBe(genesis.epoch.major);
    expect(lease.expiresAtMs!).toBeGreaterThan(Date.now());
    expect(since.filter((l) => l.event === "lease_recovered" || l.why === "expired")).toEqual([]);
    // Renewed several times within each 2.5 s interval (every ~0.5–0.6 s: 1 s lease, renewal at half of it).
    expect(since.filter((l) => l.event === "lease_state" && l.why === "renewed").length).toBeGreaterThanOrEqual(6);
    expect(t.node.store.lease("slow")?.epoch.major).toBe(genesis.epoch.major);
  });
});

describe("cadence across restarts, stops and hops", () => {
  const FLAGS = { "tick-interval": "1s", "hibernate-after": "100ms", "checkpoint-interval": "0" };
  /** Timer and clock slack between a tick's commit and the time its next tick was scheduled for. */
  const SLACK_MS = 50;

  it("a restarted node ticks an agent when its cadence says, not an interval after the restart", async () => {
    const t = await startTestNode(FLAGS);
    await t.node.addAgent({ wasmPath: agentWithManifest(t.dir, "heartbeat", "slow", { tick_interval_ms: 3000 }) });
    const first = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "slow" && e.tick === 1n, 10_000);
    await t.stop();
    const t2 = await startTestNode(FLAGS, { dir: t.dir, resumeStored: true });
    const v = t2.node.scheduler.view("slow")!;
    expect(v.tick).toBe(1n);
    // Tick 2 was due 3 s after tick 1.
    expect(v.nextTickAt! - first.at, "ms from tick 1 to the scheduled tick 2").toBeLessThanOrEqual(3000 + SLACK_MS);
  });

  it("an agent at 4 s on a node restarted about every second ticks again within its cadence", async () => {
    let t: TestNode = await startTestNode(FLAGS);
    await t.node.addAgent({ wasmPath: agentWithManifest(t.dir, "heartbeat", "slow", { tick_interval_ms: 4000 }) });
    const first = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "slow" && e.tick === 1n, 10_000);
    let restarts = 0;
    // Each restart waits for the resumed agent to hibernate (its next tick is up to 4 s away) or tick.
    while (Date.now() - first.at < 10_000) {
      await t.stop();
      t = await startTestNode(FLAGS, { dir: t.dir, resumeStored: true });
      restarts++;
      const scheduler = t.node.scheduler;
      await waitUntil(() => {
        const v = scheduler.view("slow");
        return v !== undefined && (v.hibernated || v.tick > 1n);
      }, { emitter: scheduler, event: "tick", pollMs: 5 });
      if (scheduler.view("slow")!.tick > 1n) break;
    }
    expect(restarts).toBeGreaterThan(1);
    expect(Date.now() - first.at, "ms from tick 1 to tick 2").toBeLessThan(4000 + 1000);
    expect(t.node.scheduler.view("slow")!.tick).toBe(2n);
  }, 30_000);

  it("a stopped and started agent keeps its next tick where its cadence put it", async () => {
    const t = await startTestNode(FLAGS);
    await t.node.addAgent({ wasmPath: agentWithManifest(t.dir, "heartbeat", "slow", { tick_interval_ms: 3000 }) });
    const first = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "slow" && e.tick === 1n, 10_000);
    await stopAgent(t.node, "slow");
    // Stopped a while: another agent of the node ticks 5 times at 100 ms meanwhile.
    await t.node.addAgent({ wasmPath: agentWithManifest(t.dir, "heartbeat", "other", { tick_interval_ms: 100 }) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "other" && e.tick === 5n, 10_000);
    await startAgent(t.node, "slow");
    expect(t.node.scheduler.view("slow")!.nextTickAt! - first.at).toBeLessThanOrEqual(3000 + SLACK_MS);
  });

  it("an agent that hops keeps its cadence: the target ticks it an interval after its last tick on the source", async () => {
    const P2P = { ...FLAGS, listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "migration-timeout": "5s", "peer-refresh": "0" };
    const a = await startNode({ flags: P2P });
    const b = await startNode({ flags: P2P });
    await a.node.addAgent({ wasmPath: agentWithManifest(a.config.dataDir, "heartbeat", "slow", { tick_interval_ms: 3000 }) });
    const first = await a.waitFor<TickEvent>("tick", (e) => e.agentId === "slow" && e.tick === 1n, 10_000);
    expect((await a.node.migrate("slow", [b.address])).outcome).toBe("done");
    // Scheduled once the reception is durable.
    await waitUntil(() => b.node.scheduler.view("slow")?.nextTickAt != null, { pollMs: 5 });
    expect(b.node.scheduler.view("slow")!.nextTickAt! - first.at).toBeLessThanOrEqual(3000 + SLACK_MS);
  });

  it("an exported and imported agent keeps its cadence: the importing node ticks it an interval after its last tick", async () => {
    const t = await startTestNode(FLAGS);
    await t.node.addAgent({ wasmPath: agentWithManifest(t.dir, "heartbeat", "slow", { tick_interval_ms: 3000 }) });
    const first = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "slow" && e.tick === 1n, 10_000);
    await t.stop();
    const ex = join(t.dir, "ex");
    const C = join(t.dir, "C");
    expect(igord(["export", "slow", "--out", ex, "--data-dir", t.config.dataDir]).status).toBe(0);
    expect(igord(["import", ex, "--data-dir", join(C, "data")]).status).toBe(0);
    const t2 = await startTestNode(FLAGS, { dir: C, resumeStored: true });
    const started = Date.now();
    const v = t2.node.scheduler.view("slow")!;
    expect(v.tick).toBe(1n);
    // Tick 2 was due 3 s after tick 1, or at once when the export, import and start took longer (a
    // loaded machine); without the tick's time it is due 3 s after the start.
    expect(v.nextTickAt! - Math.max(first.at + 3000, started), "ms past when tick 2 was due").toBeLessThanOrEqual(SLACK_MS);
  });
});
