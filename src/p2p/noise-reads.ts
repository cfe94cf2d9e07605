// Reading a Noise connection without an exception per read. @chainsafe/libp2p-noise (17) splits what
// a connection reads into messages with @libp2p/utils' LengthPrefixedDecoder, which after the last
// whole message of a read calls its length decoder once more on what is left (nothing, or a byte)
// and takes the RangeError that decoder throws as "wait for more bytes". Noise's decoder builds a new
// RangeError each time: on every read of every connection, 20-30 µs of the main thread's time at the
// hop's depth of stack (docs/BENCHMARKS.md, "hop latency — Noise reads without an exception"; a
// RangeError made once and thrown again still cost ~9 µs there). Here a connection's decoder is given
// a length decoder that throws nothing: with fewer than the prefix's bytes buffered it answers 0, an
// empty message whose prefix is not all here yet, which the decoder waits for as it waited on the
// RangeError (it reads the length again from the start of its buffer on the next read).
import type { Uint8ArrayList } from "uint8arraylist";

/** Bytes of a Noise message's length prefix (big-endian u16, the Noise spec's framing). */
export const NOISE_LENGTH_BYTES = 2;

/**
 * A Noise message's length from the first two bytes buffered; while fewer are buffered, 0: with its
 * prefix that is more bytes than the buffer holds, so the decoder waits for the next read.
 */
export function noiseMessageLength(data: Uint8Array | Uint8ArrayList): number {
  if (data.length < NOISE_LENGTH_BYTES) return 0;
  if (data instanceof Uint8Array) return ((data[0] as number) << 8) | (data[1] as number);
  return data.getUint16(0);
}

/** The fields of Noise's secured connection this sets (private in the library's types). */
interface DecodingConnection {
  decoder?: { lengthDecoder?: unknown; encodingLength?: unknown };
}

/**
 * Gives a connection Noise secured the length decoder above, with the prefix length it relies on;
 * any other shape is left as it is.
 */
export function quietShortReads<T>(connection: T): T {
  const decoder = (connection as DecodingConnection).decoder;
  // A Noise release that reads otherwise keeps its own decoder.
  if (typeof decoder !== "object" || decoder === null || typeof decoder.lengthDecoder !== "function" || typeof decoder.encodingLength !== "function") return connection;
  decoder.lengthDecoder = noiseMessageLength;
  decoder.encodingLength = (): number => NOISE_LENGTH_BYTES;
  return connection;
}
