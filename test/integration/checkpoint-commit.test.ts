// The checkpoint group commit on a real SQLite file, through the signer pool: checkpoints that carry
// no event logs settle every journalled payment of the ticks they commit, whether the payment was
// journalled after the store's first checkpoints or before the store was reopened.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Lease } from "../../src/authority/lease.js";
import { didFromPublicKey } from "../../src/identity/did.js";
import { generateKey } from "../../src/identity/keys.js";
import { SignerPool } from "../../src/identity/signer-pool.js";
import { Checkpointer } from "../../src/scheduler/checkpointer.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { tempDir } from "../helpers/node.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const lease: Lease = { state: "ACTIVE_OWNER", epoch: { major: 0n, generation: 0n }, expiresAtMs: null, handoff: null };
const WASM = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
const WASM_HASH = "93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476";

function agent(cp: Checkpointer, agentId: string) {
  const identity = generateKey();
  const s = { agentId, tick: 0n, budget: 1000n, price: 1n, state: new Uint8Array(16), wasmHash: WASM_HASH, identity, lease };
  cp.genesis(s, { agentId, did: didFromPublicKey(identity.publicKey), wasmHash: WASM_HASH, wasmBytes: WASM, manifest: "{}", identity, lease });
  return s;
}

function payment(agentId: string, tick: bigint) {
  return { agentId, tick, receiptHash: randomBytes(32), amount: 5n, recipient: "0xabc", memo: "m", receipt: randomBytes(64) };
}

describe("checkpoint group commit", () => {
  it("a payment journalled after the store's first checkpoints is settled by the checkpoint that covers its tick", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const store = SqliteStore.open(join(dir, DB_FILE), { sync: "full" });
    try {
      const cp = new Checkpointer(store, store.nodeKey());
      const a = agent(cp, "a");
      const b = agent(cp, "b");
      // The first checkpoints read which agents have journalled payments: none.
      await Promise.all([cp.checkpoint({ ...a, tick: 1n }, "periodic", "active", null), cp.checkpoint({ ...b, tick: 1n }, "periodic", "active", null)]);
      store.journalPayment(payment("a", 2n));
      store.journalPayment(payment("a", 4n));
      await cp.checkpoint({ ...a, tick: 2n }, "periodic", "active", null);
      expect(store.unsettledPayments("a").map((p) => p.tick)).toEqual([4n]);
      await cp.checkpoint({ ...a, tick: 4n }, "periodic", "active", null);
      expect(store.unsettledPayments("a")).toEqual([]);
    } finally {
      store.close();
    }
  });

  it("a payment journalled before the store was reopened is settled by the first checkpoint after", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir, DB_FILE);
    const first = SqliteStore.open(path, { sync: "full" });
    const cp = new Checkpointer(first, first.nodeKey());
    const a = agent(cp, "a");
    await cp.checkpoint({ ...a, tick: 1n }, "periodic", "active", null);
    first.journalPayment(payment("a", 2n));
    first.close();
    const store = SqliteStore.open(path, { sync: "full" });
    const pool = new SignerPool(2);
    try {
      const again = new Checkpointer(store, store.nodeKey(), 0, pool);
      const head = store.head("a");
      again.track("a", { hash: head!.hash, tick: head!.tick });
      await again.checkpoint({ ...a, tick: 2n }, "periodic", "active", null);
      expect(store.unsettledPayments("a")).toEqual([]);
      expect(store.historyCount("a")).toBe(3);
    } finally {
      await pool.close();
      store.close();
    }
  });
});
