// What the node's libp2p connections put on the wire, read on two real hosts over loopback:
// - its yamux streams grant their receive window back in halves (src/p2p/yamux-window.ts), not with
//   a WindowUpdate frame after every data frame: what a writer may still send says how much the
//   reader granted back, so those tests read it from the writer's stream;
// - each message a connection sends leaves in one socket write (src/p2p/coalesced-writes.ts), not
//   one per piece of its Noise message: counted on the real sockets (net.Socket's _write and _writev);
// - a connection reads its messages without an exception after each read for the length still to
//   come (src/p2p/noise-reads.ts): Noise's own decoder built a RangeError there, counted on the
//   global RangeError while messages flow.
import { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import type { FrameChannel } from "../../src/p2p/frames.js";
import { host } from "../helpers/p2p-hosts.js";

const PROTOCOL = "/igord-test/window/1.0.0";
const WRITES_PROTOCOL = "/igord-test/writes/1.0.0";
/** yamux's initial stream window (the specification's 256 KiB). */
const INITIAL_WINDOW = 256 * 1024;


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

/** Counts the socket writes (each one write(2) or writev(2)) made while `fn` runs. */
async function socketWrites(fn: () => Promise<void>): Promise<number> {
  const proto = Socket.prototype as unknown as Record<"_write" | "_writev", (...a: unknown[]) => unknown>;
  const write = proto._write;
  const writev = proto._writev;
  let n = 0;
  proto._write = function (this: unknown, ...a: unknown[]) {
    n++;
    return write.apply(this, a);
  };
  proto._writev = function (this: unknown, ...a: unknown[]) {
    n++;
    return writev.apply(this, a);
  };
  try {
    await fn();
  } finally {
    proto._write = write;
    proto._writev = writev;
  }
  return n;
}

/**
 * Two hosts, the second answering each frame it reads on WRITES_PROTOCOL with `answer`; the first's
 * channel to it, and its answering loop (once the stream has reached it), which ends when the
 * channel closes.
 */
async function echoing(answer: (peer: FrameChannel, frame: Uint8Array) => Promise<void>): Promise<{ ch: FrameChannel; echoed: () => Promise<void> }> {
  const a = await host();
  const b = await host();
  let echoed: Promise<void> = Promise.resolve();
  await b.handle(
    WRITES_PROTOCOL,
    (peer) => {
      echoed = (async () => {
        for (;;) {
          const f = await peer.receive(10_000, "frame").catch(() => null);
          if (!f) return;
          await answer(peer, f);
        }
      })();
    },
    { maxInboundStreams: 4, writeTimeoutMs: 10_000 },
  );
  const ch = await a.open(b.addresses()[0]!, WRITES_PROTOCOL, { knownAddrs: [], signal: AbortSignal.timeout(10_000), writeTimeoutMs: 10_000 });
  return { ch, echoed: () => echoed };
}

describe("socket writes", () => {
  it("each message leaves in one socket write, not one per piece of its encrypted frame", async () => {
    const { ch, echoed } = await echoing(async (peer, f) => {
      // Two answers in one turn: a frame, then a second one.
      void peer.send(f);
      await peer.send(new Uint8Array([1, 2, 3]));
    });
    // The stream is open both ways before counting.
    await ch.sendAll([new Uint8Array(10)]);
    await ch.receive(10_000, "echo");
    await ch.receive(10_000, "second");
    const rounds = 10;
    const writes = await socketWrites(async () => {
      for (let i = 0; i < rounds; i++) {
        // One message: under yamux and Noise, a header, a length prefix and the bytes, then a tag.
        await ch.send(new Uint8Array(2000).fill(i));
        await ch.receive(10_000, "echo");
        await ch.receive(10_000, "second");
      }
    });
    // Per round: one write from A (its message), one from B for each of its two answers.
    expect(writes).toBeLessThanOrEqual(3 * rounds);
    await ch.close();
    await echoed();
  });
});

/** Counts the RangeErrors built (with or without `new`) while `fn` runs. */
async function rangeErrorsBuilt(fn: () => Promise<void>): Promise<number> {
  const original = globalThis.RangeError;
  let n = 0;
  globalThis.RangeError = new Proxy(original, {
    construct(target, args, newTarget) {
      n++;
      return Reflect.construct(target, args, newTarget) as object;
    },
    apply(target, self, args) {
      n++;
      return Reflect.apply(target, self, args) as unknown;
    },
  });
  try {
    await fn();
  } finally {
    globalThis.RangeError = original;
  }
  return n;
}

describe("socket reads", () => {
  it("a connection reads each message without building an exception for the bytes still to come", async () => {
    const { ch, echoed } = await echoing((peer, f) => peer.send(f));
    await ch.send(new Uint8Array(10));
    await ch.receive(10_000, "echo");
    const rounds = 10;
    const built = await rangeErrorsBuilt(async () => {
      for (let i = 0; i < rounds; i++) {
        await ch.send(new Uint8Array(500).fill(i));
        expect((await ch.receive(10_000, "echo"))[0]).toBe(i);
      }
    });
    // Noise's own length decoder built one after every read on each side: 2 × rounds at least.
    expect(built).toBe(0);
    await ch.close();
    await echoed();
  });
});
