// Modules under --history-retention: every upgrade stores the new module (a dev loop: one per save),
// and once the retention pruned every checkpoint that ran an earlier one, nothing reads that module
// again (export, verify --replay and migration packages take only the modules the agent's row and
// its kept checkpoints name). Such a module goes with the prune; one another agent still runs stays.
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { parseCheckpoint } from "../../src/checkpoint/codec.js";
import { hex } from "../../src/hash/bytes.js";
import { upgradeAgent } from "../../src/node/code-upgrade.js";
import type { CheckpointEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

const KEEP = 4;
const UPGRADES = 6;

/** Hashes of the node's stored modules, read from its SQLite file. */
function storedModules(t: TestNode): string[] {
  const db = new Database(join(t.config.dataDir, DB_FILE), { readonly: true });
  try {
    return (db.prepare("SELECT hash FROM wasm_modules ORDER BY hash").all() as { hash: string }[]).map((r) => r.hash);
  } finally {
    db.close();
  }
}

/** The modules the agents' rows and their kept checkpoints name. */
function namedModules(t: TestNode, agents: readonly string[]): string[] {
  const store = SqliteStore.open(join(t.config.dataDir, DB_FILE), { readonly: true });
  try {
    const named = new Set<string>();
    for (const id of agents) {
      named.add(store.agent(id)!.wasmHash);
      for (const c of store.history(id)) named.add(hex(parseCheckpoint(c.blob).wasmHash));
    }
    return [...named].sort();
  } finally {
    store.close();
  }
}

describe("stored modules under --history-retention", () => {
  it("a module no kept checkpoint and no agent names goes once the retention pruned the checkpoints that ran it", async () => {
    const t = await startTestNode({ "tick-interval": "5ms", "checkpoint-interval": "20ms", "history-retention": String(KEEP) });
    const build = (n: number): Promise<string> => writeWat(join(t.dir, `v${n}`), "dev", watAgent({ extra: `(func (export "build_${n}"))` }));
    await t.node.addAgent({ wasmPath: await build(0) });
    // Another agent runs the first build and is never upgraded: its module stays.
    await t.node.addAgent({ wasmPath: await build(0), agentId: "twin" });
    for (let n = 1; n <= UPGRADES; n++) {
      await upgradeAgent(t.node, "dev", await build(n));
      const seq = t.node.store.head("dev")!.seq;
      // Enough checkpoints after the upgrade that the retention prunes every one the earlier build made.
      await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "dev" && t.node.store.head("dev")!.seq >= seq + BigInt(2 * KEEP));
    }
    const named = namedModules(t, ["dev", "twin"]);
    expect(named.length).toBeLessThan(UPGRADES);
    expect(storedModules(t)).toEqual(named);
  }, 60_000);
});
