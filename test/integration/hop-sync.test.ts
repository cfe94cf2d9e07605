// A hop's durable commits (the source's detach checkpoint with HANDOFF_INITIATED, the target's
// reception) fsync the WAL off the main thread (store-base.ts, durablyOffThread): committed at
// synchronous=NORMAL, then fdatasync of <db>-wal on the libuv pool. Nothing that depends on such a
// write leaves the node (the confirmation, the source's `durable`), and nobody is told it is
// durable, before that sync returns; during the source's sync only what moves no ownership goes: the
// offer and, to a target that stores nothing before `durable`, the package (source.ts,
// sendEarlyOffer). A sync that fails leaves one owner, as a failing commit does.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { MigrationHooks } from "../../src/migration/service.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { FrameChannel, jsonBytes } from "../../src/p2p/frames.js";
import { parseTarget } from "../../src/p2p/host.js";
import { MIGRATE_PROTOCOL } from "../../src/migration/service.js";
import { DB_FILE, fdatasyncWal, type SqliteStore } from "../../src/store/sqlite-store.js";
import { hex } from "../../src/hash/bytes.js";
import { buildOutgoingPackage } from "../../src/migration/outgoing.js";
import { EXAMPLES, startTestNode, stopAllNodes, tempDir, type TestNode } from "../helpers/node.js";
import { frameType, offerOf, RoguePeer } from "../helpers/rogue.js";
import { waitUntil } from "../helpers/wait.js";

const rogues: RoguePeer[] = [];
afterEach(async () => {
  await Promise.all(rogues.splice(0).map((r) => r.stop()));
  await stopAllNodes();
});

const survivor = join(EXAMPLES, "survivor.wasm");
const heartbeat = join(EXAMPLES, "heartbeat.wasm");

const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };

interface SyncControl {
  /** While true, each sync waits in `held` until released (then fails, if `fail` is set). */
  hold: boolean;
  held: (() => void)[];
  /** When set, every sync fails with it (as fdatasync reporting EIO). */
  fail: NodeJS.ErrnoException | null;
  /** Called when a real fdatasync has returned. */
  onSynced: () => void;
  release(): void;
}

/** Replaces the store's WAL sync with one the test can hold pending or fail; a held sync runs the real fdatasync once released. */
function controlSyncs(store: SqliteStore): SyncControl {
  const c: SyncControl = {
    hold: false,
    held: [],
    fail: null,
    onSynced: () => {},
    release() {
      c.hold = false;
      for (const r of c.held.splice(0)) r();
    },
  };
  store.walSync = async (fd) => {
    if (c.hold) await new Promise<void>((resolve) => c.held.push(resolve));
    if (c.fail) throw c.fail;
    await fdatasyncWal(fd);
    c.onSynced();
  };
  return c;
}

const eio = (): NodeJS.ErrnoException => Object.assign(new Error("EIO: i/o error, fdatasync (injected)"), { code: "EIO" });

function p2p(flags: Record<string, string> = {}, opts: { dir?: string; resumeStored?: boolean } = {}, hooks?: MigrationHooks): Promise<TestNode> {
  return startTestNode({ ...P2P, ...flags }, opts, hooks);
}

const addressOf = (t: TestNode): string => t.node.migration!.addresses()[0]!;

/** Records on `t` each offer its target side takes (the incoming-handoff record written before offer_reply). */
function offersTaken(t: TestNode, timeline: string[]): void {
  const record = t.node.store.recordIncomingHandoff.bind(t.node.store);
  t.node.store.recordIncomingHandoff = (h) => {
    timeline.push(`offer of ${h.agentId} taken`);
    record(h);
  };
}

async function ticked(t: TestNode, agentId: string, atLeast: bigint): Promise<void> {
  await t.waitFor<TickEvent>("tick", (e) => e.agentId === agentId && e.tick >= atLeast);
}

/** Records on `t` each package it builds (buildOutgoingPackage reads the agent's segments) in `timeline`. */
function packagesBuilt(t: TestNode, timeline: string[]): void {
  const segments = t.node.store.eventSegments.bind(t.node.store);
  t.node.store.eventSegments = (agentId, ...rest) => {
    timeline.push(`package of ${agentId} built on A`);
    return segments(agentId, ...rest);
  };
}

