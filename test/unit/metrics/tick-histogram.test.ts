// The tick-duration histogram counts into an array (observed once per committed tick) but must read
// exactly like prom-client's own Histogram to a scraper.
import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { TickHistogram } from "../../../src/metrics/metrics.js";

const BUCKETS = [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15];

describe("TickHistogram", () => {
  it("renders the same exposition text and JSON as prom-client's Histogram for the same observations", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const h = new TickHistogram("igord_tick_duration_seconds", "Duration of a tick", BUCKETS, ours);
    const p = new Histogram({ name: "igord_tick_duration_seconds", help: "Duration of a tick", buckets: BUCKETS, registers: [theirs] });
    // On a bound, between bounds, above the last one, and zero.
    for (const v of [0, 0.00001, 0.000011, 0.0003, 0.001, 0.7, 15, 16, 99, 0.000002]) {
      h.observe(v);
      p.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // As JSON, less prom-client's empty exemplar fields.
    const json = async (r: Registry) =>
      (await r.getMetricsAsJSON()).map((m) => ({ ...m, values: m.values.map(({ labels, value, metricName }: { labels: object; value: number; metricName?: string }) => ({ labels, value, metricName })) }));
    expect(await json(ours)).toEqual(await json(theirs));
  });

  it("starts at zero in every bucket and after a registry reset", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const h = new TickHistogram("t", "h", BUCKETS, ours);
    new Histogram({ name: "t", help: "h", buckets: BUCKETS, registers: [theirs] });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    h.observe(0.2);
    ours.resetMetrics();
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});
