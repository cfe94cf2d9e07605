import { describe, expect, it } from "vitest";
import { formatUnits, parseUnits } from "../../../src/budget/money.js";

describe("money in bigint microcents", () => {
  it("converts decimal units exactly", () => {
    expect(parseUnits("0.001")).toBe(1000n);
    expect(parseUnits("1.0")).toBe(1_000_000n);
    expect(parseUnits("10")).toBe(10_000_000n);
    expect(parseUnits("0.000001")).toBe(1n);
    expect(parseUnits("9223372036854.775807")).toBe(9_223_372_036_854_775_807n);
  });

  it("refuses values that are not exact in microcents, signed or not decimal", () => {
    expect(() => parseUnits("0.0000001")).toThrow(/more than 6 decimal places/);
    expect(() => parseUnits("-1")).toThrow(/not a decimal number/);
    expect(() => parseUnits("1e3")).toThrow(/not a decimal number/);
    expect(() => parseUnits("")).toThrow();
  });

  it("formats microcents as units with six decimals", () => {
    expect(formatUnits(1000n)).toBe("0.001000");
    expect(formatUnits(12_345_678n)).toBe("12.345678");
    expect(formatUnits(-5n)).toBe("-0.000005");
  });
});
