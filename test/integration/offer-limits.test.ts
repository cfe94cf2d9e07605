// What an offer may carry, checked where it costs nothing: a target records an incoming handoff
// only for an offer whose every field it checked (the record lets that peer fence the agent later),
// and a source refuses, before it stops the agent, a migration whose manifest no offer can carry.
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { didFromPublicKey } from "../../src/identity/did.js";
import { generateKey } from "../../src/identity/keys.js";
import { DB_FILE } from "../../src/store/sqlite-store.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, tempDir, type TestNode } from "../helpers/node.js";
import { RoguePeer } from "../helpers/rogue.js";

const rogues: RoguePeer[] = [];
afterEach(async () => {
  await Promise.all(rogues.splice(0).map((r) => r.stop()));
  await stopAllNodes();
});

const MANIFEST = readFileSync(join(EXAMPLES, "heartbeat.manifest.json"), "utf8");
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };
const addr = (t: TestNode): string => t.node.migration!.addresses()[0]!;

function handoffRecords(t: TestNode): unknown[] {
  const db = new Database(join(t.config.dataDir, DB_FILE), { readonly: true });
  try {
    return db.prepare("SELECT agent_id, peer FROM incoming_handoffs").all();
  } finally {
    db.close();
  }
}

describe("offer limits", () => {
  it("an offer refused for its sourceAddrs leaves no incoming-handoff record", async () => {
    const b = await startTestNode({ ...P2P, "accept-migrations": "any" });
    const r = await RoguePeer.start();
    rogues.push(r);
    const reply = await r.stall(
      addr(b),
      {
        agentId: "refused-1",
        did: didFromPublicKey(generateKey().publicKey),
        wasmHash: "ab".repeat(32),
        checkpointHash: "cd".repeat(32),
        epochMajor: "0",
        epochGeneration: "0",
        manifest: MANIFEST,
        durableSignal: true,
        pendingReception: true,
        // Not this peer's own address: refused.
        sourceAddrs: [addr(b)],
      },
      1000,
    );
    expect(reply).toMatchObject({ stage: "offer_reply", ok: false, code: "MIGRATION_FRAME_INVALID" });
    expect(handoffRecords(b)).toEqual([]);
  });

  it("a manifest over what an offer carries is refused before the agent stops, naming the manifest; the agent keeps running", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode({ ...P2P, "trusted-peer": a.node.migration!.peerId });
    const dir = tempDir();
    copyFileSync(join(EXAMPLES, "heartbeat.wasm"), join(dir, "big.wasm"));
    const manifest = MANIFEST.trim();
    // Valid JSON the loader takes (under its 256 KiB): 150,000 characters, whitespace inside the object.
    writeFileSync(join(dir, "big.manifest.json"), `${manifest.slice(0, -1)}${" ".repeat(150_000 - manifest.length)}}`);
    await a.node.addAgent({ wasmPath: join(dir, "big.wasm") });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "big" && e.tick >= 2n);
    let detached = 0;
    const detach = a.node.scheduler.detach.bind(a.node.scheduler);
    a.node.scheduler.detach = (...args) => {
      detached++;
      return detach(...args);
    };
    await expect(a.node.migrate("big", [addr(b)])).rejects.toMatchObject({ code: "MIGRATION_FRAME_TOO_LARGE", message: expect.stringMatching(/agent "big" cannot migrate: its manifest \(150000 characters/) });
    expect(detached).toBe(0);
    expect(a.node.scheduler.view("big")?.status).toBe("running");
    expect(a.node.store.lease("big")?.state).toBe("ACTIVE_OWNER");
  });
});
