// What the self-verifier sends its worker for a window's unverified snapshots: consecutive snapshots
// chain in one instance; a post-state up to EXPECTED_STATE_MAX_BYTES travels as itself (compared byte
// for byte, no hash of the replayed state), a larger one as its hash.
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../../../src/replay/window.js";
import { EXPECTED_STATE_MAX_BYTES, verifyItems } from "../../../src/scheduler/verifier.js";

function snapshot(tick: bigint, pre: Uint8Array, post: Uint8Array): Snapshot {
  return { tick, pre, post, postHash: new Uint8Array(32).fill(Number(tick)), entries: [{ id: 1, result: 0, payload: new Uint8Array(8) }], budget: 5n, price: 1n, verified: false };
}

describe("the self-verifier's replay items", () => {
  it("a small post-state is sent as itself, a large one as its hash, and consecutive snapshots chain", () => {
    const s0 = new Uint8Array(4);
    const s1 = new Uint8Array(4).fill(1);
    const big = new Uint8Array(EXPECTED_STATE_MAX_BYTES + 1);
    const apart = new Uint8Array(4).fill(9);
    const pending = [snapshot(1n, s0, s1), snapshot(2n, s1, big), snapshot(4n, apart, new Uint8Array(EXPECTED_STATE_MAX_BYTES))];
    const items = verifyItems(pending);
    expect(items[0]).toEqual({ tick: 1n, preState: s0, entries: pending[0]?.entries, expectedPost: s1, budget: 5n, price: 1n });
    // Continues tick 1's instance; its state is over the bound, so its hash goes instead.
    expect(items[1]).toEqual({ tick: 2n, entries: pending[1]?.entries, expectedPostHash: pending[1]?.postHash, budget: 5n, price: 1n });
    // Not the previous post-state: a fresh instance from its own pre-state; exactly at the bound: itself.
    expect(items[2]).toMatchObject({ tick: 4n, preState: apart, expectedPost: pending[2]?.post });
    expect(items[2]).not.toHaveProperty("expectedPostHash");
  });
});