/** Records on `t` each reception it stores (commits), in `timeline`. */
function receptionsStored(t: TestNode, timeline: string[]): void {
  const receive = t.node.store.receiveAgent.bind(t.node.store);
  t.node.store.receiveAgent = (inc) => {
    timeline.push(`package of ${inc.agent.agentId} stored on B`);
    return receive(inc);
  };
}

/**
 * A (survivor's holder, its WAL syncs under the test's control) and B (recording the offers it takes
 * and the packages it gets in `timeline`), after a round trip A → B → A: A keeps a stream to B, so
 * its next hop's offer goes out while the detach commit syncs. A knows what B holds of the agent
 * (it came from B), so its package would go with the offer (package-with-offer.ts): unless
 * `withOffer`, A forgets that, and builds the package for B's answer as for any kept stream.
 */
async function afterRoundTrip(o: { withOffer?: boolean } = {}): Promise<{ a: TestNode; b: TestNode; sync: SyncControl; timeline: string[] }> {
  const timeline: string[] = [];
  const a = await p2p();
  const b = await p2p({}, {}, { afterPackage: (agentId) => timeline.push(`package of ${agentId} on B`) });
  offersTaken(b, timeline);
  receptionsStored(b, timeline);
  const sync = controlSyncs(a.node.store);
  await a.node.addAgent({ wasmPath: survivor });
  await ticked(a, "survivor", 2n);
  expect((await a.node.migrate("survivor", [addressOf(b)])).outcome).toBe("done");
  expect((await b.node.migrate("survivor", [addressOf(a)])).outcome).toBe("done");
  await ticked(a, "survivor", a.node.store.head("survivor")!.tick + 2n);
  if (!o.withOffer) a.node.migration!.arrivals.clear();
  timeline.length = 0;
  return { a, b, sync, timeline };
}

/**
 * Starts A's hop to B with A's sync held; resolves once B has taken the early offer, got the package
 * and admitted it (its live instance placed), storing nothing (the hop's promise inside).
 */
async function migrateHeldAfterPackage(a: TestNode, b: TestNode, sync: SyncControl, timeline: string[]): Promise<{ hop: Promise<unknown> }> {
  sync.hold = true;
  const hop = a.node.migrate("survivor", [addressOf(b)]);
  hop.catch(() => undefined);
  await waitUntil(() => sync.held.length === 1 && timeline.length === 2 && b.node.pool.has("survivor"), { what: "the early offer and package admitted on B while A's sync is held" });
  expect(timeline).toEqual(["offer of survivor taken", "package of survivor on B"]);
  expect(b.node.store.lease("survivor")?.state).toBe("RETIRED");
  return { hop };
}

