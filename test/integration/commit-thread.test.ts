// Group commits on the commit thread (store/commit-thread.ts): a second connection to the same
// SQLite file, on its own thread, runs every checkpoint the store queues, with the same checks in
// the same transaction as the main thread's commitNow; closing waits for it, and a thread that dies
// leaves no checkpoint unanswered or written twice.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { didFromPublicKey } from "../../src/identity/did.js";
import { generateKey } from "../../src/identity/keys.js";
import { SignerPool } from "../../src/identity/signer-pool.js";
import { Checkpointer } from "../../src/scheduler/checkpointer.js";
import { COMMIT_THREAD_WINDOW_MS, type CommitThread } from "../../src/store/commit-thread.js";
import { SqliteStore } from "../../src/store/sqlite-store.js";
import type { CheckpointCommit } from "../../src/store/types.js";
import { addLeasedAgents, checkpointingChildScript, freshDbPath as freshPath, lease, leasedCommit, WASM, WASM_HASH } from "../helpers/checkpoint-store.js";

function open(path: string): SqliteStore {
  return SqliteStore.open(path, { sync: "full", commitThread: true });
}

/** Counts the checkpoints the main connection inserts (none, while the commit thread runs them). */
function countMainInserts(store: SqliteStore): { n: number } {
  const raw = store as unknown as { insertCheckpoint: (c: CheckpointCommit) => unknown };
  const insert = raw.insertCheckpoint.bind(store);
  const count = { n: 0 };
  raw.insertCheckpoint = (c) => {
    count.n++;
    return insert(c);
  };
  return count;
}

const walAutocheckpoint = (store: SqliteStore): number =>
  (store as unknown as { db: { pragma: (p: string, o: { simple: true }) => unknown } }).db.pragma("wal_autocheckpoint", { simple: true }) as number;

const threadOf = (store: SqliteStore): CommitThread => (store as unknown as { commitThread: CommitThread }).commitThread;

const outcome = (p: Promise<void>): Promise<string | null> => p.then(() => null, (e: { code?: string }) => e.code ?? "?");

