// The host's wall clock stepped back (NTP correcting a fast clock, a VM restored from a snapshot)
// while the daemon runs: cadences and hibernation keep going on the monotonic clock.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { agentWithManifest } from "../helpers/manifest-agent.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(async () => {
  vi.restoreAllMocks();
  await stopAllNodes();
});

const STEP_MS = 20_000;

/** The wall clock (Date.now) goes back STEP_MS from here on; time itself goes on. */
function stepWallClockBack(): void {
  const real = Date.now.bind(Date);
  vi.spyOn(Date, "now").mockImplementation(() => real() - STEP_MS);
}

describe("a wall clock stepped back", () => {
  it("an agent at 100 ms keeps ticking when the wall clock is stepped back by 20 s, and its next tick still shows as 100 ms away", async () => {
    const t = await startTestNode({ "tick-interval": "1s", "hibernate-after": "0" });
    await t.node.addAgent({ wasmPath: agentWithManifest(t.dir, "heartbeat", "hb", { tick_interval_ms: 100 }) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "hb" && e.tick === 3n, 5_000);
    stepWallClockBack();
    const before = t.node.scheduler.view("hb")!.tick;
    // At 100 ms, 5 ticks take ~0.5 s; frozen for the step, they would take 20 s.
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "hb" && e.tick >= before + 5n, 5_000);
    const v = t.node.scheduler.view("hb")!;
    expect(v.nextTickAt! - Date.now(), "ms until the next tick, on the stepped wall clock").toBeLessThanOrEqual(100);
  });

  it("a hibernated agent due in 300 ms wakes and ticks on when the wall clock is stepped back by 20 s", async () => {
    const t = await startTestNode({ "tick-interval": "1s", "hibernate-after": "100ms" });
    await t.node.addAgent({ wasmPath: agentWithManifest(t.dir, "heartbeat", "sleepy", { tick_interval_ms: 300 }) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "sleepy" && e.tick === 1n, 5_000);
    await waitUntil(() => t.node.scheduler.view("sleepy")?.hibernated === true, { what: "sleepy to hibernate", pollMs: 5 });
    stepWallClockBack();
    const before = t.node.scheduler.view("sleepy")!.tick;
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "sleepy" && e.tick >= before + 2n, 5_000);
  });
});
