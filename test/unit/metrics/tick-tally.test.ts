// Committed ticks are counted on a per-agent tally the scheduler holds (no lookup by id per tick) and
// added to igord_ticks_total when the registry is read: every tick once, none twice.
import { describe, expect, it } from "vitest";
import { NodeMetrics } from "../../../src/metrics/metrics.js";

const metricsWithNoAgents = (): NodeMetrics => new NodeMetrics({ agentStates: () => new Map(), budgets: () => [], workers: () => 0 });
const ticksOf = (text: string, agent: string): number => Number(new RegExp(`igord_ticks_total\\{agent="${agent}"\\} (\\d+)`).exec(text)?.[1] ?? Number.NaN);

describe("tick tallies", () => {
  it("each committed tick reaches igord_ticks_total once, across scrapes, and one id keeps one tally", async () => {
    const m = metricsWithNoAgents();
    const a = m.tickTally("a");
    expect(m.tickTally("a")).toBe(a);
    for (let i = 0; i < 5; i++) m.tickCommitted(a, 0.000002);
    m.tickCommitted(m.tickTally("b"), 0.3);
    let text = await m.registry.metrics();
    expect(ticksOf(text, "a")).toBe(5);
    expect(ticksOf(text, "b")).toBe(1);
    expect(text).toMatch(/igord_tick_duration_seconds_count 6/);
    // Read again with nothing new: no tick is added twice.
    text = await m.registry.metrics();
    expect(ticksOf(text, "a")).toBe(5);
    m.tickCommitted(a, 0.000002);
    m.tickCommitted(a, 0.000002);
    expect(ticksOf(await m.registry.metrics(), "a")).toBe(7);
  });
});
