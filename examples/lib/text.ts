// Small text helpers the demo agents share (no JSON library: the agents stay small, as igor's do).

/** The string value of `"key":"value"` in a flat JSON text, or "" (igor's extractJSONString). */
export function jsonString(text: string, key: string): string {
  const needle = '"' + key + '":"';
  const at = text.indexOf(needle);
  if (at < 0) return "";
  const start = at + needle.length;
  const end = text.indexOf('"', start);
  return end < 0 ? "" : text.substring(start, end);
}

/** `cents` as dollars with two decimals: 12345 → "123.45". */
export function dollars(cents: u64): string {
  const frac = cents % 100;
  return (cents / 100).toString() + "." + (frac < 10 ? "0" : "") + frac.toString();
}

/** The first `n` bytes of a hex id, for logs ("a1b2c3d4..."). */
export function short(id: string): string {
  return id.substring(0, 8) + "...";
}
