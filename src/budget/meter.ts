// Per-agent tick metering (pure). cost = elapsed ns × price / 1e9, with the remainder carried to the
// next tick so that short ticks are never free. The budget never goes negative: a tick that costs
// more than what is left is charged exactly what is left, and the agent is exhausted.

export const NS_PER_SECOND = 1_000_000_000n;

export interface Charge {
  /** Microcents charged for this tick. */
  cost: bigint;
  budgetAfter: bigint;
  /** True when the budget reached zero with this charge. */
  exhausted: boolean;
}

export class TickMeter {
  /** Remainder of elapsedNs × price not yet charged, always in [0, 1e9). */
  private carry = 0n;

  constructor(carry = 0n) {
    if (carry < 0n || carry >= NS_PER_SECOND) throw new RangeError(`meter carry ${carry} out of range`);
    this.carry = carry;
  }

  get remainder(): bigint {
    return this.carry;
  }

  charge(elapsedNs: bigint, pricePerSecond: bigint, budget: bigint): Charge {
    if (elapsedNs < 0n) throw new RangeError(`elapsed time ${elapsedNs} ns is negative`);
    if (pricePerSecond < 0n) throw new RangeError(`price ${pricePerSecond} is negative`);
    if (budget <= 0n) return { cost: 0n, budgetAfter: 0n, exhausted: true };
    const total = elapsedNs * pricePerSecond + this.carry;
    const cost = total / NS_PER_SECOND;
    if (cost >= budget) {
      this.carry = 0n;
      return { cost: budget, budgetAfter: 0n, exhausted: true };
    }
    this.carry = total % NS_PER_SECOND;
    return { cost, budgetAfter: budget - cost, exhausted: false };
  }
}
