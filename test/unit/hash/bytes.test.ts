import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sha256, sha256Into } from "../../../src/hash/bytes.js";

describe("sha256", () => {
  it("is FIPS 180-2's digest of the standard vectors", () => {
    expect(Buffer.from(sha256(new Uint8Array(0))).toString("hex")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(Buffer.from(sha256(Buffer.from("abc"))).toString("hex")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("is node:crypto's digest, byte for byte, for inputs of every length up to 2,100 bytes and views into larger buffers", () => {
    const big = randomBytes(4096);
    for (let n = 0; n <= 2100; n++) {
      const view = big.subarray(n % 97, (n % 97) + n);
      const got = sha256(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      expect(got).toBeInstanceOf(Uint8Array);
      expect(got.byteLength).toBe(32);
      expect(Buffer.from(got).equals(createHash("sha256").update(view).digest())).toBe(true);
    }
  });

  it("returns a digest of its own: changing one leaves the next call's and the input untouched", () => {
    const input = Buffer.from("the same input");
    const a = sha256(input);
    a.fill(0);
    const b = sha256(input);
    expect(Buffer.from(b).equals(createHash("sha256").update(input).digest())).toBe(true);
    expect(input.toString()).toBe("the same input");
  });
});

describe("sha256Into", () => {
  it("writes the digest at the offset and nothing else, and refuses one that does not fit", () => {
    const input = randomBytes(1200);
    const out = new Uint8Array(80).fill(0xaa);
    expect(sha256Into(input, out, 40)).toBe(out);
    expect(Buffer.from(out.subarray(40, 72)).equals(createHash("sha256").update(input).digest())).toBe(true);
    expect(out.subarray(0, 40).every((b) => b === 0xaa) && out.subarray(72).every((b) => b === 0xaa)).toBe(true);
    expect(() => sha256Into(input, out, 49)).toThrow(RangeError);
    expect(() => sha256Into(input, out, -1)).toThrow(RangeError);
  });
});
