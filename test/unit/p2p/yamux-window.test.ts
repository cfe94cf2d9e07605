// The lazy window update patches private fields of @chainsafe/libp2p-yamux's streams: a release
// without them must keep the library's own updates, never lose them.
import { StreamState } from "@chainsafe/libp2p-yamux/stream";
import { describe, expect, it } from "vitest";
import { lazyWindow, type WindowedStream } from "../../../src/p2p/yamux-window.js";

function stream(capacity: number, state = StreamState.Established): WindowedStream & { updates: number } {
  const s = {
    state,
    recvWindow: 256,
    recvWindowCapacity: capacity,
    updates: 0,
    sendWindowUpdate(): void {
      s.updates++;
    },
  };
  return s;
}

describe("yamux window updates in halves", () => {
  it("an established stream sends its update only once less than half its window is left", () => {
    const s = lazyWindow(stream(200)) as ReturnType<typeof stream>;
    s.sendWindowUpdate();
    expect(s.updates).toBe(0);
    s.recvWindowCapacity = 127;
    s.sendWindowUpdate();
    expect(s.updates).toBe(1);
  });

  it("a stream not yet established, or one without the fields the patch reads, updates as the library does", () => {
    const opening = lazyWindow(stream(200, StreamState.Init)) as ReturnType<typeof stream>;
    opening.sendWindowUpdate();
    expect(opening.updates).toBe(1);
    const other = { state: StreamState.Established, sendWindowUpdate: () => undefined } as unknown as WindowedStream;
    const update = other.sendWindowUpdate;
    expect(lazyWindow(other).sendWindowUpdate).toBe(update);
  });
});
