// A source keeps the migrate stream of a migration that went through and sends its next migration
// to the same peer on it (no new stream, no protocol negotiation); a kept stream the target has
// dropped is replaced by a new one without costing an attempt.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { FrameChannel } from "../../src/p2p/frames.js";
import { type InProcessKitNode, startCluster, stopAll } from "../../src/testing/index.js";
import { EXAMPLES } from "../helpers/node.js";

afterEach(stopAll);

const P2P = {
  listen: "/ip4/127.0.0.1/tcp/0",
  "accept-migrations": "any",
  "tick-interval": "10ms",
  "checkpoint-interval": "0",
  "migration-retry-delay": "10ms",
  "migration-timeout": "5s",
  "peer-refresh": "0",
};

/** Every migrate stream a node is served, as its target. */
function incomingStreams(t: InProcessKitNode): FrameChannel[] {
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
    const [a, b] = (await startCluster(2, { flags: P2P })).nodes as [InProcessKitNode, InProcessKitNode];
    const intoA = incomingStreams(a);
    const intoB = incomingStreams(b);
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
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
    const [a, b] = (await startCluster(2, { flags: P2P })).nodes as [InProcessKitNode, InProcessKitNode];
    const intoB = incomingStreams(b);
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
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
