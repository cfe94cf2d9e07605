// The commit thread (store/commit-thread.ts): its own connection to the node's database, on which it
// runs the group commits the main thread hands it exactly as SqliteStore.commitNow runs them on the
// main thread (lease, chain and storage checks inside the transaction). Batches that arrived while
// it was committing are committed together, in one transaction (one fsync), as the main thread's
// group commit gathers what one turn of its event loop queued.
import { receiveMessageOnPort, workerData } from "node:worker_threads";
import { unpackCommits } from "./commit-codec.js";
import type { CommitReply, CommitRequest, CommitThreadData } from "./commit-thread.js";
import { SqliteStore } from "./sqlite-store.js";
import type { CheckpointCommit } from "./types.js";

const data = workerData as CommitThreadData;
const { port } = data;

let store: SqliteStore | null = null;
try {
  store = SqliteStore.open(data.path, { sync: data.sync, eventLogRetention: data.eventLogRetention, outboxRetentionBytes: data.outboxRetentionBytes, commitConnection: true });
} catch (e) {
  port.postMessage({ type: "unusable", error: (e as Error).message } satisfies CommitReply);
}

function close(): void {
  store?.close();
  store = null;
  port.close();
  Atomics.store(data.closed, 0, 1);
  Atomics.notify(data.closed, 0);
}

/**
 * A request as unpacked: its commits' byte fields are views into `buffer`, which goes back with the
 * reply (transferred: the views are detached then, once the transaction no longer needs them).
 */
interface Unpacked {
  id: number;
  commits: CheckpointCommit[];
  buffer: ArrayBuffer;
}

function commit(requests: Unpacked[]): void {
  if (!store) {
    port.postMessage({ type: "unusable", error: "the commit thread has no database" } satisfies CommitReply);
    return;
  }
  try {
    // The level this transaction commits with (said in the reply: the durability tests check it).
    const synchronous = store.synchronousLevel();
    const results = store.commitNow(requests.length === 1 ? (requests[0]?.commits ?? []) : requests.flatMap((r) => r.commits));
    let at = 0;
    for (const r of requests) {
      const mine = results.slice(at, at + r.commits.length).map((e) => (e ? e.toJSON() : null));
      at += r.commits.length;
      port.postMessage({ type: "committed", id: r.id, results: mine, synchronous, buffer: r.buffer } satisfies CommitReply, [r.buffer]);
    }
  } catch (e) {
    // SQLite's code goes with the message: the main thread tells a full disk from other failures by it.
    const code = (e as { code?: unknown }).code;
    for (const r of requests) {
      port.postMessage({ type: "failed", id: r.id, error: (e as Error).message, ...(typeof code === "string" ? { code } : {}), buffer: r.buffer } satisfies CommitReply, [r.buffer]);
    }
  }
}

port.on("message", (first: CommitRequest) => {
  const requests: Unpacked[] = [];
  let closing = false;
  for (let req: CommitRequest | undefined = first; req; req = receiveMessageOnPort(port)?.message as CommitRequest | undefined) {
    if (req.type === "close") {
      closing = true;
      break;
    }
    requests.push({ id: req.id, commits: unpackCommits(req.commits), buffer: req.commits.data.buffer as ArrayBuffer });
  }
  if (requests.length > 0) {
    commit(requests);
    // The WAL's checkpoint, after the replies: the cohort just committed goes on meanwhile.
    store?.afterCommits();
  }
  if (closing) close();
});
