// The commit connection's WAL checkpoints on a thread of their own (store/wal-checkpoint-thread.ts):
// the thread copies the WAL back while commits go on, the commit thread copies the last frames
// itself, and the WAL stays bounded even when the thread does not run; where the WAL index cannot
// be read, the commit connection checkpoints itself as before; the thread closes with the store.
import { spawn } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import { COMMIT_WAL_AUTOCHECKPOINT_PAGES, type WalCheckpointLimits, WalCheckpointThread, WalSlot, WalState } from "../../src/store/wal-checkpoint-thread.js";
import { WalIndexReader } from "../../src/store/wal-index.js";
import { addLeasedAgents, checkpointingChildScript, freshDbPath, leasedCommit } from "../helpers/checkpoint-store.js";

/** Small limits, so a test writes a few thousand frames, not hundreds of thousands. */
const LIMITS: WalCheckpointLimits = { threadPages: 50, tailPages: 10, maxPages: 200, backstopPages: 1000 };
const PAGE = 4096;
/** A WAL frame: its 24-byte header and a page; the WAL file's own header is 32 bytes. */
const walBytes = (frames: number): number => 32 + frames * (24 + PAGE);
/** Each commit writes this many rows of a page each: a little over this many frames. */
const ROWS_PER_COMMIT = 8;
/** The WAL's bound: the limit, and the commits that may land while the commit thread waits for the thread's run. */
const WAL_BOUND_BYTES = walBytes(LIMITS.maxPages + 4 * (ROWS_PER_COMMIT + 2));

const opened: { close(): void }[] = [];
afterEach(() => {
  for (const o of opened.splice(0).reverse()) o.close();
});

