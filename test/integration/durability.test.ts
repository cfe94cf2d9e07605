// Durable agents on a real SQLite file: restarts continue at N+1, receipts add up, unchanged state is
// never re-signed, and anything that fails a load check is quarantined without touching storage.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { decodeReceipt } from "../../src/budget/receipt.js";
import { verifyChain } from "../../src/checkpoint/verify-chain.js";
import { generateKey, verifyBytes } from "../../src/identity/keys.js";
import { receiptSigningBytes } from "../../src/budget/receipt.js";
import { isIgordError } from "../../src/errors.js";
import type { CheckpointEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import type { Lease } from "../../src/authority/lease.js";
import { didFromPublicKey, peerIdFromPublicKey } from "../../src/identity/did.js";
import { sha256Hex } from "../../src/hash/bytes.js";
import { Checkpointer } from "../../src/scheduler/checkpointer.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import type { CommitReply } from "../../src/store/commit-thread.js";
import { EXAMPLES, startTestNode, stopAllNodes, storedHead, tempDir, type TestNode } from "../helpers/node.js";
import { igord } from "../helpers/process.js";
import { parseCheckpoint } from "../../src/checkpoint/codec.js";
import { decodeSegment } from "../../src/eventlog/tick-log.js";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { sealOpenRuns } from "../../src/replay/run-seal.js";
import { segmentSealProblem } from "../../src/replay/segment-seal.js";
import { waitUntil } from "../helpers/wait.js";
import { watAgent, writeWat } from "../helpers/wat.js";
import { agentOnCheckpointer } from "../helpers/checkpointer.js";

afterEach(stopAllNodes);

const FAST = { "tick-interval": "10ms", "checkpoint-interval": "40ms" };
const heartbeat = join(EXAMPLES, "heartbeat.wasm");
/** Periodic checkpoints carry no receipt within this; stopping always closes the range. */
const RECEIPT_ONLY_WHEN_STOPPING_MS = 3_600_000;

async function runUntilTick(t: TestNode, agentId: string, tick: bigint): Promise<void> {
  await t.waitFor<TickEvent>("tick", (e) => e.agentId === agentId && e.tick >= tick);
}

function rawDb(t: TestNode): Database.Database {
  return new Database(join(t.config.dataDir, DB_FILE));
}

describe("durable agents", () => {
  // Acceptance 2: restart → tick N+1, same DID, budget only decreased, chain valid from tick 0.
  it("a restart resumes the agent at tick N+1 with the same DID and a budget that only decreased", async () => {
    const t = await startTestNode(FAST);
    const first = await t.node.addAgent({ wasmPath: heartbeat, budget: 10_000_000n });
    expect(first.did).toMatch(/^did:key:z6Mk/);
    await runUntilTick(t, "heartbeat", 8n);
    await t.stop();
    const saved = storedHead(t.config.dataDir, "heartbeat")!;
    expect(saved.reason).toBe("shutdown");
    expect(saved.status).toBe("active");

    const t2 = await startTestNode(FAST, { dir: t.dir, resumeStored: true });
    const next = await t2.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat");
    expect(next.tick).toBe(saved.tick + 1n);
    const v = t2.node.scheduler.view("heartbeat")!;
    expect(v.did).toBe(first.did);
    expect(v.budget).toBeLessThanOrEqual(saved.budget);
    await t2.stop();
    const store = SqliteStore.open(join(t.config.dataDir, DB_FILE), { readonly: true });
    const report = verifyChain([...store.history("heartbeat")].map((c) => ({ name: `#${c.seq}`, bytes: c.blob })));
    store.close();
    expect(report.reasons).toEqual([]);
    expect(report.firstTick).toBe(0n);
  });

  // Acceptance 10: budgets in the stored history never increase, receipts cover contiguous tick ranges, their costs sum to initial minus final budget.
  it("receipts cover contiguous tick ranges, are signed by the node, and sum to the budget spent; the stored history's budgets never increase", async () => {
    // --receipt-interval 0: a receipt with every checkpoint (the default signs one per minute and at stop).
    const t = await startTestNode({ ...FAST, price: "5", "receipt-interval": "0" });
    await t.node.addAgent({ wasmPath: heartbeat, budget: 10_000_000n });
    await runUntilTick(t, "heartbeat", 30n);
    await t.stop();
    const store = SqliteStore.open(join(t.config.dataDir, DB_FILE), { readonly: true });
    const receipts = store.receipts("heartbeat");
    const head = store.head("heartbeat")!;
    const history = [...store.history("heartbeat")];
    const { publicKey } = store.nodeKey().key;
    store.close();
    // Every checkpoint of the history, from the first (tick 0, the whole budget) to the head: the budget never goes up.
    expect(history.length).toBeGreaterThan(2);
    expect(history[0]?.budget).toBe(10_000_000n);
    for (let i = 1; i < history.length; i++) expect(history[i]!.budget, `seq ${history[i]!.seq}`).toBeLessThanOrEqual(history[i - 1]!.budget);
    expect(history.at(-1)?.budget).toBe(head.budget);
    expect(receipts.length).toBeGreaterThan(2);
    expect(receipts[0]?.tickStart).toBe(1n);
    for (let i = 1; i < receipts.length; i++) expect(receipts[i]?.tickStart).toBe((receipts[i - 1]?.tickEnd ?? 0n) + 1n);
    expect(receipts.at(-1)?.tickEnd).toBe(head.tick);
    expect(receipts.reduce((s, r) => s + r.cost, 0n)).toBe(10_000_000n - head.budget);
    for (const r of receipts) {
      const decoded = decodeReceipt(r.blob);
      expect(decoded.nodeId).toBe(t.node.nodeId);
      expect(verifyBytes(publicKey, receiptSigningBytes(decoded), decoded.signature)).toBe(true);
    }
  });

  it("with the default receipt interval, periodic checkpoints carry no receipt and stopping closes the range", async () => {
    const t = await startTestNode({ ...FAST, price: "5" });
    await t.node.addAgent({ wasmPath: heartbeat, budget: 10_000_000n });
    let periodic = 0;
    t.node.scheduler.on("checkpoint", (e: CheckpointEvent) => {
      if (e.reason === "periodic" && e.outcome === "written") periodic++;
    });
    await waitUntil(() => periodic >= 3, { emitter: t.node.scheduler, event: "checkpoint", what: "three periodic checkpoints" });
    await t.stop();
    const store = SqliteStore.open(join(t.config.dataDir, DB_FILE), { readonly: true });
    const receipts = store.receipts("heartbeat");
    const head = store.head("heartbeat")!;
    store.close();
    expect(receipts.length).toBe(1);
    expect([receipts[0]?.tickStart, receipts[0]?.tickEnd]).toEqual([1n, head.tick]);
    expect(receipts[0]?.cost).toBe(10_000_000n - head.budget);
  });

  it("an agent with no tick since its last checkpoint is not signed again", async () => {
    const t = await startTestNode({ "tick-interval": "1h", "lease-duration": "2h", "checkpoint-interval": "20ms" });
    await t.node.addAgent({ wasmPath: heartbeat });
    const genesisCount = t.node.store.historyCount("heartbeat");
    expect(genesisCount).toBe(1);
    // Five periodic passes with no tick in between: each one finds nothing new to sign.
    let unchanged = 0;
    t.node.scheduler.on("checkpoint", (e: CheckpointEvent) => {
      if (e.agentId === "heartbeat" && e.reason === "periodic" && e.outcome === "unchanged") unchanged++;
    });
    await waitUntil(() => unchanged >= 5, { emitter: t.node.scheduler, event: "checkpoint", what: "five periodic passes" });
    await t.stop();
    expect(storedHead(t.config.dataDir, "heartbeat")?.count).toBe(1);
  });

  // Acceptance 11: a flipped byte → not started, CHECKPOINT_INVALID naming the failed check, the row untouched.
  it("a flipped byte in the latest stored checkpoint quarantines the agent and the row stays untouched", async () => {
    const t = await startTestNode(FAST);
    await t.node.addAgent({ wasmPath: heartbeat });
    await runUntilTick(t, "heartbeat", 5n);
    await t.stop();
    const db = rawDb(t);
    const row = db.prepare("SELECT seq, blob FROM checkpoints WHERE agent_id = 'heartbeat' ORDER BY seq DESC LIMIT 1").get() as {
      seq: number;
      blob: Buffer;
    };
    const tampered = Buffer.from(row.blob);
    tampered[12] = (tampered[12] ?? 0) ^ 0x01; // inside the price field
    db.prepare("UPDATE checkpoints SET blob = ? WHERE agent_id = 'heartbeat' AND seq = ?").run(tampered, row.seq);
    db.close();

    const t2 = await startTestNode(FAST, { dir: t.dir, resumeStored: true });
    expect(t2.node.scheduler.has("heartbeat")).toBe(false);
    const q = t2.node.quarantined.get("heartbeat");
    expect(q?.code).toBe("CHECKPOINT_INVALID");
    expect(q?.message).toMatch(/check "content-hash" failed/);
    await t2.stop();
    const after = rawDb(t).prepare("SELECT blob FROM checkpoints WHERE agent_id = 'heartbeat' AND seq = ?").get(row.seq) as { blob: Buffer };
    expect(after.blob.equals(tampered)).toBe(true);
  });

  it("a re-signed forgery with another key is refused by the identity check", async () => {
    const t = await startTestNode(FAST);
    await t.node.addAgent({ wasmPath: heartbeat });
    await runUntilTick(t, "heartbeat", 3n);
    await t.stop();
    // Replace the head with one signed by a stranger (hash column updated so only the key differs).
    const { encodeCheckpoint, parseCheckpoint } = await import("../../src/checkpoint/codec.js");
    const { signCheckpoint, checkpointHash } = await import("../../src/checkpoint/lineage.js");
    const { generateKey } = await import("../../src/identity/keys.js");
    const db = rawDb(t);
    const row = db.prepare("SELECT seq, blob FROM checkpoints WHERE agent_id = 'heartbeat' ORDER BY seq DESC LIMIT 1").get() as { seq: number; blob: Buffer };
    const cp = parseCheckpoint(new Uint8Array(row.blob));
    const stranger = generateKey();
    const forged = signCheckpoint(encodeCheckpoint({ ...cp, budget: cp.budget + 1_000_000n, publicKey: stranger.publicKey }, cp.state), stranger);
    db.prepare("UPDATE checkpoints SET blob = ?, hash = ? WHERE agent_id = 'heartbeat' AND seq = ?").run(
      Buffer.from(forged),
      Buffer.from(checkpointHash(forged)),
      row.seq,
    );
    db.close();
    const t2 = await startTestNode(FAST, { dir: t.dir, resumeStored: true });
    expect(t2.node.quarantined.get("heartbeat")?.code).toBe("CHECKPOINT_FOREIGN_KEY");
  });

  it("a corrupt identity is an error, never silently replaced", async () => {
    const t = await startTestNode(FAST);
    await t.node.addAgent({ wasmPath: heartbeat });
    await t.stop();
    const db = rawDb(t);
    const before = db.prepare("SELECT seed FROM identities WHERE agent_id = 'heartbeat'").get() as { seed: Buffer };
    const bad = Buffer.from(before.seed);
    bad[0] = (bad[0] ?? 0) ^ 0xff;
    db.prepare("UPDATE identities SET seed = ? WHERE agent_id = 'heartbeat'").run(bad);
    db.close();
    const t2 = await startTestNode(FAST, { dir: t.dir, resumeStored: true });
    expect(t2.node.quarantined.get("heartbeat")?.code).toBe("IDENTITY_CORRUPT");
    await t2.stop();
    const after = rawDb(t).prepare("SELECT seed FROM identities WHERE agent_id = 'heartbeat'").get() as { seed: Buffer };
    expect(after.seed.equals(bad)).toBe(true);
  });

  it("an agent whose stored rows fail (its module is gone) is quarantined with STORE_CORRUPT while the others run", async () => {
    const t = await startTestNode(FAST);
    await t.node.addAgent({ wasmPath: heartbeat });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
    await runUntilTick(t, "survivor", 2n);
    await t.stop();
    const db = rawDb(t);
    db.pragma("foreign_keys = OFF");
    db.prepare("UPDATE agents SET wasm_hash = ? WHERE agent_id = 'survivor'").run("f".repeat(64));
    db.close();
    const t2 = await startTestNode(FAST, { dir: t.dir, resumeStored: true });
    expect(t2.node.quarantined.get("survivor")?.code).toBe("STORE_CORRUPT");
    expect(t2.node.quarantined.get("survivor")?.message).toMatch(/WASM f{16}.* of agent "survivor" is missing/);
    await runUntilTick(t2, "heartbeat", (t2.node.scheduler.view("heartbeat")?.tick ?? 0n) + 1n);
  });

  it("a different WASM under a stored agent's id is not run: it is a stale binary naming the upgrade command", async () => {
    const t = await startTestNode(FAST);
    await t.node.addAgent({ wasmPath: heartbeat });
    await t.stop();
    const t2 = await startTestNode(FAST, { dir: t.dir });
    const other = await writeWat(join(t.dir, "other"), "heartbeat", watAgent());
    const e = await t2.node.addAgent({ wasmPath: other }).catch((err: unknown) => err);
    expect(isIgordError(e, "AGENT_STALE_BINARY")).toBe(true);
    expect((e as Error).message).toContain(`igord upgrade heartbeat --wasm ${other}`);
    expect(storedHead(t.config.dataDir, "heartbeat")?.tick).toBe(0n);
  });

  it("a stale writer cannot fork the history: the store refuses a checkpoint that does not extend its head", async () => {
    const t = await startTestNode(FAST);
    await t.node.addAgent({ wasmPath: heartbeat });
    await runUntilTick(t, "heartbeat", 3n);
    await t.node.scheduler.settled();
    const head = t.node.store.head("heartbeat")!;
    const [err] = t.node.store.commitNow([
      { agentId: "heartbeat", tick: 99n, budget: 1n, hash: new Uint8Array(32).fill(7), prevHash: new Uint8Array(32).fill(9), blob: head.blob, reason: "stale", receipt: null, status: "active", statusReason: null },
    ]);
    expect(err?.code).toBe("CHECKPOINT_CHAIN_BROKEN");
    expect(t.node.store.head("heartbeat")?.seq).toBe(head.seq);
  });

  it("a database from a newer igord is refused", async () => {
    const t = await startTestNode(FAST);
    await t.stop();
    const db = rawDb(t);
    db.prepare("INSERT INTO schema_version (version) VALUES (99)").run();
    db.close();
    expect(() => SqliteStore.open(join(t.config.dataDir, DB_FILE))).toThrow(/schema version 99, newer than this igord/);
  });

  it("a status or receipt written without a tick is refused when the lease moved: a stale stopper cannot mark the agent stopped", async () => {
    const store = SqliteStore.open(join(tempDir(), DB_FILE));
    try {
      const checkpointer = new Checkpointer(store, store.nodeKey(), RECEIPT_ONLY_WHEN_STOPPING_MS);
      const identity = generateKey();
      const wasm = readFileSync(heartbeat);
      const lease: Lease = { state: "ACTIVE_OWNER", epoch: { major: 0n, generation: 0n }, expiresAtMs: null, handoff: null };
      const subject = { agentId: "a", tick: 0n, budget: 1000n, price: 1n, state: new Uint8Array(4), wasmHash: sha256Hex(wasm), identity, lease };
      checkpointer.genesis(subject, { agentId: "a", did: didFromPublicKey(identity.publicKey), wasmHash: subject.wasmHash, wasmBytes: wasm, manifest: "{}", identity, lease });
      checkpointer.addCost("a", 10n);
      await checkpointer.checkpoint({ ...subject, tick: 1n, budget: 990n }, "periodic", "active", null);
      // Another writer (igord recover, say) takes the agent to a new major meanwhile.
      store.writeLease("a", { state: "ACTIVE_OWNER", epoch: lease.epoch }, { ...lease, epoch: { major: 1n, generation: 0n } });
      const stopping = checkpointer.checkpoint({ ...subject, tick: 1n, budget: 990n }, "stopped", "stopped", "by a stale owner");
      await expect(stopping).rejects.toMatchObject({ code: "LEASE_STALE" });
      expect(store.agent("a")?.status).toBe("active");
      expect(store.receipts("a")).toEqual([]);
    } finally {
      store.close();
    }
  });

  it("igord recover writes its new lease and its lineage record in one transaction: when the record fails, the lease is unchanged", async () => {
    const t = await startTestNode(FAST);
    await t.node.addAgent({ wasmPath: heartbeat });
    await runUntilTick(t, "heartbeat", 2n);
    await t.stop();
    const db = rawDb(t);
    db.prepare("UPDATE agents SET lease_state = 'RECOVERY_REQUIRED' WHERE agent_id = 'heartbeat'").run();
    db.exec("CREATE TRIGGER lineage_refused BEFORE INSERT ON lineage_events BEGIN SELECT RAISE(ABORT, 'lineage refused'); END");
    const before = db.prepare("SELECT lease_state, epoch_major, epoch_generation FROM agents WHERE agent_id = 'heartbeat'").get();
    db.close();
    const r = igord(["recover", "heartbeat", "--reason", "lost node", "--data-dir", t.config.dataDir, "--control", "off"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/lineage refused/);
    const after = rawDb(t);
    expect(after.prepare("SELECT lease_state, epoch_major, epoch_generation FROM agents WHERE agent_id = 'heartbeat'").get()).toEqual(before);
    after.close();
  });

  it("under --sync normal, handoff, pending reception and receive transactions are each followed by an fdatasync of the WAL (off the main thread); RETIRED and periodic checkpoints commit with NORMAL and no sync", async () => {
    const flags = { ...FAST, sync: "normal", listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "checkpoint-interval": "30ms", "peer-refresh": "0" };
    const a = await startTestNode(flags);
    const b = await startTestNode(flags);
    const seenA = syncLevels(a.node.store);
    const seenB = syncLevels(b.node.store);
    // A periodic checkpoint with no tick since the last one writes nothing: wait for a written one.
    const wrote = (seen: SyncSeen[], what: string) => () => seen.some((x) => x.what === what);
    await a.node.addAgent({ wasmPath: heartbeat });
    await waitUntil(wrote(seenA, "checkpoint periodic"), { what: "a periodic checkpoint on A" });
    const r = await a.node.migrate("heartbeat", [b.node.migration!.addresses()[0]!]);
    expect(r.outcome).toBe("done");
    await waitUntil(wrote(seenB, "checkpoint periodic"), { what: "a periodic checkpoint on B" });
    const levels = (seen: SyncSeen[], what: string) => [...new Set(seen.filter((s) => s.what === what).map((s) => s.level))];
    // Committed at NORMAL, then made durable by the WAL sync before the hop goes on (hop-sync.test.ts).
    expect(levels(seenA, "lease HANDOFF_INITIATED")).toEqual([SYNC_NORMAL]);
    const after = (seen: SyncSeen[], what: string): string | undefined => seen[seen.map((x) => x.what).lastIndexOf(what) + 1]?.what;
    expect(after(seenA, "lease HANDOFF_INITIATED")).toBe("wal sync");
    // The target's pending reception (migration/pending-reception.ts) is synced on its own, before
    // `result`; the reception that flips it is synced after (its first tick waits for that). The flip
    // does not wait for the pending row's sync (only `result` does), and a store's first sync syncs
    // its directory before the WAL: the flip can commit before that first fdatasync starts. What
    // holds: a sync starts after each, and the two are not shared (two syncs).
    const syncStartedAfter = (seen: SyncSeen[], what: string): boolean => seen.slice(seen.map((x) => x.what).lastIndexOf(what) + 1).some((x) => x.what === "wal sync");
    expect(seenB.map((x) => x.what).indexOf("pending reception")).toBeLessThan(seenB.map((x) => x.what).indexOf("receive"));
    expect(syncStartedAfter(seenB, "pending reception")).toBe(true);
    expect(syncStartedAfter(seenB, "receive")).toBe(true);
    // RETIRED needs no fsync of its own: losing it leaves the durable HANDOFF_INITIATED, which
    // never runs the agent and which the status query settles (crash point source-after-confirm).
    expect(levels(seenA, "lease RETIRED")).toEqual([SYNC_NORMAL]);
    expect(levels(seenB, "receive")).toEqual([SYNC_NORMAL]);
    expect(seenA.filter((x) => x.what === "wal sync")).toHaveLength(1);
    expect(seenB.filter((x) => x.what === "wal sync")).toHaveLength(2);
    expect(levels(seenA, "checkpoint periodic")).toEqual([SYNC_NORMAL]);
    expect(levels(seenB, "checkpoint periodic")).toEqual([SYNC_NORMAL]);
  });
});

const SYNC_NORMAL = 1;
interface SyncSeen {
  what: string;
  level: number;
}

/**
 * Records PRAGMA synchronous as it is inside the store's write transactions (the level a commit
 * uses is the one set before it began): lease writes inside a transaction, checkpoint inserts.
 */
function syncLevels(store: SqliteStore): SyncSeen[] {
  const seen: SyncSeen[] = [];
  const raw = store as unknown as {
    db: Database.Database;
    insertCheckpoint: (c: { reason: string }) => unknown;
    receiveAgent: (...args: unknown[]) => unknown;
    recordPendingReception: (...args: unknown[]) => Promise<void>;
    writeLease: (id: string, expected: unknown, next: { state: string }) => void;
  };
  const level = (): number => raw.db.pragma("synchronous", { simple: true }) as number;
  let receiving = false;
  const insert = raw.insertCheckpoint.bind(store);
  raw.insertCheckpoint = (c) => {
    if (raw.db.inTransaction) seen.push({ what: receiving ? "receive" : `checkpoint ${c.reason}`, level: level() });
    return insert(c);
  };
  const receive = raw.receiveAgent.bind(store);
  raw.receiveAgent = (...args) => {
    receiving = true;
    try {
      return receive(...args);
    } finally {
      receiving = false;
    }
  };
  const pending = raw.recordPendingReception.bind(store);
  raw.recordPendingReception = (...args) => {
    seen.push({ what: "pending reception", level: level() });
    return pending(...args);
  };
  // The WAL syncs of durable commits whose fsync runs off the main thread.
  const walSync = store.walSync;
  store.walSync = (fd) => {
    seen.push({ what: "wal sync", level: 0 });
    return walSync(fd);
  };
  const writeLease = raw.writeLease.bind(store);
  raw.writeLease = (id, expected, next) => {
    if (raw.db.inTransaction) seen.push({ what: `lease ${next.state}`, level: level() });
    writeLease(id, expected, next);
  };
  // Group commits run on the node's commit thread, whose replies say the level each batch used.
  const thread = (store as unknown as { commitThread: { inFlight: Map<number, { commit: { reason: string } }[]>; onReply: (r: CommitReply) => void } | null }).commitThread;
  if (thread) {
    const onReply = thread.onReply.bind(thread);
    thread.onReply = (r) => {
      const batch = r.type === "committed" ? thread.inFlight.get(r.id) : undefined;
      if (r.type === "committed") for (const b of batch ?? []) seen.push({ what: `checkpoint ${b.commit.reason}`, level: r.synchronous });
      onReply(r);
    };
  }
  return seen;
}

describe("what a failed checkpoint leaves behind", () => {
  it("a checkpoint that fails before the store has it keeps its ticks' event logs and messages for the next one", async () => {
    const store = SqliteStore.open(join(tempDir(), DB_FILE));
    try {
      const { cp, identity, base } = agentOnCheckpointer(store);
      const enc = (s: string) => new TextEncoder().encode(s);
      const log = (tick: bigint) => ({ tick, entries: [{ id: HostcallId.log_emit, result: 0, payload: enc(`line ${tick}`) }], postHash: new Uint8Array(32).fill(Number(tick)) });
      const msg = (tick: bigint) => ({ tick, epochMajor: 0n, messages: [enc(`msg ${tick}`)] });
      // Signing fails (a key that cannot sign): nothing reaches the store.
      const broken = { ...identity, privateKeyObject: identity.publicKeyObject, secretKey: new Uint8Array(0) };
      await expect(cp.checkpoint({ ...base, identity: broken, tick: 1n, state: new Uint8Array([1]), logs: [log(1n)], outbox: [msg(1n)] }, "periodic", "active", null)).rejects.toThrow();
      expect(store.outbox("a")).toEqual([]);
      expect(await cp.checkpoint({ ...base, tick: 2n, state: new Uint8Array([2]), logs: [log(2n)], outbox: [msg(2n)] }, "shutdown", "active", null)).toBe("written");
      // Its run is still open (one segment): sealed as before anything is verified.
      expect(sealOpenRuns(store)).toBe(1);
      const segs = store.eventSegments("a");
      expect(segs).toHaveLength(1);
      expect(segs[0]).toMatchObject({ fromTick: 1n, toTick: 2n });
      expect(decodeSegment(segs[0]!.blob).map((l) => l.tick)).toEqual([1n, 2n]);
      expect(segmentSealProblem(segs[0]!, parseCheckpoint(store.head("a")!.blob))).toBeNull();
      expect(store.outbox("a").map((m) => [m.tick, new TextDecoder().decode(m.payload)])).toEqual([
        [1n, "msg 1"],
        [2n, "msg 2"],
      ]);
    } finally {
      store.close();
    }
  });
});

describe("receipts under load", () => {
  it("a receipt bills exactly the ticks up to its checkpoint, though later ticks commit while it waits to be written", async () => {
    const store = SqliteStore.open(join(tempDir(), DB_FILE));
    try {
      const nodeKey = generateKey();
      // Receipt interval 0: every checkpoint carries a receipt.
      const cp = new Checkpointer(store, { key: nodeKey, peerId: peerIdFromPublicKey(nodeKey.publicKey) }, 0);
      const identity = generateKey();
      const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
      const base = { agentId: "a", price: 1n, wasmHash: sha256Hex(wasm), identity };
      cp.genesis({ ...base, budget: 100n, tick: 0n, state: new Uint8Array([0]) }, { agentId: "a", did: didFromPublicKey(identity.publicKey), wasmHash: base.wasmHash, wasmBytes: wasm, manifest: "{}", identity });
      // Each tick costs 10 and is committed (addCost) before the checkpoints queued earlier have run.
      const pending: Promise<unknown>[] = [];
      for (let tick = 1n; tick <= 3n; tick++) {
        cp.addCost("a", 10n);
        pending.push(cp.checkpoint({ ...base, tick, budget: 100n - 10n * tick, state: new Uint8Array([Number(tick)]) }, "periodic", "active", null));
      }
      cp.addCost("a", 10n); // tick 4, never checkpointed
      await Promise.all(pending);
      expect(store.receipts("a").map((r) => [r.tickStart, r.tickEnd, r.cost, r.budgetAfter])).toEqual([
        [1n, 1n, 10n, 90n],
        [2n, 2n, 10n, 80n],
        [3n, 3n, 10n, 70n],
      ]);
    } finally {
      store.close();
    }
  });
});
