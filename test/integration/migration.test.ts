// Agents moving between in-process nodes over real libp2p on loopback TCP: state, manifest, DID and
// budget travel; exactly one node owns the agent at a time; every failure path ends with one owner.
// The nodes come from the test kit (igord/testing), as an agent author's would.
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { DB_FILE } from "../../src/store/sqlite-store.js";
import { afterEach, describe, expect, it } from "vitest";
import { parseCheckpoint } from "../../src/checkpoint/codec.js";
import { verifyChain } from "../../src/checkpoint/verify-chain.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { AS_FIXTURES, EXAMPLES, startTestNode, tempDir } from "../helpers/node.js";
import { type InProcessKitNode, startCluster, startNode, stopAll } from "../../src/testing/index.js";
import { waitUntil } from "../helpers/wait.js";
import { igord, igordAsync } from "../helpers/process.js";
import { controlGet } from "../../src/control/client.js";
import { RoguePeer } from "../helpers/rogue.js";
import { BUMPS_ONCE_TICKED, CAPS, watAgent, writeWat } from "../helpers/wat.js";
import type { FrameChannel } from "../../src/p2p/frames.js";
import { hex } from "../../src/hash/bytes.js";
import { ErrorCode, IgordError } from "../../src/errors.js";
import { OPERATOR_STOP, stopAgent } from "../../src/node/agent-lifecycle.js";
import { decodePackage } from "../../src/migration/package.js";
import { EAGER_PACKAGE_BYTES } from "../../src/migration/early-offer.js";

afterEach(stopAll);

const heartbeat = join(EXAMPLES, "heartbeat.wasm");
const survivor = join(EXAMPLES, "survivor.wasm");

// These tests are about how agents move, not whom a node trusts: every node takes agents from any
// peer (the default is --accept-migrations trusted; migration-peers.test.ts covers trust).
const P2P = {
  listen: "/ip4/127.0.0.1/tcp/0",
  "accept-migrations": "any",
  "tick-interval": "10ms",
  "checkpoint-interval": "0",
  "migration-retry-delay": "10ms",
  "migration-timeout": "5s",
  "peer-refresh": "0",
};

type Node = InProcessKitNode;

function p2pNode(flags: Record<string, string> = {}): Promise<Node> {
  return startNode({ flags: { ...P2P, ...flags } });
}

async function p2pNodes(n: number): Promise<Node[]> {
  return (await startCluster(n, { flags: P2P })).nodes;
}

function addr(t: Node): string {
  return t.address;
}

function owner(t: Node, agentId: string): string | undefined {
  return t.lease(agentId)?.state;
}

describe("migration between two nodes", () => {
  // Acceptance 20: A RETIRED with history kept; B owns at major+1 and ticks on from the same tick, counter and budget; lineage verifies.
  it("moves a running agent with its state, DID and budget; the source retires it and the target ticks it", async () => {
    const [a, b] = (await p2pNodes(2)) as [Node, Node];
    const before = await a.node.addAgent({ wasmPath: survivor });
    await a.waitForTick("survivor", 5n);
    const r = await a.migrate("survivor", b);
    expect(r.outcome).toBe("done");
    expect(r.attempts).toBe(1);
    // The record counts the same one attempt (its INSERT counted the preflight's first).
    expect(a.node.store.migrations({ agentId: "survivor" })[0]).toMatchObject({ id: r.id, state: "done", attempts: 1 });
    expect(r.epoch).toEqual({ major: 1n, generation: 0n });
    // The peer and the address the connection actually used.
    expect(r.peer).toBe(b.node.migration!.peerId);
    expect(r.address).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/);
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
    // Same counter and budget: B's first tick starts from exactly what A handed off.
    expect(moved.budget + moved.cost).toBe(sourceHead.budget);
    // The target's next checkpoint carries the new epoch, and the lineage across A and B verifies.
    await b.node.scheduler.pause("survivor", "test");
    const cp = parseCheckpoint(b.node.store.head("survivor")!.blob);
    expect(cp.epochMajor).toBe(1n);
    const chain = [...b.node.store.history("survivor")].map((c) => ({ name: `seq ${c.seq}`, bytes: c.blob }));
    const report = verifyChain(chain, b.node.store.lineageEvents("survivor"));
    expect(report.reasons).toEqual([]);
    expect(report.valid).toBe(true);
    expect(report.did).toBe(before.did);
    // The event logs travelled too: B's store alone re-executes the whole history, A's ticks included.
    await b.stop();
    const audit = igord(["verify", "--replay", "--agent", "survivor", "--data-dir", b.config.dataDir]);
    expect(audit.stderr).toBe("");
    expect(audit.stdout).toMatch(/replay: VALID/);
    expect(audit.stdout).toMatch(/replayed \d+ ticks \(1\.\.\d+\) from the checkpoint at tick 0/);
    expect(audit.status).toBe(0);
  });
});