/** A commit connection in WAL mode on a fresh file, as the store's: the thread's own limits. */
function commitConnection(sync: "full" | "normal" = "normal"): { db: Database.Database; path: string; thread: WalCheckpointThread } {
  const path = freshDbPath();
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${sync === "normal" ? "NORMAL" : "FULL"}`);
  db.exec("CREATE TABLE t (b BLOB)");
  const thread = new WalCheckpointThread(db, path, sync, LIMITS);
  opened.push(db, thread);
  return { db, path, thread };
}

/** Commits `commits` transactions of ROWS_PER_COMMIT page-sized rows, each followed by afterCommit; the WAL's largest size. */
function commitSteadily(db: Database.Database, path: string, thread: WalCheckpointThread, commits: number): number {
  const insert = db.prepare("INSERT INTO t (b) VALUES (randomblob(?))");
  const txn = db.transaction(() => {
    for (let i = 0; i < ROWS_PER_COMMIT; i++) insert.run(PAGE - 100);
  });
  let largest = 0;
  for (let i = 0; i < commits; i++) {
    txn.immediate();
    thread.afterCommit();
    largest = Math.max(largest, statSync(`${path}-wal`).size);
  }
  return largest;
}

/** The thread, asked to checkpoint, never runs one (a thread that lags without end). */
function stall(thread: WalCheckpointThread): void {
  (thread as unknown as { request: () => void }).request = () => Atomics.store(thread.sharedState, WalSlot.State, WalState.Requested);
}

const autocheckpoint = (db: Database.Database): number => db.pragma("wal_autocheckpoint", { simple: true }) as number;

describe("the WAL checkpoint thread", () => {
  it("checkpoints the WAL while commits go on; the commit thread copies the last frames, so the WAL restarts and stays near its threshold", () => {
    const { db, path, thread } = commitConnection();
    // 12,000+ frames written: sixty times the thread's threshold.
    const largest = commitSteadily(db, path, thread, 1500);
    expect(Atomics.load(thread.sharedState, WalSlot.Runs)).toBeGreaterThan(0);
    // SQLite's own autocheckpoint is only a backstop meanwhile.
    expect(autocheckpoint(db)).toBe(LIMITS.backstopPages);
    expect(largest).toBeLessThanOrEqual(WAL_BOUND_BYTES);
  });

  it("with the thread stalled, steady commits keep the WAL within its bound: the commit thread checkpoints inline", () => {
    const { db, path, thread } = commitConnection();
    stall(thread);
    // Over 3,000 frames: three times the backstop, fifteen times the bound.
    const largest = commitSteadily(db, path, thread, 400);
    expect(Atomics.load(thread.sharedState, WalSlot.Runs)).toBe(0);
    expect(largest).toBeGreaterThan(walBytes(LIMITS.maxPages));
    expect(largest).toBeLessThanOrEqual(WAL_BOUND_BYTES);
  });

  it.each([
    ["full", 2],
    ["normal", 1],
  ] as const)("its connection syncs at the store's level, so its checkpoints sync the database file as SQLite's own do (--sync %s)", (sync, level) => {
    const { thread } = commitConnection(sync);
    Atomics.wait(thread.sharedState, WalSlot.Synchronous, 0, 10_000);
    expect(Atomics.load(thread.sharedState, WalSlot.Synchronous)).toBe(level);
  });

  it("a WAL index it cannot read (another format) puts the commit connection's own autocheckpoint back, and a readable one the backstop again", () => {
    const { db, path, thread } = commitConnection();
    commitSteadily(db, path, thread, 1);
    expect(autocheckpoint(db)).toBe(LIMITS.backstopPages);
    const foreign = `${path}.other`;
    writeFileSync(`${foreign}-shm`, Buffer.alloc(136, 7));
    const own = (thread as unknown as { index: WalIndexReader }).index;
    (thread as unknown as { index: WalIndexReader }).index = new WalIndexReader(foreign);
    commitSteadily(db, path, thread, 1);
    expect(autocheckpoint(db)).toBe(COMMIT_WAL_AUTOCHECKPOINT_PAGES);
    (thread as unknown as { index: WalIndexReader }).index = own;
    commitSteadily(db, path, thread, 1);
    expect(autocheckpoint(db)).toBe(LIMITS.backstopPages);
  });

  it("the WAL index header says what SQLite's checkpoint reports: frames in the WAL and frames copied back", () => {
    const { db, path, thread } = commitConnection();
    stall(thread);
    commitSteadily(db, path, thread, 10);
    const index = new WalIndexReader(path);
    opened.push(index);
    const before = index.read()!;
    const [r] = db.pragma("wal_checkpoint(PASSIVE)") as { log: number; checkpointed: number }[];
    expect(before.mxFrame).toBe(r!.log);
    expect(before.nBackfill).toBe(0);
    expect(index.read()).toEqual({ mxFrame: r!.log, nBackfill: r!.checkpointed });
    expect(new WalIndexReader(`${path}.none`).read()).toBeNull();
  });

  it.each([
    ["normal", true],
    ["full", false],
  ] as const)("a commit connection under --sync %s checkpoints on the thread: %s (under full every commit syncs, and the checkpoint runs inline past its own threshold)", (sync, onThread) => {
    const path = freshDbPath();
    const main = SqliteStore.open(path, { sync });
    opened.push(main);
    const store = SqliteStore.open(path, { sync, commitConnection: true });
    opened.push(store);
    const inner = store as unknown as { walThread: WalCheckpointThread | null; db: Database.Database };
    expect(inner.walThread !== null).toBe(onThread);
    if (!onThread) expect(autocheckpoint(inner.db)).toBe(COMMIT_WAL_AUTOCHECKPOINT_PAGES);
  });

  it("closes with the store: the thread closes its connection and ends", async () => {
    const path = freshDbPath();
    const main = SqliteStore.open(path, { sync: "normal" });
    opened.push(main);
    addLeasedAgents(main, ["a"]);
    const store = SqliteStore.open(path, { sync: "normal", commitConnection: true });
    const thread = (store as unknown as { walThread: WalCheckpointThread }).walThread;
    store.commitNow([leasedCommit("a", 5n, store.head("a")!.hash)]);
    store.afterCommits();
    const ended = once(thread.thread, "exit");
    store.close();
    expect(Atomics.load(thread.sharedState, WalSlot.Closed)).toBe(1);
    await ended;
  });

  it("a process whose store ran its commit and WAL checkpoint threads exits on its own once the store is closed", async () => {
    const path = freshDbPath();
    const script = checkpointingChildScript(
      path,
      "normal",
      `
      const s = subject("x");
      for (let round = 1; round <= 20; round++) await cp.checkpoint({ ...s, tick: BigInt(round * 5) }, "periodic", "active", null);
      store.close();
      process.stdout.write("closed\\n");
    `,
    );
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    expect({ code, out, err }).toEqual({ code: 0, out: "closed\n", err: "" });
  });
});
