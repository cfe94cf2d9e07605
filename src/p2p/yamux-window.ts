// yamux with its receive window granted back in halves, as Go's and Rust's yamux do, instead of after
// every data frame. @chainsafe/libp2p-yamux (8.x) answers each data frame it reads with a
// WindowUpdate for the bytes just consumed, so every control message of a migration travels with a
// second frame back (yamux header, Noise encryption, a socket write, a read and a decryption on the
// other side): on a hop's main thread that was ~0.3 ms of sending alone (docs/BENCHMARKS.md, "hop
// latency"). Here a stream grants its window again once less than half of it is left. The peer can
// still never send more than the window the stream granted (nothing here grants more or sooner), so
// every read bound stays as it was; a writer that used up half the window gets the update with the
// data frame that crossed the half, so nothing waits longer than one frame for it.
import type { StreamMuxer, StreamMuxerFactory } from "@libp2p/interface";
import { StreamState, yamux } from "./libp2p-modules.js";

/**
 * A window update goes once the receive window left is below 1/WINDOW_UPDATE_FRACTION of the
 * stream's window (2: half, Go's `hashicorp/yamux` threshold).
 */
export const WINDOW_UPDATE_FRACTION = 2;

/** The fields of a yamux stream the lazy update reads (private in the library's types). */
export interface WindowedStream {
  state: StreamState;
  recvWindow: number;
  recvWindowCapacity: number;
  sendWindowUpdate(): void;
}

/** What the muxer uses to create each stream, inbound and outbound (private in its types). */
interface StreamCreator {
  _newStream(...args: unknown[]): WindowedStream;
}

export function lazyWindow(stream: WindowedStream): WindowedStream {
  // Private fields: a yamux release without them keeps its own updates (after every frame), not none.
  if (typeof stream.sendWindowUpdate !== "function" || typeof stream.recvWindow !== "number" || typeof stream.recvWindowCapacity !== "number") return stream;
  const update = stream.sendWindowUpdate.bind(stream);
  stream.sendWindowUpdate = (): void => {
    // An established stream skips the update while at least half its window is left. Any other
    // state goes through as before: the SYN/ACK a first frame carries, a paused stream's deferral.
    if (stream.state === StreamState.Established && stream.recvWindowCapacity * WINDOW_UPDATE_FRACTION >= stream.recvWindow) return;
    update();
  };
  return stream;
}

/** libp2p's yamux factory, each of its streams granting its window in halves. */
export function yamuxHalfWindow(): () => StreamMuxerFactory {
  const base = yamux();
  return () => {
    const factory = base();
    const create = factory.createStreamMuxer.bind(factory);
    factory.createStreamMuxer = (maConn) => {
      const muxer = create(maConn);
      const creator = muxer as unknown as StreamCreator;
      // A yamux release that creates its streams otherwise is used as it is.
      if (typeof creator._newStream !== "function") return muxer;
      const newStream = creator._newStream.bind(muxer);
      creator._newStream = (...args: unknown[]) => lazyWindow(newStream(...args));
      return muxer as StreamMuxer as typeof muxer;
    };
    return factory;
  };
}
