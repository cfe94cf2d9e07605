// Money is bigint microcents (1 unit = 1,000,000 µ¢). Decimal strings convert exactly or not at all.

export const MICROCENTS_PER_UNIT = 1_000_000n;
/** The largest amount of microcents anything holds: checkpoints, receipts and SQLite store a signed 64-bit integer. */
export const MAX_MICROCENTS = 2n ** 63n - 1n;
const UNIT_DECIMALS = 6;
const DECIMAL_RE = /^(\d+)(?:\.(\d+))?$/;

export class MoneyParseError extends Error {}

/** "0.001" → 1000n. Rejects signs, exponents and more than 6 decimal places (not exact in µ¢). */
export function parseUnits(text: string): bigint {
  const m = DECIMAL_RE.exec(text.trim());
  if (!m) throw new MoneyParseError(`"${text}" is not a decimal number of units (e.g. 1.5)`);
  const whole = m[1] ?? "0";
  const frac = m[2] ?? "";
  if (frac.length > UNIT_DECIMALS) {
    throw new MoneyParseError(
      `"${text}" has more than ${UNIT_DECIMALS} decimal places; 1 microcent is the smallest unit`,
    );
  }
  return BigInt(whole) * MICROCENTS_PER_UNIT + BigInt(frac.padEnd(UNIT_DECIMALS, "0"));
}

/** 1000n → "0.001000". */
export function formatUnits(microcents: bigint): string {
  const neg = microcents < 0n;
  const abs = neg ? -microcents : microcents;
  const whole = abs / MICROCENTS_PER_UNIT;
  const frac = (abs % MICROCENTS_PER_UNIT).toString().padStart(UNIT_DECIMALS, "0");
  return `${neg ? "-" : ""}${whole}.${frac}`;
}
