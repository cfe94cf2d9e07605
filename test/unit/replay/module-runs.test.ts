import { describe, expect, it } from "vitest";
import { moduleRuns } from "../../../src/replay/audit-plan.js";
import type { ReplayItem } from "../../../src/replay/engine.js";

const item = (tick: bigint): ReplayItem => ({ tick, entries: [], budget: 0n, price: 0n });

describe("audit replay across code upgrades", () => {
  it("replays each tick with the module its closing checkpoint names (an upgrade takes effect after a checkpoint)", () => {
    const items = [1n, 2n, 3n, 4n, 5n, 6n, 7n].map(item);
    // Checkpoints: genesis (A), tick 3 (A, the upgrade follows it), tick 5 (B), tick 7 (B).
    const checkpoints = [
      { tick: 0n, wasmHash: "A" },
      { tick: 3n, wasmHash: "A" },
      { tick: 5n, wasmHash: "B" },
      { tick: 7n, wasmHash: "B" },
    ];
    expect(moduleRuns(items, checkpoints)).toEqual([
      { wasmHash: "A", from: 0, to: 3 },
      { wasmHash: "B", from: 3, to: 7 },
    ]);
    expect(moduleRuns(items, [{ tick: 7n, wasmHash: "A" }])).toEqual([{ wasmHash: "A", from: 0, to: 7 }]);
  });
});
