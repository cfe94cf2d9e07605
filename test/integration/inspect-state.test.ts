// igord inspect --state prints the agent's state as a hex dump, read from a real stored checkpoint.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { hexdump } from "../../src/cli/hexdump.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes, storedHead } from "../helpers/node.js";
import { igord } from "../helpers/process.js";
import { watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

describe("igord inspect --state", () => {
  it("hexdump shows offset, two groups of eight bytes and the printable ASCII", () => {
    const bytes = new Uint8Array([...new TextEncoder().encode("tick-7 ok"), 0, 1, 2, 0xff, 0x41, 0x42, 0x43, 0x44, 0x45]);
    expect(hexdump(bytes)).toEqual([
      "00000000  74 69 63 6b 2d 37 20 6f  6b 00 01 02 ff 41 42 43  |tick-7 ok....ABC|",
      "00000010  44 45                                             |DE|",
    ]);
  });

  it("prints the stored head's state after its header fields", async () => {
    const t = await startTestNode({ "tick-interval": "10ms" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "counter", watAgent()) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick >= 3n);
    await t.stop();
    const head = storedHead(t.config.dataDir, "counter")!;
    const r = igord(["inspect", "--agent", "counter", "--data-dir", t.config.dataDir, "--state"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("state (4 bytes):");
    expect(r.stdout).toContain(hexdump(head.state)[0]);
    expect(igord(["inspect", "--agent", "counter", "--data-dir", t.config.dataDir]).stdout).not.toContain("state (4 bytes):");
  });
});
