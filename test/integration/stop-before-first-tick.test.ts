// An agent resumed after an interruption (a crash left a head after which ticks ran uncommitted) is
// told so in its first tick (resume_interrupted 1). Stopped by the operator before that tick, resident
// or hibernated, it has not been told yet: the stop is no clean end, and the first tick after
// igord start must still hear 1. Before, the stop was stored operator_stop (a clean end, as if the
// agent had run on and been checkpointed) and the start's first tick heard 0: an InFlight intent of
// the crashed run stayed InFlight, never reconciled. A hop before that tick carries it: the handoff
// checkpoint is no clean end either. Real scheduler, pool, SQLite, WASM and libp2p on loopback.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { OPERATOR_STOP_INTERRUPTED, startAgent, stopAgent } from "../../src/node/agent-lifecycle.js";
import { upgradeAgent } from "../../src/node/code-upgrade.js";
import type { CheckpointEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE } from "../../src/store/sqlite-store.js";
import { startTestNode, stopAllNodes, tempDir } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";
import { watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

// Asks resume_interrupted every tick (recorded in the tick's event log).
const ASKER = watAgent({ imports: '(import "igor" "resume_interrupted" (func $ri (result i32)))', onTick: "(drop (call $ri))" });

/** A data dir as a crash leaves it: the agent's head a periodic checkpoint, ticks run after it. */
async function crashedCopy(): Promise<string> {
  const t = await startTestNode({ "tick-interval": "5ms", "checkpoint-interval": "20ms" });
  await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "asker", ASKER, {}) });
  await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "asker" && e.reason === "periodic" && e.outcome === "written" && e.tick >= 2n);
  const crashed = tempDir();
  mkdirSync(join(crashed, "data"), { recursive: true });
  t.node.store.backupTo(join(crashed, "data", DB_FILE));
  await t.stop();
  return crashed;
}

describe("a stop before the first tick after an interrupted resume", () => {
  for (const hibernate of [false, true]) {
    it(`${hibernate ? "hibernated" : "resident"}: stored ${OPERATOR_STOP_INTERRUPTED}, and the first tick after igord start hears resume_interrupted 1`, async () => {
      const dir = await crashedCopy();
      // Restarted with its next tick an hour away: the operator stops it before it ever ticks here.
      const slow = await startTestNode({ "tick-interval": "1h", "lease-duration": "0", "hibernate-after": hibernate ? "50ms" : "0" }, { dir, resumeStored: true });
      expect(slow.node.scheduler.view("asker")?.status).toBe("running");
      if (hibernate) await waitUntil(() => slow.node.scheduler.view("asker")?.hibernated === true, { what: "asker to hibernate", pollMs: 5 });
      const stopped = await stopAgent(slow.node, "asker");
      expect(slow.node.store.agent("asker")).toMatchObject({ status: "stopped", reason: OPERATOR_STOP_INTERRUPTED });
      await slow.stop();

      const fast = await startTestNode({ "tick-interval": "5ms" }, { dir, resumeStored: true });
      expect(fast.node.scheduler.view("asker")).toBeUndefined();
      await startAgent(fast.node, "asker");
      const first = await fast.waitFor<TickEvent>("tick", (e) => e.agentId === "asker");
      expect(first.tick).toBe(BigInt(stopped.tick as string) + 1n);
      expect(first.events.filter((e) => e.id === HostcallId.resume_interrupted).map((e) => e.result)).toEqual([1]);
    });
  }

  it("a hop before that tick: the target's first tick hears resume_interrupted 1", async () => {
    const dir = await crashedCopy();
    const p2p = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "peer-refresh": "0", "lease-duration": "0" };
    const slow = await startTestNode({ ...p2p, "tick-interval": "1h", "hibernate-after": "0" }, { dir, resumeStored: true });
    expect(slow.node.pool.interrupted("asker")).toBe(true);
    const target = await startTestNode({ ...p2p, "tick-interval": "5ms" });
    const moved = await slow.node.migrate("asker", [target.node.migration!.addresses()[0]!]);
    expect(moved.outcome).toBe("done");
    const first = await target.waitFor<TickEvent>("tick", (e) => e.agentId === "asker");
    expect(first.events.filter((e) => e.id === HostcallId.resume_interrupted).map((e) => e.result)).toEqual([1]);
  });

  it("a code upgrade's pause before that tick: the new code's instance is still to be told", async () => {
    const dir = await crashedCopy();
    const slow = await startTestNode({ "tick-interval": "1h", "lease-duration": "0", "hibernate-after": "0" }, { dir, resumeStored: true });
    expect(slow.node.pool.interrupted("asker")).toBe(true);
    // The same code under another hash (a custom section appended).
    const stored = slow.node.store.wasm(slow.node.store.agent("asker")!.wasmHash)!;
    const v2 = join(dir, "asker-v2.wasm");
    writeFileSync(v2, Buffer.concat([Buffer.from(stored), Buffer.from([0, 3, 2, 0x76, 0x32])]));
    await upgradeAgent(slow.node, "asker", v2);
    expect(slow.node.scheduler.view("asker")?.status).toBe("running");
    expect(slow.node.pool.interrupted("asker")).toBe(true);
  });
});
