// A first hop of a history pruned by --history-retention: the package ships the agent-signed base,
// the target verifies the chain from it (not from genesis), stores it, and audits VALID. Real nodes
// over loopback libp2p, real SQLite, a hand-driven peer for forged packages.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type HistoryBase, signHistoryBase } from "../../src/checkpoint/history-base.js";
import { hex } from "../../src/hash/bytes.js";
import { decodeIdentityFile } from "../../src/identity/keys.js";
import { buildOutgoingPackage } from "../../src/migration/outgoing.js";
import { decodePackage, encodePackage } from "../../src/migration/package.js";
import type { CheckpointEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { igord } from "../helpers/process.js";
import { RoguePeer } from "../helpers/rogue.js";

const rogues: RoguePeer[] = [];
afterEach(async () => {
  await Promise.all(rogues.splice(0).map((r) => r.stop()));
  await stopAllNodes();
});

const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };
const addr = (t: TestNode): string => t.node.migration!.addresses()[0]!;

/** A node whose survivor agent has a history pruned to its newest 4 checkpoints behind a signed base. */
async function prunedSource(): Promise<TestNode> {
  const a = await startTestNode({ ...P2P, "tick-interval": "2ms", "checkpoint-interval": "10ms", "history-retention": "4" });
  await a.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
  let written = 0;
  await a.waitFor<CheckpointEvent>("checkpoint", (e) => e.outcome === "written" && ++written >= 12, 10_000);
  expect(a.node.store.historyBase("survivor")?.pruned).toBeGreaterThan(4n);
  return a;
}

describe("first hop from a signed history base", () => {
  it("a history pruned by retention migrates to a node that never held it: verified from its signed base, stored with it, and the target's audit is VALID", async () => {
    const a = await prunedSource();
    const b = await startTestNode({ ...P2P, "tick-interval": "10ms" });
    const r = await a.node.migrate("survivor", [addr(b)]);
    expect(r.outcome).toBe("done");
    const base = a.node.store.historyBase("survivor")!;
    const arrived = b.node.store.historyBase("survivor")!;
    expect(hex(arrived.signature)).toBe(hex(base.signature));
    expect(arrived.baseTick).toBe(base.baseTick);
    expect(arrived.pruned).toBe(base.pruned);
    // The target holds the kept history only: from the base to the head.
    const history = [...b.node.store.history("survivor", 0n)];
    expect(history[0]!.tick).toBe(base.baseTick);
    expect(history.length).toBeLessThanOrEqual(5);
    const at = b.node.store.head("survivor")!.tick;
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= at + 5n);
    await b.stop();
    const audit = igord(["verify", "--agent", "survivor", "--replay", "--data-dir", b.config.dataDir]);
    expect(audit.stdout).toMatch(/^VALID/);
    expect(audit.stdout).toMatch(/replay: VALID/);
    expect(audit.stdout).toContain(`history pruned before tick ${base.baseTick}: ${base.pruned} earlier checkpoints removed by retention (signed base`);
  });

  it("a forged or missing base is refused: the target stores nothing", async () => {
    const a = await prunedSource();
    const b = await startTestNode({ ...P2P, "tick-interval": "10ms" });
    await a.node.scheduler.pause("survivor", "recorded");
    const lease = a.node.store.lease("survivor")!;
    const pkg = decodePackage(buildOutgoingPackage(a.node.store, { agentId: "survivor", epoch: lease.epoch, checkpointHash: hex(a.node.store.head("survivor")!.hash), haveWasm: false, baseHash: null }));
    expect(pkg.historyBase).toBeTruthy();
    const base = pkg.historyBase!;
    const rogue = await RoguePeer.start();
    rogues.push(rogue);
    const forgedCount = await rogue.send(addr(b), encodePackage({ ...pkg, historyBase: { ...base, pruned: base.pruned - 1n } }));
    expect(forgedCount).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE" });
    const foreign = await rogue.send(addr(b), encodePackage({ ...pkg, historyBase: { ...base, baseHash: new Uint8Array(32).fill(7) } }));
    expect(foreign).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE" });
    const none = await rogue.send(addr(b), encodePackage({ ...pkg, historyBase: null }));
    expect(none).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE" });
    expect(b.node.store.agent("survivor")).toBeUndefined();
    expect(b.node.store.historyBase("survivor")).toBeUndefined();
    // The honest package is admitted by the same node.
    expect(await rogue.send(addr(b), encodePackage(pkg))).toMatchObject({ stage: "result", ok: true });
    expect(hex(b.node.store.historyBase("survivor")!.signature)).toBe(hex(base.signature));
  });
});

