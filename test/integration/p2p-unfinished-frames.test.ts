// What a peer the node does not trust can make it hold with frames it never finishes: each frame at
// most a control message's size until the node takes package chunks on the channel, and all of
// them together at most MAX_UNTRUSTED_UNFINISHED_BYTES, node-wide; a stream past that bound is
// reset. Before, every channel took 1 MiB frames and nothing bounded their sum: a stranger's 192
// unfinished frames on one connection grew a fresh node by ~200 MiB, three strangers by ~420 MiB.
import { join } from "node:path";
import * as lp from "it-length-prefixed";
import { afterEach, describe, expect, it } from "vitest";
import type { Stream } from "@libp2p/interface";
import { MIGRATE_PROTOCOL, STATUS_PROTOCOL } from "../../src/migration/service.js";
import { PRICE_PROTOCOL } from "../../src/migration/context.js";
import { FrameChannel, MAX_CONTROL_FRAME_BYTES } from "../../src/p2p/frames.js";
import { parseTarget } from "../../src/p2p/host.js";
import { MAX_UNTRUSTED_UNFINISHED_BYTES } from "../../src/p2p/unfinished-frames.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { RoguePeer } from "../helpers/rogue.js";
import { waitUntil } from "../helpers/wait.js";

const rogues: RoguePeer[] = [];
afterEach(async () => {
  await Promise.all(rogues.splice(0).map((r) => r.stop()));
  await stopAllNodes();
});

const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };

/** The node's count of unfinished frames from peers it does not trust. */
const held = (t: TestNode): number => (t.node.migration as unknown as { p2p: { unfinished: { held: number } } }).p2p.unfinished.held;

/** Opens `perProtocol` streams of each protocol to `addr` and sends on each all but the last byte of a frame of `bytes`. */
async function unfinishedFrames(r: RoguePeer, addr: string, perProtocol: number, bytes: number): Promise<Stream[]> {
  const whole = lp.encode.single(new Uint8Array(bytes)).subarray();
  const partial = whole.subarray(0, whole.length - 1);
  const streams: Stream[] = [];
  for (const protocol of [MIGRATE_PROTOCOL, STATUS_PROTOCOL, PRICE_PROTOCOL]) {
    for (let i = 0; i < perProtocol; i++) {
      const s = await r.p2p.dialProtocol(parseTarget(addr).addr!, protocol);
      streams.push(s);
      if (!s.send(partial)) await s.onDrain({ signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
    }
  }
  return streams;
}

describe("unfinished frames from peers the node does not trust", () => {
  it("are bounded node-wide: streams past the bound are reset, and a trusted peer's migration goes through meanwhile", async () => {
    const b = await startTestNode(P2P);
    const a = await startTestNode({ ...P2P, "trusted-peer": b.node.migration!.peerId });
    const addr = a.node.migration!.addresses()[0]!;
    // Three strangers, 3 × 48 streams each with a frame of a control message's largest size, unfinished: 36 MiB sent.
    const streams: Stream[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await RoguePeer.start();
      rogues.push(r);
      streams.push(...(await unfinishedFrames(r, addr, 16, MAX_CONTROL_FRAME_BYTES)));
    }
    const fit = Math.floor(MAX_UNTRUSTED_UNFINISHED_BYTES / MAX_CONTROL_FRAME_BYTES);
    await waitUntil(() => streams.filter((s) => s.status !== "open").length >= streams.length - fit, { what: "the streams past the bound reset", timeoutMs: 20_000 });
    expect(held(a)).toBeLessThanOrEqual(MAX_UNTRUSTED_UNFINISHED_BYTES);
    expect(held(a)).toBeGreaterThan(0);
    // A peer the node trusts is not held back by them.
    await b.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= 2n);
    expect(await b.node.migrate("survivor", [addr])).toMatchObject({ outcome: "done" });
    // What they held goes with their streams.
    for (const s of streams) s.abort(new Error("done"));
    await waitUntil(() => held(a) === 0, { what: "the count back to 0" });
  }, 60_000);

  it("a frame longer than a control message is refused as its length arrives, on a channel that takes no package yet", async () => {
    const a = await startTestNode(P2P);
    const r = await RoguePeer.start();
    rogues.push(r);
    const stream = await r.p2p.dialProtocol(parseTarget(a.node.migration!.addresses()[0]!).addr!, MIGRATE_PROTOCOL);
    // Only the length of a frame one byte over: nothing of it is sent, and none is needed.
    const prefix = lp.encode.single(new Uint8Array(MAX_CONTROL_FRAME_BYTES + 1)).subarray(0, 3);
    stream.send(prefix);
    const reply = await new FrameChannel(stream).receiveJson(5_000, "offer_reply");
    expect(reply).toMatchObject({ ok: false, code: "MIGRATION_FRAME_TOO_LARGE" });
    expect(held(a)).toBe(0);
  });
});
