// A handoff recorded with the checkpoint it hands off: the source's detach checkpoint and its
// HANDOFF_INITIATED lease commit in one transaction (one fsync, not two, run off the main thread),
// durably whatever --sync says, and a refused handoff takes its checkpoint down with it, never the
// rest of the batch.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import type { Lease } from "../../src/authority/lease.js";
import { parseCheckpoint } from "../../src/checkpoint/codec.js";
import { hex, sha256Hex } from "../../src/hash/bytes.js";
import { didFromPublicKey } from "../../src/identity/did.js";
import { generateKey } from "../../src/identity/keys.js";
import { Checkpointer } from "../../src/scheduler/checkpointer.js";
import { DB_FILE, fdatasyncWal, SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, tempDir } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Receipts only when an agent stops, so a checkpoint here is exactly one commit. */
const RECEIPT_ONLY_WHEN_STOPPING_MS = 3_600_000;
const level = (s: SqliteStore): number => (s as unknown as { db: Database.Database }).db.pragma("synchronous", { simple: true }) as number;
const owner: Lease = { state: "ACTIVE_OWNER", epoch: { major: 0n, generation: 0n }, expiresAtMs: null, handoff: null };

function setUp(sync: "full" | "normal", ids: string[]): { store: SqliteStore; checkpointer: Checkpointer; subject: (id: string, tick: bigint) => Parameters<Checkpointer["checkpoint"]>[0] } {
  const dir = tempDir();
  dirs.push(dir);
  const store = SqliteStore.open(join(dir, DB_FILE), { sync });
  const checkpointer = new Checkpointer(store, store.nodeKey(), RECEIPT_ONLY_WHEN_STOPPING_MS);
  const wasm = readFileSync(join(EXAMPLES, "heartbeat.wasm"));
  const keys = new Map(ids.map((id) => [id, generateKey()]));
  const subject = (id: string, tick: bigint): Parameters<Checkpointer["checkpoint"]>[0] => ({
    agentId: id,
    tick,
    budget: 1000n - tick,
    price: 1n,
    state: new Uint8Array([Number(tick)]),
    wasmHash: sha256Hex(wasm),
    identity: keys.get(id)!,
    lease: owner,
  });
  for (const id of ids) {
    const identity = keys.get(id)!;
    checkpointer.genesis(subject(id, 0n), { agentId: id, did: didFromPublicKey(identity.publicKey), wasmHash: sha256Hex(wasm), wasmBytes: wasm, manifest: "{}", identity, lease: owner });
  }
  return { store, checkpointer, subject };
}

