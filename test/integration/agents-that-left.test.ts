// What the scheduler keeps of an agent that left it (stopped, removed, handed off): nothing. Its due
// time may be a day away, and its record holds the committed state, the replay window and a logger.
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { removeAgent, startAgent, stopAgent } from "../../src/node/agent-lifecycle.js";
import type { AgentRuntime } from "../../src/scheduler/agent-runtime.js";
import type { Scheduler } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

const MIB = 1024 * 1024;
const DAY_MS = 86_400_000;

// An agent whose state is 1 MiB: kept at 1 MiB..2 MiB, resume copies it back from where malloc put it (2 MiB).
const BIG_STATE = `(module
  (memory (export "memory") 48)
  (func (export "agent_init"))
  (func (export "agent_tick") (result i32) (i32.store (i32.const ${MIB}) (i32.add (i32.load (i32.const ${MIB})) (i32.const 1))) (i32.const 0))
  (func (export "agent_checkpoint") (result i32) (i32.const ${MIB}))
  (func (export "agent_checkpoint_ptr") (result i32) (i32.const ${MIB}))
  (func (export "agent_resume") (param $p i32) (param $n i32) (memory.copy (i32.const ${MIB}) (local.get $p) (local.get $n)))
  (func (export "malloc") (param i32) (result i32) (i32.const ${2 * MIB})))`;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** The scheduler's record of an agent, held weakly: the test must not be what keeps it. */
function recordOf(s: Scheduler, id: string): WeakRef<AgentRuntime> {
  const a = (s as unknown as { agents: Map<string, AgentRuntime> }).agents.get(id);
  if (!a) throw new Error(`no record of "${id}"`);
  return new WeakRef(a);
}

/** Records still alive after full collections (what is left is held by something). */
async function alive(records: readonly WeakRef<AgentRuntime>[]): Promise<string[]> {
  // A turn of the event loop first: a stop's checkpoint commit resolves on its own.
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  gc();
  return records.flatMap((r) => {
    const a = r.deref();
    return a ? [`${a.id} (${a.state.length} state bytes)`] : [];
  });
}

describe("an agent that left the scheduler", () => {
  it("stopping and starting a day-cadence agent 10 times beside another day-cadence agent keeps none of its earlier records (and their 1 MiB states)", async () => {
    const t = await startTestNode({ "tick-interval": "1s", "hibernate-after": "0", "checkpoint-interval": "0" });
    // Another agent of the node, added first: its due time is the queue's head for a day.
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "anchor", BIG_STATE, { tick_interval_ms: DAY_MS }) });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "daily", BIG_STATE, { tick_interval_ms: DAY_MS }) });
    // `igord stop` + `igord start` (what `igord upgrade` and the dev loop's rebuilds do too).
    const earlier: WeakRef<AgentRuntime>[] = [];
    for (let i = 0; i < 10; i++) {
      earlier.push(recordOf(t.node.scheduler, "daily"));
      await stopAgent(t.node, "daily");
      await startAgent(t.node, "daily");
    }
    expect(await alive(earlier)).toEqual([]);
    expect(t.node.scheduler.view("daily")?.status).toBe("running");
  });

  it("a removed day-cadence agent leaves nothing of itself in the scheduler", async () => {
    const t = await startTestNode({ "tick-interval": "1s", "hibernate-after": "0", "checkpoint-interval": "0" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "gone", BIG_STATE, { tick_interval_ms: DAY_MS }) });
    const record = recordOf(t.node.scheduler, "gone");
    await removeAgent(t.node, "gone");
    expect(t.node.scheduler.has("gone")).toBe(false);
    expect(await alive([record])).toEqual([]);
  });
});
