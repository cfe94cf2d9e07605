// The commit connection's known heads (store/history-records.ts, store/head-changes.ts): it keeps
// each agent's lease, status and chain head as its own last commit left them and reads no row for
// the agent's next checkpoint, until another of igord's connections writes what a commit reads.
// A lease renewal (the daemon's ~33/s for 1,000 agents) is not such a write; a moved lease, a
// status, a head or an agent's rows are, and the next checkpoint is refused or handled exactly as
// a connection that knows nothing would.
import { randomBytes } from "node:crypto";
import BetterSqlite from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import type { Lease } from "../../src/authority/lease.js";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import type { CheckpointCommit } from "../../src/store/types.js";
import { MIGRATIONS } from "../../src/store/schema.js";
import { addLeasedAgents, asSchema11, freshDbPath, lease, leasedCommit } from "../helpers/checkpoint-store.js";

const opened: SqliteStore[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});

/** The node's main connection and, on the same file, a commit connection (the commit thread's, here on the test's thread). */
function connections(ids: readonly string[]): { path: string; main: SqliteStore; commits: SqliteStore; rowReads: { n: number } } {
  const path = freshDbPath();
  const main = SqliteStore.open(path, { sync: "full" });
  opened.push(main);
  addLeasedAgents(main, ids);
  const commits = SqliteStore.open(path, { sync: "full", commitConnection: true });
  opened.push(commits);
  // Counts the commit connection's reads of an agent's lease, status and head.
  const raw = commits as unknown as { readLeaseStatusHead: (agentId: string, prevHash: Uint8Array) => unknown };
  const read = raw.readLeaseStatusHead.bind(commits);
  const rowReads = { n: 0 };
  raw.readLeaseStatusHead = (agentId, prevHash) => {
    rowReads.n++;
    return read(agentId, prevHash);
  };
  return { path, main, commits, rowReads };
}

/** Commits one checkpoint on the connection: its refusal's code, or null. */
function commitOn(store: SqliteStore, c: CheckpointCommit): string | null {
  return store.commitNow([c])[0]?.code ?? null;
}

const under = (c: CheckpointCommit, l: Pick<Lease, "state" | "epoch">): CheckpointCommit => ({ ...c, lease: { state: l.state, epoch: l.epoch } });
const renewed = (generation: bigint): Lease => ({ ...lease, epoch: { major: 0n, generation } });
const ticks = (store: SqliteStore, id: string): bigint[] => [...store.history(id)].map((c) => c.tick);