describe("a hop's fsyncs off the main thread", () => {
  it("a package is stored by the target only once the source's detach commit's WAL sync has returned: on a first hop the offer and the package go after it; on a kept stream they go during it, and the target admits the package but stores it only on the source's `durable`, sent after the sync; the source's main thread runs other agents meanwhile", async () => {
    const timeline: string[] = [];
    const a = await p2p();
    const b = await p2p({}, {}, { afterPackage: (agentId) => timeline.push(`package of ${agentId} on B`) });
    offersTaken(b, timeline);
    packagesBuilt(a, timeline);
    receptionsStored(b, timeline);
    const sync = controlSyncs(a.node.store);
    sync.onSynced = () => timeline.push("WAL synced on A");
    await a.node.addAgent({ wasmPath: survivor });
    await a.node.addAgent({ wasmPath: heartbeat });
    await ticked(a, "survivor", 2n);
    sync.hold = true;
    const first = a.node.migrate("survivor", [addressOf(b)]);
    await waitUntil(() => sync.held.length === 1, { what: "the detach commit's WAL sync" });
    // Committed (visible here), not yet durable: the handoff is recorded, nothing has gone out (no
    // stream is kept for B yet, and one is opened only once the handoff is durable).
    expect(a.node.store.lease("survivor")?.state).toBe("HANDOFF_INITIATED");
    // The fsync no longer blocks the thread both sides share: another agent ticks three more times.
    const at = a.node.scheduler.view("heartbeat")!.tick;
    await ticked(a, "heartbeat", at + 3n);
    expect(timeline).toEqual([]);
    sync.release();
    expect((await first).outcome).toBe("done");
    expect(timeline).toEqual(["WAL synced on A", "offer of survivor taken", "package of survivor built on A", "package of survivor on B", "package of survivor stored on B"]);
    // Back to A, then to B again on the stream A kept: the offer goes while the sync is held.
    const back = await b.node.migrate("survivor", [addressOf(a)]);
    expect(back.outcome).toBe("done");
    await ticked(a, "survivor", a.node.store.head("survivor")!.tick + 2n);
    timeline.length = 0;
    sync.hold = true;
    const third = a.node.migrate("survivor", [addressOf(b)]);
    // While A's sync is held: A builds the package for what B holds (the agent came from B) and sends
    // it with the offer (package-with-offer.ts); B takes the offer, gets the package and admits it
    // (its live instance placed) but stores nothing, and owns nothing, waiting for A's `durable`.
    await waitUntil(() => sync.held.length === 1 && timeline.length === 3 && b.node.pool.has("survivor"), { what: "the early offer and package admitted on B while A's sync is held" });
    const early = ["package of survivor built on A", "offer of survivor taken", "package of survivor on B"];
    expect(timeline).toEqual(early);
    const at2 = a.node.scheduler.view("heartbeat")!.tick;
    await ticked(a, "heartbeat", at2 + 3n);
    expect(timeline).toEqual(early);
    expect(b.node.store.lease("survivor")?.state).toBe("RETIRED");
    expect(b.node.scheduler.view("survivor")).toBeUndefined();
    expect(a.node.store.lease("survivor")?.state).toBe("HANDOFF_INITIATED");
    sync.release();
    expect((await third).outcome).toBe("done");
    expect(timeline).toEqual([...early, "WAL synced on A", "package of survivor stored on B"]);
    expect(a.node.store.lease("survivor")?.state).toBe("RETIRED");
    expect(b.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
  });

  it("the target neither confirms nor ticks the agent before the reception's WAL sync has returned (it is resumed meanwhile, held); a status query meanwhile is answered 'receiving'", async () => {
    const a = await p2p();
    const b = await p2p();
    const sync = controlSyncs(b.node.store);
    await a.node.addAgent({ wasmPath: survivor });
    await b.node.addAgent({ wasmPath: heartbeat });
    await ticked(a, "survivor", 2n);
    const ticksOnB: bigint[] = [];
    b.node.scheduler.on("tick", (e: TickEvent) => {
      if (e.agentId === "survivor") ticksOnB.push(e.tick);
    });
    sync.hold = true;
    let settled = false;
    const migrating = a.node.migrate("survivor", [addressOf(b)]).finally(() => (settled = true));
    // Committed on B at the next major, not yet durable: resumed during the sync, held; A has not been told.
    await waitUntil(() => sync.held.length === 1 && b.node.scheduler.view("survivor") !== undefined, { what: "the reception's WAL sync, the agent resumed on B" });
    const handoff = a.node.store.lease("survivor")!;
    expect(b.node.store.lease("survivor")).toMatchObject({ state: "ACTIVE_OWNER", epoch: { major: handoff.epoch.major + 1n } });
    expect(b.node.scheduler.view("survivor")).toMatchObject({ nextTickAt: null, ticksThisRun: 0 });
    expect(b.node.pool.has("survivor")).toBe(true);
    // Many of B's tick intervals pass (its other agent ticks five times at 10 ms): the held agent does not tick.
    const hb = b.node.scheduler.view("heartbeat")!.tick;
    await ticked(b, "heartbeat", hb + 5n);
    expect(ticksOnB).toEqual([]);
    expect(b.node.scheduler.view("survivor")).toMatchObject({ nextTickAt: null, ticksThisRun: 0 });
    const status = await a.node.migration!.queryStatus(addressOf(b), "survivor", handoff.epoch);
    expect(status.state).toBe("receiving");
    expect(settled).toBe(false);
    expect(a.node.store.lease("survivor")?.state).toBe("HANDOFF_INITIATED");
    sync.release();
    expect((await migrating).outcome).toBe("done");
    const head = b.node.store.head("survivor")!.tick;
    await ticked(b, "survivor", head + 1n);
    expect(ticksOnB[0]).toBe(head + 1n);
    expect(a.node.store.lease("survivor")?.state).toBe("RETIRED");
  });

  it("a detach commit whose WAL sync fails fails the hop: a package sent during the sync is never stored (no `durable` comes), the source takes no more durable writes, and after a restart the agent runs there, the target not owning it", async () => {
    const { a, b, sync, timeline } = await afterRoundTrip();
    sync.fail = eio();
    const { hop } = await migrateHeldAfterPackage(a, b, sync, timeline);
    sync.release();
    await expect(hop).rejects.toMatchObject({ code: "AGENT_NOT_RUNNING" });
    // B stored nothing: its stream ended, it holds the agent as it left it (retired), claims nothing.
    await waitUntil(() => !b.node.migration!.receiving.has("survivor") && !b.node.pool.has("survivor"), { what: "B to drop the package" });
    expect(timeline).toEqual(["offer of survivor taken", "package of survivor on B"]);
    expect(b.node.store.lease("survivor")?.state).toBe("RETIRED");
    expect(a.node.scheduler.view("survivor")?.status).toBe("failed");
    expect(a.node.store.syncFailed?.code).toBe("STORE_ERROR");
    expect(() => a.node.store.atomically(() => undefined)).toThrow(/an fsync of .*-wal failed \(EIO\)/);
    // The commit reached the WAL file (only the sync was refused): the restart finds the open
    // handoff, asks B, which never got the package (it fences that epoch), and takes the agent back.
    await a.stop();
    const a2 = await p2p({}, { dir: a.dir, resumeStored: true });
    await waitUntil(() => a2.node.store.lease("survivor")?.state === "ACTIVE_OWNER", { what: "the handoff resolved on A" });
    const head = a2.node.store.head("survivor")!.tick;
    await ticked(a2, "survivor", head + 1n);
    expect(b.node.store.lease("survivor")?.state).toBe("RETIRED");
    expect(timeline).toEqual(["offer of survivor taken", "package of survivor on B"]);
  });

  it("a target that fails after a package sent during the source's sync stored nothing, and the source knows it (no `durable` went): it retries once the sync returned and the retry goes through, with no status query", async () => {
    const timeline: string[] = [];
    let fail = false;
    const a = await p2p();
    const b = await p2p({}, {}, {
      afterPackage: (agentId, abort) => {
        timeline.push(`package of ${agentId} on B`);
        if (!fail) return;
        fail = false;
        abort(new Error("target crashed"));
        throw new Error("target crashed before the source's durable");
      },
    });
    receptionsStored(b, timeline);
    const sync = controlSyncs(a.node.store);
    await a.node.addAgent({ wasmPath: survivor });
    await ticked(a, "survivor", 2n);
    expect((await a.node.migrate("survivor", [addressOf(b)])).outcome).toBe("done");
    expect((await b.node.migrate("survivor", [addressOf(a)])).outcome).toBe("done");
    await ticked(a, "survivor", a.node.store.head("survivor")!.tick + 2n);
    timeline.length = 0;
    fail = true;
    sync.hold = true;
    const hop = a.node.migrate("survivor", [addressOf(b)]);
    await waitUntil(() => sync.held.length === 1 && timeline.length === 1 && !b.node.migration!.receiving.has("survivor"), { what: "B to fail on the package while A's sync is held" });
    expect(b.node.store.lease("survivor")?.state).toBe("RETIRED");
    sync.release();
    expect(await hop).toMatchObject({ outcome: "done", attempts: 2 });
    expect(timeline).toEqual(["package of survivor on B", "package of survivor on B", "package of survivor stored on B"]);
    expect(a.node.migration!.resolvingAgents()).toEqual([]);
    expect(a.node.store.lease("survivor")?.state).toBe("RETIRED");
    expect(b.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
  });

  it("without the durable signal (a peer from before it) the target gets the package only once the source's sync has returned, and no `durable`, even on a kept stream", async () => {
    const { a, b, sync, timeline } = await afterRoundTrip();
    packagesBuilt(a, timeline);
    await a.node.addAgent({ wasmPath: heartbeat });
    const sendJson = FrameChannel.prototype.sendJson;
    const sendAll = FrameChannel.prototype.sendAll;
    // The field goes from every offer and offer_reply, as between a node and one from before the
    // durable signal (which ignores it and does not answer it); frames are recorded.
    FrameChannel.prototype.sendJson = function (value: unknown) {
      const v = value as Record<string, unknown>;
      if (v.type === "offer" || v.type === "offer_reply") delete v.durableSignal;
      return sendJson.call(this, value);
    };
    FrameChannel.prototype.sendAll = function (frames: readonly Uint8Array[]) {
      if (frames.some((f) => frameType(f) === "transfer")) timeline.push("transfer sent");
      if (frames.some((f) => frameType(f) === "durable")) timeline.push("durable sent");
      return sendAll.call(this, frames);
    };
    try {
      sync.onSynced = () => timeline.push("WAL synced on A");
      sync.hold = true;
      const hop = a.node.migrate("survivor", [addressOf(b)]);
      await waitUntil(() => sync.held.length === 1 && timeline.length === 2, { what: "the early offer taken on B and the package built on A while A's sync is held" });
      expect(timeline).toEqual(["offer of survivor taken", "package of survivor built on A"]);
      const at = a.node.scheduler.view("heartbeat")!.tick;
      await ticked(a, "heartbeat", at + 3n);
      expect(timeline).toEqual(["offer of survivor taken", "package of survivor built on A"]);
      sync.release();
      expect(await hop).toMatchObject({ outcome: "done" });
      expect(timeline).toEqual(["offer of survivor taken", "package of survivor built on A", "WAL synced on A", "transfer sent", "package of survivor on B", "package of survivor stored on B"]);
      expect(b.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
    } finally {
      FrameChannel.prototype.sendJson = sendJson;
      FrameChannel.prototype.sendAll = sendAll;
    }
  });

  it("a power cut after the early offer and package and before the handoff was durable: the source comes back as owner at the same epoch and keeps the agent; the target, which stored nothing, holds a record of that offer that fences nothing, and the next hop goes through", async () => {
    const { a, b, sync, timeline } = await afterRoundTrip();
    // What the disk holds durably before the detach (no checkpoints run in between: interval 0).
    const lostDir = tempDir();
    mkdirSync(join(lostDir, "data"));
    a.node.store.backupTo(join(lostDir, "data", DB_FILE));
    const before = a.node.store.lease("survivor")!;
    const peerId = a.node.migration!.peerId;
    const { hop } = await migrateHeldAfterPackage(a, b, sync, timeline);
    // The power goes: A's handoff never reaches the disk. (The old process's run ends here; its sync fails.)
    sync.fail = eio();
    sync.release();
    await hop.catch(() => undefined);
    await a.stop();
    const a2 = await p2p({}, { dir: lostDir, resumeStored: true });
    expect(a2.node.migration!.peerId).toBe(peerId);
    expect(a2.node.store.lease("survivor")).toMatchObject({ state: "ACTIVE_OWNER", epoch: before.epoch, handoff: null });
    const head = a2.node.store.head("survivor")!.tick;
    await ticked(a2, "survivor", head + 2n);
    // B stored nothing and gave up the package when its stream went; its record names A's epoch.
    await waitUntil(() => !b.node.migration!.receiving.has("survivor") && !b.node.pool.has("survivor"), { what: "B to drop the package" });
    expect(b.node.store.lease("survivor")?.state).toBe("RETIRED");
    expect(timeline).toEqual(["offer of survivor taken", "package of survivor on B"]);
    // The next hop at that same epoch is taken: the stale record fences nothing.
    const again = await a2.node.migrate("survivor", [addressOf(b)]);
    expect(again).toMatchObject({ outcome: "done", epoch: { major: before.epoch.major + 1n } });
    expect(timeline).toEqual(["offer of survivor taken", "package of survivor on B", "offer of survivor taken", "package of survivor on B", "package of survivor stored on B"]);
    const at = b.node.store.head("survivor")!.tick;
    await ticked(b, "survivor", at + 1n);
    expect(a2.node.store.lease("survivor")?.state).toBe("RETIRED");
  });

  it("a reception whose WAL sync fails is neither confirmed nor refused (the agent, resumed held during the sync, is withdrawn untouched): the source waits on 'receiving', and after the target restarts one node owns the agent", async () => {
    const a = await p2p();
    const b = await p2p();
    const sync = controlSyncs(b.node.store);
    await a.node.addAgent({ wasmPath: survivor });
    await ticked(a, "survivor", 2n);
    const ticksOnB: bigint[] = [];
    b.node.scheduler.on("tick", (e: TickEvent) => {
      if (e.agentId === "survivor") ticksOnB.push(e.tick);
    });
    sync.hold = true;
    sync.fail = eio();
    const migrating = a.node.migrate("survivor", [addressOf(b)]);
    await waitUntil(() => sync.held.length === 1 && b.node.scheduler.view("survivor") !== undefined, { what: "the reception's WAL sync, the agent resumed on B" });
    sync.release();
    const r = await migrating;
    expect(r.outcome).toBe("recovery");
    expect(ticksOnB).toEqual([]);
    const epoch = a.node.store.lease("survivor")!.epoch;
    expect(a.node.store.lease("survivor")?.state).toBe("RECOVERY_REQUIRED");
    expect(b.node.scheduler.view("survivor")).toBeUndefined();
    expect(b.node.pool.has("survivor")).toBe(false);
    expect((await a.node.migration!.queryStatus(addressOf(b), "survivor", epoch)).state).toBe("receiving");
    expect(b.node.store.syncFailed?.code).toBe("STORE_ERROR");
    // B restarts on its own address: the WAL file holds the reception, so B owns the agent, runs
    // it, and tells A, which retires it.
    const listen = addressOf(b).replace(/\/p2p\/.*$/, "");
    await b.stop();
    const b2 = await p2p({ listen }, { dir: b.dir, resumeStored: true });
    await waitUntil(() => a.node.store.lease("survivor")?.state === "RETIRED", { what: "the handoff resolved on A", timeoutMs: 15_000 });
    expect(b2.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
    const head = b2.node.store.head("survivor")!.tick;
    await ticked(b2, "survivor", head + 1n);
    expect(a.node.scheduler.view("survivor")?.status ?? "gone").not.toBe("running");
  });

  it("on a kept stream the source sends `durable` as soon as its detach commit's WAL sync returns, not after the rest of the detach: the target stores the reception while the source's detach is still held after the sync; the crash point source-after-handoff (the handoff durable, nothing that moves ownership sent) comes between the two, once", async () => {
    const timeline: string[] = [];
    const a = await p2p({}, {}, { afterHandoffRecorded: () => timeline.push("handoff durable on A (crash point)") });
    const b = await p2p();
    receptionsStored(b, timeline);
    await a.node.addAgent({ wasmPath: survivor });
    await ticked(a, "survivor", 2n);
    expect((await a.node.migrate("survivor", [addressOf(b)])).outcome).toBe("done");
    expect((await b.node.migrate("survivor", [addressOf(a)])).outcome).toBe("done");
    await ticked(a, "survivor", a.node.store.head("survivor")!.tick + 2n);
    const sendAll = FrameChannel.prototype.sendAll;
    FrameChannel.prototype.sendAll = function (frames: readonly Uint8Array[]) {
      if (frames.some((f) => frameType(f) === "durable")) timeline.push("durable sent");
      return sendAll.call(this, frames);
    };
    // The detach's work after its sync (the checkpoint's promise chain, the unload, the journal's
    // reads) is held here until B has stored the reception (or the wait times out).
    const detach = a.node.scheduler.detach.bind(a.node.scheduler);
    let storedWhileHeld: boolean | null = null;
    a.node.scheduler.detach = async (...args) => {
      const r = await detach(...args);
      storedWhileHeld = await waitUntil(() => timeline.includes("package of survivor stored on B"), { what: "B to store the reception during A's held detach" }).then(
        () => true,
        () => false,
      );
      return r;
    };
    try {
      timeline.length = 0;
      const hop = await a.node.migrate("survivor", [addressOf(b)]);
      expect(hop.outcome).toBe("done");
      expect(storedWhileHeld).toBe(true);
      expect(timeline).toEqual(["handoff durable on A (crash point)", "durable sent", "package of survivor stored on B"]);
      expect(b.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
      expect(a.node.store.lease("survivor")?.state).toBe("RETIRED");
    } finally {
      FrameChannel.prototype.sendAll = sendAll;
    }
  });

  it("`durable` goes in the package's own write, behind the announcement, without waiting for `transfer_reply`, whenever the source's handoff is durable by the time the package goes: on a first hop, and on a kept stream whose offer_reply came after the sync", async () => {
    const writes: string[][] = [];
    const sendAll = FrameChannel.prototype.sendAll;
    const sendJson = FrameChannel.prototype.sendJson;
    let synced = false;
    let offerReplies: (() => void)[] = [];
    FrameChannel.prototype.sendAll = function (frames: readonly Uint8Array[]) {
      writes.push(frames.map(frameType));
      return sendAll.call(this, frames);
    };
    // B answers the early offer only once A's detach sync has returned.
    FrameChannel.prototype.sendJson = function (value: unknown) {
      if ((value as Record<string, unknown>).type !== "offer_reply" || synced) return sendJson.call(this, value);
      return new Promise<void>((resolve) => offerReplies.push(resolve)).then(() => sendJson.call(this, value));
    };
    try {
      const a = await p2p();
      const b = await p2p();
      const sync = controlSyncs(a.node.store);
      await a.node.addAgent({ wasmPath: survivor });
      await ticked(a, "survivor", 2n);
      synced = true;
      expect((await a.node.migrate("survivor", [addressOf(b)])).outcome).toBe("done");
      // The first hop: no kept stream, the attempt runs after the sync.
      expect(writes.filter((w) => w.includes("transfer"))).toEqual([["transfer", "package", "durable"]]);
      expect(writes.flat().filter((k) => k === "durable")).toHaveLength(1);
      expect((await b.node.migrate("survivor", [addressOf(a)])).outcome).toBe("done");
      await ticked(a, "survivor", a.node.store.head("survivor")!.tick + 2n);
      // A's package for B is built for B's answer, not sent with the offer (package-with-offer.ts).
      a.node.migration!.arrivals.clear();
      writes.length = 0;
      synced = false;
      sync.onSynced = () => {
        synced = true;
        for (const r of offerReplies) r();
        offerReplies = [];
      };
      expect((await a.node.migrate("survivor", [addressOf(b)])).outcome).toBe("done");
      expect(writes.filter((w) => w.includes("transfer"))).toEqual([["transfer", "package", "durable"]]);
      expect(writes.flat().filter((k) => k === "durable")).toHaveLength(1);
      expect(b.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
      expect(a.node.store.lease("survivor")?.state).toBe("RETIRED");
    } finally {
      FrameChannel.prototype.sendAll = sendAll;
      FrameChannel.prototype.sendJson = sendJson;
    }
  });

  it("the target answers a small package's announcement with its result, in one write: a hop's answers are `offer_reply` and then `transfer_reply` and `result` together, on a first hop and on a kept stream", async () => {
    const writes: string[][] = [];
    const sendAll = FrameChannel.prototype.sendAll;
    FrameChannel.prototype.sendAll = function (frames: readonly Uint8Array[]) {
      writes.push(frames.map(frameType));
      return sendAll.call(this, frames);
    };
    try {
      const a = await p2p();
      const b = await p2p();
      await a.node.addAgent({ wasmPath: survivor });
      await ticked(a, "survivor", 2n);
      const answers = (): string[][] => writes.filter((w) => w.some((k) => ["offer_reply", "transfer_reply", "result"].includes(k)));
      for (const [from, to] of [[a, b], [b, a], [a, b]] as const) {
        writes.length = 0;
        await ticked(from, "survivor", from.node.store.head("survivor")!.tick + 2n);
        expect((await from.node.migrate("survivor", [addressOf(to)])).outcome).toBe("done");
        expect(answers()).toEqual([["offer_reply"], ["transfer_reply", "result"]]);
      }
      expect(b.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
      expect(a.node.store.lease("survivor")?.state).toBe("RETIRED");
    } finally {
      FrameChannel.prototype.sendAll = sendAll;
    }
  });

  it("a source that sends its small package behind `transfer` and says so gets `transfer_reply` with a refusal of that package, nothing stored; one that does not say so is answered `transfer_reply` before it sends the package", async () => {
    const a = await p2p();
    const b = await p2p();
    await a.node.addAgent({ wasmPath: heartbeat });
    await ticked(a, "heartbeat", 3n);
    await a.node.scheduler.pause("heartbeat", "recorded");
    const lease = a.node.store.lease("heartbeat")!;
    const pkg = buildOutgoingPackage(a.node.store, { agentId: "heartbeat", epoch: lease.epoch, checkpointHash: hex(a.node.store.head("heartbeat")!.hash), haveWasm: false, baseHash: null });
    const r = await RoguePeer.start();
    rogues.push(r);
    // An offer naming another head than the package's: refused once the package is decoded.
    const offer = { ...offerOf(pkg), checkpointHash: "0".repeat(64), durableSignal: true, packageWithTransfer: true };
    const ch = new FrameChannel(await r.p2p.dialProtocol(parseTarget(addressOf(b)).addr!, MIGRATE_PROTOCOL));
    try {
      await ch.sendJson(offer);
      expect((await ch.receiveJson(5000, "offer_reply")).ok).toBe(true);
      await ch.sendAll([jsonBytes({ type: "transfer", bytes: pkg.byteLength }), pkg, jsonBytes({ type: "durable" })]);
      expect((await ch.receiveJson(5000, "transfer_reply")).ok).toBe(true);
      const result = await ch.receiveJson(5000, "result");
      expect(result.ok).toBe(false);
      expect(result.code).toBe("MIGRATION_FRAME_INVALID");
    } finally {
      await ch.close();
    }
    expect(b.node.store.lease("heartbeat")).toBeUndefined();
    expect(b.node.store.head("heartbeat")).toBeUndefined();
    // Without the field (an older source, which waits for the answer before its package), the
    // announcement is answered at once, as before.
    expect(await r.send(addressOf(b), pkg)).toEqual({ stage: "result", ok: true });
    expect(b.node.store.lease("heartbeat")?.state).toBe("ACTIVE_OWNER");
  });

  it("a detach that fails after its WAL sync returned, once `durable` went and the target stored the agent, is not reverted: the hop ends in recovery and the status query retires the source, one owner", async () => {
    const timeline: string[] = [];
    const { a, b } = await afterRoundTrip();
    receptionsStored(b, timeline);
    const detach = a.node.scheduler.detach.bind(a.node.scheduler);
    a.node.scheduler.detach = async (...args) => {
      await detach(...args);
      await waitUntil(() => timeline.includes("package of survivor stored on B"), { what: "B to store the reception during A's held detach" });
      throw new Error("the detach failed after its sync (injected)");
    };
    const r = await a.node.migrate("survivor", [addressOf(b)]);
    expect(r.outcome).toBe("recovery");
    await waitUntil(() => a.node.store.lease("survivor")?.state === "RETIRED", { what: "the handoff resolved on A" });
    expect(b.node.store.lease("survivor")?.state).toBe("ACTIVE_OWNER");
    const head = b.node.store.head("survivor")!.tick;
    await ticked(b, "survivor", head + 1n);
    expect(a.node.scheduler.view("survivor")?.status ?? "gone").not.toBe("running");
  });

  it("an offer repeated while the reception it repeats is committed but not yet durable is refused MIGRATION_BUSY, never answered as taken already", async () => {
    const a = await p2p();
    const b = await p2p();
    const sync = controlSyncs(b.node.store);
    await a.node.addAgent({ wasmPath: heartbeat });
    await ticked(a, "heartbeat", 3n);
    // The package A would send for its head (as a source retrying after its stream broke re-sends it).
    await a.node.scheduler.pause("heartbeat", "recorded");
    const lease = a.node.store.lease("heartbeat")!;
    const pkg = buildOutgoingPackage(a.node.store, { agentId: "heartbeat", epoch: lease.epoch, checkpointHash: hex(a.node.store.head("heartbeat")!.hash), haveWasm: false, baseHash: null });
    const [first, retry] = await Promise.all([RoguePeer.start(), RoguePeer.start()]);
    rogues.push(first, retry);
    sync.hold = true;
    const sent = first.send(addressOf(b), pkg, { resultTimeoutMs: 30_000 }).catch((e: unknown) => e);
    await waitUntil(() => sync.held.length === 1, { what: "the reception's WAL sync" });
    expect(b.node.store.lease("heartbeat")?.state).toBe("ACTIVE_OWNER"); // committed, not durable
    // "Taken already" would let the source retire its copy of an agent this node may yet lose.
    expect(await retry.send(addressOf(b), pkg)).toMatchObject({ stage: "offer_reply", ok: false, code: "MIGRATION_BUSY" });
    // The sync fails: the reception is neither confirmed nor refused.
    sync.fail = eio();
    sync.release();
    expect(await sent).toBeInstanceOf(Error);
    expect(b.node.scheduler.view("heartbeat")).toBeUndefined();
    expect(await retry.send(addressOf(b), pkg)).toMatchObject({ stage: "offer_reply", ok: false, code: "MIGRATION_BUSY" });
  });
});
