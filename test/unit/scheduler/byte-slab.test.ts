import { describe, expect, it } from "vitest";
import { BYTE_SLAB_BYTES, BYTE_SLAB_TAKE_MAX, ByteSlab } from "../../../src/scheduler/checkpoint-in-flight.js";

describe("byte slab (a checkpoint's blob and segment body)", () => {
  it("carves arrays that start zeroed and 8-byte aligned, never overlap, and share a buffer until it is full; a large one gets its own", () => {
    const slab = new ByteSlab();
    const taken: Uint8Array[] = [];
    for (let i = 0; i < 100; i++) {
      const a = slab.take(1233 + (i % 7));
      expect(a.every((b) => b === 0)).toBe(true);
      expect(a.byteOffset % 8).toBe(0);
      a.fill(i + 1);
      taken.push(a);
    }
    // Writing one never touched another.
    taken.forEach((a, i) => expect(a.every((b) => b === i + 1)).toBe(true));
    const buffers = new Set(taken.map((a) => a.buffer));
    expect(buffers.size).toBeGreaterThan(1);
    expect(buffers.size).toBeLessThan(taken.length / 10);
    for (const b of buffers) expect(b.byteLength).toBe(BYTE_SLAB_BYTES);
    const large = slab.take(BYTE_SLAB_TAKE_MAX + 1);
    expect(large.buffer.byteLength).toBe(BYTE_SLAB_TAKE_MAX + 1);
    expect(buffers.has(large.buffer as ArrayBuffer)).toBe(false);
  });
});
