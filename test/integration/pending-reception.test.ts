// A pending reception (src/migration/pending-reception.ts): a target told `pendingReception` stores
// the package as pending before its replay, syncs it while the source syncs its handoff, and on
// `durable` flips it into ownership, sending `result` without waiting for the flip's own fsync. A
// pending row is never ownership; one a crash leaves is resolved by asking its source. Crashes are
// a power cut here: the target's disk as it was at a step (a backup taken there), restarted.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { MigrationHooks } from "../../src/migration/service.js";
import { FrameChannel } from "../../src/p2p/frames.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE, fdatasyncWal, type SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, startTestNode, stopAllNodes, tempDir, type TestNode } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";
import { failHandoffQuestions } from "../helpers/unreachable-source.js";

afterEach(() => stopAllNodes());

const survivor = join(EXAMPLES, "survivor.wasm");
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-max-delay": "200ms", "migration-timeout": "3s", "peer-refresh": "0" };

const p2p = (opts: { dir?: string; resumeStored?: boolean; listen?: string } = {}, hooks?: MigrationHooks): Promise<TestNode> =>
  startTestNode({ ...P2P, ...(opts.listen ? { listen: opts.listen } : {}) }, opts, hooks);
/** Where a node listens, without its peer id: a restart listens there again. */
const listenOf = (t: TestNode): string => addressOf(t).replace(/\/p2p\/.*$/, "");
const addressOf = (t: TestNode): string => t.node.migration!.addresses()[0]!;

async function ticked(t: TestNode, agentId: string, atLeast: bigint): Promise<void> {
  await t.waitFor<TickEvent>("tick", (e) => e.agentId === agentId && e.tick >= atLeast);
}

/** The disk of `t` as it is now, in a new node directory (a power cut keeps exactly this). */
function diskNow(t: TestNode): string {
  const dir = tempDir();
  mkdirSync(join(dir, "data"));
  t.node.store.backupTo(join(dir, "data", DB_FILE));
  return dir;
}

/** A store whose WAL syncs wait while `held` is set, then fail if `fail` is. */
function holdSyncs(store: SqliteStore): { hold: boolean; fail: boolean; held: (() => void)[]; release(): void } {
  const c = {
    hold: false,
    fail: false,
    held: [] as (() => void)[],
    release() {
      c.hold = false;
      for (const r of c.held.splice(0)) r();
    },
  };
  store.walSync = async (fd) => {
    if (c.hold) await new Promise<void>((resolve) => c.held.push(resolve));
    if (c.fail) throw Object.assign(new Error("EIO: i/o error, fdatasync (injected)"), { code: "EIO" });
    await fdatasyncWal(fd);
  };
  return c;
}

/**
 * survivor migrated from a new node A to a new node B, and B's disk as it was once its pending row
 * was durable (`lost`): a power cut there loses the flip after `result`, and A has retired the agent.
 */
async function migratedWithFlipLost(): Promise<{ a: TestNode; b: TestNode; lost: string }> {
  const a = await p2p();
  let lost: string | null = null;
  let b: TestNode | null = null;
  b = await p2p({}, { afterPendingStored: () => (lost = diskNow(b!)) });
  await a.node.addAgent({ wasmPath: survivor });
  await ticked(a, "survivor", 2n);
  expect((await a.node.migrate("survivor", [addressOf(b)])).outcome).toBe("done");
  expect(a.node.store.lease("survivor")?.state).toBe("RETIRED");
  return { a, b, lost: lost! };
}

/** The agents `n` stores a pending reception for, in order (its store's method wrapped). */
function pendingsStoredOn(n: TestNode): string[] {
  const pendings: string[] = [];
  const record = n.node.store.recordPendingReception.bind(n.node.store);
  n.node.store.recordPendingReception = (p) => {
    pendings.push(p.agentId);
    return record(p);
  };
  return pendings;
}