describe("the commit thread", () => {
  it("commits queued checkpoints on its own connection, refuses a stale lease and a broken chain alone with their codes, and links one agent's two checkpoints in one batch", async () => {
    const store = open(freshPath());
    try {
      const ids = Array.from({ length: 120 }, (_, i) => `t${i}`);
      addLeasedAgents(store, ids);
      const main = countMainInserts(store);
      const batch = ids.map((id) => leasedCommit(id, 5n, store.head(id)!.hash));
      batch[7] = { ...(batch[7] as CheckpointCommit), lease: { state: "ACTIVE_OWNER", epoch: { major: 3n, generation: 0n } } };
      batch[101] = { ...(batch[101] as CheckpointCommit), prevHash: randomBytes(32) };
      const again = leasedCommit("t0", 10n, batch[0]!.hash);
      const results = await Promise.all([...batch, again].map((c) => outcome(store.enqueue(c))));
      expect(results.map((r, i) => (r ? `${i}:${r}` : null)).filter(Boolean)).toEqual(["7:LEASE_STALE", "101:CHECKPOINT_CHAIN_BROKEN"]);
      expect(main.n).toBe(0);
      // WAL checkpoints run on the thread, after the commits that fill the WAL.
      expect(walAutocheckpoint(store)).toBe(0);
      batch.forEach((c, i) => {
        if (c.agentId === "t0") return;
        const head = store.head(c.agentId)!;
        if (results[i]) {
          expect([head.tick, head.seq, store.eventSegments(c.agentId).length]).toEqual([0n, 1n, 0]);
          return;
        }
        expect([head.tick, head.seq, head.budget]).toEqual([5n, 2n, 995n]);
        expect(Buffer.from(head.blob).equals(Buffer.from(c.blob))).toBe(true);
        const [seg] = store.eventSegments(c.agentId);
        for (const f of ["blob", "postHashes", "signature"] as const) expect(Buffer.from(seg![f]!).equals(Buffer.from(c.events![f]!))).toBe(true);
      });
      expect([store.head("t0")!.tick, store.head("t0")!.seq, store.eventSegments("t0").length]).toEqual([10n, 3n, 2]);
    } finally {
      store.close();
    }
  });

  // Receipts with every checkpoint take the checkpointer's general path; with none due, a periodic
  // checkpoint goes as one object in flight (signer target and queued commit): both must chain.
  it.each([
    ["a receipt signed with each", 0],
    ["no receipt due (each checkpoint in flight as one object)", 60_000],
  ])("signed checkpoints through the checkpointer and the signer threads chain on the thread; one whose lease the main thread moved is refused alone, and the agent's next links to what is stored (%s)", async (_, receiptIntervalMs) => {
    const store = open(freshPath());
    const pool = new SignerPool(2);
    try {
      const cp = new Checkpointer(store, store.nodeKey(), receiptIntervalMs, pool);
      const subjects = Array.from({ length: 40 }, (_, i) => {
        const agentId = `k${i}`;
        const identity = generateKey();
        const s = { agentId, tick: 0n, budget: 1000n, price: 1n, state: randomBytes(64), wasmHash: WASM_HASH, identity, lease };
        cp.genesis(s, { agentId, did: didFromPublicKey(identity.publicKey), wasmHash: WASM_HASH, wasmBytes: WASM, manifest: "{}", identity, lease });
        return s;
      });
      const main = countMainInserts(store);
      const round = (tick: bigint) => Promise.all(subjects.map((s) => cp.checkpoint({ ...s, tick, state: randomBytes(64) }, "periodic", "active", null).then(() => null, (e: { code?: string }) => `${s.agentId}:${e.code}`)));
      expect((await round(5n)).filter(Boolean)).toEqual([]);
      // The main thread moves k3's lease (a recovery elsewhere); the checkpointer still holds the old one.
      store.writeLease("k3", { state: "ACTIVE_OWNER", epoch: lease.epoch }, { ...lease, epoch: { major: 1n, generation: 0n } });
      expect((await round(10n)).filter(Boolean)).toEqual(["k3:LEASE_STALE"]);
      const k3 = subjects[3]!;
      await cp.checkpoint({ ...k3, tick: 15n, lease: { ...lease, epoch: { major: 1n, generation: 0n } } }, "periodic", "active", null);
      expect(main.n).toBe(0);
      for (const s of subjects) {
        const history = [...store.history(s.agentId)];
        expect(history.map((c) => c.tick)).toEqual(s.agentId === "k3" ? [0n, 5n, 15n] : [0n, 5n, 10n]);
        for (let i = 1; i < history.length; i++) expect(Buffer.from(history[i]!.prevHash).equals(Buffer.from(history[i - 1]!.hash))).toBe(true);
      }
    } finally {
      await pool.close();
      store.close();
    }
  });

  it("a process SIGKILLed while its commit thread commits leaves every agent a linked chain reaching at least its last checkpoint reported durable", async () => {
    const path = freshPath();
    // The child checkpoints 100 agents round after round on a commit thread, printing each round once durable.
    const script = checkpointingChildScript(
      path,
      "full",
      `
      const subjects = Array.from({ length: 100 }, (_, i) => subject("p" + i));
      for (let round = 1; ; round++) {
        await Promise.all(subjects.map((s) => cp.checkpoint({ ...s, tick: BigInt(round * 5), state: new Uint8Array(64).fill(round % 256) }, "periodic", "active", null)));
        process.stdout.write("durable " + round + "\\n");
      }
    `,
    );
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const durable = await new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const rounds = [...out.matchAll(/durable (\d+)\n/g)].map((m) => Number(m[1]));
        const last = rounds.at(-1) ?? 0;
        // Killed mid-run: the rounds after this one are in flight on the thread.
        if (last >= 8) {
          child.kill("SIGKILL");
          resolve(last);
        }
      });
      child.on("exit", (code) => reject(new Error(`child exited (${code}) before it was killed: ${stderr}`)));
    });
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once("exit", resolve)));
    const store = SqliteStore.open(path, { sync: "full" });
    try {
      for (let i = 0; i < 100; i++) {
        const history = [...store.history(`p${i}`)];
        expect(history.map((c) => c.seq)).toEqual(history.map((_, k) => BigInt(k + 1)));
        for (let k = 1; k < history.length; k++) expect(Buffer.from(history[k]!.prevHash).equals(Buffer.from(history[k - 1]!.hash))).toBe(true);
        expect(history.at(-1)!.tick).toBeGreaterThanOrEqual(BigInt(durable * 5));
      }
    } finally {
      store.close();
    }
  });

  it("a checkpoint committed on either connection writes the agent's status though the other connection changed it since", async () => {
    const store = open(freshPath());
    try {
      addLeasedAgents(store, ["s"]);
      await store.enqueue(leasedCommit("s", 5n, store.head("s")!.hash));
      expect(store.agent("s")?.status).toBe("active");
      // The main connection stops the agent; the next checkpoint (thread) says active again.
      store.setStatus("s", "stopped", "operator");
      await store.enqueue(leasedCommit("s", 10n, store.head("s")!.hash));
      expect([store.agent("s")?.status, store.agent("s")?.reason]).toEqual(["active", null]);
      // The thread stores a stop; a handoff's checkpoint (alsoWrite: committed on the main thread) says active.
      await store.enqueue(leasedCommit("s", 15n, store.head("s")!.hash, "stopped", "budget exhausted"));
      expect(store.agent("s")?.status).toBe("stopped");
      const main = countMainInserts(store);
      let wrote = false;
      await store.enqueue({ ...leasedCommit("s", 20n, store.head("s")!.hash), alsoWrite: () => (wrote = true) });
      expect([main.n, wrote, store.agent("s")?.status, store.agent("s")?.reason]).toEqual([1, true, "active", null]);
    } finally {
      store.close();
    }
  });

  // The thread keeps each agent's lease, status and head as its last commit left them (one B-tree
  // read less a checkpoint): any other connection's write must make it read them again.
  it("the thread reads an agent's head and lease again after another connection wrote: it refuses a lease another process moved, continues a head the main connection moved, and refuses the head it stored before", async () => {
    const path = freshPath();
    const store = open(path);
    try {
      addLeasedAgents(store, ["h", "p"]);
      await store.enqueue(leasedCommit("h", 5n, store.head("h")!.hash));
      await store.enqueue(leasedCommit("p", 5n, store.head("p")!.hash));
      // Another process (a connection of its own, no thread) moves p's lease to a new major.
      const other = SqliteStore.open(path, { sync: "full" });
      try {
        other.writeLease("p", { state: "ACTIVE_OWNER", epoch: lease.epoch }, { ...lease, epoch: { major: 1n, generation: 0n } });
      } finally {
        other.close();
      }
      expect(await outcome(store.enqueue(leasedCommit("p", 10n, store.head("p")!.hash)))).toBe("LEASE_STALE");
      expect([...store.history("p")].map((c) => c.tick)).toEqual([0n, 5n]);
      await store.enqueue(leasedCommit("h", 10n, store.head("h")!.hash));
      const threadHead = store.head("h")!.hash;
      // A handoff's checkpoint commits on the main connection (alsoWrite): the head moves there.
      const onMain = { ...leasedCommit("h", 15n, threadHead), alsoWrite: () => undefined };
      await store.enqueue(onMain);
      await store.enqueue(leasedCommit("h", 20n, onMain.hash));
      expect(await outcome(store.enqueue(leasedCommit("h", 25n, threadHead)))).toBe("CHECKPOINT_CHAIN_BROKEN");
      expect([...store.history("h")].map((c) => c.tick)).toEqual([0n, 5n, 10n, 15n, 20n]);
    } finally {
      store.close();
    }
  });

  it("closing the store waits for the thread: every checkpoint queued before it resolves and is in the file", async () => {
    const path = freshPath();
    const store = open(path);
    const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);
    addLeasedAgents(store, ids);
    const commits = ids.map((id) => leasedCommit(id, 5n, store.head(id)!.hash));
    const done = commits.map((c) => outcome(store.enqueue(c)));
    // Let the queue reach the thread, then close at once (closing is synchronous).
    await new Promise((resolve) => setImmediate(resolve));
    store.close();
    expect(await Promise.all(done)).toEqual(ids.map(() => null));
    const reopened = SqliteStore.open(path, { sync: "full" });
    try {
      for (const c of commits) expect(Buffer.from(reopened.head(c.agentId)!.hash).equals(Buffer.from(c.hash))).toBe(true);
    } finally {
      reopened.close();
    }
  });

  it("a store that starts its thread when busy commits a paced load on the main thread, and moves commits to the thread once they take a fifth of its time", async () => {
    const store = SqliteStore.open(freshPath(), { sync: "full", commitThread: "when-busy" });
    try {
      const ids = Array.from({ length: 200 }, (_, i) => `b${i}`);
      addLeasedAgents(store, ids);
      const main = countMainInserts(store);
      let tick = 0n;
      const round = async (agents: readonly string[]): Promise<void> => {
        tick += 5n;
        const results = await Promise.all(agents.map((id) => outcome(store.enqueue(leasedCommit(id, tick, store.head(id)!.hash)))));
        expect(results.every((r) => r === null)).toBe(true);
      };
      // Two checkpoints every 200 ms (a node with a few dozen agents) over more than a window: busy
      // only if one group commit took over 50 ms on average (a loaded disk's fsync takes 1-60 ms:
      // ten every 50 ms crossed a fifth at load 7).
      const paced = performance.now() + COMMIT_THREAD_WINDOW_MS * 1.5;
      while (performance.now() < paced) {
        await round(ids.slice(0, 2));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(store.commitsOnThread).toBe(false);
      expect(walAutocheckpoint(store)).toBe(1000);
      const before = main.n;
      // A saturated node: every agent, round after round, until the store moves its commits.
      const give = performance.now() + 20 * COMMIT_THREAD_WINDOW_MS;
      while (!store.commitsOnThread && performance.now() < give) await round(ids);
      expect(store.commitsOnThread).toBe(true);
      expect(main.n).toBeGreaterThan(before);
      const onMain = main.n;
      await round(ids);
      expect(main.n).toBe(onMain);
      expect(walAutocheckpoint(store)).toBe(0);
      for (const id of ids) expect(store.head(id)!.tick).toBe(tick);
    } finally {
      store.close();
    }
  });

  it("after the thread dies, each checkpoint it held resolves once, stored exactly once, and later checkpoints commit on the main thread", async () => {
    const store = open(freshPath());
    try {
      const ids = Array.from({ length: 60 }, (_, i) => `d${i}`);
      addLeasedAgents(store, ids);
      const held = ids.map((id) => leasedCommit(id, 5n, store.head(id)!.hash));
      const heldDone = held.map((c) => outcome(store.enqueue(c)));
      await new Promise((resolve) => setImmediate(resolve));
      const thread = threadOf(store);
      const exited = new Promise((resolve) => thread.thread.once("exit", resolve));
      await thread.thread.terminate();
      await exited;
      expect(await Promise.all(heldDone)).toEqual(ids.map(() => null));
      expect(thread.usable).toBe(false);
      const main = countMainInserts(store);
      const later = ids.map((id) => leasedCommit(id, 10n, store.head(id)!.hash));
      expect(await Promise.all(later.map((c) => outcome(store.enqueue(c))))).toEqual(ids.map(() => null));
      expect(main.n).toBe(ids.length);
      expect(walAutocheckpoint(store)).toBe(1000);
      for (const [i, id] of ids.entries()) {
        expect([store.head(id)!.seq, store.historyCount(id)]).toEqual([3n, 3]);
        expect(store.checkpointByHash(id, held[i]!.hash)?.seq).toBe(2n);
      }
    } finally {
      store.close();
    }
  });
});
