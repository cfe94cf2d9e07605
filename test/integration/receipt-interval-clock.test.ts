// --receipt-interval says how often a periodic checkpoint also gets a node-signed receipt. The host's
// wall clock stepped back (NTP correcting a fast clock, a VM restored from a snapshot) must not stop
// receipts for the size of the step: the interval is measured on the monotonic clock.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { agentWithManifest } from "../helpers/manifest-agent.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(async () => {
  vi.restoreAllMocks();
  await stopAllNodes();
});

const STEP_MS = 3_600_000;

describe("receipts on a wall clock stepped back", () => {
  it("an agent checkpointed every 50 ms with --receipt-interval 200ms keeps getting receipts after the wall clock goes back an hour", async () => {
    const t = await startTestNode({ "tick-interval": "20ms", "checkpoint-interval": "50ms", "receipt-interval": "200ms", "hibernate-after": "0", "lease-duration": "0" });
    await t.node.addAgent({ wasmPath: agentWithManifest(t.dir, "heartbeat", "hb", {}) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "hb" && e.tick >= 2n, 5_000);
    await waitUntil(() => t.node.store.receiptCount("hb") >= 2, { what: "two periodic receipts", timeoutMs: 5_000 });
    const real = Date.now.bind(Date);
    vi.spyOn(Date, "now").mockImplementation(() => real() - STEP_MS);
    const before = t.node.store.receiptCount("hb");
    // At 200 ms a receipt comes about five times a second; measured on the wall clock, none for an hour.
    await waitUntil(() => t.node.store.receiptCount("hb") >= before + 3, { what: "three more receipts after the step", timeoutMs: 5_000 });
    expect(t.node.store.receiptCount("hb")).toBeGreaterThanOrEqual(before + 3);
  });
});
