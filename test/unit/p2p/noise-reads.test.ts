// Noise's secured connections split what they read into messages with @libp2p/utils'
// LengthPrefixedDecoder; the length decoder given to them (src/p2p/noise-reads.ts) must split
// exactly as Noise's own: a length that arrives a byte at a time, several messages in one read, a
// message in pieces. A connection of another shape is left alone.
import { LengthPrefixedDecoder } from "@libp2p/utils";
import { Uint8ArrayList } from "uint8arraylist";
import { describe, expect, it } from "vitest";
import { noiseMessageLength, quietShortReads } from "../../../src/p2p/noise-reads.js";

const decoder = (): LengthPrefixedDecoder => new LengthPrefixedDecoder({ lengthDecoder: noiseMessageLength, encodingLength: () => 2 });
const read = (d: LengthPrefixedDecoder, ...bytes: number[]): number[][] => [...d.decode(Uint8Array.from(bytes))].map((m) => [...m.subarray()]);

describe("a Noise message's length read without an exception per read", () => {
  it("a length that arrives a byte at a time, then its message in two pieces, makes one message", () => {
    const d = decoder();
    expect(read(d)).toEqual([]);
    expect(read(d, 0x00)).toEqual([]);
    expect(read(d, 0x03, 7)).toEqual([]);
    expect(read(d, 8, 9)).toEqual([[7, 8, 9]]);
    expect(read(d)).toEqual([]);
  });

  it("an empty message is skipped as Noise's own decoder skips it", () => {
    const d = decoder();
    expect(read(d, 0x00, 0x00, 0x00, 0x01, 4)).toEqual([[4]]);
  });

  it("several messages in one read come out in order, and a trailing partial length waits for the rest", () => {
    const d = decoder();
    expect(read(d, 0x00, 0x01, 5, 0x00, 0x02, 6, 7, 0x01)).toEqual([[5], [6, 7]]);
    // 0x0100 = 256 bytes.
    expect(read(d, 0x00, ...new Array<number>(255).fill(1))).toEqual([]);
    const [m] = read(d, 2);
    expect(m).toHaveLength(256);
    expect(m?.at(-1)).toBe(2);
  });

  it("reads a length from a list of buffers as from one buffer", () => {
    expect(noiseMessageLength(new Uint8ArrayList(Uint8Array.of(0x12), Uint8Array.of(0x34, 0)))).toBe(0x1234);
    expect(noiseMessageLength(Uint8Array.of(0xff, 0xff))).toBe(0xffff);
    // Fewer than two bytes: an empty message whose prefix is still to come (no exception).
    expect(noiseMessageLength(new Uint8ArrayList(Uint8Array.of(1)))).toBe(0);
    expect(noiseMessageLength(new Uint8Array(0))).toBe(0);
  });

  it("a connection without Noise's decoder is left as it is", () => {
    const other = { decoder: { lengthDecoder: "not a function", encodingLength: () => 2 } };
    expect(quietShortReads(other).decoder.lengthDecoder).toBe("not a function");
    const own = (): number => 1;
    const noEncodingLength = { decoder: { lengthDecoder: own } };
    expect(quietShortReads(noEncodingLength).decoder.lengthDecoder).toBe(own);
    const plain = {};
    expect(quietShortReads(plain)).toBe(plain);
  });
});
