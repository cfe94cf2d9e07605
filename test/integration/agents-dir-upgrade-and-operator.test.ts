// An upgrade the agents-dir watcher takes (--upgrade-agents-dir true) is one of the commands on its
// agent taken in turn (node/agent-turns.ts): `igord stop` and `igord start` sent while it tries the
// new code wait for it, and never decide on the agent the upgrade has paused.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { controlBackend } from "../../src/node/control-views.js";
import { startAgent, stopAgent } from "../../src/node/agent-lifecycle.js";
import { upgradeAgent } from "../../src/node/code-upgrade.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { CAPS, wat2wasm, watAgent, writeWat } from "../helpers/wat.js";
import { waitUntil } from "../helpers/wait.js";
import { igord } from "../helpers/process.js";
import { CLOCK, COUNTER_V1, counterInAgentsDir } from "../helpers/upgrade-agents.js";

afterEach(stopAllNodes);

const V1 = COUNTER_V1;
/** v2: +100 a tick, and an agent_resume that takes a while (a large module's start, say): the upgrade's staging trial lasts. */
const V2_SLOW_RESUME = watAgent({
  imports: CLOCK,
  onTick: "(drop (call $clock)) (global.set $ticks (i32.add (global.get $ticks) (i32.const 99)))",
  omit: ["agent_resume"],
  extra: `(func (export "agent_resume") (param $p i32) (param $n i32) (local $i i32)
    (local.set $i (i32.const 400000000))
    (loop $l (local.set $i (i32.sub (local.get $i) (i32.const 1))) (br_if $l (local.get $i)))
    (if (i32.eq (local.get $n) (i32.const 4)) (then (global.set $ticks (i32.load (local.get $p))))))`,
});

async function watchedCounter() {
  const { t, file } = await counterInAgentsDir({ "tick-interval": "50ms", "checkpoint-interval": "100ms", "upgrade-agents-dir": "true", "tick-timeout": "20s" });
  return { t, file, ctl: controlBackend(t.node) };
}

/**
 * The upgrade has paused the agent (its log line stays: a poll of the stored row could miss a trial
 * that ended between two polls on a loaded machine).
 */
function pausedForUpgrade(t: TestNode): boolean {
  return t.logs.events("agent_stopped", "counter").some((l) => l.reason === "code_upgrade");
}

/** The agents-dir watcher has no load (here: the upgrade it took, and what follows it) under way. */
function watcherIdle(t: { node: unknown }): boolean {
  return (t.node as { watcher: { loading: Set<string> } }).watcher.loading.size === 0;
}

describe("an agents-dir upgrade and the operator's commands", () => {
  it("igord stop during the upgrade the watcher started: the agent stays stopped", async () => {
    const { t, file, ctl } = await watchedCounter();
    writeFileSync(file, await wat2wasm(V2_SLOW_RESUME));
    // The watcher's upgrade has paused the agent and is trying the new code.
    await waitUntil(() => pausedForUpgrade(t), { timeoutMs: 15_000 });
    // The pause threw away a tick in flight, or not (a matter of timing): a stop then keeps saying so.
    await waitUntil(() => t.node.store.agent("counter")?.reason?.startsWith("code_upgrade") === true, { timeoutMs: 15_000 });
    const held = t.node.store.agent("counter")?.reason === "code_upgrade_interrupted" ? "operator_stop_interrupted" : "operator_stop";
    const stopped = await ctl.stop("counter");
    expect(stopped.status).toBe("stopped");
    await waitUntil(() => t.logs.events("code_upgraded", "counter").length + t.logs.events("agent_load_failed").length > 0, { timeoutMs: 20_000 });
    // Settle whatever the upgrade does next: the watcher's load of the file has ended.
    await waitUntil(() => watcherIdle(t), { timeoutMs: 20_000 });
    const row = t.node.store.agent("counter");
    // The operator's stop was answered "stopped": it must hold.
    expect({ status: row?.status, reason: row?.reason, running: t.node.scheduler.view("counter")?.status }).toEqual({ status: "stopped", reason: held, running: "stopped" });
  });

  it("igord start during the upgrade the watcher started: the stored history stays one the node can resume", async () => {
    const { t, file, ctl } = await watchedCounter();
    writeFileSync(file, await wat2wasm(V2_SLOW_RESUME));
    await waitUntil(() => pausedForUpgrade(t), { timeoutMs: 15_000 });
    // The operator sees it stopped and starts it (igord agents: stopped).
    await ctl.start("counter");
    const at = t.node.scheduler.view("counter")?.tick ?? 0n;
    await waitUntil(() => watcherIdle(t), { timeoutMs: 20_000 });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick >= at + 5n, 20_000);
    await t.stop();
    // Its stored history verifies.
    const verify = igord(["verify", "--agent", "counter", "--data-dir", t.config.dataDir]);
    expect(verify.stdout).toMatch(/^VALID$/m);
    // The node restarts on the same data dir: the agent must resume (not be quarantined).
    const again = await startTestNode({ "tick-interval": "50ms", "tick-timeout": "20s" }, { dir: t.dir, resumeStored: true });
    expect(again.node.quarantined.get("counter") ?? null).toBeNull();
    expect(again.node.scheduler.view("counter")?.status).toBe("running");
  });
});

describe("a command that does not wait its turn, during an upgrade's trial of the new code", () => {
  it.each([
    ["a stop", stopAgent, { status: "stopped", reason: "operator_stop", running: "stopped" }],
    ["a start", startAgent, { status: "active", reason: null, running: "running" }],
  ])("%s refuses the upgrade: no code_upgrade recorded, the agent keeps its old code and stays as the command left it", async (_name, command, expected) => {
    const t = await startTestNode({ "tick-interval": "50ms", "checkpoint-interval": "100ms", "tick-timeout": "20s" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "v1"), "counter", V1, CAPS("clock")) });
    await waitUntil(() => (t.node.scheduler.view("counter")?.tick ?? 0n) >= 3n, { timeoutMs: 15_000 });
    const v1 = t.node.store.agent("counter")?.wasmHash;
    const upgrade = upgradeAgent(t.node, "counter", await writeWat(join(t.dir, "v2"), "counter", V2_SLOW_RESUME, CAPS("clock")));
    await waitUntil(() => pausedForUpgrade(t), { timeoutMs: 15_000 });
    await command(t.node, "counter");
    await expect(upgrade).rejects.toMatchObject({ code: "UPGRADE_REFUSED", details: { cause: "AGENT_CHANGED" } });
    const row = t.node.store.agent("counter");
    expect(row?.wasmHash).toBe(v1);
    expect(t.node.store.lineageEvents("counter").filter((e) => e.kind === "code_upgrade")).toEqual([]);
    expect({ status: row?.status, reason: row?.reason, running: t.node.scheduler.view("counter")?.status }).toEqual(expected);
  });
});
