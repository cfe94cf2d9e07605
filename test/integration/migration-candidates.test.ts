// Which peers a node may choose, on its own, to send an agent to (`igord migrate <agent>` without
// --to, POST /v1/agents/:id/migrate {}, --replay-on-divergence migrate). The agent goes with its
// private key, and any peer may connect and announce a low price: only the peers the operator
// vouched for (--bootstrap, --trusted-peer, found by --mdns) are candidates.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes } from "../helpers/node.js";
import { RoguePeer } from "../helpers/rogue.js";
import { waitUntil } from "../helpers/wait.js";

const rogues: RoguePeer[] = [];
afterEach(async () => {
  await Promise.all(rogues.splice(0).map((r) => r.stop()));
  await stopAllNodes();
});

const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };
const survivor = join(EXAMPLES, "survivor.wasm");

/** A stranger that looks like a willing, cheap target (it answers price queries and takes any package), after it connected to `addr` once. */
async function strangerConnectedTo(addr: string): Promise<RoguePeer> {
  const r = await RoguePeer.start();
  rogues.push(r);
  const { got } = await r.answerTransferAfterPackage({ ok: true });
  got.catch(() => undefined);
  await r.status(addr, { agentId: "nobody" }).catch(() => undefined);
  return r;
}

describe("migration candidates", () => {
  it("a stranger that only connected is never chosen: with no peer vouched for, migrate without --to finds no candidate and the agent stays", async () => {
    const a = await startTestNode({ ...P2P, "peer-refresh": "100ms" });
    await a.node.addAgent({ wasmPath: survivor });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= 2n);
    const r = await strangerConnectedTo(a.node.migration!.addresses()[0]!);
    // Known, and its price answered (the refresh asks every known peer): only not vouched for.
    await waitUntil(() => a.node.migration!.peers.get(r.peerId)?.price != null, { what: "the stranger's price answer on A" });
    expect(a.node.migration!.peers.get(r.peerId)?.vouched).toBe(false);
    await expect(a.node.migrate("survivor")).rejects.toMatchObject({ code: "MIGRATION_NO_CANDIDATES" });
    expect(a.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
    expect(a.node.scheduler.view("survivor")?.status).toBe("running");
  });

  it("with a --bootstrap peer that takes it, the agent goes there, not to a stranger that announced a lower price", async () => {
    const b = await startTestNode({ ...P2P, price: "0.001", "accept-migrations": "any" });
    const a = await startTestNode({ ...P2P, bootstrap: b.node.migration!.addresses()[0]!, "peer-refresh": "100ms" });
    await a.node.addAgent({ wasmPath: survivor });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= 2n);
    const bId = b.node.migration!.peerId;
    await waitUntil(() => a.node.migration!.peers.get(bId)?.acceptsMigrations === true, { what: "B's price answer on A" });
    const r = await strangerConnectedTo(a.node.migration!.addresses()[0]!);
    await waitUntil(() => a.node.migration!.peers.get(r.peerId)?.price != null, { what: "the stranger's price answer on A" });
    expect(a.node.migration!.peers.get(r.peerId)!.price! < a.node.migration!.peers.get(bId)!.price!).toBe(true);
    const result = await a.node.migrate("survivor");
    expect(result).toMatchObject({ outcome: "done", peer: bId, attempts: 1 });
  });

  it("a --trusted-peer is a candidate too", async () => {
    const b = await startTestNode({ ...P2P, "accept-migrations": "any" });
    const a = await startTestNode({ ...P2P, "trusted-peer": b.node.migration!.peerId });
    expect(a.node.migration!.peers.get(b.node.migration!.peerId)?.vouched).toBe(true);
    await a.node.addAgent({ wasmPath: survivor });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= 2n);
    // A knows B's id only: B dials A once (a price query), and identify tells A where B listens.
    await b.node.migration!.queryPrice(a.node.migration!.addresses()[0]!);
    const result = await a.node.migrate("survivor");
    expect(result).toMatchObject({ outcome: "done", peer: b.node.migration!.peerId });
  });
});
