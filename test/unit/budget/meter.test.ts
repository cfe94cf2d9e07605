import { describe, expect, it } from "vitest";
import { TickMeter } from "../../../src/budget/meter.js";

describe("tick metering", () => {
  it("charges elapsed ns × price / 1e9", () => {
    const m = new TickMeter();
    // 2 ms at 1 unit/s (1e6 µ¢/s) = 2000 µ¢
    expect(m.charge(2_000_000n, 1_000_000n, 10_000n)).toEqual({
      cost: 2000n,
      budgetAfter: 8000n,
      exhausted: false,
    });
  });

  it("carries the remainder so that short ticks are not free", () => {
    const m = new TickMeter();
    // 100 µs at 1000 µ¢/s = 0.1 µ¢ per tick: ten such ticks cost exactly 1 µ¢.
    let budget = 1_000n;
    let total = 0n;
    for (let i = 0; i < 10; i++) {
      const c = m.charge(100_000n, 1000n, budget);
      budget = c.budgetAfter;
      total += c.cost;
    }
    expect(total).toBe(1n);
    expect(budget).toBe(999n);
  });

  it("charges the final tick what is left and never goes negative", () => {
    const m = new TickMeter();
    const c = m.charge(5_000_000_000n, 1_000_000n, 1234n);
    expect(c).toEqual({ cost: 1234n, budgetAfter: 0n, exhausted: true });
    expect(m.charge(1n, 1n, 0n)).toEqual({ cost: 0n, budgetAfter: 0n, exhausted: true });
  });

  it("handles products beyond 2^53 exactly", () => {
    const m = new TickMeter();
    // 15 s at 1000 units/s: 1.5e19 ns·µ¢/s — beyond Number precision.
    const c = m.charge(15_000_000_001n, 1_000_000_000n, 10n ** 18n);
    expect(c.cost).toBe(15_000_000_001n);
  });
});
