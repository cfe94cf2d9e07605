// A budget override (`igord resume --budget`) is a signed top-up after the agent's head. On a node
// the agent moved away from (RETIRED), it must be refused before anything is written: the node owns
// nothing there to top up, and a top-up stored after the retired head sets the budget the agent
// resumes with should it ever come back to that head (admission and resume read the last lineage
// event after the head), money created by a command that said it failed.
// Real nodes, real SQLite files, real WASM, libp2p over loopback, the igord binary for the command.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, startTestNode, stopAllNodes } from "../helpers/node.js";
import { igord, killAll } from "../helpers/process.js";

afterEach(async () => {
  await stopAllNodes();
  await killAll();
});

const heartbeat = join(EXAMPLES, "heartbeat.wasm");
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "tick-interval": "10ms", "checkpoint-interval": "30ms", "migration-timeout": "5s", "peer-refresh": "0" };

describe("a budget override on a node that does not own the agent", () => {
  it("igord resume --budget on the node an agent moved away from is refused LEASE_RETIRED with no top-up stored, and a checkpoint extending the retired head is not appended", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode({ ...P2P, "accept-migrations": "any" });
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    expect((await a.node.migrate("heartbeat", [b.node.migration!.addresses()[0]!])).outcome).toBe("done");
    await a.stop();

    const db = join(a.config.dataDir, DB_FILE);
    const read = () => {
      const store = SqliteStore.open(db, { readonly: true });
      try {
        return { head: store.head("heartbeat")!, events: store.lineageEvents("heartbeat").length, lease: store.lease("heartbeat")?.state };
      } finally {
        store.close();
      }
    };
    const before = read();
    expect(before.lease).toBe("RETIRED");
    const file = join(a.dir, "head.ckpt");
    writeFileSync(file, before.head.blob);

    const r = igord(["resume", "--checkpoint", file, "--wasm", heartbeat, "--budget", "100", "--data-dir", a.config.dataDir, "--listen", "off"]);
    expect(r.stderr).toContain("LEASE_RETIRED");
    expect(r.status).toBe(1);
    // Nothing written: no top-up after the retired head, the lease as it was.
    expect(read()).toEqual(before);

    // B's own next checkpoint extends the head A retired: not A's to append either.
    await b.waitFor<TickEvent>("tick", (e) => e.tick > before.head.tick + 1n);
    await b.stop();
    const next = join(a.dir, "next.ckpt");
    const bStore = SqliteStore.open(join(b.config.dataDir, DB_FILE), { readonly: true });
    try {
      const head = bStore.head("heartbeat")!;
      const row = [...Array(Number(head.seq)).keys()].map((i) => bStore.checkpointAt("heartbeat", BigInt(i + 1))).find((c) => c && Buffer.from(c.prevHash).equals(Buffer.from(before.head.hash)));
      writeFileSync(next, row!.blob);
    } finally {
      bStore.close();
    }
    const extend = igord(["resume", "--checkpoint", next, "--wasm", heartbeat, "--data-dir", a.config.dataDir, "--listen", "off"]);
    expect(extend.stderr).toContain("LEASE_RETIRED");
    expect(extend.status).toBe(1);
    expect(read()).toEqual(before);
  });
});
