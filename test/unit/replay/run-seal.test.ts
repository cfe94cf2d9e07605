// The run seal (segment seal v2): one agent-key signature over a Merkle root of a run of segments'
// leaves; each segment is checked alone with its inclusion proof, and fails exactly where a v1
// segment would (altered, moved, unsigned), while v1 segments and files still read and verify.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { encodeCheckpoint, parseCheckpoint, type Checkpoint } from "../../../src/checkpoint/codec.js";
import { checkpointHash, signCheckpoint } from "../../../src/checkpoint/lineage.js";
import { encodeSegment, type EventLogSegment } from "../../../src/eventlog/tick-log.js";
import { sha256 } from "../../../src/hash/bytes.js";
import { generateKey, signBytes } from "../../../src/identity/keys.js";
import { decodeSegmentFile, encodeSegmentBody, encodeSegmentFile } from "../../../src/replay/audit-plan.js";
import {
  decodeRunProof,
  encodeRunProof,
  merklePaths,
  merkleRoot,
  OpenRuns,
  rootFromPath,
  runLeafOfBody,
  runProofs,
  runSealProblem,
  runSigningBytes,
  sealOpenInMemory,
  sealRun,
} from "../../../src/replay/run-seal.js";
import { segmentSealProblem, segmentSigningBytes } from "../../../src/replay/segment-seal.js";

const key = generateKey();
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const leafOf = (i: number): Uint8Array => sha256(new Uint8Array([i, i >> 8]));

/** A chain of `n` checkpoints 10 ticks apart, each closing a segment with one logged tick. */
function history(n: number): { checkpoints: Checkpoint[]; segments: EventLogSegment[] } {
  const checkpoints: Checkpoint[] = [];
  const segments: EventLogSegment[] = [];
  let prev: Uint8Array = new Uint8Array(32);
  for (let i = 1; i <= n; i++) {
    const tick = BigInt(i * 10);
    const blob = signCheckpoint(
      encodeCheckpoint({ budget: 1n, price: 1n, tick, wasmHash: new Uint8Array(32), epochMajor: 0n, epochGeneration: 0n, leaseExpiry: 0n, prevHash: prev, publicKey: key.publicKey }, new Uint8Array([i])),
      key,
    );
    checkpoints.push(parseCheckpoint(blob));
    segments.push({
      fromTick: tick - 9n,
      toTick: tick,
      abiVersion: 1,
      engineVersion: 1,
      blob: encodeSegment([{ tick: tick - 1n, entries: [{ id: 3, result: 0, payload: new TextEncoder().encode(`line ${i}`) }] }]),
      postHashes: new Uint8Array(32).fill(i),
    });
    prev = checkpointHash(blob);
  }
  return { checkpoints, segments };
}

/** The segments sealed as one run with the agent's key, as a store hands them out. */
function sealedRun(h: ReturnType<typeof history>): EventLogSegment[] {
  const leaves = h.segments.map((s, i) => runLeafOfBody((h.checkpoints[i] as Checkpoint).prevHash, encodeSegmentBody(s)));
  const run = sealRun(key, { fromTick: h.segments[0]!.fromTick, toTick: h.segments.at(-1)!.toTick, leaves });
  return runProofs(run).map((p, i) => ({ ...h.segments[i]!, signature: p.signature, runProof: p.proof }));
}