describe("migration across several nodes", () => {
  // Acceptance 21: state, manifest, DID kept at every hop; budget never created, never negative.
  it("A → B → C → A keeps state, manifest and DID; the budget is never created and never negative", async () => {
    const nodes = await p2pNodes(3);
    const [a, b, c] = nodes as [Node, Node, Node];
    const born = await a.node.addAgent({ wasmPath: survivor });
    const manifest = a.node.store.agent("survivor")!.manifest;
    let budget = born.budget;
    let tick = 0n;
    const hops: [Node, Node][] = [[a, b], [b, c], [c, a]];
    for (const [i, [from, to]] of hops.entries()) {
      await from.waitForTick("survivor", tick + 3n);
      const r = await from.migrate("survivor", to);
      expect(r.outcome).toBe("done");
      expect(r.epoch?.major).toBe(BigInt(i + 1));
      const head = to.node.store.head("survivor")!;
      expect(head.tick).toBeGreaterThan(tick);
      expect(head.budget).toBeLessThanOrEqual(budget);
      expect(head.budget).toBeGreaterThanOrEqual(0n);
      budget = head.budget;
      tick = head.tick;
      const v = to.node.scheduler.view("survivor")!;
      expect(v.status).toBe("running");
      expect(v.did).toBe(born.did);
      expect(to.node.store.agent("survivor")!.manifest).toBe(manifest);
      expect(owner(from, "survivor")).toBe("RETIRED");
    }
    // Back on A: one owner, A's history continues the whole lineage, receipts from every node.
    expect(nodes.map((n) => owner(n, "survivor"))).toEqual(["ACTIVE_OWNER", "RETIRED", "RETIRED"]);
    expect(a.lineage("survivor").report).toMatchObject({ valid: true, reasons: [] });
    expect(a.node.store.lease("survivor")!.epoch).toEqual({ major: 3n, generation: 0n });
    const receiptNodes = new Set(a.node.store.receipts("survivor").map((r) => r.nodeId));
    expect(receiptNodes.size).toBe(3);
    const moved = await a.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick > tick);
    expect(moved.budget).toBeLessThanOrEqual(budget);
  });

  // Acceptance 21: state and capabilities at every hop.
  it("A → B → C → A: at every hop the target's head checkpoint is the source's head at the handoff, hash and state, and the capabilities travel", async () => {
    const nodes = await p2pNodes(3);
    const [a, b, c] = nodes as [Node, Node, Node];
    await a.node.addAgent({ wasmPath: survivor });
    const manifest = a.node.store.agent("survivor")!.manifest;
    expect(Object.keys((JSON.parse(manifest) as { capabilities: object }).capabilities).length).toBeGreaterThan(0);
    const hops: [Node, Node][] = [[a, b], [b, c], [c, a]];
    const states: string[] = [];
    let tick = 0n;
    for (const [from, to] of hops) {
      await from.waitForTick("survivor", tick + 3n);
      const r = await from.migrate("survivor", to);
      expect(r.outcome).toBe("done");
      // With checkpoints only at stop, neither head moves after the handoff until the next stop.
      const sent = from.node.store.head("survivor")!;
      const got = to.node.store.head("survivor")!;
      expect(hex(got.hash)).toBe(hex(sent.hash));
      expect(got.tick).toBe(sent.tick);
      expect(got.budget).toBe(sent.budget);
      const state = hex(parseCheckpoint(got.blob).state);
      expect(state).toBe(hex(parseCheckpoint(sent.blob).state));
      states.push(state);
      // The manifest, and with it the capabilities it grants, arrives unchanged.
      expect(to.node.store.agent("survivor")!.manifest).toBe(manifest);
      tick = got.tick;
    }
    // The agent ticked between hops: each handoff carried a different state.
    expect(new Set(states).size).toBe(3);
  });

  // Acceptance 22: twenty round trips, final state exact, at most one node ticking at any moment, nothing left behind.
  it("20 round trips with a tick between each hop: every tick runs exactly once, on the node that owns the agent, never while the other node ticks it, and nothing is left on the idle node", async () => {
    const [a, b] = (await p2pNodes(2)) as [Node, Node];
    // Each tick as [start, end] on the one clock both in-process nodes share: its commit time less its run time.
    const ran: { node: "a" | "b"; tick: bigint; owner: string | undefined; start: number; end: number }[] = [];
    for (const [name, t] of [["a", a], ["b", b]] as const) {
      t.node.scheduler.on("tick", (e) => {
        if (e.agentId === "heartbeat") ran.push({ node: name, tick: e.tick, owner: t.node.store.lease("heartbeat")?.state, start: e.at - Number(e.elapsedNs) / 1e6, end: e.at });
      });
    }
    await a.node.addAgent({ wasmPath: heartbeat });
    let holder = a;
    let other = b;
    for (let hop = 0; hop < 40; hop++) {
      const at = holder.node.scheduler.view("heartbeat")?.tick;
      if (at === undefined) throw new Error(`hop ${hop}: not running on the holder`);
      await holder.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick > at);
      expect((await holder.migrate("heartbeat", other)).outcome).toBe("done");
      [holder, other] = [other, holder];
    }
    const last = ran.at(-1)!.tick; // read once: `ran` grows with every tick
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick > last);
    await a.node.scheduler.pause("heartbeat", "test");
    const ticks = ran.map((r) => r.tick);
    expect(ticks).toEqual(ticks.map((_, i) => BigInt(i + 1))); // each tick once, in order, none lost
    expect(ran.every((r) => r.owner === "ACTIVE_OWNER")).toBe(true); // only the owner ever ticked
    expect(new Set(ran.map((r) => r.node))).toEqual(new Set(["a", "b"]));
    // At every moment at most one node ticks it: the ticking node changes once per hop and never
    // back in between, and each node's last tick before a hop ended before the other's first began.
    const switches = ran.flatMap((r, i) => (i > 0 && ran[i - 1]!.node !== r.node ? [[ran[i - 1]!, r] as const] : []));
    expect(switches).toHaveLength(40);
    for (const [before, after] of switches) expect(before.end, `tick ${before.tick} on ${before.node}, tick ${after.tick} on ${after.node}`).toBeLessThanOrEqual(after.start);
    // The final state is exact: the stored head is the last tick, and B holds nothing running.
    expect(a.node.store.head("heartbeat")!.tick).toBe(ticks.at(-1));
    expect(b.node.scheduler.view("heartbeat")).toBeUndefined();
    expect(b.node.pool.has("heartbeat")).toBe(false);
    expect(b.node.store.lease("heartbeat")?.state).toBe("RETIRED");
  });

  it("20 rapid round trips between two nodes end with one owner at epoch 40", async () => {
    const [a, b] = (await p2pNodes(2)) as [Node, Node];
    await a.node.addAgent({ wasmPath: heartbeat });
    const started = performance.now();
    for (let i = 0; i < 20; i++) {
      expect((await a.migrate("heartbeat", b)).outcome).toBe("done");
      expect((await b.migrate("heartbeat", a)).outcome).toBe("done");
    }
    const ms = performance.now() - started;
    expect(owner(a, "heartbeat")).toBe("ACTIVE_OWNER");
    expect(owner(b, "heartbeat")).toBe("RETIRED");
    expect(a.node.store.lease("heartbeat")!.epoch.major).toBe(40n);
    expect(a.node.scheduler.view("heartbeat")?.status).toBe("running");
    expect(b.node.scheduler.view("heartbeat")).toBeUndefined();
    console.log(`20 round trips: ${ms.toFixed(0)} ms`);
  });

  it("an agent imported from an export migrates on: it arrives, ticks and verify --replay on the target is VALID", async () => {
    const a = await startTestNode({ "tick-interval": "10ms", "checkpoint-interval": "0" });
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 3n);
    await a.stop();
    const ex = join(a.dir, "export");
    expect(igord(["export", "heartbeat", "--out", ex, "--data-dir", join(a.dir, "data")]).status).toBe(0);
    const bDir = tempDir();
    const imported = igord(["import", ex, "--data-dir", join(bDir, "data"), "--control", "off"]);
    expect(imported.status).toBe(0);
    const b = await startTestNode(P2P, { dir: bDir, resumeStored: true });
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat");
    const kinds = b.node.store.lineageEvents("heartbeat").map((e) => e.kind);
    expect(kinds).toContain("import");
    const c = await p2pNode();
    const r = await b.node.migrate("heartbeat", [addr(c)]);
    expect(r.error).toBeNull();
    expect(r.outcome).toBe("done");
    const head = c.node.store.head("heartbeat")!;
    await c.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick > head.tick);
    expect(c.node.store.lineageEvents("heartbeat").map((e) => e.kind)).toEqual(kinds);
    await c.stop();
    const verified = igord(["verify", "--replay", "--agent", "heartbeat", "--data-dir", join(c.dir, "data")]);
    expect(verified.stdout).toMatch(/^VALID/);
    expect(verified.status).toBe(0);
  });
});

