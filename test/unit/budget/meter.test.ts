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

describe("tick metering, the number fast path against bigint arithmetic", () => {
  it("charges exactly what elapsed × price + carry divided by 1e9 gives, near and across the 2^52 product bound", () => {
    let seed = 11;
    const rand = (): bigint => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return BigInt(seed);
    };
    const m = new TickMeter();
    let carry = 0n;
    const cases: [bigint, bigint][] = [
      [999_999_999n, 1n],
      [1_000_000_000n, 1n],
      [2n ** 26n, 2n ** 26n - 1n],
      [2n ** 26n + 1n, 2n ** 26n],
      [4_503_599_627n, 1_000_000n], // product just above 2^52
      [4_503_599_626n, 1_000_000n], // just below
      [9_007_199_254_740_991n, 1n],
    ];
    for (let i = 0; i < 5000; i++) cases.push([rand() * (i % 3 === 0 ? rand() : 1n), rand() % (i % 2 === 0 ? 1_000_000n : 4096n)]);
    for (const [elapsed, price] of cases) {
      const total = elapsed * price + carry;
      const want = total / 1_000_000_000n;
      const budget = 10n ** 30n;
      const c = m.charge(elapsed, price, budget);
      expect(c.cost, `${elapsed} ns at ${price}`).toBe(want);
      expect(c.budgetAfter).toBe(budget - want);
      carry = total % 1_000_000_000n;
      expect(m.remainder).toBe(carry);
    }
  });
});
