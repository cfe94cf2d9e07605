import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkpointTickAndBudget, encodeCheckpoint, parseCheckpoint } from "../../../src/checkpoint/codec.js";
import { checkpointHash, GENESIS_PREV_HASH, signCheckpoint, verifyCheckpointSignature } from "../../../src/checkpoint/lineage.js";
import { hex, sha256 } from "../../../src/hash/bytes.js";
import { type IgordError, isIgordError } from "../../../src/errors.js";
import { generateKey } from "../../../src/identity/keys.js";
import { ROOT } from "../../helpers/node.js";

const VECTORS = join(ROOT, "test", "fixtures", "igor-vectors");
const GOLDEN_WASM_HASH = hex(sha256(new TextEncoder().encode("known-wasm-binary-for-golden-test")));

function refusal(bytes: Uint8Array): IgordError {
  try {
    parseCheckpoint(bytes, "test.ckpt");
  } catch (e) {
    if (isIgordError(e)) return e;
    throw e;
  }
  throw new Error("expected the checkpoint to be refused");
}

describe("golden vectors from igor", () => {
  it("checkpoint.bin: v0x02, budget 1,000,000, price 1000, tick 5, state u64 3, 65 bytes", () => {
    const cp = parseCheckpoint(new Uint8Array(readFileSync(join(VECTORS, "checkpoint.bin"))));
    expect([cp.version, cp.headerSize, cp.bytes.byteLength]).toEqual([2, 57, 65]);
    expect([cp.budget, cp.price, cp.tick]).toEqual([1_000_000n, 1000n, 5n]);
    expect(new DataView(cp.state.buffer).getBigUint64(0, true)).toBe(3n);
    expect(hex(cp.wasmHash)).toBe(GOLDEN_WASM_HASH);
  });

  it("checkpoint_empty_state.bin: v0x02, 500,000 / 2000 / tick 0, no state", () => {
    const cp = parseCheckpoint(new Uint8Array(readFileSync(join(VECTORS, "checkpoint_empty_state.bin"))));
    expect([cp.version, cp.budget, cp.price, cp.tick, cp.state.byteLength, cp.bytes.byteLength]).toEqual([2, 500_000n, 2000n, 0n, 0, 57]);
  });

  it("checkpoint_v3.bin: v0x03, 2,000,000 / 1500 / tick 10 / epoch (3,7) / expiry 1.7e18 / state u64 5", () => {
    const cp = parseCheckpoint(new Uint8Array(readFileSync(join(VECTORS, "checkpoint_v3.bin"))));
    expect([cp.version, cp.headerSize, cp.bytes.byteLength]).toEqual([3, 81, 89]);
    expect([cp.budget, cp.price, cp.tick, cp.epochMajor, cp.epochGeneration, cp.leaseExpiry]).toEqual([
      2_000_000n,
      1500n,
      10n,
      3n,
      7n,
      1_700_000_000_000_000_000n,
    ]);
    expect(new DataView(cp.state.buffer).getBigUint64(0, true)).toBe(5n);
    expect(hex(cp.wasmHash)).toBe(GOLDEN_WASM_HASH);
  });
});

describe("a checkpoint's tick and budget read in place", () => {
  it("are parseCheckpoint's, for every vector; a blob shorter than its tick is refused", () => {
    for (const name of ["checkpoint.bin", "checkpoint_empty_state.bin", "checkpoint_v3.bin"]) {
      const bytes = new Uint8Array(readFileSync(join(VECTORS, name)));
      const cp = parseCheckpoint(bytes);
      expect(checkpointTickAndBudget(bytes), name).toEqual({ tick: cp.tick, budget: cp.budget });
    }
    expect(() => checkpointTickAndBudget(new Uint8Array(24))).toThrow(/shorter than its tick/);
  });
});

