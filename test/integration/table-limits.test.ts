// An agent's tables are host memory that max_memory_bytes does not count: a 64 KiB agent declaring
// (table 10000000 funcref) loaded, and took ~570 MB of the node with its replay shadow. All its tables
// together hold at most MAX_TABLE_ENTRIES: more declared is refused at load, WASM_TABLE_LIMIT, and a
// table's maximum is capped in the binary (table.grow past it returns -1 inside the agent).
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isIgordError } from "../../src/errors.js";
import { MAX_TABLE_ENTRIES } from "../../src/loader/prepare.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

describe("an agent's tables", () => {
  it(`tables declaring more than MAX_TABLE_ENTRIES (${MAX_TABLE_ENTRIES}) in all are refused at load, WASM_TABLE_LIMIT, and nothing is stored`, async () => {
    const t = await startTestNode();
    const tables = `(table ${MAX_TABLE_ENTRIES / 2} funcref) (table ${MAX_TABLE_ENTRIES / 2 + 1} funcref)`;
    const path = await writeWat(join(t.dir, "wasm"), "tables", watAgent({ extra: tables }), { ...CAPS(), resource_limits: { max_memory_bytes: 65536 } });
    const err = await t.node.addAgent({ wasmPath: path }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isIgordError(err) ? err.code : err).toBe("WASM_TABLE_LIMIT");
    expect((err as Error).message).toContain(`${MAX_TABLE_ENTRIES + 1} entries`);
    expect(t.node.store.agent("tables")).toBeUndefined();
  });

  it("table.grow stops at the cap: a table without a maximum cannot grow past what is left of MAX_TABLE_ENTRIES, and the agent runs", async () => {
    const t = await startTestNode({ "tick-interval": "20ms" });
    // Traps if growing past the cap succeeds; growing within it must succeed.
    const onTick = `(if (i32.eq (global.get $ticks) (i32.const 1)) (then
        (if (i32.ne (table.grow $t (ref.null func) (i32.const ${MAX_TABLE_ENTRIES})) (i32.const -1)) (then unreachable))
        (if (i32.eq (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1)) (then unreachable))))`;
    const path = await writeWat(join(t.dir, "wasm"), "grower", watAgent({ extra: "(table $t 10 funcref)", onTick }), CAPS());
    expect((await t.node.addAgent({ wasmPath: path })).status).toBe("running");
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "grower" && e.tick >= 3n);
    expect(t.node.scheduler.view("grower")?.status).toBe("running");
  });
});
