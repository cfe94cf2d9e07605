// A host that stops with many streams open on a connection closes them without a warning: libp2p's
// own stop closes each connection with one 500 ms AbortSignal shared by all its streams, each adding
// a listener, and Node warned "MaxListenersExceededWarning … 11 abort listeners" past ten streams.
import { describe, expect, it } from "vitest";
import type { FrameChannel } from "../../src/p2p/frames.js";
import { host, hosts } from "../helpers/p2p-hosts.js";

const PROTOCOL = "/igord-test/held/1.0.0";
/** More streams than Node's default of ten listeners on one AbortSignal. */
const STREAMS = 16;


describe("a host's stop", () => {
  it("closes a connection holding many open streams without a MaxListenersExceededWarning", async () => {
    const a = await host();
    const b = await host();
    const held: FrameChannel[] = [];
    await b.handle(PROTOCOL, (ch) => held.push(ch), { maxInboundStreams: STREAMS * 2, writeTimeoutMs: 10_000 });
    const opened: FrameChannel[] = [];
    for (let i = 0; i < STREAMS; i++) {
      opened.push(await a.open(b.addresses()[0]!, PROTOCOL, { knownAddrs: [], signal: AbortSignal.timeout(10_000), writeTimeoutMs: 10_000 }));
    }
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w);
    };
    process.on("warning", onWarning);
    try {
      // Each side's stop closes the connection's streams: the dialler's and the listener's.
      await Promise.all(hosts.splice(0).map((h) => h.stop()));
      // process.emitWarning emits on the next tick.
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("warning", onWarning);
    }
    expect(opened).toHaveLength(STREAMS);
    expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning").map((w) => w.message)).toEqual([]);
  });
});