describe("v0x05 checkpoints (written; v0x04's layout, signed under a domain)", () => {
  const key = generateKey();
  const fields = {
    budget: 999n,
    price: 1000n,
    tick: 42n,
    wasmHash: sha256(new Uint8Array([1])),
    epochMajor: 1n,
    epochGeneration: 2n,
    leaseExpiry: 0n,
    prevHash: GENESIS_PREV_HASH,
    publicKey: key.publicKey,
  };

  it("round-trips with a 209-byte header and a valid signature", () => {
    const blob = signCheckpoint(encodeCheckpoint(fields, new Uint8Array([7, 8, 9])), key);
    const cp = parseCheckpoint(blob);
    expect(cp.version).toBe(5);
    expect(cp.headerSize).toBe(209);
    expect(cp.bytes.byteLength).toBe(212);
    expect([cp.budget, cp.tick, cp.epochMajor, cp.epochGeneration]).toEqual([999n, 42n, 1n, 2n]);
    expect(verifyCheckpointSignature(cp)).toBe(true);
    expect(checkpointHash(blob)).toEqual(sha256(blob));
  });

  it("a v0x04 checkpoint (an older igord's: the same layout, signed without a domain) still reads and verifies", () => {
    const unsigned = encodeCheckpoint(fields, new Uint8Array([7, 8, 9]));
    unsigned[0] = 4;
    const cp = parseCheckpoint(signCheckpoint(unsigned, key));
    expect([cp.version, cp.headerSize, cp.budget, cp.tick]).toEqual([4, 209, 999n, 42n]);
    expect(verifyCheckpointSignature(cp)).toBe(true);
    // The version byte is signed: the same bytes relabelled v0x05 do not verify.
    const relabelled = cp.bytes.slice();
    relabelled[0] = 5;
    expect(verifyCheckpointSignature(parseCheckpoint(relabelled))).toBe(false);
  });

  it("encoded into a given array (a view at an offset of a buffer full of other bytes) it is the checkpoint encoded alone, its signature slot zeroed; an array of another length is refused", () => {
    const state = new Uint8Array([7, 8, 9]);
    const alone = encodeCheckpoint(fields, state);
    const shared = new Uint8Array(1024).fill(0xee);
    const into = encodeCheckpoint(fields, state, shared.subarray(100, 100 + alone.byteLength));
    expect(into.buffer).toBe(shared.buffer);
    expect(Buffer.from(into).equals(Buffer.from(alone))).toBe(true);
    expect([shared[99], shared[100 + alone.byteLength]]).toEqual([0xee, 0xee]);
    const signed = signCheckpoint(into, key);
    expect(verifyCheckpointSignature(parseCheckpoint(signed))).toBe(true);
    expect(checkpointHash(signed)).toEqual(checkpointHash(signCheckpoint(alone, key)));
    expect(() => encodeCheckpoint(fields, state, new Uint8Array(alone.byteLength + 1))).toThrow(RangeError);
  });

  it("a flipped byte anywhere but the signature breaks the signature", () => {
    const blob = signCheckpoint(encodeCheckpoint(fields, new Uint8Array([7, 8, 9])), key);
    for (const at of [1, 20, 100, 120, 210]) {
      const bad = blob.slice();
      bad[at] = (bad[at] as number) ^ 0x01;
      expect(verifyCheckpointSignature(parseCheckpoint(bad)), `byte ${at}`).toBe(false);
    }
  });

  it("refuses empty, truncated, unknown-version and negative-budget checkpoints, each with its own message", () => {
    expect(refusal(new Uint8Array(0)).message).toMatch(/empty \(0 bytes\)/);
    const t30 = refusal(new Uint8Array(30).fill(4));
    expect(t30.code).toBe("CHECKPOINT_TRUNCATED");
    expect(t30.message).toMatch(/30 bytes, shorter than the 209-byte v0x04 header/);
    const v9 = new Uint8Array(300);
    v9[0] = 9;
    expect(refusal(v9).code).toBe("CHECKPOINT_VERSION");
    expect(refusal(v9).message).toMatch(/unknown version byte 0x09 \(readable: 0x02, 0x03, 0x04, 0x05\)/);
    const neg = encodeCheckpoint(fields, new Uint8Array(0));
    new DataView(neg.buffer).setBigInt64(1, -5n, true);
    expect(refusal(neg).message).toMatch(/negative budget \(-5\)/);
  });

  it("refuses to encode a tick, epoch part, budget or price a node cannot store instead of wrapping it into 64 bits; the largest of each round-trips", () => {
    const I64_MAX = 2n ** 63n - 1n;
    const top = { ...fields, tick: I64_MAX, epochMajor: I64_MAX, epochGeneration: I64_MAX, budget: I64_MAX, price: I64_MAX, leaseExpiry: 2n ** 64n - 1n };
    const cp = parseCheckpoint(encodeCheckpoint(top, new Uint8Array(0)));
    expect([cp.tick, cp.epochMajor, cp.epochGeneration, cp.budget, cp.price, cp.leaseExpiry]).toEqual([I64_MAX, I64_MAX, I64_MAX, I64_MAX, I64_MAX, 2n ** 64n - 1n]);
    for (const over of [{ tick: 2n ** 64n }, { tick: I64_MAX + 1n }, { epochMajor: I64_MAX + 1n }, { epochGeneration: 2n ** 64n }, { budget: I64_MAX + 1n }, { price: -1n }, { leaseExpiry: 2n ** 64n }]) {
      expect(() => encodeCheckpoint({ ...fields, ...over }, new Uint8Array(0)), JSON.stringify(over, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).toThrow(RangeError);
    }
  });

  it("refuses a header whose tick or epoch part is above 2^63 − 1 with CHECKPOINT_INVALID naming the field", () => {
    for (const [at, field] of [[17, "tick"], [57, "epoch major"], [65, "epoch generation"]] as const) {
      const b = encodeCheckpoint(fields, new Uint8Array(0));
      new DataView(b.buffer).setBigUint64(at, 2n ** 63n, true);
      const e = refusal(b);
      expect(e.code, field).toBe("CHECKPOINT_INVALID");
      expect(e.message, field).toMatch(new RegExp(`${field} 9223372036854775808 past 9223372036854775807`));
    }
  });
});