describe("migration failures", () => {
  // Acceptance 23: one attempt, no backoff; with no other candidate the source keeps owning and ticking.
  it("a target without the agent's capabilities is refused before the agent stops: one attempt, and the agent keeps ticking at the source", async () => {
    const a = await p2pNode();
    const b = await p2pNode({ capabilities: "log" });
    await a.node.addAgent({ wasmPath: survivor });
    const r = await a.node.migrate("survivor", [addr(b)]);
    expect(r.outcome).toBe("reverted");
    expect(r.attempts).toBe(1);
    expect(r.error?.code).toBe("CAPABILITY_NOT_OFFERED");
    expect(owner(a, "survivor")).toBe("ACTIVE_OWNER");
    expect(a.node.store.lease("survivor")!.epoch.major).toBe(0n);
    expect(b.node.store.agent("survivor")).toBeUndefined();
    const after = a.node.scheduler.view("survivor")!.tick;
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick > after);
    // Known from B's price answer before the agent stopped: it never stopped ticking, and B was never offered it.
    expect(a.logs.events("migration_attempt_failed").map((l) => [l.stage, l.code])).toEqual([["preflight", "CAPABILITY_NOT_OFFERED"]]);
    expect(a.logs.events("agent_detached", "survivor")).toEqual([]);
    expect(await b.node.metrics.render()).not.toMatch(/igord_migration_refusals_total\{/);
  });

  // Acceptance 24: attempts spaced by the delay, doubling, then success on the fallback.
  it("retries an unreachable target with backoff, then falls back to the next one", async () => {
    const dead = await p2pNode();
    const deadAddr = addr(dead);
    await dead.stop();
    const a = await p2pNode({ "migration-retries": "3", "migration-retry-delay": "60ms" });
    const c = await p2pNode();
    await a.node.addAgent({ wasmPath: heartbeat });
    const r = await a.node.migrate("heartbeat", [deadAddr, addr(c)]);
    // Attempts spaced by the delay, doubling: ≥ 60 ms, then ≥ 120 ms.
    const times = a.logs.events("migration_attempt_failed").map((l) => l.time as number);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(60);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(120);
    expect(r.outcome).toBe("done");
    expect(r.target).toBe(addr(c));
    expect(r.attempts).toBe(4);
    expect(r.fallbacks).toBe(1);
    expect(a.node.store.migrations({ agentId: "heartbeat" })[0]).toMatchObject({ id: r.id, state: "done", attempts: 4, fallbacks: 1 });
    expect(owner(c, "heartbeat")).toBe("ACTIVE_OWNER");
    const metrics = await a.node.metrics.render();
    expect(metrics).toMatch(/igord_migration_retries_total 2/);
    expect(metrics).toMatch(/igord_migration_fallbacks_total 1/);
    const warnings = a.logs.events("migration_attempt_failed").map((l) => l.code);
    expect(warnings).toEqual(["MIGRATION_DIAL_FAILED", "MIGRATION_DIAL_FAILED", "MIGRATION_DIAL_FAILED"]);
  });

  // Acceptance 24: all targets down: reverted, the agent keeps ticking.
  it("with every target down the handoff is reverted and the agent keeps ticking at the same epoch", async () => {
    const d1 = await p2pNode();
    const d2 = await p2pNode();
    const targets = [addr(d1), addr(d2)];
    await d1.stop();
    await d2.stop();
    const a = await p2pNode({ "migration-retries": "2", "migration-retry-delay": "150ms" });
    await a.node.addAgent({ wasmPath: heartbeat });
    const epoch = a.node.store.lease("heartbeat")!.epoch;
    const before = a.node.scheduler.view("heartbeat")!.tick;
    const r = await a.node.migrate("heartbeat", targets);
    // The targets were asked before the agent stopped: it kept ticking through every retry.
    expect(a.logs.events("agent_detached", "heartbeat")).toEqual([]);
    // (How many ticks fit the retries' backoff depends on the machine's load: at least one did.)
    expect(a.node.scheduler.view("heartbeat")!.tick).toBeGreaterThan(before);
    expect(r.outcome).toBe("reverted");
    expect(r.attempts).toBe(4);
    expect(r.error?.code).toBe("MIGRATION_DIAL_FAILED");
    const lease = a.node.store.lease("heartbeat")!;
    expect(lease.state).toBe("ACTIVE_OWNER");
    expect(lease.epoch.major).toBe(epoch.major);
    expect(lease.handoff).toBeNull();
    const after = a.node.scheduler.view("heartbeat")!.tick;
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick > after);
    expect(a.node.store.migrations({ agentId: "heartbeat" })[0]!.state).toBe("failed");
  });

  // Acceptance 25: lost confirmation → RECOVERY_REQUIRED, resolved by asking the target.
  it("a lost confirmation leaves the source in RECOVERY_REQUIRED until the target says it owns the agent: then RETIRED", async () => {
    const a = await p2pNode();
    const b = await startNode({ flags: P2P, migrationHooks: { beforeConfirm: (_id, abort) => abort(new Error("confirmation lost")) } });
    await a.node.addAgent({ wasmPath: heartbeat });
    const r = await a.node.migrate("heartbeat", [addr(b)]);
    expect(r.outcome).toBe("recovery");
    expect(["RECOVERY_REQUIRED", "RETIRED"]).toContain(owner(a, "heartbeat"));
    await a.node.migration!.resolved("heartbeat");
    expect(owner(a, "heartbeat")).toBe("RETIRED");
    expect(owner(b, "heartbeat")).toBe("ACTIVE_OWNER");
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat");
    expect(a.node.scheduler.view("heartbeat")).toBeUndefined();
    expect(a.logs.events("handoff_resolved")[0]?.outcome).toBe("retired");
    expect(await a.node.metrics.render()).toMatch(/igord_migration_ambiguous_total 1/);
  });

  it("a refusal whose reason is longer than a frame reaches the source cut, with its code: the source takes its agent back at once, no status query", async () => {
    const a = await p2pNode();
    const b = await startNode({
      flags: P2P,
      migrationHooks: {
        // A typed refusal late in admission, its message 3 MiB (a frame carries at most 1 MiB).
        beforeStore: () => {
          throw new IgordError(ErrorCode.MigrationLineage, `refused: ${"x".repeat(3 * 1024 * 1024)}`);
        },
      },
    });
    await a.node.addAgent({ wasmPath: heartbeat });
    const r = await a.node.migrate("heartbeat", [addr(b)]);
    expect(r.error?.code).toBe("MIGRATION_LINEAGE");
    expect(r.outcome).toBe("reverted");
    expect(r.error!.message.length).toBeLessThan(4096);
    expect(owner(a, "heartbeat")).toBe("ACTIVE_OWNER");
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
  });

  it("igord stop while the agent is handed off is refused, so the hop's revert does not silently run it again", async () => {
    const a = await p2pNode();
    let stopDuringHop: Promise<unknown> | null = null;
    const b = await startNode({
      flags: P2P,
      migrationHooks: {
        // The source has detached the agent and recorded the handoff: the operator stops it now.
        beforeStore: () => {
          stopDuringHop ??= stopAgent(a.node, "heartbeat").then(
            (summary) => ({ summary }),
            (e: unknown) => ({ code: (e as IgordError).code }),
          );
          throw new IgordError(ErrorCode.MigrationLineage, "refused after the handoff");
        },
      },
    });
    await a.node.addAgent({ wasmPath: heartbeat });
    const r = await a.node.migrate("heartbeat", [addr(b)]);
    expect(r.outcome).toBe("reverted");
    // Before: the stop answered "stopped" and stored operator_stop, then the revert resumed the agent.
    expect(await stopDuringHop).toEqual({ code: ErrorCode.MigrationInProgress });
    expect(a.node.scheduler.view("heartbeat")?.status).toBe("running");
    expect(a.node.store.agent("heartbeat")?.reason).not.toBe(OPERATOR_STOP);
    // Once the hop is over, the stop is taken and holds.
    await stopAgent(a.node, "heartbeat");
    expect(a.node.scheduler.view("heartbeat")?.status).toBe("stopped");
    expect(a.node.store.agent("heartbeat")).toMatchObject({ status: "stopped", reason: OPERATOR_STOP });
  });

  it("a target that fails after receiving everything is asked, says it does not hold the agent, and the source takes it back at a new epoch", async () => {
    const a = await p2pNode();
    const b = await startNode({
      flags: P2P,
      migrationHooks: {
        // Everything is in (the package, the source's `durable`); nothing is stored yet.
        beforeStore: (_id, abort) => {
          abort(new Error("target crashed"));
          throw new Error("target crashed mid-admission");
        },
      },
    });
    await a.node.addAgent({ wasmPath: heartbeat });
    const r = await a.node.migrate("heartbeat", [addr(b)]);
    expect(r.outcome).toBe("recovery");
    await a.node.migration!.resolved("heartbeat");
    const lease = a.node.store.lease("heartbeat")!;
    expect(lease.state).toBe("ACTIVE_OWNER");
    expect(lease.epoch).toEqual({ major: 1n, generation: 0n });
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    const after = a.node.scheduler.view("heartbeat")!.tick;
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick > after);
    // The target fenced the old epoch: the same package can never land there now.
    expect(b.node.store.fence("heartbeat", a.node.store.agent("heartbeat")!.did)).toEqual({ major: 0n, generation: 0n });
  });

  it("a node whose capabilities change between migrations admits by the set it has when the offer arrives", async () => {
    const [a, b] = (await p2pNodes(2)) as [Node, Node];
    await a.node.addAgent({ wasmPath: survivor });
    await a.node.addAgent({ wasmPath: heartbeat });
    b.node.capabilities.replace(["log"]);
    const refused = await a.node.migrate("survivor", [addr(b)]);
    expect(refused.error?.code).toBe("CAPABILITY_NOT_OFFERED");
    b.node.capabilities.replace(["clock", "log", "rand"]);
    // Both arrive while the set changes again: each handshake sees one consistent set.
    const both = await Promise.all([a.node.migrate("survivor", [addr(b)]), a.node.migrate("heartbeat", [addr(b)])]);
    b.node.capabilities.replace(["clock", "log"]);
    expect(both.map((r) => r.outcome)).toEqual(["done", "done"]);
    expect(b.node.scheduler.view("survivor")?.status).toBe("running");
    // Now without rand: survivor cannot come back to B after it leaves.
    expect((await b.node.migrate("survivor", [addr(a)])).outcome).toBe("done");
    expect((await a.node.migrate("survivor", [addr(b)])).error?.code).toBe("CAPABILITY_NOT_OFFERED");
  });
});

