import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { packCommits, unpackCommits } from "../../../src/store/commit-codec.js";
import type { CheckpointCommit } from "../../../src/store/types.js";

const plain = (c: CheckpointCommit): unknown => JSON.parse(JSON.stringify(c, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v)));

/** Packs, copies the bytes into a fresh buffer (as a transfer does), unpacks. */
function roundTrip(commits: CheckpointCommit[]): CheckpointCommit[] {
  const p = packCommits(commits);
  return unpackCommits({ ...p, data: new Uint8Array(p.data) });
}

describe("commits packed for the commit thread", () => {
  it("every field of every commit arrives: the packed ones, a receipt, an outbox, lost payments, a pruning plan, a storage limit, and a field the codec does not know", () => {
    const base = (i: number): CheckpointCommit => ({
      agentId: `agent-${i}-é`, tick: 10n + BigInt(i), budget: -5n, hash: randomBytes(32), prevHash: randomBytes(32), blob: randomBytes(1200), reason: "periodic",
      receipt: null, status: "active", statusReason: null,
    });
    // A segment whose arrays are views into one larger buffer, as encodeSegmentWithBody makes them.
    const body = randomBytes(600);
    const commits: CheckpointCommit[] = [
      base(0),
      { ...base(1), lease: { state: "ACTIVE_OWNER", epoch: { major: 3n, generation: 7n } }, events: { fromTick: 6n, toTick: 11n, abiVersion: 2, engineVersion: 5, blob: body.subarray(28, 400), postHashes: body.subarray(400, 560), signature: randomBytes(64) }, settledPayments: [] },
      { ...base(2), tickAt: 1_764_000_000_123, status: "failed", statusReason: "trap: ünreachable", events: { fromTick: 1n, toTick: 12n, abiVersion: 1, engineVersion: 1, blob: randomBytes(10), postHashes: randomBytes(32) }, settledPayments: [randomBytes(32), randomBytes(32)] },
      {
        ...base(3),
        receipt: { agentId: "agent-3", nodeId: "node", tickStart: 1n, tickEnd: 13n, cost: 40n, budgetAfter: 960n, timestampNs: 5n, blob: randomBytes(150) } as CheckpointCommit["receipt"],
        outbox: [{ tick: 12n, epochMajor: 0n, messages: [randomBytes(3), randomBytes(0)] }],
        maxStorageBytes: 1_000_000n,
        prune: { baseSeq: 4n, base: { originHash: randomBytes(32), baseHash: randomBytes(32), baseTick: 9n, pruned: 3n, signature: randomBytes(64) } },
        lostPayments: [{ event: { kind: "lost_payment", afterHash: randomBytes(32), tick: 12n, oldBudget: 10n, newBudget: 5n, reason: "r", signature: randomBytes(64) } as never, receiptHash: randomBytes(32) }],
      },
      // A field a later change adds to the segment, and one to the commit: they travel too.
      { ...base(4), events: { fromTick: 1n, toTick: 14n, abiVersion: 1, engineVersion: 1, blob: randomBytes(10), postHashes: randomBytes(32), runPath: [randomBytes(32)] } as never, later: { x: 1n } } as CheckpointCommit,
    ];
    const back = roundTrip(commits);
    expect(back.map(plain)).toEqual(commits.map(plain));
    // Absent and empty settled payments mean different things (settle every payment up to the tick, or none).
    expect([back[0]!.settledPayments, back[1]!.settledPayments]).toEqual([undefined, []]);
    // The tick's wall time travels in the buffer (every periodic checkpoint has one), absent stays absent.
    expect([back[0]!.tickAt, back[2]!.tickAt]).toEqual([undefined, 1_764_000_000_123]);
    expect(packCommits([commits[2]!]).extras).toBeNull();
  });

  it("a segment's run-seal leaf and a run's seal travel in the buffer, not by structured clone, and arrive whole", () => {
    const base = (i: number): CheckpointCommit => ({
      agentId: `agent-${i}`, tick: 20n + BigInt(i), budget: 7n, hash: randomBytes(32), prevHash: randomBytes(32), blob: randomBytes(300), reason: "periodic",
      receipt: null, status: "active", statusReason: null,
    });
    // As the checkpointer makes them: the segment's arrays view one body buffer, the leaf its own.
    const body = randomBytes(500);
    const segment = (from: bigint, to: bigint) => ({ fromTick: from, toTick: to, abiVersion: 2, engineVersion: 5, blob: body.subarray(60, 500), postHashes: body.subarray(28, 60), leaf: randomBytes(32) });
    const commits: CheckpointCommit[] = [
      { ...base(0), lease: { state: "ACTIVE_OWNER", epoch: { major: 1n, generation: 2n } }, events: segment(16n, 20n), settledPayments: [] },
      {
        ...base(1),
        events: segment(21n, 21n),
        runSeal: { fromTick: 1n, toTick: 21n, leaves: Array.from({ length: 16 }, () => randomBytes(32)), signature: randomBytes(64) },
        settledPayments: [randomBytes(32)],
      },
    ];
    const p = packCommits(commits);
    expect(p.extras).toBeNull();
    const back = unpackCommits({ ...p, data: new Uint8Array(p.data) });
    expect(back.map(plain)).toEqual(commits.map(plain));
    // A run seal with a field the codec does not know still arrives, by clone.
    const later = [{ ...commits[1]!, runSeal: { ...commits[1]!.runSeal!, later: 1 } as never }];
    expect(packCommits(later).extras).not.toBeNull();
    expect(roundTrip(later).map(plain)).toEqual(later.map(plain));
  });

  it("a batch is packed into a spare buffer sent back by the thread when it fits (old bytes overwritten, not read), and into a new one when it does not; ASCII and other strings arrive whole either way", () => {
    const commit = (i: number, agentId: string): CheckpointCommit => ({
      agentId, tick: BigInt(i + 1), budget: 9n, hash: randomBytes(32), prevHash: randomBytes(32), blob: randomBytes(1200), reason: i % 2 ? "periodic" : "stop: ünïcode",
      receipt: null, status: "active", statusReason: i % 3 ? null : "réason",
      lease: { state: "ACTIVE_OWNER", epoch: { major: 2n, generation: BigInt(i) } },
    });
    const first = Array.from({ length: 40 }, (_, i) => commit(i, i % 4 ? `agent-${i}` : `agént-${i}-日本`));
    const p1 = packCommits(first);
    const spare = p1.data.buffer as ArrayBuffer;
    // Room beyond the first batch, so a batch as large fits when it comes back.
    expect(spare.byteLength).toBeGreaterThan(p1.data.byteLength);
    expect(unpackCommits({ ...p1, data: new Uint8Array(p1.data) }).map(plain)).toEqual(first.map(plain));
    new Uint8Array(spare).fill(0xa5);
    const second = Array.from({ length: 40 }, (_, i) => commit(i + 40, `b-${i}`));
    const p2 = packCommits(second, spare);
    expect(p2.data.buffer).toBe(spare);
    expect(unpackCommits({ ...p2, data: new Uint8Array(p2.data) }).map(plain)).toEqual(second.map(plain));
    const small = new ArrayBuffer(64);
    const p3 = packCommits(second, small);
    expect(p3.data.buffer).not.toBe(small);
    expect(unpackCommits({ ...p3, data: new Uint8Array(p3.data) }).map(plain)).toEqual(second.map(plain));
  });

  it("a 64-bit field out of range is refused, not wrapped", () => {
    const c: CheckpointCommit = { agentId: "a", tick: 2n ** 63n, budget: 0n, hash: randomBytes(32), prevHash: randomBytes(32), blob: randomBytes(8), reason: "periodic", receipt: null, status: "active", statusReason: null };
    expect(() => packCommits([c])).toThrow(RangeError);
    expect(() => packCommits([{ ...c, tick: 1n, budget: -(2n ** 63n) - 1n }])).toThrow(RangeError);
    expect(roundTrip([{ ...c, tick: 2n ** 63n - 1n, budget: -(2n ** 63n) }]).map(plain)).toEqual([{ ...c, tick: 2n ** 63n - 1n, budget: -(2n ** 63n) }].map(plain));
  });
});
