// The WAL checkpoint thread (store/wal-checkpoint-thread.ts): its own connection to the node's
// database, on which it runs a PASSIVE checkpoint each time the commit thread asks, concurrently
// with the commits. Its connection syncs as the store's: at NORMAL and FULL alike SQLite syncs the
// WAL before copying it back and the database file after (sqlite.org/pragma.html#pragma_synchronous).
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { BUSY_TIMEOUT_MS } from "./types.js";
import { type WalCheckpointRequest, type WalCheckpointThreadData, WalSlot, WalState } from "./wal-checkpoint-thread.js";

const { path, sync, shared } = workerData as WalCheckpointThreadData;

function setState(state: number): void {
  Atomics.store(shared, WalSlot.State, state);
  Atomics.notify(shared, WalSlot.State);
}

let db: Database.Database | null = null;
try {
  db = new Database(path, { fileMustExist: true });
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma(`synchronous = ${sync === "normal" ? "NORMAL" : "FULL"}`);
  Atomics.store(shared, WalSlot.Synchronous, db.pragma("synchronous", { simple: true }) as number);
  Atomics.notify(shared, WalSlot.Synchronous);
} catch {
  db?.close();
  db = null;
  setState(WalState.Failed);
}

parentPort?.on("message", (req: WalCheckpointRequest) => {
  if (req.type === "close") {
    db?.close();
    db = null;
    parentPort?.close();
    Atomics.store(shared, WalSlot.Closed, 1);
    Atomics.notify(shared, WalSlot.Closed);
    return;
  }
  if (!db) return;
  setState(WalState.Running);
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
    Atomics.add(shared, WalSlot.Runs, 1);
  } catch {
    // Busy or failing: the commit thread asks again, and checkpoints inline past its bound.
  }
  setState(WalState.Idle);
});