describe("discovery, candidates and admission policy", () => {
  it("learns peers from --bootstrap, their price and capabilities, and migrates to the best candidate without --to", async () => {
    const cheapNoRand = await p2pNode({ price: "0.00001", capabilities: "clock,log" });
    const dear = await p2pNode({ price: "5" });
    const good = await p2pNode({ price: "0.0001" });
    const a = await p2pNode({ bootstrap: [addr(cheapNoRand), addr(dear), addr(good)].join(","), "peer-refresh": "100ms" });
    await a.node.addAgent({ wasmPath: survivor }); // clock, rand, log; max_price_per_second 1.0
    const registry = a.node.migration!.peers;
    const ids = [cheapNoRand, dear, good].map((n) => n.node.migration!.peerId);
    await waitUntil(() => ids.every((id) => registry.get(id)?.price !== null && registry.get(id)?.price !== undefined), { what: "price answers from every bootstrap peer" });
    expect(registry.get(ids[0]!)?.capabilities).toEqual(["clock", "log"]);
    const r = await a.node.migrate("survivor");
    expect(r.outcome).toBe("done");
    expect(r.target).toBe(ids[2]);
    expect(r.attempts).toBe(1);
    expect(owner(good, "survivor")).toBe("ACTIVE_OWNER");
    // A bare peer id is enough once a node knows the peer (identify told B where A listens).
    const back = await good.node.migrate("survivor", [a.node.migration!.peerId]);
    expect(back).toMatchObject({ outcome: "done", target: a.node.migration!.peerId });
  });

  it("--mdns discovers a node on the local network and learns its price and capabilities", async () => {
    const flags = { listen: "/ip4/0.0.0.0/tcp/0", mdns: "true", "peer-refresh": "0", "accept-migrations": "any" };
    const a = await startNode({ flags });
    const b = await startNode({ flags: { ...flags, price: "0.002", capabilities: "clock,log" } });
    const id = b.node.migration!.peerId;
    await waitUntil(() => a.node.migration!.peers.get(id)?.price != null, { what: "B found through mDNS", timeoutMs: 10_000 });
    // Found by mDNS, so a candidate for a migration without --to (a peer that only connected is not).
    expect(a.node.migration!.peers.get(id)).toMatchObject({ price: 2000n, capabilities: ["clock", "log"], failures: 0, vouched: true });
  });

  it("--accept-migrations trusted refuses other peers; --max-agents refuses politely so the next candidate is tried", async () => {
    const a = await p2pNode();
    const closed = await p2pNode({ "accept-migrations": "trusted", "trusted-peer": "12D3KooWLGt6zpvWHp6qj6DDRcHQyTxkbv5qH7XPEdAaXo9q3ZK8" });
    const full = await p2pNode({ "max-agents": "1" });
    const open = await p2pNode();
    await full.node.addAgent({ wasmPath: heartbeat });
    await a.node.addAgent({ wasmPath: survivor });
    const r = await a.node.migrate("survivor", [addr(closed), addr(full), addr(open)]);
    expect(r.outcome).toBe("done");
    expect(r.target).toBe(addr(open));
    expect(r.attempts).toBe(3);
    expect(a.logs.events("migration_attempt_failed").map((l) => l.code)).toEqual(["MIGRATION_UNTRUSTED_PEER", "MIGRATION_NODE_FULL"]);
    expect(closed.node.store.agent("survivor")).toBeUndefined();
    expect(full.node.store.agent("survivor")).toBeUndefined();
  });
});

