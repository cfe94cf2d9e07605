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

/** Below this, elapsed ns × price + carry is an exact integer in a double (the per-tick fast path). */
const EXACT_PRODUCT_MAX = 2 ** 52;
const NS_PER_SECOND_NUM = 1e9;

export class TickMeter {
  /** Remainder of elapsedNs × price not yet charged, always in [0, 1e9): exact as a number. */
  private carry = 0;

  constructor(carry = 0n) {
    if (carry < 0n || carry >= NS_PER_SECOND) throw new RangeError(`meter carry ${carry} out of range`);
    this.carry = Number(carry);
  }

  get remainder(): bigint {
    return BigInt(this.carry);
  }

  charge(elapsedNs: bigint, pricePerSecond: bigint, budget: bigint): Charge {
    if (elapsedNs < 0n) throw new RangeError(`elapsed time ${elapsedNs} ns is negative`);
    if (pricePerSecond < 0n) throw new RangeError(`price ${pricePerSecond} is negative`);
    if (budget <= 0n) return { cost: 0n, budgetAfter: 0n, exhausted: true };
    // A tick of microseconds at an ordinary price: the product fits a double exactly, and number
    // arithmetic costs a fraction of three bigint operations (this runs once per committed tick).
    const product = Number(elapsedNs) * Number(pricePerSecond);
    let cost: bigint;
    if (product < EXACT_PRODUCT_MAX) {
      const total = product + this.carry;
      let q = Math.floor(total / NS_PER_SECOND_NUM);
      let r = total - q * NS_PER_SECOND_NUM;
      // The division rounds: correct the quotient so that 0 <= r < 1e9 exactly.
      if (r < 0) {
        q--;
        r += NS_PER_SECOND_NUM;
      } else if (r >= NS_PER_SECOND_NUM) {
        q++;
        r -= NS_PER_SECOND_NUM;
      }
      cost = q === 0 ? 0n : BigInt(q);
      if (cost < budget) {
        this.carry = r;
        return { cost, budgetAfter: q === 0 ? budget : budget - cost, exhausted: false };
      }
    } else {
      const total = elapsedNs * pricePerSecond + BigInt(this.carry);
      cost = total / NS_PER_SECOND;
      if (cost < budget) {
        this.carry = Number(total % NS_PER_SECOND);
        return { cost, budgetAfter: budget - cost, exhausted: false };
      }
    }
    this.carry = 0;
    return { cost: budget, budgetAfter: 0n, exhausted: true };
  }
}
