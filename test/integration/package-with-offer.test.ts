// A package sent with its offer (src/migration/package-with-offer.ts): a node sending an agent back to
// the node it came from knows what that node holds of it (its retired copy's head, the module), builds
// the package for that before any answer and sends it behind the offer, in one write. The target
// takes it when the guess is right and drops it when not (the hop goes on as without it); a package
// announced with an offer is bounded and read before anything else of the stream. Real nodes, real
// libp2p over loopback, real SQLite files and WASM.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { hex } from "../../src/hash/bytes.js";
import { EAGER_PACKAGE_BYTES } from "../../src/migration/early-offer.js";
import { buildOutgoingPackage } from "../../src/migration/outgoing.js";
import { MIGRATE_PROTOCOL } from "../../src/migration/service.js";
import { MigrationSource } from "../../src/migration/source.js";
import { FrameChannel, jsonBytes } from "../../src/p2p/frames.js";
import { parseTarget } from "../../src/p2p/host.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, tempDir, type TestNode } from "../helpers/node.js";
import { frameType, offerOf, RoguePeer } from "../helpers/rogue.js";
import { watAgent, writeWat } from "../helpers/wat.js";

const rogues: RoguePeer[] = [];
afterEach(async () => {
  await Promise.all(rogues.splice(0).map((r) => r.stop()));
  await stopAllNodes();
});

const survivor = join(EXAMPLES, "survivor.wasm");
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };
const addressOf = (t: TestNode): string => t.node.migration!.addresses()[0]!;

async function ticked(t: TestNode, atLeast: bigint): Promise<void> {
  await t.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= atLeast);
}

/**
 * Records every write's frame types and every offer_reply, while `edit` may rewrite an offer sent
 * with a package (its JSON); restores FrameChannel's methods when the returned stop is called.
 */
function recordWire(edit?: (offer: Record<string, unknown>) => void): { writes: string[][]; replies: Record<string, unknown>[]; stop(): void } {
  const sendAll = FrameChannel.prototype.sendAll;
  const sendJson = FrameChannel.prototype.sendJson;
  const rec = {
    writes: [] as string[][],
    replies: [] as Record<string, unknown>[],
    stop() {
      FrameChannel.prototype.sendAll = sendAll;
      FrameChannel.prototype.sendJson = sendJson;
    },
  };
  FrameChannel.prototype.sendAll = function (frames: readonly Uint8Array[]) {
    rec.writes.push(frames.map(frameType));
    const first = frames[0];
    if (edit && first && frameType(first) === "offer") {
      const offer = JSON.parse(Buffer.from(first).toString()) as Record<string, unknown>;
      if (offer.packageWithOffer) {
        edit(offer);
        return sendAll.call(this, [jsonBytes(offer), ...frames.slice(1)]);
      }
    }
    return sendAll.call(this, frames);
  };
  FrameChannel.prototype.sendJson = function (value: unknown) {
    const v = value as Record<string, unknown>;
    if (v.type === "offer_reply") rec.replies.push({ ...v });
    return sendJson.call(this, value);
  };
  return rec;
}

/** Hops survivor from `from` to `to` once it has ticked twice there; the hop's outcome. */
async function hop(from: TestNode, to: TestNode): Promise<string> {
  await ticked(from, (from.node.store.head("survivor")?.tick ?? 0n) + 2n);
  return (await from.node.migrate("survivor", [addressOf(to)])).outcome;
}