describe("a pending reception", () => {
  it("is written before the replay and synced before `result`, never owns the agent, and is flipped on `durable` in one transaction that deletes it", async () => {
    const a = await p2p();
    const seen: string[] = [];
    let b: TestNode | null = null;
    b = await p2p({}, {
      afterPendingStored: (agentId) => {
        // Pending: stored and durable, no ownership, no schedule, a status query is told "receiving".
        const t = b!;
        seen.push(`pending ${agentId}: ${t.node.store.pendingReception(agentId) ? "row" : "none"}, lease ${t.node.store.lease(agentId)?.state ?? "none"}, scheduled ${t.node.scheduler.has(agentId)}`);
      },
    });
    await a.node.addAgent({ wasmPath: survivor });
    await ticked(a, "survivor", 2n);
    const r = await a.node.migrate("survivor", [addressOf(b)]);
    expect(r.outcome).toBe("done");
    expect(seen).toEqual(["pending survivor: row, lease none, scheduled false"]);
    expect(b.node.store.pendingReception("survivor")).toBeUndefined();
    expect(b.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
    await ticked(b, "survivor", b.node.store.head("survivor")!.tick + 1n);
  });

  it("a flip lost to a power cut after `result` (the disk holds the pending row, the source is retired) becomes ownership at the target's restart: the source, asked, answers that it handed the agent off there", async () => {
    const { a, b, lost } = await migratedWithFlipLost();
    const epoch = b.node.store.lease("survivor")!.epoch;
    const handedOff = a.node.store.lease("survivor")!.epoch;
    const aSync = holdSyncs(a.node.store);
    await b.stop();
    // The restarted target: only the pending row of its flip survived. Its questions to A fail at
    // first (as if A were unreachable): meanwhile the row is no ownership, and A's status query is
    // answered "receiving", never "not owned" (which would fence the agent and hand it back to A).
    const reachable = failHandoffQuestions();
    let b2: TestNode;
    try {
      b2 = await p2p({ dir: lost, resumeStored: true });
      await waitUntil(() => b2.logs.events("pending_reception_unreachable").length >= 2, { what: "the restarted target to fail to ask A twice" });
      expect(b2.node.store.lease("survivor")).toBeUndefined();
      expect(b2.node.scheduler.has("survivor")).toBe(false);
      expect((await a.node.migration!.queryStatus(addressOf(b2), "survivor", handedOff)).state).toBe("receiving");
      expect(b2.node.store.fence("survivor", a.node.store.agent("survivor")!.did)).toBeUndefined();
    } finally {
      // Now B2 reaches A; A answers "handed off" only once its handoff is durable (a WAL sync of
      // its own: after a restart it may read a handoff a killed process never synced), held here.
      aSync.hold = true;
      reachable();
    }
    await waitUntil(() => aSync.held.length >= 1, { what: "A to sync its WAL before answering B2" });
    expect(b2.node.store.lease("survivor")).toBeUndefined();
    aSync.release();
    await waitUntil(() => b2.node.store.lease("survivor")?.state === "ACTIVE_OWNER", { what: "the pending reception flipped on the restarted target", timeoutMs: 15_000 });
    expect(b2.node.store.pendingReception("survivor")).toBeUndefined();
    expect(b2.node.store.lease("survivor")?.epoch).toEqual(epoch);
    await ticked(b2, "survivor", b2.node.store.head("survivor")!.tick + 1n);
    expect(a.node.store.lease("survivor")?.state).toBe("RETIRED");
    expect(b2.logs.events("pending_reception_resolved").map((l) => l.outcome)).toEqual(["owned"]);
  });

  it("a flip refused at the restart (the target's config changed: --max-incoming-budget below the agent's) keeps the row and retries, since the source retired on `result`: the agent is never dropped, and is owned once the config allows it", async () => {
    const { a, b, lost } = await migratedWithFlipLost();
    await b.stop();
    // The disk holds only the pending row; A retired the agent on `result`. The restarted target
    // refuses the package by its new config: dropping the row now would lose the agent everywhere.
    const b2 = await startTestNode({ ...P2P, "max-incoming-budget": "0.5" }, { dir: lost, resumeStored: true });
    await waitUntil(() => b2.logs.events("pending_reception_flip_failed").length >= 2, { what: "the restarted target's refused flip retried", timeoutMs: 15_000 });
    expect(b2.logs.events("pending_reception_flip_failed")[0]?.code).toBe("MIGRATION_BUDGET_TOO_HIGH");
    expect(b2.node.store.pendingReception("survivor")).toBeDefined();
    expect(b2.node.store.lease("survivor")).toBeUndefined();
    expect(b2.logs.events("pending_reception_resolved")).toEqual([]);
    // A is still told "receiving": it never reclaims (it retired), nothing ticks anywhere meanwhile.
    expect(a.node.store.lease("survivor")?.state).toBe("RETIRED");
    // The operator sees it: this node holds the agent's one copy (igord agents, igord status).
    expect(b2.node.agentsJson().filter((x) => x.id === "survivor")).toMatchObject([{ status: "reception_pending", source: a.node.migration!.peerId }]);
    expect((b2.node.status().agents as Record<string, number>).receptionPending).toBe(1);
    await b2.stop();
    // The operator puts the config back: the row becomes ownership.
    const b3 = await p2p({ dir: lost, resumeStored: true });
    await waitUntil(() => b3.node.store.lease("survivor")?.state === "ACTIVE_OWNER", { what: "the pending reception flipped", timeoutMs: 15_000 });
    await ticked(b3, "survivor", b3.node.store.head("survivor")!.tick + 1n);
    expect(b3.logs.events("pending_reception_resolved").map((l) => l.outcome)).toEqual(["owned"]);
  });

  it("a target killed after its pending sync while the source's handoff was never durable (a power cut on both): the source comes back as owner and ticks, the target is told so at its restart and drops the row; exactly one owner", async () => {
    const a = await p2p();
    let b: TestNode | null = null;
    let bLost: string | null = null;
    b = await p2p({}, { afterPendingStored: () => (bLost ??= diskNow(b!)) });
    await a.node.addAgent({ wasmPath: survivor });
    await ticked(a, "survivor", 2n);
    // A round trip, so A keeps a stream to B and its next offer and package go during its sync.
    expect((await a.node.migrate("survivor", [addressOf(b)])).outcome).toBe("done");
    expect((await b.node.migrate("survivor", [addressOf(a)])).outcome).toBe("done");
    await ticked(a, "survivor", a.node.store.head("survivor")!.tick + 2n);
    bLost = null;
    const aLost = diskNow(a);
    const before = a.node.store.lease("survivor")!;
    const sync = holdSyncs(a.node.store);
    sync.hold = true;
    const hop = a.node.migrate("survivor", [addressOf(b)]);
    hop.catch(() => undefined);
    // B stores the pending reception (synced) while A's handoff is not durable.
    await waitUntil(() => bLost !== null && sync.held.length === 1, { what: "B's pending reception durable while A's sync is held" });
    expect(b.node.store.lease("survivor")?.state).toBe("RETIRED");
    // The power goes on both.
    sync.fail = true;
    sync.release();
    await hop.catch(() => undefined);
    const listen = listenOf(a);
    await b.stop();
    await a.stop();
    const a2 = await p2p({ dir: aLost, resumeStored: true, listen });
    expect(a2.node.store.lease("survivor")).toMatchObject({ state: "ACTIVE_OWNER", epoch: before.epoch, handoff: null });
    const b2 = await p2p({ dir: bLost!, resumeStored: true });
    expect(b2.node.store.pendingReception("survivor")).toBeDefined();
    // B2 asks A2 where A's offer said A listens.
    await waitUntil(() => b2.node.store.pendingReception("survivor") === undefined, { what: "the restarted target to drop the pending reception", timeoutMs: 15_000 });
    expect(b2.node.store.lease("survivor")?.state).toBe("RETIRED");
    expect(b2.node.scheduler.has("survivor")).toBe(false);
    await ticked(a2, "survivor", a2.node.store.head("survivor")!.tick + 2n);
    expect(b2.logs.events("pending_reception_resolved").map((l) => l.outcome)).toEqual(["dropped"]);
  });

  it("a `durable` that never comes: the target gives up at --migration-timeout (or when the source does) and drops the pending row; the source keeps the agent (told the refusal) or, unsure what arrived, asks, is told 'not owned' and takes it back; one owner", async () => {
    const a = await p2p();
    const b = await p2p();
    await a.node.addAgent({ wasmPath: survivor });
    await ticked(a, "survivor", 2n);
    const sendAll = FrameChannel.prototype.sendAll;
    const send = FrameChannel.prototype.send;
    // A's `durable` is lost on the way (its bytes never reach B), as on a link that drops it.
    const isDurable = (f: Uint8Array): boolean => Buffer.from(f.subarray(0, 20)).toString().startsWith('{"type":"durable"');
    FrameChannel.prototype.sendAll = function (frames: readonly Uint8Array[]) {
      return sendAll.call(this, frames.filter((f) => !isDurable(f)));
    };
    FrameChannel.prototype.send = function (frame: Uint8Array) {
      return isDurable(frame) ? Promise.resolve() : send.call(this, frame);
    };
    let outcome: string;
    try {
      // Both wait one --migration-timeout: the source for `result`, the target for `durable`.
      outcome = (await a.node.migrate("survivor", [addressOf(b)])).outcome;
    } finally {
      FrameChannel.prototype.sendAll = sendAll;
      FrameChannel.prototype.send = send;
    }
    await waitUntil(() => a.node.store.lease("survivor")?.state === "ACTIVE_OWNER", { what: "A to own the agent again", timeoutMs: 15_000 });
    expect(b.node.store.pendingReception("survivor")).toBeUndefined();
    expect(b.node.store.lease("survivor")).toBeUndefined();
    // Whichever gave up first ends B's wait: its own timeout, or the source closing the stream.
    const refusals = b.logs.events("migration_refused").map((l) => String(l.code));
    expect(refusals.length).toBeGreaterThan(0);
    for (const code of refusals) expect(["MIGRATION_TIMEOUT", "MIGRATION_STREAM_CLOSED"]).toContain(code);
    // Timed out first, the source cannot know whether its `durable` arrived: it asks, and is told.
    expect(a.logs.events("handoff_resolved").map((l) => l.outcome)).toEqual(outcome === "recovery" ? ["reclaimed"] : []);
    expect(["recovery", "reverted"]).toContain(outcome);
    await ticked(a, "survivor", a.node.store.head("survivor")!.tick + 2n);
  }, 30_000);

  it("a row left for the agent: an offer from another peer waits for its resolution (MIGRATION_BUSY, the source keeps the agent); the same peer offering another checkpoint at the same epoch drops it (that handoff was reverted) and goes through", async () => {
    const a = await p2p();
    const b = await p2p();
    await a.node.addAgent({ wasmPath: survivor });
    await ticked(a, "survivor", 2n);
    const did = a.node.store.agent("survivor")!.did;
    const left = { agentId: "survivor", did, epoch: a.node.store.lease("survivor")!.epoch, checkpointHash: "00".repeat(32), package: new Uint8Array([1]), sourceAddrs: [] };
    // As a crash would leave it (rows are resolved at start; this one is written after).
    await b.node.store.recordPendingReception({ ...left, peer: "12D3KooWOtherPeerNotA" });
    const busy = await a.node.migrate("survivor", [addressOf(b)]);
    expect(busy).toMatchObject({ outcome: "reverted", error: { code: "MIGRATION_BUSY" } });
    expect(b.node.store.pendingReception("survivor")?.peer).toBe("12D3KooWOtherPeerNotA");
    await ticked(a, "survivor", a.node.store.head("survivor")!.tick + 2n);
    b.node.store.dropPendingReception("survivor", left.checkpointHash);
    await b.node.store.recordPendingReception({ ...left, epoch: a.node.store.lease("survivor")!.epoch, peer: a.node.migration!.peerId });
    expect((await a.node.migrate("survivor", [addressOf(b)])).outcome).toBe("done");
    expect(b.node.store.pendingReception("survivor")).toBeUndefined();
    expect(b.logs.events("pending_reception_resolved").map((l) => l.outcome)).toEqual(["dropped"]);
    expect(b.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
  });

  it("is stored as soon as the package arrives matching its offer, before admission's checks: a package whose module is not the one it names is refused (MIGRATION_WASM_HASH), its row dropped before the refusal goes; the source keeps the agent", async () => {
    const a = await p2p();
    const b = await p2p();
    const pendings = pendingsStoredOn(b);
    // One byte of the module changed on the wire, well inside it (the package's framing intact).
    const MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    const sendAll = FrameChannel.prototype.sendAll;
    FrameChannel.prototype.sendAll = function (frames: readonly Uint8Array[]) {
      return sendAll.call(
        this,
        frames.map((f) => {
          const at = Buffer.from(f.buffer, f.byteOffset, f.byteLength).indexOf(MAGIC);
          if (at < 0) return f;
          const changed = Uint8Array.from(f);
          changed[at + 64] = (changed[at + 64] ?? 0) ^ 0xff;
          return changed;
        }),
      );
    };
    await a.node.addAgent({ wasmPath: survivor });
    await ticked(a, "survivor", 2n);
    let r;
    try {
      r = await a.node.migrate("survivor", [addressOf(b)]);
    } finally {
      FrameChannel.prototype.sendAll = sendAll;
    }
    expect(r.outcome).toBe("reverted");
    expect(r.error?.code).toBe("MIGRATION_WASM_HASH");
    expect(pendings).toEqual(["survivor"]);
    expect(b.node.store.pendingReception("survivor")).toBeUndefined();
    expect(b.node.store.agent("survivor")).toBeUndefined();
    expect(a.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
    await ticked(a, "survivor", a.node.store.head("survivor")!.tick + 1n);
  });

  it("a peer from before pending receptions (no `pendingReception` in its offer) gets today's flow: nothing stored as pending, the reception stored on `durable`", async () => {
    const a = await p2p();
    const b = await p2p();
    const pendings = pendingsStoredOn(b);
    const replies: unknown[] = [];
    const sendJson = FrameChannel.prototype.sendJson;
    FrameChannel.prototype.sendJson = function (value: unknown) {
      const v = value as Record<string, unknown>;
      if (v.type === "offer") delete v.pendingReception;
      if (v.type === "offer_reply") replies.push(v.pendingReception);
      return sendJson.call(this, value);
    };
    await a.node.addAgent({ wasmPath: survivor });
    await ticked(a, "survivor", 2n);
    try {
      expect((await a.node.migrate("survivor", [addressOf(b)])).outcome).toBe("done");
    } finally {
      FrameChannel.prototype.sendJson = sendJson;
    }
    expect(pendings).toEqual([]);
    expect(replies).toEqual([undefined]);
    expect(b.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
    // Both new: the flag is said back and the reception goes through pending.
    expect((await b.node.migrate("survivor", [addressOf(a)])).outcome).toBe("done");
    expect((await a.node.migrate("survivor", [addressOf(b)])).outcome).toBe("done");
    expect(pendings).toEqual(["survivor"]);
  });
});
