// Migration-record progress is bookkeeping: under --sync full it commits without an fsync of its
// own (the next durable commit carries it), and the connection goes back to FULL right after.
import { rmSync } from "node:fs";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { DB_FILE, fdatasyncWal, SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, startTestNode, stopAllNodes, tempDir } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";

const dirs: string[] = [];
afterEach(async () => {
  await stopAllNodes();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const level = (s: SqliteStore): number => ((s as unknown as { db: Database.Database }).db.pragma("synchronous", { simple: true }) as number);

/** A --sync full store whose WAL syncs wait in `held` until released (then run the real fdatasync). */
function heldSyncStore(): { store: SqliteStore; held: (() => void)[] } {
  const dir = tempDir();
  dirs.push(dir);
  const store = SqliteStore.open(join(dir, DB_FILE), { sync: "full" });
  const held: (() => void)[] = [];
  store.walSync = (fd) => new Promise<void>((resolve) => held.push(resolve)).then(() => fdatasyncWal(fd));
  return { store, held };
}

describe("store sync levels", () => {
  it("migration-record writes leave a --sync full connection at FULL, inside or outside a durable transaction, and are visible at once", () => {
    const dir = tempDir();
    dirs.push(dir);
    const store = SqliteStore.open(join(dir, DB_FILE), { sync: "full" });
    try {
      expect(level(store)).toBe(2);
      const id = store.createMigration({ agentId: "a", direction: "out", peer: "p", state: "requested" });
      expect(level(store)).toBe(2);
      store.updateMigration(id, { state: "transferring", bytes: 10 });
      expect(level(store)).toBe(2);
      store.atomically(() => store.updateMigration(id, { state: "done", error: null }));
      expect(level(store)).toBe(2);
      const reader = SqliteStore.open(join(dir, DB_FILE), { readonly: true });
      try {
        expect(reader.migrations().find((m) => m.id === id)).toMatchObject({ state: "done", bytes: 10 });
      } finally {
        reader.close();
      }
    } finally {
      store.close();
    }
    const normal = SqliteStore.open(join(dir, DB_FILE), { sync: "normal" });
    try {
      normal.updateMigration(1, { attempts: 2 });
      expect(level(normal)).toBe(1);
    } finally {
      normal.close();
    }
  });

  it("a handoff's retirement commits without an fsync of its own under --sync full, all or nothing, and leaves the connection at FULL", () => {
    const dir = tempDir();
    dirs.push(dir);
    const store = SqliteStore.open(join(dir, DB_FILE), { sync: "full" });
    try {
      const id = store.createMigration({ agentId: "a", direction: "out", peer: "p", state: "awaiting_confirmation" });
      const levels: number[] = [];
      store.atomicallyUnsynced(() => {
        levels.push(level(store));
        store.updateMigration(id, { state: "done", error: null });
      });
      store.atomically(() => levels.push(level(store)));
      expect(levels).toEqual([1, 2]);
      expect(level(store)).toBe(2);
      expect(() =>
        store.atomicallyUnsynced(() => {
          store.updateMigration(id, { state: "failed", error: { code: "X", message: "y" } });
          throw new Error("refused half-way");
        }),
      ).toThrow("refused half-way");
      expect(level(store)).toBe(2);
      const reader = SqliteStore.open(join(dir, DB_FILE), { readonly: true });
      try {
        expect(reader.migrations().find((m) => m.id === id)).toMatchObject({ state: "done" });
      } finally {
        reader.close();
      }
    } finally {
      store.close();
    }
  });

  it("a lease renewal commits without an fsync of its own under --sync full (the main thread's renewals no longer wait on the disk); a lease state change still commits at FULL", async () => {
    const t = await startTestNode({ sync: "full", "tick-interval": "20ms", "lease-duration": "60s" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    await t.node.scheduler.pause("heartbeat", "test");
    const store = t.node.store;
    // The level inside each lease write's transaction (its compare-and-set reads the lease there first).
    const inside: number[] = [];
    const raw = store as unknown as { staleLease: (...a: unknown[]) => unknown };
    const stale = raw.staleLease.bind(store);
    raw.staleLease = (...a) => (inside.push(level(store)), stale(...a));
    const lease = store.lease("heartbeat")!;
    const renew = (l: typeof lease) => ({ ...l, epoch: { ...l.epoch, generation: l.epoch.generation + 1n }, expiresAtMs: Date.now() + 60_000 });
    const r1 = renew(lease);
    store.writeLease("heartbeat", { state: lease.state, epoch: lease.epoch }, r1);
    const r2 = renew(r1);
    expect(store.tryRenewLeases([{ agentId: "heartbeat", expected: { state: r1.state, epoch: r1.epoch }, next: r2 }])).toEqual([null]);
    store.writeLease("heartbeat", { state: r2.state, epoch: r2.epoch }, { ...r2, state: "RETIRED", expiresAtMs: null });
    expect(inside).toEqual([1, 1, 2]);
    expect(level(store)).toBe(2);
    expect(store.lease("heartbeat")?.state).toBe("RETIRED");
  });

  it("afterCommit runs once a durable transaction committed, before its off-thread sync returned; never after a rollback; a listener that throws leaves the commit standing", async () => {
    const { store, held } = heldSyncStore();
    try {
      const seen: string[] = [];
      const id = store.createMigration({ agentId: "a", direction: "out", peer: "p", state: "requested" });
      const { durable } = store.atomicallyOffThread(() => {
        store.updateMigration(id, { state: "transferring" });
        store.afterCommit(() => seen.push(`committed: ${store.migrations().find((m) => m.id === id)?.state}`));
        store.afterCommit(() => {
          throw new Error("a listener that fails");
        });
        store.afterCommit(() => seen.push("after the failing one"));
        expect(seen).toEqual([]);
      });
      expect(seen).toEqual(["committed: transferring", "after the failing one"]);
      await waitUntil(() => held.length === 1, { what: "the WAL sync" });
      let synced = false;
      const done = durable.then(() => (synced = true));
      expect(synced).toBe(false);
      held[0]!();
      await done;
      expect(() =>
        store.atomicallyOffThread(() => {
          store.afterCommit(() => seen.push("rolled back"));
          throw new Error("refused half-way");
        }),
      ).toThrow("refused half-way");
      // A later commit does not run the rolled-back transaction's listener either.
      store.atomically(() => store.updateMigration(id, { state: "done", error: null }));
      expect(seen).toEqual(["committed: transferring", "after the failing one"]);
    } finally {
      store.close();
    }
  });

  it("an afterCommit listener gets its transaction's `durable`: the very promise the off-thread commit returns, pending until its sync returns; for a commit synced on the main thread, already resolved", async () => {
    const { store, held } = heldSyncStore();
    try {
      const id = store.createMigration({ agentId: "a", direction: "out", peer: "p", state: "requested" });
      let given: Promise<void> | null = null;
      const { durable } = store.atomicallyOffThread(() => {
        store.updateMigration(id, { state: "transferring" });
        store.afterCommit((d) => (given = d));
      });
      expect(given).toBe(durable);
      let synced = false;
      void given!.then(() => (synced = true));
      await waitUntil(() => held.length === 1, { what: "the WAL sync" });
      await new Promise((resolve) => setImmediate(resolve));
      expect(synced).toBe(false);
      held[0]!();
      await durable;
      expect(synced).toBe(true);
      let onMain: Promise<void> | null = null;
      store.atomically(() => store.afterCommit((d) => (onMain = d)));
      await expect(onMain).resolves.toBeUndefined();
    } finally {
      store.close();
    }
  });

  it("the WAL syncs of durable commits run one at a time in commit order; once one fails, those queued behind it fail too, though their own fdatasync would succeed", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const store = SqliteStore.open(join(dir, DB_FILE), { sync: "full" });
    try {
      const calls: { release: (e?: Error) => void }[] = [];
      store.walSync = (fd) =>
        new Promise<void>((resolve, reject) => calls.push({ release: (e) => (e ? reject(e) : resolve()) })).then(() => fdatasyncWal(fd));
      const id = store.createMigration({ agentId: "a", direction: "out", peer: "p", state: "requested" });
      const first = store.atomicallyOffThread(() => store.updateMigration(id, { attempts: 1 })).durable;
      const second = store.atomicallyOffThread(() => store.updateMigration(id, { attempts: 2 })).durable;
      first.catch(() => undefined);
      second.catch(() => undefined);
      await waitUntil(() => calls.length === 1, { what: "the first sync" });
      // The second waits for the first: its fdatasync has not started.
      expect(calls).toHaveLength(1);
      calls[0]!.release(Object.assign(new Error("EIO (injected)"), { code: "EIO" }));
      await expect(first).rejects.toMatchObject({ code: "STORE_ERROR", message: expect.stringMatching(/failed \(EIO\)/) });
      await expect(second).rejects.toMatchObject({ code: "STORE_ERROR" });
      expect(calls).toHaveLength(1);
      expect(() => store.atomicallyOffThread(() => undefined)).toThrow(/failed \(EIO\)/);
    } finally {
      store.close();
    }
  });

  it("with no WAL sync in flight, a durable commit's fdatasync is asked for before the committing code's synchronous work goes on (not once that work has yielded)", async () => {
    const { store, held: calls } = heldSyncStore();
    try {
      const id = store.createMigration({ agentId: "a", direction: "out", peer: "p", state: "requested" });
      // A store's first sync syncs its directory first (asynchronously): that one waits for it.
      const first = store.atomicallyOffThread(() => store.updateMigration(id, { attempts: 1 })).durable;
      await waitUntil(() => calls.length === 1, { what: "the first sync" });
      calls[0]!();
      await first;
      // Nothing in flight: the next commit's sync is asked for before atomicallyOffThread returns.
      const second = store.atomicallyOffThread(() => store.updateMigration(id, { attempts: 2 })).durable;
      expect(calls).toHaveLength(2);
      // One in flight: a commit now waits for it, and shares the sync queued behind it.
      const third = store.atomicallyOffThread(() => store.updateMigration(id, { attempts: 3 })).durable;
      const fourth = store.atomicallyOffThread(() => store.updateMigration(id, { attempts: 4 })).durable;
      expect(calls).toHaveLength(2);
      calls[1]!();
      await second;
      await waitUntil(() => calls.length === 3, { what: "the queued sync" });
      calls[2]!();
      await Promise.all([third, fourth]);
      expect(calls).toHaveLength(3);
    } finally {
      store.close();
    }
  });

  it("durable commits made while a WAL sync is in flight share the next one: one fdatasync covers them all, and none resolves before it returned", async () => {
    const { store, held: calls } = heldSyncStore();
    try {
      const id = store.createMigration({ agentId: "a", direction: "out", peer: "p", state: "requested" });
      const done: number[] = [];
      const first = store.atomicallyOffThread(() => store.updateMigration(id, { attempts: 1 })).durable.then(() => done.push(1));
      await waitUntil(() => calls.length === 1, { what: "the first sync" });
      // Three more commit while it is in flight (as agents' payments and hops do).
      const more = [2, 3, 4].map((n) => store.atomicallyOffThread(() => store.updateMigration(id, { attempts: n })).durable.then(() => done.push(n)));
      calls[0]!();
      await first;
      await waitUntil(() => calls.length === 2, { what: "the second sync" });
      // Nothing of the three is reported durable before the sync that covers them returned.
      expect(done).toEqual([1]);
      calls[1]!();
      await Promise.all(more);
      expect(done).toEqual([1, 2, 3, 4]);
      expect(calls).toHaveLength(2);
      // A commit after that sync started gets a sync of its own.
      const last = store.atomicallyOffThread(() => store.updateMigration(id, { attempts: 5 })).durable;
      await waitUntil(() => calls.length === 3, { what: "the third sync" });
      calls[2]!();
      await last;
    } finally {
      store.close();
    }
  });

  it("a target's incoming-handoff record commits without an fsync of its own under --sync full, and is there at once", () => {
    const dir = tempDir();
    dirs.push(dir);
    const store = SqliteStore.open(join(dir, DB_FILE), { sync: "full" });
    try {
      const raw = store as unknown as { capPerPeer: (table: string, peer: string) => void };
      const cap = raw.capPerPeer.bind(store);
      const levels: number[] = [];
      raw.capPerPeer = (table, peer) => {
        levels.push(level(store));
        cap(table, peer);
      };
      const h = { agentId: "a", did: "did:key:z", peer: "P", epoch: { major: 3n, generation: 0n } };
      store.recordIncomingHandoff(h);
      expect(levels).toEqual([1]);
      expect(level(store)).toBe(2);
      const reader = SqliteStore.open(join(dir, DB_FILE), { readonly: true });
      try {
        expect(reader.hasIncomingHandoff(h)).toBe(true);
      } finally {
        reader.close();
      }
    } finally {
      store.close();
    }
  });
});