describe("side effects across a handoff", () => {
  it("every tick's emitted message is published exactly once, by whichever node owned the agent at that tick", async () => {
    const dir = tempDir();
    copyFileSync(join(AS_FIXTURES, "emitter.wasm"), join(dir, "emitter.wasm"));
    writeFileSync(join(dir, "emitter.manifest.json"), JSON.stringify({ capabilities: { emit: { version: 1 } } }));
    const [a, b] = (await p2pNodes(2)) as [Node, Node];
    await a.node.addAgent({ wasmPath: join(dir, "emitter.wasm") });
    await a.waitForTick("emitter", 5n);
    expect((await a.migrate("emitter", b)).outcome).toBe("done");
    await b.waitForTick("emitter", 10n);
    await b.node.scheduler.pause("emitter", "test");
    const fromA = a.outbox("emitter");
    const fromB = b.outbox("emitter");
    expect(fromA.every((m) => m.epochMajor === 0n)).toBe(true);
    expect(fromB.every((m) => m.epochMajor === 1n)).toBe(true);
    const all = [...fromA, ...fromB].map((m) => [m.tick, m.text] as const);
    const ticks = all.map(([t]) => t);
    expect(new Set(ticks).size).toBe(ticks.length); // no tick published twice
    expect(ticks).toEqual(ticks.map((_, i) => BigInt(i + 1))); // none missing
    expect(all.every(([t, s]) => s === `tick ${t}`)).toBe(true);
    expect(fromA.at(-1)!.tick + 1n).toBe(fromB[0]!.tick);
  });
});

describe("migration records", () => {
  it("a record stuck in a non-terminal state times out at start; finished ones are pruned after --migration-retention", async () => {
    const first = await p2pNode();
    const store = first.node.store;
    const stuck = store.createMigration({ agentId: "ghost", direction: "out", peer: "/ip4/127.0.0.1/tcp/1/p2p/x", state: "transferring" });
    const old = store.createMigration({ agentId: "ghost", direction: "in", peer: "x", state: "done" });
    const recent = store.createMigration({ agentId: "ghost", direction: "in", peer: "x", state: "failed" });
    // Age two of them by hand, as a long downtime would.
    const db = new Database(join(first.config.dataDir, DB_FILE));
    db.prepare("UPDATE migrations SET updated_at = ? WHERE id IN (?, ?)").run(Date.now() - 3_600_000, stuck, old);
    db.close();
    await first.stop();
    const again = await startTestNode({ ...P2P, "migration-timeout": "1m", "migration-retention": "30m" }, { dir: first.dir });
    const rows = again.node.store.migrations({ agentId: "ghost" });
    expect(rows.map((r) => r.id).sort()).toEqual([stuck, recent].sort());
    const timedOut = rows.find((r) => r.id === stuck)!;
    expect(timedOut.state).toBe("failed");
    expect(timedOut.error?.code).toBe("MIGRATION_TIMEOUT");
    expect(timedOut.at.transferring).toBeDefined();
    expect(timedOut.at.failed).toBeDefined();
  });
});

describe("a handoff whose last tick never ends", () => {
  it("the migration fails with AGENT_NOT_RUNNING once the hung tick is reaped, and leaves nothing in progress", async () => {
    const a = await p2pNode({ "tick-timeout": "300ms" });
    const b = await p2pNode();
    const hangs = await writeWat(join(a.dir, "wasm"), "hangs", watAgent({ onTick: "(if (i32.ge_u (global.get $ticks) (i32.const 3)) (then (loop $spin (br $spin))))" }), CAPS());
    await a.node.addAgent({ wasmPath: hangs });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "hangs" && e.tick === 2n);
    await waitUntil(() => a.node.pool.stats().stalled > 0, { what: "the third tick to be stuck in its worker" });
    // The third tick spins; the handoff waits for it until the watchdog reaps it.
    const r = a.node.migrate("hangs", [addr(b)]);
    await expect(r).rejects.toMatchObject({ code: "AGENT_NOT_RUNNING" });
    await expect(a.node.migrate("hangs", [addr(b)])).rejects.toMatchObject({ code: "AGENT_NOT_RUNNING" });
    expect(a.node.store.migrations({ agentId: "hangs" }).every((m) => m.state === "failed")).toBe(true);
    expect(a.node.store.lease("hangs")?.state).toBe("ACTIVE_OWNER");
    expect(b.node.store.agent("hangs")).toBeUndefined();
  });
});

