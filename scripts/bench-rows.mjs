// The row format every igord benchmark prints (scripts/bench.mjs): one Markdown table of rows, each
//   { measure, setup, result, target?, floor?, value? }
// where `result` is the printed figure, `target` = { op: "<=" | "<" | ">=" | ">", limit, text } and
// `value` the number compared with `limit` (or arrays of both, compared pairwise, e.g. p50 and p99).
// A row without a target is context (a baseline, a breakdown) and is never checked.

const COMPARE = {
  "<=": (v, l) => v <= l,
  "<": (v, l) => v < l,
  ">=": (v, l) => v >= l,
  ">": (v, l) => v > l,
};

/** Whether the row meets its target (null: it has none). */
export function met(row) {
  if (!row.target || row.value === undefined) return null;
  const values = [row.value].flat();
  const limits = [row.target.limit].flat();
  const cmp = COMPARE[row.target.op];
  if (!cmp) throw new Error(`row "${row.measure}": unknown comparison ${row.target.op}`);
  return values.every((v, i) => Number.isFinite(v) && cmp(v, limits[i] ?? limits[0]));
}

export const TABLE_HEADER = "| Measure | Setup | Result | Target | Floor | Met |\n|---|---|---|---|---|---|";

export function formatRow(r) {
  const m = met(r);
  return `| ${r.measure} | ${r.setup ?? ""} | ${r.result} | ${r.target?.text ?? "—"} | ${r.floor ?? "—"} | ${m === null ? "" : m ? "yes" : "**no**"} |`;
}

export function formatRows(rows) {
  return [TABLE_HEADER, ...rows.map(formatRow)].join("\n");
}

/** The rows that missed their target in this run. */
export function misses(rows) {
  return rows.filter((r) => met(r) === false);
}
