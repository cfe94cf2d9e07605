// An event-log segment is the agent's own record only with its signature over the checkpoint it
// follows; a segment that records no observation needs none (replay alone decides whether the agent
// observed nothing), so checkpoints of agents that never observe cost no second signature.
import { describe, expect, it } from "vitest";
import { encodeCheckpoint } from "../../../src/checkpoint/codec.js";
import { parseCheckpoint } from "../../../src/checkpoint/codec.js";
import { signCheckpoint } from "../../../src/checkpoint/lineage.js";
import { encodeSegment } from "../../../src/eventlog/tick-log.js";
import { generateKey, signBytes } from "../../../src/identity/keys.js";
import { encodeSegmentBody } from "../../../src/replay/audit-plan.js";
import { segmentSealProblem, segmentSigningBytes, segmentSigningBytesOfBody } from "../../../src/replay/segment-seal.js";

const key = generateKey();
const prevHash = new Uint8Array(32).fill(7);
const closing = parseCheckpoint(
  signCheckpoint(
    encodeCheckpoint(
      { budget: 1n, price: 1n, tick: 3n, wasmHash: new Uint8Array(32), epochMajor: 0n, epochGeneration: 0n, leaseExpiry: 0n, prevHash, publicKey: key.publicKey },
      new Uint8Array(4),
    ),
    key,
  ),
);
const logged = {
  fromTick: 1n,
  toTick: 3n,
  abiVersion: 1,
  engineVersion: 1,
  blob: encodeSegment([{ tick: 2n, entries: [{ id: 3, result: 0, payload: new TextEncoder().encode("hi") }] }]),
  postHashes: new Uint8Array(32).fill(1),
};
const empty = { ...logged, blob: new Uint8Array(0), postHashes: new Uint8Array(0) };

describe("segment signatures", () => {
  it("a segment signed over the checkpoint it follows is the agent's; altered, unsigned or moved it is not", () => {
    const signature = signBytes(key, segmentSigningBytes(prevHash, logged));
    expect(segmentSealProblem({ ...logged, signature }, closing)).toBeNull();
    expect(segmentSealProblem({ ...logged, postHashes: new Uint8Array(32), signature }, closing)).toMatch(/is not signed by the agent's key/);
    expect(segmentSealProblem(logged, closing)).toMatch(/carries no signature/);
    const elsewhere = signBytes(key, segmentSigningBytes(new Uint8Array(32), logged));
    expect(segmentSealProblem({ ...logged, signature: elsewhere }, closing)).toMatch(/is not signed by the agent's key/);
    expect(segmentSealProblem({ ...logged, toTick: 4n, signature }, closing)).toMatch(/ends at no checkpoint/);
  });

  it("a segment that records no observation needs no signature", () => {
    expect(segmentSealProblem(empty, closing)).toBeNull();
  });

  it("the signing bytes from a segment's encoded body are the signing bytes of the segment (the checkpoint path signs these)", () => {
    const fromBody = segmentSigningBytesOfBody(prevHash, encodeSegmentBody(logged));
    expect(Buffer.from(fromBody).equals(Buffer.from(segmentSigningBytes(prevHash, logged)))).toBe(true);
    expect(segmentSealProblem({ ...logged, signature: signBytes(key, fromBody) }, closing)).toBeNull();
    expect(() => segmentSigningBytesOfBody(new Uint8Array(31), encodeSegmentBody(logged))).toThrow(RangeError);
  });
});
