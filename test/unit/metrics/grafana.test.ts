// The Grafana dashboard shipped in docs/ may only chart metrics the node really exports.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NodeMetrics } from "../../../src/metrics/metrics.js";
import { ROOT } from "../../helpers/node.js";

describe("docs/grafana-dashboard.json", () => {
  it("every metric a panel queries exists in the node's registry, with the labels it groups by", async () => {
    const dash = JSON.parse(readFileSync(join(ROOT, "docs", "grafana-dashboard.json"), "utf8")) as { panels: { title: string; targets: { expr: string }[] }[] };
    const metrics = new NodeMetrics({ agentStates: () => new Map(), budgets: () => [], workers: () => 0, leaseStates: () => new Map() });
    const known = new Map((await metrics.registry.getMetricsAsJSON()).map((m) => [m.name, m]));
    expect(dash.panels.length).toBeGreaterThan(10);
    for (const p of dash.panels) {
      for (const t of p.targets) {
        const names = [...t.expr.matchAll(/\bigord_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ""));
        expect(names.length, p.title).toBeGreaterThan(0);
        for (const n of names) expect(known.has(n), `${p.title}: ${n}`).toBe(true);
        const labels = new Set(names.flatMap((n) => (metrics.registry.getSingleMetric(n) as unknown as { labelNames: string[] }).labelNames));
        for (const by of t.expr.matchAll(/\bby \(([^)]*)\)/g)) {
          for (const l of (by[1] ?? "").split(",").map((x) => x.trim())) if (l !== "le") expect(labels.has(l), `${p.title}: label ${l}`).toBe(true);
        }
      }
    }
  });
});
