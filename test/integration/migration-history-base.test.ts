// A first hop of a history pruned by --history-retention: the package ships the agent-signed base,
// the target verifies the chain from it (not from genesis), stores it, and audits VALID. Real nodes
// over loopback libp2p, real SQLite, a hand-driven peer for forged packages.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { hex } from "../../src/hash/bytes.js";
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