describe("a package sent with its offer", () => {
  it("goes, sent back to the node the agent came from, behind the offer in one write; the target takes it, and the hop needs no other package write; one owner throughout", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: survivor });
    const wire = recordWire();
    try {
      // A round trip: A knows nothing of what B holds at first, and B, sending it back, has no
      // stream to A yet (the package goes with an offer sent while the detach syncs, on a kept
      // stream); each package goes once the target answered.
      expect(await hop(a, b)).toBe("done");
      expect(await hop(b, a)).toBe("done");
      expect(wire.writes.some((w) => w[0] === "offer" && w.includes("package"))).toBe(false);
      expect(wire.replies.map((r) => r.packageAccepted)).toEqual([undefined, undefined]);
      for (const [from, to] of [[a, b], [b, a], [a, b]] as const) {
        wire.writes.length = 0;
        wire.replies.length = 0;
        expect(await hop(from, to)).toBe("done");
        expect(wire.writes.filter((w) => w.includes("package"))).toEqual([["offer", "transfer", "package"]]);
        expect(wire.replies.map((r) => r.packageAccepted)).toEqual([true]);
        expect(to.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
        expect(from.node.store.lease("survivor")?.state).toBe("RETIRED");
      }
    } finally {
      wire.stop();
    }
    // It runs on B from where it was: its history continues.
    await ticked(b, b.node.store.head("survivor")!.tick + 2n);
    expect(a.node.scheduler.view("survivor")).toBeUndefined();
  });

  it("too large to go with the offer, built for the target's known base, is the package sent once the target answers as guessed: built once a hop, not again for the answer", async () => {
    // Its state is 96 KiB (a tick counter, then zeros): every package of it is over EAGER_PACKAGE_BYTES.
    const STATE = 96 * 1024;
    const wat = watAgent({
      // The state at 0, what the host resumes it from past it (malloc), so a resume leaves it unchanged.
      memory: '(memory (export "memory") 3)',
      // More work after every tick: it ticks at --tick-interval, not at the idle cadence.
      more: "(i32.const 1)",
      omit: ["agent_checkpoint", "agent_resume", "malloc"],
      extra: `(func (export "agent_checkpoint") (result i32) (i32.store (i32.const 0) (global.get $ticks)) (i32.const ${STATE}))
        (func (export "agent_resume") (param $p i32) (param $n i32)
          (if (i32.eq (local.get $n) (i32.const ${STATE})) (then (global.set $ticks (i32.load (local.get $p))))))
        (func (export "malloc") (param i32) (result i32) (i32.const ${STATE}))`,
    });
    const wasmPath = await writeWat(tempDir(), "bigstate", wat);
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath });
    const hopBig = async (from: TestNode, to: TestNode): Promise<string> => {
      const at = from.node.store.head("bigstate")?.tick ?? 0n;
      await from.waitFor<TickEvent>("tick", (e) => e.agentId === "bigstate" && e.tick >= at + 2n);
      return (await from.node.migrate("bigstate", [addressOf(to)])).outcome;
    };
    // Until each node has a kept stream to the other and knows what it holds (as the first test).
    for (const [from, to] of [[a, b], [b, a], [a, b]] as const) expect(await hopBig(from, to)).toBe("done");
    const proto = MigrationSource.prototype as unknown as { packageFor: (...args: unknown[]) => Uint8Array };
    const packageFor = proto.packageFor;
    const built: number[] = [];
    proto.packageFor = function (...args: unknown[]) {
      const bytes = packageFor.apply(this, args);
      built.push(bytes.byteLength);
      return bytes;
    };
    const wire = recordWire();
    try {
      expect(await hopBig(b, a)).toBe("done");
    } finally {
      proto.packageFor = packageFor;
      wire.stop();
    }
    expect(built).toHaveLength(1);
    expect(built[0]).toBeGreaterThan(EAGER_PACKAGE_BYTES);
    // The offer went alone; the package once A answered, as the guess said (its base, its module held).
    expect(wire.writes.some((w) => w[0] === "offer" && w.includes("package"))).toBe(false);
    expect(wire.replies).toHaveLength(1);
    expect(wire.replies[0]).toMatchObject({ ok: true, haveWasm: true });
    expect(wire.replies[0]?.baseHash).toEqual(expect.any(String));
    expect(a.node.store.migrations({ agentId: "bigstate" })[0]?.bytes).toBe(built[0]);
    expect(a.node.store.lease("bigstate")?.state).toBe("ACTIVE_OWNER");
    expect(b.node.store.lease("bigstate")?.state).toBe("RETIRED");
    const head = a.node.store.head("bigstate")!.tick;
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "bigstate" && e.tick > head);
  });

  it("built for a base the target does not hold is dropped there (packageAccepted false), and the hop goes on as without it: the package built for the target's answer", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: survivor });
    expect(await hop(a, b)).toBe("done");
    expect(await hop(b, a)).toBe("done");
    // A's guess of B's base is made wrong on the wire (the package itself is the one built for it).
    const wire = recordWire((offer) => {
      (offer.packageWithOffer as Record<string, unknown>).baseHash = "ab".repeat(32);
    });
    try {
      expect(await hop(a, b)).toBe("done");
    } finally {
      wire.stop();
    }
    expect(wire.replies.map((r) => r.packageAccepted)).toEqual([false]);
    // The dropped one with the offer, then the one built for A's answer.
    const packages = wire.writes.filter((w) => w.includes("package"));
    expect(packages).toHaveLength(2);
    expect(packages[0]).toEqual(["offer", "transfer", "package"]);
    expect(packages[1]?.[0]).toBe("transfer");
    expect(b.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
    await ticked(b, b.node.store.head("survivor")!.tick + 2n);
  });

  it("is not sent to a node that did not say it takes one (a peer from before it): the package goes once it answered", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: survivor });
    const sendJson = FrameChannel.prototype.sendJson;
    // A's offers lose the field, as an older node's have none.
    FrameChannel.prototype.sendJson = function (value: unknown) {
      const v = value as Record<string, unknown>;
      if (v.type === "offer") delete v.takesPackageWithOffer;
      return sendJson.call(this, value);
    };
    let wire: ReturnType<typeof recordWire> | null = null;
    try {
      expect(await hop(a, b)).toBe("done");
      expect(await hop(b, a)).toBe("done");
      wire = recordWire();
      expect(await hop(a, b)).toBe("done");
    } finally {
      wire?.stop();
      FrameChannel.prototype.sendJson = sendJson;
    }
    expect(wire.writes.some((w) => w[0] === "offer" && w.includes("package"))).toBe(false);
    expect(wire.replies.map((r) => r.packageAccepted)).toEqual([undefined]);
    expect(b.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
  });

  it("announced over EAGER_PACKAGE_BYTES, or not as announced, is refused MIGRATION_FRAME_INVALID before anything is stored", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: survivor });
    await ticked(a, 3n);
    await a.node.scheduler.pause("survivor", "recorded");
    const lease = a.node.store.lease("survivor")!;
    const pkg = buildOutgoingPackage(a.node.store, { agentId: "survivor", epoch: lease.epoch, checkpointHash: hex(a.node.store.head("survivor")!.hash), haveWasm: false, baseHash: null });
    const r = await RoguePeer.start();
    rogues.push(r);
    const offer = { ...offerOf(pkg), durableSignal: true };
    for (const [announce, transferBytes] of [
      [{ bytes: EAGER_PACKAGE_BYTES + 1, baseHash: null, haveWasm: false }, pkg.byteLength],
      [{ bytes: pkg.byteLength, baseHash: null, haveWasm: false }, pkg.byteLength + 1],
      [{ bytes: pkg.byteLength, baseHash: "not a hash", haveWasm: false }, pkg.byteLength],
    ] as const) {
      const ch = new FrameChannel(await r.p2p.dialProtocol(parseTarget(addressOf(b)).addr!, MIGRATE_PROTOCOL));
      try {
        await ch.sendAll([jsonBytes({ ...offer, packageWithOffer: announce }), jsonBytes({ type: "transfer", bytes: transferBytes }), pkg]);
        const reply = await ch.receiveJson(5000, "offer_reply");
        expect(reply.ok).toBe(false);
        expect(reply.code).toBe("MIGRATION_FRAME_INVALID");
      } finally {
        await ch.close();
      }
    }
    expect(b.node.store.agent("survivor")).toBeUndefined();
    expect(b.node.store.pendingReception("survivor")).toBeUndefined();
  });
});