describe("Merkle run", () => {
  it("every leaf's path leads to the run's root for runs of 1 to 17 leaves; another index, size or leaf does not", () => {
    for (let n = 1; n <= 17; n++) {
      const leaves = Array.from({ length: n }, (_, i) => leafOf(i));
      const { root, paths } = merklePaths(leaves);
      expect(Buffer.from(root).equals(Buffer.from(merkleRoot(leaves)))).toBe(true);
      leaves.forEach((leaf, i) => {
        const path = paths[i]!;
        expect(Buffer.from(rootFromPath(leaf, i, n, path) ?? []).equals(Buffer.from(root))).toBe(true);
        const other = rootFromPath(leafOf(1000), i, n, path);
        expect(other && Buffer.from(other).equals(Buffer.from(root))).toBeFalsy();
        if (n > 1) {
          const moved = rootFromPath(leaf, (i + 1) % n, n, path);
          expect(moved && Buffer.from(moved).equals(Buffer.from(root))).toBeFalsy();
          // A path may fit a tree of another size with the same root: the signature binds the size.
          const run = sealRun(key, { fromTick: 0n, toTick: 0n, leaves });
          expect(runSealProblem(key.publicKey, leaf, encodeRunProof({ index: i, count: n, path }), run.signature)).toBeNull();
          expect(runSealProblem(key.publicKey, leaf, encodeRunProof({ index: i, count: n + 1, path }), run.signature)).not.toBeNull();
        }
      });
    }
  });

  it("the root has RFC 9162's shape: interior nodes SHA-256(0x01 ‖ left ‖ right), the left subtree the largest power of two below n", () => {
    const n = (l: Uint8Array, r: Uint8Array): Buffer => createHash("sha256").update(Buffer.from([1])).update(l).update(r).digest();
    const [a, b, c, d, e] = [0, 1, 2, 3, 4].map(leafOf) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    expect(hexOf(merkleRoot([a]))).toBe(hexOf(a));
    expect(hexOf(merkleRoot([a, b, c]))).toBe(hexOf(n(n(a, b), c)));
    expect(hexOf(merkleRoot([a, b, c, d, e]))).toBe(hexOf(n(n(n(a, b), n(c, d)), e)));
    expect(hexOf(runSigningBytes(5, merkleRoot([a, b, c, d, e])))).toBe(
      Buffer.concat([Buffer.from("igord-event-run-v2"), Buffer.from([5, 0, 0, 0]), n(n(n(a, b), n(c, d)), e)]).toString("hex"),
    );
  });

  it("a proof round-trips through its encoding; a malformed one decodes to nothing", () => {
    const p = { index: 5, count: 16, path: [leafOf(1), leafOf(2), leafOf(3), leafOf(4)] };
    const d = decodeRunProof(encodeRunProof(p));
    expect(d?.index).toBe(5);
    expect(d?.count).toBe(16);
    expect(d?.path.map((h) => Buffer.from(h).toString("hex"))).toEqual(p.path.map((h) => Buffer.from(h).toString("hex")));
    expect(decodeRunProof(new Uint8Array(7))).toBeNull();
    expect(decodeRunProof(encodeRunProof(p).subarray(0, 20))).toBeNull();
    expect(decodeRunProof(encodeRunProof({ ...p, index: 16 }))).toBeNull();
  });
});

