// The node's yamux streams grant their receive window back in halves (src/p2p/yamux-window.ts), not
// with a WindowUpdate frame after every data frame: what a writer may still send says how much the
// reader granted back, so these read it from the writer's stream. Two real hosts over loopback.
import { afterEach, describe, expect, it } from "vitest";
import { generateKey } from "../../src/identity/keys.js";
import type { FrameChannel } from "../../src/p2p/frames.js";
import { P2pHost } from "../../src/p2p/host.js";

const PROTOCOL = "/igord-test/window/1.0.0";
/** yamux's initial stream window (the specification's 256 KiB). */
const INITIAL_WINDOW = 256 * 1024;

const hosts: P2pHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.stop()));
});

async function host(): Promise<P2pHost> {
  const h = await P2pHost.start({ key: generateKey(), listen: ["/ip4/127.0.0.1/tcp/0"], bootstrap: [], mdns: false });
  hosts.push(h);
  return h;
}

/** What the writer's yamux stream may still send before the reader grants more. */
const sendWindow = (ch: FrameChannel): number => (ch.stream as unknown as { sendWindowCapacity: number }).sendWindowCapacity;

/** A reader that takes `frames` frames, then answers "read" with the bytes it got. */
async function reader(frames: number): Promise<{ writer: FrameChannel; done: Promise<number> }> {
  const a = await host();
  const b = await host();
  let done!: Promise<number>;
  const served = new Promise<void>((resolve) => {
    void b.handle(
      PROTOCOL,
      (ch) => {
        done = (async () => {
          let bytes = 0;
          for (let i = 0; i < frames; i++) bytes += (await ch.receive(10_000, "frame")).byteLength;
          await ch.sendJson({ type: "read", bytes });
          return bytes;
        })();
        resolve();
      },
      { maxInboundStreams: 4, writeTimeoutMs: 10_000 },
    );
  });
  const writer = await a.open(b.addresses()[0]!, PROTOCOL, { knownAddrs: [], signal: AbortSignal.timeout(10_000), writeTimeoutMs: 10_000 });
  return { writer, done: (async () => (await served, done))() };
}

describe("yamux window updates", () => {
  it("small messages read by the peer are not each answered with a window update", async () => {
    const { writer, done } = await reader(10);
    // The first frame opens the stream (SYN) and the reader's answer acknowledges it (ACK).
    let written = 0;
    for (let i = 0; i < 10; i++) {
      const frame = new Uint8Array(1000).fill(i);
      await writer.send(frame);
      written += frame.byteLength + 2; // a 2-byte varint length before each frame
    }
    const reply = await writer.receiveJson(10_000, "read");
    expect(reply.bytes).toBe(10_000);
    await done;
    // Every update the reader sent came before its "read" on the same connection: none did.
    expect(sendWindow(writer)).toBe(INITIAL_WINDOW - written);
    await writer.close();
  });

  it("the window is granted again once half of it is read, so a transfer many windows long completes", async () => {
    const frames = 12;
    const size = 200 * 1024;
    const { writer, done } = await reader(frames);
    const sending = (async () => {
      for (let i = 0; i < frames; i++) await writer.send(new Uint8Array(size).fill(i));
    })();
    const reply = await writer.receiveJson(30_000, "read");
    await sending;
    expect(reply.bytes).toBe(frames * size);
    expect(await done).toBe(frames * size);
    // What the writer may still send never exceeded what the reader granted: a window at most.
    expect(sendWindow(writer)).toBeGreaterThan(0);
    await writer.close();
  });
});