describe("the commit connection's known heads", () => {
  it("lease renewals on the main connection leave them: checkpoints under the known lease read no row, the first carrying the renewed generation reads it once", () => {
    const { main, commits, rowReads } = connections(["h", "g"]);
    expect(commitOn(commits, leasedCommit("h", 5n, main.head("h")!.hash))).toBeNull();
    expect(commitOn(commits, leasedCommit("h", 10n, main.head("h")!.hash))).toBeNull();
    expect(rowReads.n).toBe(1);
    // The lease fence renews h and g (generation + 1, a new expiry) on the main connection.
    main.writeLease("h", lease, renewed(1n));
    main.writeLease("g", lease, renewed(1n));
    // A checkpoint captured before the renewal, then ones under it.
    expect(commitOn(commits, leasedCommit("h", 15n, main.head("h")!.hash))).toBeNull();
    expect(rowReads.n).toBe(1);
    expect(commitOn(commits, under(leasedCommit("h", 20n, main.head("h")!.hash), renewed(1n)))).toBeNull();
    expect(rowReads.n).toBe(2);
    expect(commitOn(commits, under(leasedCommit("h", 25n, main.head("h")!.hash), renewed(1n)))).toBeNull();
    expect(rowReads.n).toBe(2);
    expect(ticks(main, "h")).toEqual([0n, 5n, 10n, 15n, 20n, 25n]);
  });

  // Each write below, by the main connection after the commit connection committed h twice under
  // generation 2 (`held`), and what h's next checkpoint under that lease gets.
  const held = renewed(2n);
  it.each<[string, (main: SqliteStore, path: string) => void, string | null]>([
    ["moves the lease to a new major (a recovery)", (main) => main.writeLease("h", held, { ...lease, epoch: { major: 1n, generation: 0n } }), "LEASE_STALE"],
    ["moves the lease to another state (a handoff started)", (main) => main.writeLease("h", held, { ...held, state: "HANDOFF_INITIATED", handoff: { target: "peer", checkpointHash: "00" } }), "LEASE_STALE"],
    ["lowers the generation under the same major", (main) => main.writeLease("h", held, renewed(1n)), "LEASE_STALE"],
    [
      "moves the lease from another process (a store of its own)",
      (_, path) => {
        const other = SqliteStore.open(path, { sync: "full" });
        try {
          other.writeLease("h", held, { ...lease, epoch: { major: 1n, generation: 0n } });
        } finally {
          other.close();
        }
      },
      "LEASE_STALE",
    ],
    ["stops the agent (its status)", (main) => main.setStatus("h", "stopped", "operator"), null],
  ])("the main connection %s: the next checkpoint reads the row again and is handled as with no known head", (_, write, code) => {
    const { path, main, commits, rowReads } = connections(["h"]);
    main.writeLease("h", lease, held);
    expect(commitOn(commits, under(leasedCommit("h", 5n, main.head("h")!.hash), held))).toBeNull();
    expect(commitOn(commits, under(leasedCommit("h", 10n, main.head("h")!.hash), held))).toBeNull();
    expect(rowReads.n).toBe(1);
    write(main, path);
    expect(commitOn(commits, under(leasedCommit("h", 15n, main.head("h")!.hash), held))).toBe(code);
    expect(rowReads.n).toBe(2);
    expect(ticks(main, "h")).toEqual(code ? [0n, 5n, 10n] : [0n, 5n, 10n, 15n]);
    // A checkpoint's status is written whatever the other connection left.
    if (!code) expect([main.agent("h")?.status, main.agent("h")?.reason]).toEqual(["active", null]);
  });

  it("a head the main connection moved: a checkpoint on the head the commit connection stored is refused, one on the new head commits", () => {
    const { main, commits, rowReads } = connections(["h"]);
    const first = leasedCommit("h", 5n, main.head("h")!.hash);
    expect(commitOn(commits, first)).toBeNull();
    // A handoff's checkpoint commits on the main connection.
    const onMain = leasedCommit("h", 10n, first.hash);
    expect(commitOn(main, onMain)).toBeNull();
    expect(commitOn(commits, leasedCommit("h", 15n, first.hash))).toBe("CHECKPOINT_CHAIN_BROKEN");
    expect(rowReads.n).toBe(2);
    expect(commitOn(commits, leasedCommit("h", 15n, onMain.hash))).toBeNull();
    expect(ticks(main, "h")).toEqual([0n, 5n, 10n, 15n]);
  });

  it("a checkpoint row appended by a writer that is not igord's store (no counting triggers) collides with the next commit's, which is then refused on a read of the row", () => {
    const { path, main, commits } = connections(["h"]);
    const first = leasedCommit("h", 5n, main.head("h")!.hash);
    expect(commitOn(commits, first)).toBeNull();
    const foreign = new BetterSqlite(path);
    try {
      foreign
        .prepare("INSERT INTO checkpoints (agent_id, seq, tick, hash, prev_hash, budget, reason, blob, created_at) SELECT agent_id, seq + 1, tick + 5, ?, hash, budget, reason, blob, created_at FROM checkpoints WHERE agent_id = 'h' ORDER BY seq DESC LIMIT 1")
        .run(randomBytes(32));
    } finally {
      foreign.close();
    }
    expect(commitOn(commits, leasedCommit("h", 15n, first.hash))).toBe("CHECKPOINT_CHAIN_BROKEN");
    expect(ticks(main, "h")).toEqual([0n, 5n, 10n]);
  });

  it("a schema-11 file upgrades to 12 with the count at 0; renewals and other tables' writes leave it, a moved lease, a status, an agent and a checkpoint move it, on every store but the commit connection", () => {
    const path = freshDbPath();
    const first = SqliteStore.open(path, { sync: "full" });
    addLeasedAgents(first, ["h"]);
    first.close();
    const v11 = new BetterSqlite(path);
    asSchema11(v11);
    v11.close();
    const main = SqliteStore.open(path, { sync: "full" });
    opened.push(main);
    const commits = SqliteStore.open(path, { sync: "full", commitConnection: true });
    opened.push(commits);
    expect(main.schemaVersion()).toBe(MIGRATIONS.length);
    const reader = new BetterSqlite(path, { readonly: true });
    const count = (): number => (reader.prepare("SELECT n FROM head_changes").get() as { n: number }).n;
    try {
      expect(count()).toBe(0);
      main.writeLease("h", lease, renewed(1n));
      main.writeLease("h", renewed(1n), renewed(2n));
      main.setStatus("h", "active", null);
      expect(count()).toBe(0);
      // The commit connection's own commits are not counted (it knows what it wrote).
      expect(commitOn(commits, under(leasedCommit("h", 5n, main.head("h")!.hash), renewed(2n)))).toBeNull();
      expect(count()).toBe(0);
      main.setStatus("h", "stopped", "operator");
      expect(count()).toBe(1);
      main.writeLease("h", renewed(2n), { ...lease, epoch: { major: 1n, generation: 0n } });
      expect(count()).toBe(2);
      // A new agent: its row and its genesis checkpoint, each counted.
      addLeasedAgents(main, ["g"]);
      expect(count()).toBeGreaterThanOrEqual(4);
    } finally {
      reader.close();
    }
  });
});