describe("an unconfirmed handoff while the target does not answer", () => {
  it("igord recover takes the agent back when the operator knows the target is gone; the status queries stop", async () => {
    const a = await p2pNode({ control: "127.0.0.1:0", "migration-max-delay": "50ms" });
    const target = await RoguePeer.start();
    try {
      await a.node.addAgent({ wasmPath: heartbeat });
      expect((await a.node.migrate("heartbeat", [await target.swallow()])).outcome).toBe("recovery");
      await waitUntil(() => a.logs.events("handoff_status_unreachable").length >= 1, { what: "a status query that went unanswered" });
      const { host, port } = a.node.controlAddress!;
      // Not igord(): the CLI asks this process's node to start the agent, which must be free to answer.
      const r = await igordAsync(["recover", "heartbeat", "--reason", "target decommissioned", "--data-dir", a.config.dataDir, "--control", `${host}:${port}`]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/RECOVERY_REQUIRED \(0,0\) -> ACTIVE_OWNER \(1,0\) \(handoff to .* abandoned\)/);
      await a.node.migration!.resolved("heartbeat"); // the loop sees the new lease and ends
      await waitUntil(() => a.node.scheduler.view("heartbeat")?.status === "running", { what: "the agent running here again" });
      expect(a.node.store.lease("heartbeat")).toMatchObject({ state: "ACTIVE_OWNER", epoch: { major: 1n } });
      expect(a.node.store.lineageEvents("heartbeat").at(-1)).toMatchObject({ kind: "recovery", reason: "recover: target decommissioned" });
    } finally {
      await target.stop();
    }
  });

  it("shows as handoff_unresolved, runs nowhere, and is settled by the target's answer", async () => {
    const a = await p2pNode({ control: "127.0.0.1:0", "migration-max-delay": "50ms" });
    const target = await RoguePeer.start();
    try {
      const to = await target.swallow();
      await a.node.addAgent({ wasmPath: heartbeat });
      const r = await a.node.migrate("heartbeat", [to]);
      expect(r).toMatchObject({ outcome: "recovery", attempts: 1 });
      // The target does not answer status queries yet: the source keeps asking, and shows why.
      const agents = (await controlGet(a.node.controlAddress!, a.config.dataDir, "/v1/agents")) as { agents: { id: string; status: string; lease: { state: string } }[] };
      expect(agents.agents.find((x) => x.id === "heartbeat")).toMatchObject({ status: "handoff_unresolved", lease: { state: "RECOVERY_REQUIRED" } });
      expect(a.node.scheduler.view("heartbeat")).toBeUndefined(); // it runs nowhere meanwhile
      await waitUntil(() => a.logs.events("handoff_status_unreachable").length >= 2, { what: "repeated status queries" });
      // The target answers that it never stored it: the source takes it back at a new epoch.
      await target.answerStatus("not_owned");
      await a.node.migration!.resolved("heartbeat");
      expect(a.node.store.lease("heartbeat")).toMatchObject({ state: "ACTIVE_OWNER", epoch: { major: 1n, generation: 0n } });
      const after = a.node.scheduler.view("heartbeat")!.tick;
      await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick > after);
    } finally {
      await target.stop();
    }
  });
});

describe("an unconfirmed handoff across a restart of the source", () => {
  it("still shows as handoff_unresolved, with its lease, not as quarantined by the load the handoff refused", async () => {
    const a = await p2pNode({ control: "127.0.0.1:0", "migration-max-delay": "50ms" });
    const target = await RoguePeer.start();
    try {
      await a.node.addAgent({ wasmPath: heartbeat });
      expect((await a.node.migrate("heartbeat", [await target.swallow()])).outcome).toBe("recovery");
      await a.restart();
      // The start asks the target again (it does not answer) and does not run the agent meanwhile.
      await waitUntil(() => a.logs.events("handoff_status_unreachable").length >= 1, { what: "a status query after the restart" });
      const agents = (await controlGet(a.node.controlAddress!, a.config.dataDir, "/v1/agents")) as { agents: { id: string; status: string }[] };
      expect(agents.agents.filter((x) => x.id === "heartbeat")).toEqual([expect.objectContaining({ status: "handoff_unresolved", lease: expect.objectContaining({ state: "RECOVERY_REQUIRED" }) })]);
      expect(a.node.scheduler.view("heartbeat")).toBeUndefined();
    } finally {
      await target.stop();
    }
  });
});

// A source keeps the migrate stream of a migration that went through and sends its next migration
// to the same peer on it; a kept stream the target dropped is replaced without costing an attempt.
/** Every migrate stream a node is served, as its target. */
function incomingStreams(t: Node): FrameChannel[] {
  const seen: FrameChannel[] = [];
  const target = (t.node.migration as unknown as { incoming: { onMigrate: (ch: FrameChannel, peer: string) => Promise<void> } }).incoming;
  const serve = target.onMigrate.bind(target);
  target.onMigrate = (ch, peer) => {
    seen.push(ch);
    return serve(ch, peer);
  };
  return seen;
}

describe("migrate streams", () => {
  it("migrations to the same peer go over one stream while they go through, each direction its own", async () => {
    const [a, b] = (await p2pNodes(2)) as [Node, Node];
    const intoA = incomingStreams(a);
    const intoB = incomingStreams(b);
    await a.node.addAgent({ wasmPath: heartbeat });
    for (let i = 0; i < 4; i++) {
      expect((await a.migrate("heartbeat", b)).outcome).toBe("done");
      expect((await b.migrate("heartbeat", a)).outcome).toBe("done");
    }
    expect(intoB).toHaveLength(1);
    expect(intoA).toHaveLength(1);
    expect(a.node.store.lease("heartbeat")?.epoch.major).toBe(8n);
    expect(a.node.scheduler.view("heartbeat")?.status).toBe("running");
  });

  it("a kept stream the target dropped is replaced by a new one: the migration takes one attempt", async () => {
    const [a, b] = (await p2pNodes(2)) as [Node, Node];
    const intoB = incomingStreams(b);
    await a.node.addAgent({ wasmPath: heartbeat });
    expect((await a.migrate("heartbeat", b)).outcome).toBe("done");
    expect((await b.migrate("heartbeat", a)).outcome).toBe("done");
    // B resets the stream A kept for its next migration to B.
    intoB[0]!.abort(new Error("dropped by the target"));
    const r = await a.migrate("heartbeat", b);
    expect(r).toMatchObject({ outcome: "done", attempts: 1 });
    expect(intoB).toHaveLength(2);
    expect(b.node.store.lease("heartbeat")?.state).toBe("ACTIVE_OWNER");
  });
});

describe("attempts", () => {
  it("a hop that goes through at once is one attempt: in its result, its migration record and igord_migration_attempts_total", async () => {
    const [a, b] = (await p2pNodes(2)) as [Node, Node];
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 2n);
    const r = await a.migrate("heartbeat", b);
    expect(r).toMatchObject({ outcome: "done", attempts: 1 });
    expect(a.node.store.migrations({ agentId: "heartbeat" })[0]).toMatchObject({ direction: "out", state: "done", attempts: 1 });
    const text = await a.node.metrics.registry.getSingleMetricAsString("igord_migration_attempts_total");
    expect(text).toContain('igord_migration_attempts_total{direction="out"} 1');
  });
});

