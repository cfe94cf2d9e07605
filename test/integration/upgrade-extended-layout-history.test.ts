// A history that crosses a code upgrade whose new code extends the state's layout: the segment from
// the old code's last checkpoint to the new code's first is replayed by the new code from a state
// the old code wrote (which the new code reads into its wider layout). Audits and hops replaying it
// must place the new code as on an older module's state, as the upgrade itself did: the first window
// of a history whose retention base is that old checkpoint, and the window a target replays before
// the handoff right after the upgrade.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { upgradeAgent } from "../../src/node/code-upgrade.js";
import { startAgent, stopAgent } from "../../src/node/agent-lifecycle.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { CAPS, writeWat } from "../helpers/wat.js";
import { igord } from "../helpers/process.js";
import { COUNTER_EXTENDS_LAYOUT, COUNTER_V1 } from "../helpers/upgrade-agents.js";

afterEach(stopAllNodes);

const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };

/** counter (v1) ticks to 3, is stopped, upgraded to code that extends its layout, started, and ticks `more` more. */
async function upgradedToWiderLayout(t: TestNode, more: bigint): Promise<void> {
  await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "v1"), "counter", COUNTER_V1, CAPS("clock")) });
  await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick >= 3n);
  await stopAgent(t.node, "counter");
  await upgradeAgent(t.node, "counter", await writeWat(join(t.dir, "v2"), "counter", COUNTER_EXTENDS_LAYOUT, CAPS("clock")));
  await startAgent(t.node, "counter");
  const at = t.node.scheduler.view("counter")!.tick;
  await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick >= at + more);
}

describe("a history pruned to start at the old code's last checkpoint, the new code extending the layout", () => {
  it("verifies with replay on the node and as an export, and imports", async () => {
    const t = await startTestNode({ "tick-interval": "10ms", "checkpoint-interval": "0", "history-retention": "2" });
    await upgradedToWiderLayout(t, 3n);
    await t.stop();
    const data = t.config.dataDir;
    const v = igord(["verify", "--agent", "counter", "--replay", "--data-dir", data]);
    expect(v.stdout + v.stderr).toMatch(/^VALID$/m);
    expect(v.stdout + v.stderr).toMatch(/^replay: VALID$/m);
    const out = join(t.dir, "export");
    expect(igord(["export", "counter", "--out", out, "--data-dir", data]).status).toBe(0);
    const vx = igord(["verify", "--replay", out]);
    expect(vx.stdout + vx.stderr).toMatch(/^replay: VALID$/m);
    const imp = igord(["import", out, "--data-dir", join(t.dir, "other"), "--control", "off"]);
    expect({ status: imp.status, stderr: imp.stderr }).toEqual({ status: 0, stderr: "" });
  });

  it("its first hop is admitted by a target that never held the agent", async () => {
    const a = await startTestNode({ ...P2P, "checkpoint-interval": "0", "history-retention": "2" });
    const b = await startTestNode({ ...P2P, "checkpoint-interval": "0" });
    await upgradedToWiderLayout(a, 3n);
    const r = await a.node.migrate("counter", [b.node.migration!.addresses()[0]!]);
    expect({ outcome: r.outcome, error: r.error ?? null }).toEqual({ outcome: "done", error: null });
  });
});

describe("a hop right after such an upgrade (no retention)", () => {
  it.each([
    ["on-migrate", "0"],
    ["full", "50ms"],
  ])("a target replaying %s admits it (checkpoint-interval %s)", async (mode, interval) => {
    const a = await startTestNode({ ...P2P, "checkpoint-interval": interval });
    const b = await startTestNode({ ...P2P, "checkpoint-interval": interval, "replay-mode": mode });
    await upgradedToWiderLayout(a, 10n);
    const r = await a.node.migrate("counter", [b.node.migration!.addresses()[0]!]);
    expect({ outcome: r.outcome, error: r.error ?? null }).toEqual({ outcome: "done", error: null });
  });
});
