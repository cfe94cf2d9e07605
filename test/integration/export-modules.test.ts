// An agent upgraded in place (igord upgrade) has a history recorded by more than one module. Its
// export carries every module its checkpoints name, and import stores them: the copy audits
// (verify --replay), and its first hop can ship the modules that recorded the segments it ships.
// The export held the current module only: the copy's audit failed ("not at hand") and its package
// could not be built while a shipped segment was the old code's. Real node, real files and binary.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { hex } from "../../src/hash/bytes.js";
import { buildOutgoingPackage } from "../../src/migration/outgoing.js";
import { decodePackage } from "../../src/migration/package.js";
import { upgradeAgent } from "../../src/node/code-upgrade.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { igord } from "../helpers/process.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

const CLOCK = '(import "igor" "clock_now" (func $clock (result i64)))';
const V1 = watAgent({ imports: CLOCK, onTick: "(drop (call $clock))" });
const V2 = watAgent({ imports: CLOCK, onTick: "(drop (call $clock)) (global.set $ticks (i32.add (global.get $ticks) (i32.const 99)))" });

describe("export and import of an upgraded agent", () => {
  it("carry the earlier module: the imported copy audits VALID across the upgrade and its package ships that module", async () => {
    const t = await startTestNode({ "tick-interval": "10ms", "checkpoint-interval": "30ms" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "v1"), "counter", V1, CAPS("clock")) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick >= 5n);
    const up = await upgradeAgent(t.node, "counter", await writeWat(join(t.dir, "v2"), "counter", V2, CAPS("clock")));
    const n = BigInt(up.tick as string);
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick >= n + 5n);
    await t.stop();

    const ex = join(t.dir, "ex");
    expect(igord(["export", "counter", "--out", ex, "--data-dir", t.config.dataDir]).status).toBe(0);
    const audited = igord(["verify", "--replay", ex]);
    expect(audited.stderr).toBe("");
    expect(audited.stdout).toMatch(/^replay: VALID$/m);
    const C = join(t.dir, "C");
    expect(igord(["import", ex, "--data-dir", C]).status).toBe(0);
    const copy = igord(["verify", "--agent", "counter", "--replay", "--data-dir", C]);
    expect(copy.stderr).toBe("");
    expect(copy.stdout).toMatch(/^replay: VALID$/m);
    expect(copy.status).toBe(0);
    // The copy's first hop ships the old module with the segments it recorded.
    const store = SqliteStore.open(join(C, DB_FILE), { readonly: true });
    try {
      const pkg = decodePackage(buildOutgoingPackage(store, { agentId: "counter", epoch: store.lease("counter")!.epoch, checkpointHash: hex(store.head("counter")!.hash), haveWasm: false, baseHash: null }));
      expect(pkg.modules?.map((m) => m.hash)).toEqual([up.fromWasm]);
    } finally {
      store.close();
    }
  });
});
