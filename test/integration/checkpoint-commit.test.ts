// The checkpoint group commit on a real SQLite file, through the signer pool: checkpoints that carry
// no event logs settle every journalled payment of the ticks they commit, whether the payment was
// journalled after the store's first checkpoints or before the store was reopened.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { didFromPublicKey } from "../../src/identity/did.js";
import { generateKey } from "../../src/identity/keys.js";
import { SignerPool } from "../../src/identity/signer-pool.js";
import { Checkpointer } from "../../src/scheduler/checkpointer.js";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import type { CheckpointCommit } from "../../src/store/types.js";
import { freshDbPath, lease, WASM, WASM_HASH } from "../helpers/checkpoint-store.js";

function agent(cp: Checkpointer, agentId: string) {
  const identity = generateKey();
  const s = { agentId, tick: 0n, budget: 1000n, price: 1n, state: new Uint8Array(16), wasmHash: WASM_HASH, identity, lease };
  cp.genesis(s, { agentId, did: didFromPublicKey(identity.publicKey), wasmHash: WASM_HASH, wasmBytes: WASM, manifest: "{}", identity, lease });
  return s;
}

/** A store on a fresh SQLite file (--sync full) and a checkpointer without signer threads. */
function freshStore(): { store: SqliteStore; cp: Checkpointer } {
  const store = SqliteStore.open(freshDbPath(), { sync: "full" });
  return { store, cp: new Checkpointer(store, store.nodeKey()) };
}

function payment(agentId: string, tick: bigint) {
  return { agentId, tick, receiptHash: randomBytes(32), amount: 5n, recipient: "0xabc", memo: "m", receipt: randomBytes(64) };
}

describe("checkpoint group commit", () => {
  it("a payment journalled after the store's first checkpoints is settled by the checkpoint that covers its tick", async () => {
    const { store, cp } = freshStore();
    try {
      const a = agent(cp, "a");
      const b = agent(cp, "b");
      // The first checkpoints read which agents have journalled payments: none.
      await Promise.all([cp.checkpoint({ ...a, tick: 1n }, "periodic", "active", null), cp.checkpoint({ ...b, tick: 1n }, "periodic", "active", null)]);
      await store.journalPayment(payment("a", 2n));
      await store.journalPayment(payment("a", 4n));
      await cp.checkpoint({ ...a, tick: 2n }, "periodic", "active", null);
      expect(store.unsettledPayments("a").map((p) => p.tick)).toEqual([4n]);
      await cp.checkpoint({ ...a, tick: 4n }, "periodic", "active", null);
      expect(store.unsettledPayments("a")).toEqual([]);
    } finally {
      store.close();
    }
  });

  it("a lost payment is stored with the budget steps its debit made, not steps worked back from a later checkpoint's budget", async () => {
    const { store, cp } = freshStore();
    try {
      const a = agent(cp, "a");
      // A thrown-away run of tick 1 paid 300 of 1000; the re-run and tick 2 then cost 40 more.
      cp.addLostPayments("a", [{ tick: 1n, receipt: randomBytes(64), oldBudget: 1000n, newBudget: 700n }]);
      await cp.checkpoint({ ...a, tick: 2n, budget: 660n }, "periodic", "active", null);
      const lost = store.lineageEvents("a").filter((e) => e.kind === "lost_payment");
      expect(lost.map((e) => [e.oldBudget, e.newBudget])).toEqual([[1000n, 700n]]);
    } finally {
      store.close();
    }
  });

  it("a payment journalled before the store was reopened is settled by the first checkpoint after", async () => {
    const path = freshDbPath();
    const first = SqliteStore.open(path, { sync: "full" });
    const cp = new Checkpointer(first, first.nodeKey());
    const a = agent(cp, "a");
    await cp.checkpoint({ ...a, tick: 1n }, "periodic", "active", null);
    await first.journalPayment(payment("a", 2n));
    first.close();
    const store = SqliteStore.open(path, { sync: "full" });
    const pool = new SignerPool(2);
    try {
      const again = new Checkpointer(store, store.nodeKey(), 0, pool);
      const head = store.head("a");
      again.track("a", { hash: head!.hash, tick: head!.tick, budget: head!.budget });
      await again.checkpoint({ ...a, tick: 2n }, "periodic", "active", null);
      expect(store.unsettledPayments("a")).toEqual([]);
      expect(store.historyCount("a")).toBe(3);
    } finally {
      await pool.close();
      store.close();
    }
  });

  it("a group commit of 150 checkpoints stores every checkpoint and segment it accepts, refuses a stale lease and a broken chain alone, and links one agent's two checkpoints in one batch", () => {
    const { store, cp } = freshStore();
    try {
      const n = 150;
      const ids = Array.from({ length: n }, (_, i) => `g${i}`);
      for (const id of ids) agent(cp, id);
      const commit = (agentId: string, tick: bigint, prevHash: Uint8Array): CheckpointCommit => ({
        agentId, tick, budget: 1000n - tick, hash: randomBytes(32), prevHash, blob: randomBytes(300), reason: "periodic", receipt: null, status: "active", statusReason: null,
        lease: { state: lease.state, epoch: lease.epoch },
        events: { fromTick: tick - 4n, toTick: tick, abiVersion: 1, engineVersion: 1, blob: randomBytes(50), postHashes: randomBytes(32), signature: randomBytes(64) },
        settledPayments: [],
      });
      const batch = ids.map((id) => commit(id, 5n, store.head(id)!.hash));
      batch[7] = { ...(batch[7] as CheckpointCommit), lease: { state: "ACTIVE_OWNER", epoch: { major: 3n, generation: 0n } } };
      batch[101] = { ...(batch[101] as CheckpointCommit), prevHash: randomBytes(32) };
      const results = store.commitNow(batch);
      expect(results.map((r, i) => (r ? `${i}:${r.code}` : null)).filter(Boolean)).toEqual(["7:LEASE_STALE", `${101}:CHECKPOINT_CHAIN_BROKEN`]);
      batch.forEach((c, i) => {
        const head = store.head(c.agentId)!;
        const segments = store.eventSegments(c.agentId);
        if (results[i]) {
          expect([head.tick, head.seq, segments.length]).toEqual([0n, 1n, 0]);
          return;
        }
        expect([head.tick, head.seq, head.budget, head.reason]).toEqual([5n, 2n, 995n, "periodic"]);
        expect(Buffer.from(head.hash).equals(Buffer.from(c.hash))).toBe(true);
        expect(Buffer.from(head.blob).equals(Buffer.from(c.blob))).toBe(true);
        expect(segments.length).toBe(1);
        const [seg] = segments;
        expect([seg!.fromTick, seg!.toTick]).toEqual([1n, 5n]);
        for (const f of ["blob", "postHashes", "signature"] as const) expect(Buffer.from(seg![f]!).equals(Buffer.from(c.events![f]!))).toBe(true);
      });
      // One agent twice in one batch: the second links to the first.
      const first = commit("g0", 10n, batch[0]!.hash);
      const second = commit("g0", 15n, first.hash);
      expect(store.commitNow([first, commit("g1", 10n, batch[1]!.hash), second])).toEqual([null, null, null]);
      expect([store.head("g0")!.tick, store.head("g0")!.seq, store.eventSegments("g0").length]).toEqual([15n, 4n, 3]);
    } finally {
      store.close();
    }
  });
});