describe("a small package goes out with its announcement", () => {
  it("the source sends a package of at most EAGER_PACKAGE_BYTES without waiting for transfer_reply; a target that reads it first gets all of it and confirms", async () => {
    const a = await p2pNode({ "migration-timeout": "3s", "migration-retries": "1" });
    const r = await RoguePeer.start();
    try {
      const target = await r.answerTransferAfterPackage({ ok: true });
      await a.node.addAgent({ wasmPath: heartbeat });
      await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 2n);
      const result = await a.node.migrate("heartbeat", [target.addr]);
      expect(result).toMatchObject({ outcome: "done", attempts: 1 });
      const pkg = decodePackage(await target.got);
      expect(pkg.agentId).toBe("heartbeat");
      expect(pkg.checkpointHash).toBe(hex(a.node.store.head("heartbeat")!.hash));
      expect((await target.got).byteLength).toBeLessThanOrEqual(EAGER_PACKAGE_BYTES);
      expect(owner(a, "heartbeat")).toBe("RETIRED");
    } finally {
      await r.stop();
    }
  });

  it("a transfer refused after the package arrived ahead is a refusal, not an ambiguous handoff: the agent keeps ticking at the source, no status query", async () => {
    const a = await p2pNode({ "migration-timeout": "3s", "migration-retries": "1" });
    const r = await RoguePeer.start();
    try {
      const target = await r.answerTransferAfterPackage({ ok: false, code: "MIGRATION_PACKAGE_TOO_LARGE" });
      await a.node.addAgent({ wasmPath: heartbeat });
      await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 2n);
      const epoch = a.node.store.lease("heartbeat")!.epoch;
      const result = await a.node.migrate("heartbeat", [target.addr]);
      expect(result).toMatchObject({ outcome: "reverted", error: { code: "MIGRATION_PACKAGE_TOO_LARGE" } });
      expect(decodePackage(await target.got).agentId).toBe("heartbeat");
      expect(a.node.store.lease("heartbeat")).toMatchObject({ state: "ACTIVE_OWNER", epoch });
      expect(a.node.migration!.resolvingAgents()).toEqual([]);
      const at = a.node.scheduler.view("heartbeat")!.tick;
      await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick > at);
    } finally {
      await r.stop();
    }
  });
});

describe("the arriving agent's live instance", () => {
  it("the target loads it while the reception commits, and the resume takes that instance over: one live placement per hop", async () => {
    const [a, b] = (await p2pNodes(2)) as [Node, Node];
    const placedOnB: string[] = [];
    const loadedAtCommit: boolean[] = [];
    const place = b.node.pool.place.bind(b.node.pool);
    b.node.pool.place = (spec, init) => {
      placedOnB.push(spec.agentId);
      return place(spec, init);
    };
    const receive = b.node.store.receiveAgent.bind(b.node.store);
    b.node.store.receiveAgent = (inc) => {
      loadedAtCommit.push(b.node.pool.has(inc.agent.agentId));
      return receive(inc);
    };
    await a.node.addAgent({ wasmPath: survivor });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= 3n);
    expect((await a.migrate("survivor", b)).outcome).toBe("done");
    expect(loadedAtCommit).toEqual([true]);
    expect(placedOnB).toEqual(["survivor~incoming", "survivor"]);
    const head = b.node.store.head("survivor")!.tick;
    const next = await b.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick === head + 1n);
    expect(next.tick).toBe(head + 1n);
    expect(b.node.scheduler.view("survivor")?.status).toBe("running");
  });

  it("a reception that fails to commit unloads the instance placed for it: the source's retry is admitted and the agent ticks there", async () => {
    const [a, b] = (await p2pNodes(2)) as [Node, Node];
    const receive = b.node.store.receiveAgent.bind(b.node.store);
    let failures = 0;
    b.node.store.receiveAgent = (inc) => {
      if (failures++ === 0) throw new Error("disk full (injected)");
      return receive(inc);
    };
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 2n);
    const r = await a.migrate("heartbeat", b);
    expect(r).toMatchObject({ outcome: "done", attempts: 2 });
    expect(owner(b, "heartbeat")).toBe("ACTIVE_OWNER");
    const head = b.node.store.head("heartbeat")!.tick;
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick > head);
    expect(b.node.scheduler.view("heartbeat")?.status).toBe("running");
    expect(owner(a, "heartbeat")).toBe("RETIRED");
  });
});

describe("replay rules at admission", () => {
  it("an agent whose agent_resume breaks the replay rule is refused by the target with AGENT_RESUME_NOT_INVERSE before anything is stored; the source keeps it, quarantined for the same reason", async () => {
    const a = await p2pNode({ "checkpoint-interval": "30ms" });
    const b = await p2pNode();
    const path = await writeWat(join(a.dir, "wasm"), "counts_later", BUMPS_ONCE_TICKED);
    await a.node.addAgent({ wasmPath: path });
    // A checkpoint after a tick: the window the target replays starts from a ticked state.
    await waitUntil(() => (a.node.store.head("counts_later")?.tick ?? 0n) > 0n);
    const r = await a.node.migrate("counts_later", [addr(b)]);
    expect(r.outcome).toBe("reverted");
    expect(r.error?.code).toBe("AGENT_RESUME_NOT_INVERSE");
    expect(r.error?.message).toMatch(/agent_resume must be the exact inverse of agent_checkpoint/);
    expect(b.node.store.agent("counts_later")).toBeUndefined();
    expect(b.node.store.lease("counts_later")).toBeUndefined();
    expect(b.node.scheduler.view("counts_later")).toBeUndefined();
    expect(b.node.store.head("counts_later")).toBeUndefined();
    // Taken back, the source resumes it from a ticked state too: the same rule stops it there.
    expect(owner(a, "counts_later")).toBe("ACTIVE_OWNER");
    await waitUntil(() => a.node.quarantined.has("counts_later"));
    expect(a.node.quarantined.get("counts_later")?.code).toBe("AGENT_RESUME_NOT_INVERSE");
  });

  it("an agent whose agent_resume hangs once it has ticked is refused by the target with TICK_TIMEOUT naming agent_resume; nothing is stored and the target keeps admitting", async () => {
    // The source resumes it too once taken back, and hangs the same way: bounded alike.
    const a = await p2pNode({ "checkpoint-interval": "30ms", "tick-timeout": "300ms" });
    const b = await p2pNode({ "tick-timeout": "300ms" });
    const hangsLater = watAgent({
      omit: ["agent_resume"],
      extra: `(func (export "agent_resume") (param $p i32) (param $n i32)
        (if (i32.eq (local.get $n) (i32.const 4)) (then
          (global.set $ticks (i32.load (local.get $p)))
          (if (i32.gt_u (global.get $ticks) (i32.const 0)) (then (loop $l (br $l)))))))`,
    });
    await a.node.addAgent({ wasmPath: await writeWat(join(a.dir, "wasm"), "hangs_later", hangsLater) });
    await a.node.addAgent({ wasmPath: heartbeat });
    await waitUntil(() => (a.node.store.head("hangs_later")?.tick ?? 0n) > 0n);
    const r = await a.node.migrate("hangs_later", [addr(b)]);
    expect(r.outcome).toBe("reverted");
    expect(r.error?.code).toBe("TICK_TIMEOUT");
    expect(r.error?.message).toMatch(/agent_resume/);
    expect(b.node.store.agent("hangs_later")).toBeUndefined();
    expect(b.node.pool.has("hangs_later~incoming")).toBe(false);
    // The worker that hung was replaced: the next agent is admitted, replayed and runs.
    expect((await a.migrate("heartbeat", b)).outcome).toBe("done");
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat");
  });
});

