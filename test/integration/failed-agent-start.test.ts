// igord start (and stop) on an agent whose run failed. The agent "flaky" asks resume_interrupted at
// its tick 3 and traps if the answer is 0: its first run of tick 3 (nothing interrupted it) traps and
// the agent fails. Started again, the re-run of tick 3 is the first tick after a run that was thrown
// away, hears 1 and ticks on. Before:
// - igord stop on the failed agent stored it `stopped` without a checkpoint, and a stored stop
//   counted as a clean end: after stop + start the re-run heard 0 (an SDK EffectLog would perform an
//   InFlight intent a second time) and the agent failed again;
// - igord start right after the failure did not wait for the failure's checkpoint, still being
//   committed: it resumed from the head before it, ran committed ticks again, and the re-run's own
//   checkpoint was refused CHECKPOINT_CHAIN_BROKEN.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OPERATOR_STOP_INTERRUPTED, startAgent, stopAgent } from "../../src/node/agent-lifecycle.js";
import type { CheckpointEvent } from "../../src/scheduler/agent-runtime.js";
import type { AgentView, TickEvent } from "../../src/scheduler/scheduler.js";
import { waitForEvent } from "../../src/testing/wait.js";
import { startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { wat2wasm, watAgent } from "../helpers/wat.js";

afterEach(stopAllNodes);

/** Traps in tick 3 unless told its previous run was interrupted. */
const FLAKY = watAgent({
  imports: '(import "igor" "resume_interrupted" (func $ri (result i32)))',
  onTick: "(if (i32.eq (global.get $ticks) (i32.const 3)) (then (if (i32.eqz (call $ri)) (then unreachable))))",
});

/**
 * A node whose "flaky" has just failed at tick 3. With `committed`, also once the failure's
 * checkpoint (of tick 2) is stored; without, right at the `stopped` event, that checkpoint in flight.
 */
async function failedFlaky(committed: boolean): Promise<TestNode> {
  const t = await startTestNode({ "tick-interval": "5ms", "checkpoint-interval": "0" });
  const dir = join(t.dir, "wasm");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "flaky.wasm"), await wat2wasm(FLAKY));
  writeFileSync(join(dir, "flaky.manifest.json"), JSON.stringify({ capabilities: {} }));
  const failed = t.waitFor<AgentView>("stopped", (v) => v.id === "flaky" && v.status === "failed");
  const saved = t.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "flaky" && e.reason === "agent_trap" && e.outcome === "written");
  await t.node.addAgent({ wasmPath: join(dir, "flaky.wasm") });
  await failed;
  if (committed) await saved;
  return t;
}

/** What "flaky" does after a start: ticks past tick 3, or fails again (and why). Only events from now on (t.waitFor also sees past ones). */
function afterStart(t: TestNode): Promise<string> {
  const past = waitForEvent<TickEvent>(t.node.scheduler, "tick", (e) => e.agentId === "flaky" && e.tick === 4n).then(() => "ticked past tick 3");
  const failed = waitForEvent<AgentView>(t.node.scheduler, "stopped", (v) => v.id === "flaky" && v.status === "failed").then(
    (v) => `failed again: ${v.error?.code ?? v.reason ?? ""}`,
  );
  return Promise.race([past, failed]);
}

describe("starting an agent whose run failed", () => {
  it("igord start once the failure is stored: the re-run of the failed tick hears resume_interrupted 1 and ticks on", async () => {
    const t = await failedFlaky(true);
    const outcome = afterStart(t);
    await startAgent(t.node, "flaky");
    expect(await outcome).toBe("ticked past tick 3");
  });

  it("igord stop, then igord start: the stop of the failed agent is no clean end, the re-run still hears resume_interrupted 1", async () => {
    const t = await failedFlaky(true);
    await stopAgent(t.node, "flaky");
    const row = t.node.store.agent("flaky");
    expect({ status: row?.status, reason: row?.reason }).toEqual({ status: "stopped", reason: OPERATOR_STOP_INTERRUPTED });
    const outcome = afterStart(t);
    await startAgent(t.node, "flaky");
    expect(await outcome).toBe("ticked past tick 3");
  });

  it("igord start right after the failure resumes from the failure's checkpoint: no committed tick runs again", async () => {
    const t = await failedFlaky(false);
    const ticksRun: bigint[] = [];
    t.node.scheduler.on("tick", (e: TickEvent) => {
      if (e.agentId === "flaky") ticksRun.push(e.tick);
    });
    const outcome = afterStart(t);
    await startAgent(t.node, "flaky");
    // Ticks 1 and 2 are committed by the failure's checkpoint (of tick 2).
    expect({ outcome: await outcome, rerun: ticksRun.filter((k) => k <= 2n) }).toEqual({ outcome: "ticked past tick 3", rerun: [] });
  });

  it("igord stop right after the failure: the failure's checkpoint does not undo the stop, and a start still hears resume_interrupted 1", async () => {
    const t = await failedFlaky(false);
    await stopAgent(t.node, "flaky");
    await t.node.scheduler.settled();
    const row = t.node.store.agent("flaky");
    expect({ status: row?.status, reason: row?.reason }).toEqual({ status: "stopped", reason: OPERATOR_STOP_INTERRUPTED });
    const outcome = afterStart(t);
    await startAgent(t.node, "flaky");
    expect(await outcome).toBe("ticked past tick 3");
  });
});