describe("a handoff committed with its checkpoint", () => {
  it("goes in the checkpoint's own transaction, committed at NORMAL and made durable by an fdatasync of the WAL off the main thread: the checkpoint resolves only once that sync returned", async () => {
    const { store, checkpointer, subject } = setUp("normal", ["a"]);
    try {
      expect(level(store)).toBe(1);
      const held: (() => void)[] = [];
      store.walSync = async (fd) => {
        await new Promise<void>((resolve) => held.push(resolve));
        await fdatasyncWal(fd);
      };
      const seen: { level: number; head: string; stored: number }[] = [];
      let durable = false;
      const checkpointed = checkpointer
        .checkpoint(subject("a", 1n), "migrate", "active", null, (head) => {
          // Inside the transaction: the checkpoint is already stored.
          seen.push({ level: level(store), head: hex(head.hash), stored: Number(store.head("a")?.tick ?? -1n) });
          store.writeLease("a", { state: owner.state, epoch: owner.epoch }, { ...owner, state: "HANDOFF_INITIATED", handoff: { target: "t", checkpointHash: hex(head.hash) } });
        })
        .then(() => (durable = true));
      await waitUntil(() => held.length === 1, { what: "the WAL sync" });
      // Committed (visible), not yet reported durable.
      const head = store.head("a")!;
      expect(seen).toEqual([{ level: 1, head: hex(head.hash), stored: 1 }]);
      expect(store.lease("a")).toMatchObject({ state: "HANDOFF_INITIATED", handoff: { target: "t", checkpointHash: hex(head.hash) } });
      expect(durable).toBe(false);
      held[0]!();
      await checkpointed;
      expect(durable).toBe(true);
      expect(level(store)).toBe(1);
    } finally {
      store.close();
    }
  });

  it("the handoff is given the head it goes in with, as stored: its hash, tick and budget (the offer's budget, so the source reads no row back for it)", async () => {
    const { store, checkpointer, subject } = setUp("full", ["a"]);
    try {
      const given: { hash: Uint8Array; tick: bigint; budget: bigint }[] = [];
      await checkpointer.checkpoint(subject("a", 3n), "migrate", "active", null, (head) => given.push(head));
      const stored = store.head("a")!;
      expect(given).toEqual([{ hash: stored.hash, tick: 3n, budget: parseCheckpoint(stored.blob).budget }]);
      expect(given[0]!.budget).toBe(997n);
    } finally {
      store.close();
    }
  });

  it("the agents row and its lease read together are what agent() and lease() read, epochs as bigints (the lease compare-and-set compares them exactly)", () => {
    const { store } = setUp("full", ["a"]);
    try {
      const handedOff: Lease = { ...owner, state: "HANDOFF_INITIATED", epoch: { major: 0n, generation: 0n }, handoff: { target: "t", checkpointHash: "ab".repeat(32) } };
      store.writeLease("a", { state: owner.state, epoch: owner.epoch }, handedOff);
      const both = store.agentAndLease("a")!;
      expect(both.row).toEqual(store.agent("a"));
      expect(both.lease).toEqual(store.lease("a"));
      expect(typeof both.lease.epoch.major).toBe("bigint");
      // The belief it gives is one the store takes.
      store.writeLease("a", { state: both.lease.state, epoch: both.lease.epoch }, { ...handedOff, state: "RETIRED" });
      expect(store.lease("a")?.state).toBe("RETIRED");
      expect(store.agentAndLease("nobody")).toBeUndefined();
    } finally {
      store.close();
    }
  });

  it("under --sync full it commits at NORMAL too and the connection goes back to FULL; a WAL sync that fails rejects the whole batch and the store takes no durable write after it", async () => {
    const { store, checkpointer, subject } = setUp("full", ["a", "b"]);
    try {
      const levels: number[] = [];
      store.walSync = () => Promise.reject(Object.assign(new Error("EIO: i/o error, fdatasync (injected)"), { code: "EIO" }));
      const a = checkpointer.checkpoint(subject("a", 1n), "migrate", "active", null, () => levels.push(level(store)));
      const b = checkpointer.checkpoint(subject("b", 1n), "periodic", "active", null);
      await expect(a).rejects.toMatchObject({ code: "STORE_ERROR", message: expect.stringMatching(/fsync of .*-wal failed \(EIO\)/) });
      // In the same group commit: not known to be on disk either.
      await expect(b).rejects.toMatchObject({ code: "STORE_ERROR" });
      expect(levels).toEqual([1]);
      expect(level(store)).toBe(2);
      expect(store.syncFailed?.code).toBe("STORE_ERROR");
      expect(() => store.writeLease("a", { state: "ACTIVE_OWNER", epoch: owner.epoch }, { ...owner, state: "HANDOFF_INITIATED" })).toThrow(/fsync of .*-wal failed/);
      expect(() => store.atomicallyOffThread(() => undefined)).toThrow(/fsync of .*-wal failed/);
    } finally {
      store.close();
    }
  });

  it("a refused handoff refuses its checkpoint too (code kept), and the other checkpoints of the batch still commit", async () => {
    const { store, checkpointer, subject } = setUp("full", ["a", "b"]);
    try {
      const stale = { state: "ACTIVE_OWNER" as const, epoch: { major: 7n, generation: 0n } };
      // Both queued before the group commit runs: one batch.
      const a = checkpointer.checkpoint(subject("a", 1n), "migrate", "active", null, () => store.writeLease("a", stale, { ...owner, state: "HANDOFF_INITIATED" }));
      const b = checkpointer.checkpoint(subject("b", 1n), "periodic", "active", null);
      await expect(a).rejects.toMatchObject({ code: "LEASE_STALE" });
      await b;
      expect(store.head("a")?.tick).toBe(0n);
      expect(store.lease("a")?.state).toBe("ACTIVE_OWNER");
      expect(store.head("b")?.tick).toBe(1n);
    } finally {
      store.close();
    }
  });

  it("is not written when the checkpoint has nothing new to write (the caller records the handoff itself)", async () => {
    const { store, checkpointer, subject } = setUp("full", ["a"]);
    try {
      let ran = false;
      const outcome = await checkpointer.checkpoint(subject("a", 0n), "migrate", "active", null, () => (ran = true));
      expect(outcome).toBe("unchanged");
      expect(ran).toBe(false);
      expect(store.lease("a")?.state).toBe("ACTIVE_OWNER");
    } finally {
      store.close();
    }
  });
});