describe("run-sealed segments", () => {
  it("each segment of a sealed run verifies alone against the checkpoint that closes it", () => {
    const h = history(5);
    sealedRun(h).forEach((s, i) => expect(segmentSealProblem(s, h.checkpoints[i])).toBeNull());
  });

  it("a segment altered inside a sealed run, moved to another place, or stripped of its seal is refused; its neighbours still verify", () => {
    const h = history(6);
    const sealed = sealedRun(h);
    const victim = sealed[2]!;
    const altered = { ...victim, postHashes: new Uint8Array(32) };
    expect(segmentSealProblem(altered, h.checkpoints[2])).toMatch(/is not signed by the agent's key in its sealed run/);
    const line = encodeSegment([{ tick: 29n, entries: [{ id: 3, result: 0, payload: new TextEncoder().encode("LINE 3") }] }]);
    expect(segmentSealProblem({ ...victim, blob: line }, h.checkpoints[2])).toMatch(/is not signed by the agent's key/);
    // Moved: same body, checked against another closing checkpoint at the same tick but another prevHash.
    const other = history(7).checkpoints[2]!;
    const stranger = parseCheckpoint(signCheckpoint(encodeCheckpoint({ ...other, prevHash: new Uint8Array(32).fill(9) }, other.state), key));
    expect(segmentSealProblem(victim, stranger)).toMatch(/is not signed by the agent's key/);
    expect(segmentSealProblem({ ...victim, signature: undefined }, h.checkpoints[2])).toMatch(/carries a run-seal proof but no signature/);
    const { runProof: _p, signature: _s, ...bare } = victim;
    expect(segmentSealProblem(bare, h.checkpoints[2])).toMatch(/carries no signature/);
    expect(segmentSealProblem({ ...bare, leaf: new Uint8Array(32) }, h.checkpoints[2])).toMatch(/is in a run not sealed yet/);
    // Another key's run seal over the same leaves is not the agent's.
    const rogue = generateKey();
    const leaves = h.segments.map((s, i) => runLeafOfBody(h.checkpoints[i]!.prevHash, encodeSegmentBody(s)));
    const forgedRun = runProofs(sealRun(rogue, { fromTick: 1n, toTick: 60n, leaves }));
    expect(segmentSealProblem({ ...victim, signature: forgedRun[2]!.signature, runProof: forgedRun[2]!.proof }, h.checkpoints[2])).toMatch(/is not signed by the agent's key/);
    [0, 1, 3, 4, 5].forEach((i) => expect(segmentSealProblem(sealed[i]!, h.checkpoints[i])).toBeNull());
  });

  it("a v1 segment, signed alone, still verifies beside run-sealed ones", () => {
    const h = history(2);
    const v1 = { ...h.segments[0]!, signature: signBytes(key, segmentSigningBytes(h.checkpoints[0]!.prevHash, h.segments[0]!)) };
    expect(segmentSealProblem(v1, h.checkpoints[0])).toBeNull();
    expect(segmentSealProblem({ ...v1, postHashes: new Uint8Array(32) }, h.checkpoints[0])).toMatch(/is not signed by the agent's key/);
  });

  it("the segment file keeps a run seal (format 3) and still reads format 2 and bare bodies", () => {
    const h = history(3);
    const sealed = sealedRun(h);
    const back = decodeSegmentFile(encodeSegmentFile(sealed[1]!), "s.seg");
    expect(back.runProof && Buffer.from(back.runProof).equals(Buffer.from(sealed[1]!.runProof!))).toBe(true);
    expect(segmentSealProblem(back, h.checkpoints[1])).toBeNull();
    const file = encodeSegmentFile(sealed[1]!);
    expect(file[4]).toBe(3);
    const v1 = { ...h.segments[0]!, signature: signBytes(key, segmentSigningBytes(h.checkpoints[0]!.prevHash, h.segments[0]!)) };
    const v1File = encodeSegmentFile(v1);
    expect(v1File[4]).toBe(2);
    expect(segmentSealProblem(decodeSegmentFile(v1File, "v1.seg"), h.checkpoints[0])).toBeNull();
    expect(decodeSegmentFile(encodeSegmentFile(h.segments[2]!), "bare.seg").signature).toBeUndefined();
    const truncated = file.slice(0, 69 + 4 + 8);
    expect(() => decodeSegmentFile(truncated, "t.seg")).toThrow(/malformed run-seal proof/);
  });

  it("open segments sealed in memory with the agent's key verify; without the key's seal they do not", () => {
    const h = history(4);
    const open = h.segments.map((s, i) => ({ ...s, leaf: runLeafOfBody(h.checkpoints[i]!.prevHash, encodeSegmentBody(s)) }));
    const sealed = sealOpenInMemory(open, key);
    sealed.forEach((s, i) => {
      expect(s.leaf).toBeUndefined();
      expect(segmentSealProblem(s, h.checkpoints[i])).toBeNull();
    });
    // A body altered under its stored leaf is still caught: the seal covers the leaf, not the new body.
    const tampered = [...open];
    tampered[1] = { ...tampered[1]!, postHashes: new Uint8Array(32) };
    expect(segmentSealProblem(sealOpenInMemory(tampered, key)[1]!, h.checkpoints[1])).toMatch(/is not signed by the agent's key/);
  });
});

describe("open runs on the checkpoint path", () => {
  it("a run closes at its size with the signing bytes of its leaves' root; a refused checkpoint leaves the run as it was", () => {
    const runs = new OpenRuns(3);
    const leaves = [leafOf(1), leafOf(2), leafOf(3)];
    expect(runs.next("a", 1n, 10n, leaves[0]!)).toBeNull();
    runs.committed("a", { events: { fromTick: 1n, leaf: leaves[0]! } });
    expect(runs.next("a", 11n, 20n, leaves[1]!)).toBeNull();
    // Not committed (refused): the next try is still the second leaf.
    expect(runs.next("a", 11n, 20n, leaves[1]!)).toBeNull();
    runs.committed("a", { events: { fromTick: 11n, leaf: leaves[1]! } });
    const step = runs.next("a", 21n, 30n, leaves[2]!);
    expect(step?.run).toMatchObject({ fromTick: 1n, toTick: 30n });
    expect(step?.run.leaves.length).toBe(3);
    const sealed = sealRun(key, step!.run);
    expect(Buffer.from(signBytes(key, step!.signingBytes)).equals(Buffer.from(sealed.signature))).toBe(true);
    runs.committed("a", { events: { fromTick: 21n, leaf: leaves[2]! }, runSeal: sealed });
    // A new run starts.
    expect(runs.next("a", 31n, 40n, leafOf(4))).toBeNull();
    // Another agent's run is its own; an adopted open run continues.
    runs.adopt("b", { fromTick: 5n, leaves: [leafOf(7), leafOf(8)] });
    expect(runs.next("b", 30n, 40n, leafOf(9))?.run).toMatchObject({ fromTick: 5n, toTick: 40n });
  });
});

describe("open runs kept packed", () => {
  it("a run's leaves come back intact and in order past its buffer's growth, adopted or committed, and seal to the root of exactly those leaves", () => {
    const runs = new OpenRuns(16);
    const adopted = Array.from({ length: 6 }, (_, i) => leafOf(100 + i));
    runs.adopt("a", { fromTick: 1n, leaves: adopted });
    const later = Array.from({ length: 9 }, (_, i) => leafOf(200 + i));
    for (const [i, leaf] of later.entries()) {
      expect(runs.next("a", BigInt(100 + i * 10), BigInt(109 + i * 10), leaf)).toBeNull();
      runs.committed("a", { events: { fromTick: BigInt(100 + i * 10), leaf } });
    }
    const all = [...adopted, ...later];
    expect(runs.leaves("a").map((l) => Buffer.from(l).toString("hex"))).toEqual(all.map((l) => Buffer.from(l).toString("hex")));
    const last = leafOf(300);
    const step = runs.next("a", 190n, 199n, last);
    expect(step?.run.fromTick).toBe(1n);
    expect(step?.run.leaves.length).toBe(16);
    expect(Buffer.from(step!.signingBytes).equals(Buffer.from(runSigningBytes(16, merkleRoot([...all, last]))))).toBe(true);
    // The run handed out (views of the open run's buffer) does not change while it is in flight:
    // nothing is written below the run's count, and a run adopted over it has a buffer of its own.
    const held = step!.run.leaves.map((l) => Buffer.from(l).toString("hex"));
    runs.committed("a", { events: { fromTick: 190n, leaf: leafOf(998) } });
    runs.adopt("a", { fromTick: 1n, leaves: [leafOf(999)] });
    expect(step!.run.leaves.map((l) => Buffer.from(l).toString("hex"))).toEqual(held);
    // A new agent's first committed leaf starts its run; sealing drops it.
    runs.committed("b", { events: { fromTick: 7n, leaf: leafOf(1) } });
    expect(runs.leaves("b").length).toBe(1);
    runs.committed("b", { events: { fromTick: 8n, leaf: leafOf(2) }, runSeal: {} });
    expect(runs.leaves("b")).toEqual([]);
  });

  it("a leaf that is not a 32-byte digest is refused, leaving the run as it was", () => {
    const runs = new OpenRuns(16);
    runs.committed("a", { events: { fromTick: 1n, leaf: leafOf(1) } });
    expect(() => runs.committed("a", { events: { fromTick: 2n, leaf: new Uint8Array(31) } })).toThrow(RangeError);
    expect(() => runs.adopt("b", { fromTick: 1n, leaves: [new Uint8Array(33)] })).toThrow(RangeError);
    expect(runs.leaves("a").length).toBe(1);
  });
});

describe("runLeafOfBody", () => {
  it("is SHA-256(prevHash ‖ SHA-256(body)), the same written into a buffer given for it", () => {
    const prevHash = new Uint8Array(32).fill(7);
    const body = new TextEncoder().encode("a segment body");
    const want = createHash("sha256").update(prevHash).update(createHash("sha256").update(body).digest()).digest();
    expect(Buffer.from(runLeafOfBody(prevHash, body)).equals(want)).toBe(true);
    const slab = new Uint8Array(96);
    const into = runLeafOfBody(prevHash, body, slab.subarray(32, 64));
    expect(into.buffer).toBe(slab.buffer);
    expect(Buffer.from(slab.subarray(32, 64)).equals(want)).toBe(true);
  });
});