describe("coming back to a node whose head retention pruned", () => {
  /** survivor on A, moved to B, whose --history-retention then prunes past the head A keeps retired. */
  async function prunedPastRetiredHead(): Promise<{ a: TestNode; b: TestNode; retiredTick: bigint }> {
    const a = await startTestNode({ ...P2P, "tick-interval": "10ms" });
    const b = await startTestNode({ ...P2P, "tick-interval": "2ms", "checkpoint-interval": "10ms", "history-retention": "4" });
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= 3n);
    expect((await a.node.migrate("survivor", [addr(b)])).outcome).toBe("done");
    const retiredTick = a.node.store.head("survivor")!.tick;
    await b.waitFor<CheckpointEvent>("checkpoint", (e) => e.outcome === "written" && (b.node.store.historyBase("survivor")?.baseTick ?? 0n) > retiredTick, 10_000);
    return { a, b, retiredTick };
  }

  it("the agent returns: the node takes the owner's signed base from the same origin in place of its retired copy, runs it, and audits VALID", async () => {
    const { a, b, retiredTick } = await prunedPastRetiredHead();
    const r = await b.node.migrate("survivor", [addr(a)]);
    expect(r.outcome).toBe("done");
    const base = b.node.store.historyBase("survivor")!;
    expect(hex(a.node.store.historyBase("survivor")!.signature)).toBe(hex(base.signature));
    // A holds the owner's kept history now: from the signed base (past its old head) to the new head.
    const history = [...a.node.store.history("survivor", 0n)];
    expect(history[0]!.tick).toBe(base.baseTick);
    expect(history[0]!.tick).toBeGreaterThan(retiredTick);
    expect(hex(history.at(-1)!.hash)).toBe(hex(b.node.store.head("survivor")!.hash));
    expect(a.node.store.lease("survivor")!.state).toBe("ACTIVE_OWNER");
    const at = a.node.store.head("survivor")!.tick;
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= at + 5n);
    await a.stop();
    const audit = igord(["verify", "--agent", "survivor", "--replay", "--data-dir", a.config.dataDir]);
    expect(audit.stdout).toMatch(/^VALID/);
    expect(audit.stdout).toMatch(/replay: VALID/);
  });

  it("a base from another origin, or one not past the retired head, is refused and the retired copy is kept as it was", async () => {
    const { a, b, retiredTick } = await prunedPastRetiredHead();
    await b.node.scheduler.pause("survivor", "recorded");
    const lease = b.node.store.lease("survivor")!;
    const pkg = decodePackage(buildOutgoingPackage(b.node.store, { agentId: "survivor", epoch: lease.epoch, checkpointHash: hex(b.node.store.head("survivor")!.hash), haveWasm: false, baseHash: null }));
    const key = decodeIdentityFile(pkg.identity);
    const base = pkg.historyBase!;
    const resigned = (fields: Omit<HistoryBase, "signature">): HistoryBase => ({ ...fields, signature: signHistoryBase(key, fields) });
    const before = { head: hex(a.node.store.head("survivor")!.hash), count: a.node.store.historyCount("survivor") };
    const rogue = await RoguePeer.start();
    rogues.push(rogue);
    // Validly signed by the agent, but naming another genesis than the one this node holds.
    const otherOrigin = await rogue.send(addr(a), encodePackage({ ...pkg, historyBase: resigned({ ...base, originHash: new Uint8Array(32).fill(9) }) }));
    expect(otherOrigin).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE", message: expect.stringMatching(/not from the origin of this node's copy/) });
    // A base that claims a tick at or before the retired head: not a history that supersedes it.
    const notPast = await rogue.send(addr(a), encodePackage({ ...pkg, historyBase: resigned({ ...base, baseTick: retiredTick }) }));
    expect(notPast).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE", message: expect.stringMatching(/not past this node's retired head/) });
    expect(a.node.store.lease("survivor")!.state).toBe("RETIRED");
    expect({ head: hex(a.node.store.head("survivor")!.hash), count: a.node.store.historyCount("survivor") }).toEqual(before);
    expect(a.node.store.historyBase("survivor")).toBeUndefined();
    // The honest package is taken by the same node.
    expect(await rogue.send(addr(a), encodePackage(pkg))).toMatchObject({ stage: "result", ok: true });
  });
});
