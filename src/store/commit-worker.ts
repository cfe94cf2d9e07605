// The commit thread (store/commit-thread.ts): its own connection to the node's database, on which it
// runs the group commits the main thread hands it, one transaction per batch, exactly as
// SqliteStore.commitNow runs them on the main thread (lease, chain and storage checks inside).
import { workerData } from "node:worker_threads";
import type { CommitReply, CommitRequest, CommitThreadData } from "./commit-thread.js";
import { SqliteStore } from "./sqlite-store.js";

const data = workerData as CommitThreadData;
const { port } = data;

let store: SqliteStore | null = null;
try {
  store = SqliteStore.open(data.path, { sync: data.sync, eventLogRetention: data.eventLogRetention, commitConnection: true });
} catch (e) {
  port.postMessage({ type: "unusable", error: (e as Error).message } satisfies CommitReply);
}

port.on("message", (req: CommitRequest) => {
  if (req.type === "close") {
    store?.close();
    store = null;
    port.close();
    Atomics.store(data.closed, 0, 1);
    Atomics.notify(data.closed, 0);
    return;
  }
  if (!store) {
    port.postMessage({ type: "unusable", error: "the commit thread has no database" } satisfies CommitReply);
    return;
  }
  try {
    // The level this batch commits with (said in the reply: the durability tests check it).
    const synchronous = store.synchronousLevel();
    const results = store.commitNow(req.commits).map((e) => (e ? e.toJSON() : null));
    port.postMessage({ type: "committed", id: req.id, results, synchronous } satisfies CommitReply);
  } catch (e) {
    port.postMessage({ type: "failed", id: req.id, error: (e as Error).message } satisfies CommitReply);
  }
});