describe("an ambiguous handoff with a fallback candidate", () => {
  // Acceptance 25: no other target tried, resolved by asking B, A and B never tick at once.
  it("a lost confirmation with candidates [B, C]: one attempt, C is never offered the agent, the source asks B and retires, and A and B never tick it at the same time", async () => {
    const a = await p2pNode();
    const b = await startNode({ flags: P2P, migrationHooks: { beforeConfirm: (_id, abort) => abort(new Error("confirmation lost")) } });
    const c = await p2pNode();
    const intoC = incomingStreams(c);
    // Each tick as [start, end] on the one clock both in-process nodes share: its commit time less its run time.
    const ran: { node: "a" | "b"; tick: bigint; start: number; end: number }[] = [];
    for (const [name, t] of [["a", a], ["b", b]] as const) {
      t.node.scheduler.on("tick", (e: TickEvent) => {
        if (e.agentId === "heartbeat") ran.push({ node: name, tick: e.tick, start: e.at - Number(e.elapsedNs) / 1e6, end: e.at });
      });
    }
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitForTick("heartbeat", 3n);
    const r = await a.node.migrate("heartbeat", [addr(b), addr(c)]);
    expect(r).toMatchObject({ outcome: "recovery", target: addr(b), attempts: 1, fallbacks: 0 });
    // RECOVERY_REQUIRED names B: the handoff is B's until B answers, never C's.
    expect(["RECOVERY_REQUIRED", "RETIRED"]).toContain(owner(a, "heartbeat"));
    expect(a.logs.events("migration_fallback")).toEqual([]);
    expect(a.logs.events("migration_attempt_failed").map((l) => l.target)).toEqual([addr(b)]);
    await a.node.migration!.resolved("heartbeat");
    expect(a.logs.events("handoff_resolved").map((l) => [l.outcome, l.target])).toEqual([["retired", addr(b)]]);
    expect(owner(a, "heartbeat")).toBe("RETIRED");
    expect(owner(b, "heartbeat")).toBe("ACTIVE_OWNER");
    expect(a.node.store.migrations({ agentId: "heartbeat" })).toMatchObject([{ direction: "out", attempts: 1, fallbacks: 0 }]);
    // C: never offered, never stored, never asked to migrate anything.
    expect(intoC).toEqual([]);
    expect(c.node.store.agent("heartbeat")).toBeUndefined();
    expect(c.node.store.lease("heartbeat")).toBeUndefined();
    expect(c.node.store.head("heartbeat")).toBeUndefined();
    expect(c.node.store.migrations({ agentId: "heartbeat" })).toEqual([]);
    // B ticks on from A's last tick; A never ticks again, and no tick of A's overlaps one of B's.
    const handedOff = b.node.store.head("heartbeat")!.tick;
    await b.waitForTick("heartbeat", handedOff + 3n);
    await b.node.scheduler.pause("heartbeat", "test");
    const onA = ran.filter((x) => x.node === "a");
    const onB = ran.filter((x) => x.node === "b");
    expect(onA.length).toBeGreaterThanOrEqual(3);
    expect(onB.length).toBeGreaterThanOrEqual(3);
    expect(onA.at(-1)!.end).toBeLessThanOrEqual(onB[0]!.start);
    const ticks = ran.map((x) => x.tick);
    expect(ticks).toEqual(ticks.map((_, i) => BigInt(i + 1)));
    expect(a.node.scheduler.view("heartbeat")).toBeUndefined();
  });
});

describe("a candidate without the agent's capability", () => {
  // Acceptance 23: refused once without backoff, the next candidate takes it.
  it("candidates [B without rand, C with it]: B is refused once with CAPABILITY_NOT_OFFERED, never retried nor waited for, and the agent moves to C", async () => {
    // A retry delay far above a hop's time: had B's refusal been retried or backed off, the hop would show it.
    const a = await p2pNode({ "migration-retries": "3", "migration-retry-delay": "3s" });
    const b = await p2pNode({ capabilities: "clock,log" });
    const c = await p2pNode();
    const intoB = incomingStreams(b);
    await a.node.addAgent({ wasmPath: survivor }); // clock, rand, log
    await a.waitForTick("survivor", 2n);
    const r = await a.node.migrate("survivor", [addr(b), addr(c)]);
    expect(r).toMatchObject({ outcome: "done", target: addr(c), attempts: 2, fallbacks: 1, error: null });
    expect(r.durationMs).toBeLessThan(3000);
    const failed = a.logs.events("migration_attempt_failed");
    expect(failed.map((l) => [l.target, l.code, l.class])).toEqual([[addr(b), "CAPABILITY_NOT_OFFERED", "fatal"]]);
    expect(a.logs.events("migration_fallback").map((l) => [l.target, l.after])).toEqual([[addr(c), "CAPABILITY_NOT_OFFERED"]]);
    expect(await a.node.metrics.render()).toMatch(/igord_migration_retries_total 0/);
    // B was only asked: no migrate stream, nothing stored.
    expect(intoB).toEqual([]);
    expect(b.node.store.agent("survivor")).toBeUndefined();
    expect(b.node.store.lease("survivor")).toBeUndefined();
    // C owns it at the next epoch and ticks it on.
    expect(owner(a, "survivor")).toBe("RETIRED");
    expect(owner(c, "survivor")).toBe("ACTIVE_OWNER");
    expect(c.node.store.lease("survivor")!.epoch).toEqual({ major: 1n, generation: 0n });
    const head = c.node.store.head("survivor")!.tick;
    await c.waitForTick("survivor", head + 1n);
  });
});

describe("an unresolved handoff in the metrics", () => {
  it("igord_agent_leases counts an agent in RECOVERY_REQUIRED while its target does not answer, and ACTIVE_OWNER again once it is taken back", async () => {
    const a = await p2pNode({ "migration-max-delay": "50ms" });
    const target = await RoguePeer.start();
    try {
      await a.node.addAgent({ wasmPath: heartbeat });
      expect((await a.node.migrate("heartbeat", [await target.swallow()])).outcome).toBe("recovery");
      const leases = async () => (await a.node.metrics.registry.getSingleMetricAsString("igord_agent_leases")).split("\n").filter((l) => !l.startsWith("#"));
      // It runs nowhere, but the node holds its lease: the operator's alert on RECOVERY_REQUIRED sees it.
      expect(await leases()).toEqual(['igord_agent_leases{state="RECOVERY_REQUIRED"} 1']);
      await target.answerStatus("not_owned");
      await a.node.migration!.resolved("heartbeat");
      expect(await leases()).toEqual(['igord_agent_leases{state="ACTIVE_OWNER"} 1']);
    } finally {
      await target.stop();
    }
  });
});
