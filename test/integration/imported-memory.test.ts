// An agent that imports its memory (env.memory: wasm-ld --import-memory, AssemblyScript
// --importMemory) gets one no larger than its own declared maximum or its manifest's cap, whichever
// is smaller. The host offered the cap always: a module declaring a smaller maximum could not link
// (WASM_LINK "memory import 0 has a larger maximum size").
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

describe("an imported memory", () => {
  for (const [declared, name] of [
    ["(memory 1 2)", "bounded"],
    ["(memory 1)", "unbounded"],
  ] as const) {
    it(`declared ${declared}: the agent loads and ticks, and memory.grow stops within its maximum and the cap`, async () => {
      const t = await startTestNode({ "tick-interval": "20ms" });
      // Growing by 100 pages must fail either way (past 2 pages, or past the 4-page cap): it traps if it did not.
      const agent = watAgent({ memory: `(import "env" "memory" ${declared})`, onTick: "(if (i32.ne (memory.grow (i32.const 100)) (i32.const -1)) (then unreachable))" });
      const path = await writeWat(join(t.dir, "wasm"), name, agent, { ...CAPS(), resource_limits: { max_memory_bytes: 4 * 65536 } });
      const view = await t.node.addAgent({ wasmPath: path });
      expect(view.status).toBe("running");
      await t.waitFor<TickEvent>("tick", (e) => e.agentId === name && e.tick >= 3n);
      expect(t.node.scheduler.view(name)?.status).toBe("running");
    });
  }
});
