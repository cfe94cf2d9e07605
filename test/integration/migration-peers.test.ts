// What a peer may make a node do: settle (fence) a handoff only if it took part in it, send agents
// only when trusted and only within the per-peer caps, hold admission capacity only for itself, and
// nothing at all with frames that name epochs, agent ids or capability versions the node cannot take.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { hex } from "../../src/hash/bytes.js";
import { didFromPublicKey } from "../../src/identity/did.js";
import { generateKey } from "../../src/identity/keys.js";
import { buildOutgoingPackage } from "../../src/migration/outgoing.js";
import { FrameChannel, jsonBytes } from "../../src/p2p/frames.js";
import { parseTarget } from "../../src/p2p/host.js";
import { signStatusQuery } from "../../src/migration/status-proof.js";
import { MAX_ANNOUNCED_CAPABILITIES, MIGRATE_PROTOCOL, type MigrationHooks } from "../../src/migration/service.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE, MAX_FENCES_PER_PEER, SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode, tempDir } from "../helpers/node.js";
import { RoguePeer } from "../helpers/rogue.js";
import { waitUntil } from "../helpers/wait.js";

const rogues: RoguePeer[] = [];
afterEach(async () => {
  await Promise.all(rogues.splice(0).map((r) => r.stop()));
  await stopAllNodes();
});

const heartbeat = join(EXAMPLES, "heartbeat.wasm");
const MANIFEST = readFileSync(join(EXAMPLES, "heartbeat.manifest.json"), "utf8");
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };
const MAX_EPOCH = 2n ** 63n - 1n;

const addr = (t: TestNode): string => t.node.migration!.addresses()[0]!;
const peerId = (t: TestNode): string => t.node.migration!.peerId;

async function rogue(): Promise<RoguePeer> {
  const r = await RoguePeer.start();
  rogues.push(r);
  return r;
}

/** Rows of one of the node's tables, read from its SQLite file. */
function rows(t: TestNode, table: "migration_fences" | "incoming_handoffs"): Record<string, unknown>[] {
  const db = new Database(join(t.config.dataDir, DB_FILE), { readonly: true });
  try {
    return db.prepare(`SELECT * FROM ${table}`).all() as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

const fenceRows = (t: TestNode): Record<string, unknown>[] => rows(t, "migration_fences");

/** An offer for an agent the rogue makes up (well-formed, so only the rule under test refuses it). */
function madeUpOffer(agentId: string, o: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    agentId,
    did: didFromPublicKey(generateKey().publicKey),
    wasmHash: "ab".repeat(32),
    checkpointHash: "cd".repeat(32),
    epochMajor: "0",
    epochGeneration: "0",
    manifest: MANIFEST,
    ...o,
  };
}

describe("forged fences", () => {
  // Acceptance 34: a status query signed by an unknown key changes nothing; the real migration succeeds.
  it("a status query signed by a key made up on the spot fences nothing: the agent it names still migrates here", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode({ ...P2P, "trusted-peer": peerId(a) });
    await a.node.addAgent({ wasmPath: heartbeat });
    const key = generateKey();
    const did = didFromPublicKey(key.publicKey);
    const r = await rogue();
    const ask = async (agentId: string, major: bigint) => {
      const signature = hex(signStatusQuery(key, agentId, did, { major, generation: 0n }, peerId(b)));
      return r.status(addr(b), { agentId, did, epochMajor: String(major), epochGeneration: "0", signature });
    };
    expect(await ask("heartbeat", MAX_EPOCH)).toMatchObject({ state: "not_owned" });
    for (let i = 0; i < 200; i++) await ask(`victim-${i}`, MAX_EPOCH);
    expect(fenceRows(b)).toHaveLength(0);
    const moved = await a.node.migrate("heartbeat", [addr(b)]);
    expect(moved).toMatchObject({ outcome: "done", epoch: { major: 1n, generation: 0n } });
  });

  it("only the node that offered the agent at that epoch makes the target fence it, for that DID and epoch; the fence is pruned after --migration-retention", async () => {
    const a = await startTestNode(P2P);
    let lost = false;
    const hooks: MigrationHooks = {
      // The first package is lost after it arrived with the source's `durable`: the source cannot know, and asks.
      beforeStore: (_id, abort) => {
        if (lost) return;
        lost = true;
        abort(new Error("lost"));
        throw new Error("package lost");
      },
    };
    const b = await startTestNode({ ...P2P, "accept-migrations": "any" }, {}, hooks);
    await a.node.addAgent({ wasmPath: heartbeat });
    const did = a.node.store.agent("heartbeat")!.did;
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 2n);
    await a.node.scheduler.pause("heartbeat", "recorded");
    const recorded = buildOutgoingPackage(a.node.store, { agentId: "heartbeat", epoch: a.node.store.lease("heartbeat")!.epoch, checkpointHash: hex(a.node.store.head("heartbeat")!.hash), haveWasm: false, baseHash: null });
    await a.node.resumeAgent("heartbeat");
    expect((await a.node.migrate("heartbeat", [addr(b)])).outcome).toBe("recovery");
    await a.node.migration!.resolved("heartbeat");
    expect(a.node.store.lease("heartbeat")).toMatchObject({ state: "ACTIVE_OWNER", epoch: { major: 1n } });
    expect(fenceRows(b)).toMatchObject([{ agent_id: "heartbeat", did, epoch_major: 0, peer: peerId(a) }]);
    expect(rows(b, "incoming_handoffs")).toHaveLength(0);
    // The package of the settled epoch can never land there now.
    expect(await (await rogue()).send(addr(b), recorded)).toMatchObject({ ok: false, code: "MIGRATION_STALE" });
    // The agent's own key, in other hands (any node that once held it has it), at another epoch:
    // that peer offered nothing here, so it settles nothing.
    const r = await rogue();
    const key = a.node.store.identity("heartbeat");
    const signature = hex(signStatusQuery(key, "heartbeat", did, { major: MAX_EPOCH, generation: 0n }, peerId(b)));
    expect(await r.status(addr(b), { agentId: "heartbeat", did, epochMajor: String(MAX_EPOCH), epochGeneration: "0", signature })).toMatchObject({ state: "not_owned" });
    expect(fenceRows(b)).toMatchObject([{ agent_id: "heartbeat", epoch_major: 0 }]);
    // The real next migration, at the epoch the source reclaimed, is not fenced.
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 4n);
    expect(await a.node.migrate("heartbeat", [addr(b)])).toMatchObject({ outcome: "done", epoch: { major: 2n } });
    // The stored agent settles its handoff: no record of it is left behind.
    expect(rows(b, "incoming_handoffs")).toHaveLength(0);
    await b.stop();
    const again = await startTestNode({ ...P2P, "migration-retention": "1ms" }, { dir: b.dir });
    expect(fenceRows(again)).toHaveLength(0);
  });

  it("fences and unsettled handoff records are bounded per peer: the oldest of that peer's go first", () => {
    const dir = tempDir();
    // sync normal: two thousand small transactions, each fsynced, would only test the disk.
    const store = SqliteStore.open(join(dir, DB_FILE), { sync: "normal" });
    try {
      const cap = MAX_FENCES_PER_PEER;
      for (let i = 0; i < cap + 5; i++) {
        store.recordIncomingHandoff({ agentId: `a${i}`, did: "did:key:x", peer: "P", epoch: { major: 1n, generation: 0n } });
        store.fenceAgent({ agentId: `a${i}`, did: "did:key:x", peer: "P", epoch: { major: 1n, generation: 0n } });
      }
      store.fenceAgent({ agentId: "other", did: "did:key:y", peer: "Q", epoch: { major: 3n, generation: 0n } });
      expect(store.fence("a0", "did:key:x")).toBeUndefined();
      expect(store.fence(`a${cap + 4}`, "did:key:x")).toEqual({ major: 1n, generation: 0n });
      expect(store.fence("other", "did:key:y")).toEqual({ major: 3n, generation: 0n });
      expect(store.fence("other", "did:key:x")).toBeUndefined();
      expect(store.incomingHandoffCount("P")).toBeLessThanOrEqual(cap);
    } finally {
      store.close();
    }
  });
});

describe("frames a node cannot take", () => {
  it("epochs at or above 2^63 are invalid frames, in an offer and in a status query; so is an offer at a major with no successor", async () => {
    const b = await startTestNode({ ...P2P, "accept-migrations": "any" });
    const r = await rogue();
    const big = String(2n ** 63n);
    expect(await r.raw(addr(b), [jsonBytes({ type: "offer", ...madeUpOffer("big", { epochMajor: big }) })])).toMatchObject({ ok: false, code: "MIGRATION_FRAME_INVALID" });
    expect(await r.raw(addr(b), [jsonBytes({ type: "offer", ...madeUpOffer("big", { epochGeneration: big }) })])).toMatchObject({ ok: false, code: "MIGRATION_FRAME_INVALID" });
    expect(await r.raw(addr(b), [jsonBytes({ type: "offer", ...madeUpOffer("big", { epochMajor: String(MAX_EPOCH) }) })])).toMatchObject({ ok: false, code: "MIGRATION_FRAME_INVALID" });
    const key = generateKey();
    const did = didFromPublicKey(key.publicKey);
    const signature = hex(signStatusQuery(key, "big", did, { major: 2n ** 63n, generation: 0n }, peerId(b)));
    expect(await r.status(addr(b), { agentId: "big", did, epochMajor: big, epochGeneration: "0", signature })).toMatchObject({ state: "refused", code: "MIGRATION_FRAME_INVALID" });
    expect(fenceRows(b)).toHaveLength(0);
  });

  it("an agent id the node could not store is refused at the offer, before any transfer", async () => {
    const b = await startTestNode({ ...P2P, "accept-migrations": "any" });
    const r = await rogue();
    expect(await r.stall(addr(b), madeUpOffer("../etc/passwd"), 1000)).toMatchObject({ stage: "offer_reply", ok: false, code: "AGENT_ID_INVALID" });
    expect(b.node.store.migrations()).toHaveLength(0);
  });

  it("an offer refused for its sourceAddrs leaves no incoming-handoff record: every field is checked before the record (which lets that peer fence the agent)", async () => {
    const b = await startTestNode({ ...P2P, "accept-migrations": "any" });
    const r = await rogue();
    // Not this peer's own address.
    const offer = madeUpOffer("refused-1", { durableSignal: true, pendingReception: true, sourceAddrs: [addr(b)] });
    expect(await r.stall(addr(b), offer, 1000)).toMatchObject({ stage: "offer_reply", ok: false, code: "MIGRATION_FRAME_INVALID" });
    expect(rows(b, "incoming_handoffs")).toEqual([]);
  });

  it("a capability version the node does not implement is refused at the offer", async () => {
    const b = await startTestNode({ ...P2P, "accept-migrations": "any" });
    const r = await rogue();
    const manifest = JSON.stringify({ capabilities: { clock: { version: 2 }, log: { version: 1 } } });
    expect(await r.stall(addr(b), madeUpOffer("future", { manifest }), 1000)).toMatchObject({ stage: "offer_reply", ok: false, code: "CAPABILITY_NOT_OFFERED" });
  });
});

describe("default trust", () => {
  it("by default a node takes agents only from --trusted-peer peers, and says so when it starts", async () => {
    const a = await startTestNode(P2P);
    const closed = await startTestNode(P2P);
    expect(closed.config.acceptMigrations).toBe("trusted");
    expect(closed.logs.events("p2p_listening")[0]).toMatchObject({ acceptMigrations: "trusted", trustedPeers: [] });
    expect(closed.logs.events("migrations_trusted_only")).toHaveLength(1);
    await a.node.addAgent({ wasmPath: heartbeat });
    expect(await a.node.migrate("heartbeat", [addr(closed)])).toMatchObject({ outcome: "reverted", error: { code: "MIGRATION_UNTRUSTED_PEER" } });
    const open = await startTestNode({ ...P2P, "trusted-peer": peerId(a) });
    expect(await a.node.migrate("heartbeat", [addr(open)])).toMatchObject({ outcome: "done" });
  });

  it("the price answer tells each asker whether this node would take an agent from it", async () => {
    const a = await startTestNode(P2P);
    const c = await startTestNode(P2P);
    const b = await startTestNode({ ...P2P, "trusted-peer": peerId(a) });
    expect((await a.node.migration!.queryPrice(addr(b))).acceptsMigrations).toBe(true);
    expect((await c.node.migration!.queryPrice(addr(b))).acceptsMigrations).toBe(false);
    // So the untrusted asker's candidate list leaves the node out.
    expect(c.node.migration!.peers.candidates({ required: [], maxPrice: null, exclude: new Set() }).map((p) => p.id)).not.toContain(peerId(b));
  });

  it("--max-incoming-budget refuses an agent that brings more budget than the node allows", async () => {
    const a = await startTestNode({ ...P2P, budget: "2.0" });
    const b = await startTestNode({ ...P2P, "trusted-peer": peerId(a), "max-incoming-budget": "1.5" });
    await a.node.addAgent({ wasmPath: heartbeat });
    expect(await a.node.migrate("heartbeat", [addr(b)])).toMatchObject({ outcome: "reverted", error: { code: "MIGRATION_BUDGET_TOO_HIGH" } });
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    const c = await startTestNode({ ...P2P, "trusted-peer": peerId(a), "max-incoming-budget": "2.0" });
    expect(await a.node.migrate("heartbeat", [addr(c)])).toMatchObject({ outcome: "done" });
  });

  it("--max-agents-per-peer refuses one peer's next agent; other peers still send theirs", async () => {
    const a = await startTestNode(P2P);
    const c = await startTestNode(P2P);
    const b = await startTestNode({ ...P2P, "trusted-peer": `${peerId(a)},${peerId(c)}`, "max-agents-per-peer": "1" });
    await a.node.addAgent({ wasmPath: heartbeat, agentId: "hb0" });
    await a.node.addAgent({ wasmPath: heartbeat, agentId: "hb1" });
    await c.node.addAgent({ wasmPath: heartbeat, agentId: "hb2" });
    expect(await a.node.migrate("hb0", [addr(b)])).toMatchObject({ outcome: "done" });
    expect(await a.node.migrate("hb1", [addr(b)])).toMatchObject({ outcome: "reverted", error: { code: "MIGRATION_NODE_FULL" } });
    expect(await c.node.migrate("hb2", [addr(b)])).toMatchObject({ outcome: "done" });
  });
});

describe("what a node remembers of peers", () => {
  it("a peer that only connects is remembered (the registry is bounded, MAX_KNOWN_PEERS); one that announces more than MAX_ANNOUNCED_CAPABILITIES capabilities is refused MIGRATION_FRAME_INVALID, none recorded", async () => {
    const b = await startTestNode(P2P);
    const r = await RoguePeer.start();
    rogues.push(r);
    // Connecting is enough to be remembered: ids cost nothing, hence the bound.
    await r.status(b.node.migration!.addresses()[0]!, { agentId: "nobody" }).catch(() => undefined);
    await waitUntil(() => b.node.migration!.peers.get(r.peerId) !== undefined, { what: "the connected peer in B's registry" });
    await r.answerPrice(Array.from({ length: MAX_ANNOUNCED_CAPABILITIES + 1 }, (_, i) => `cap-${i}`));
    const addr = `${r.p2p.getMultiaddrs()[0]!.toString()}`;
    await expect(b.node.migration!.queryPrice(addr)).rejects.toMatchObject({ code: "MIGRATION_FRAME_INVALID" });
    expect(b.node.migration!.peers.get(r.peerId)?.capabilities).toBeNull();
    await r.answerPrice(["clock", "log"]);
    await expect(b.node.migration!.queryPrice(addr)).resolves.toMatchObject({ capabilities: ["clock", "log"] });
  });
});

describe("admission capacity", () => {
  it("a peer whose offers reserve --max-package-size and go silent holds only its own share: another peer's agent is admitted", async () => {
    const a = await startTestNode({ ...P2P, "migration-retries": "1" });
    const b = await startTestNode({ ...P2P, "accept-migrations": "any", "max-package-size": "1MiB", "migration-timeout": "20s" });
    await a.node.addAgent({ wasmPath: heartbeat });
    const r = await rogue();
    const size = 1024 * 1024;
    expect(await r.stall(addr(b), madeUpOffer("silent-1"), size)).toMatchObject({ ok: true });
    // The same peer's second reservation is over its share (busy: it may come back later).
    expect(await r.stall(addr(b), madeUpOffer("silent-2"), size)).toMatchObject({ ok: false, code: "MIGRATION_BUSY" });
    const moved = await a.node.migrate("heartbeat", [addr(b)]);
    expect(moved).toMatchObject({ outcome: "done", attempts: 1 });
  });

  it("a package announced with its offer holds nothing until it arrives, and its announcement counts against its peer's own share: a peer whose offers announce one and go silent blocks only itself", async () => {
    const a = await startTestNode({ ...P2P, "migration-retries": "1" });
    const b = await startTestNode({ ...P2P, "accept-migrations": "any", "max-package-size": "1MiB", "migration-timeout": "20s" });
    await a.node.addAgent({ wasmPath: heartbeat });
    const r = await rogue();
    // 32 offers, each announcing 64 KiB behind it (2 MiB: the node-wide cap), then silence.
    const held: FrameChannel[] = [];
    for (let i = 0; i < 32; i++) {
      const ch = new FrameChannel(await r.p2p.dialProtocol(parseTarget(addr(b)).addr!, MIGRATE_PROTOCOL));
      held.push(ch);
      await ch.sendJson({ type: "offer", ...madeUpOffer(`silent-${i}`, { durableSignal: true, packageWithOffer: { bytes: 64 * 1024, baseHash: null, haveWasm: false } }) });
    }
    // Past its own share (one --max-package-size) the peer's announcements are refused, busy.
    const refused = await held[31]!.receiveJson(10_000, "offer_reply");
    expect(refused).toMatchObject({ ok: false, code: "MIGRATION_BUSY" });
    expect(await a.node.migrate("heartbeat", [addr(b)])).toMatchObject({ outcome: "done", attempts: 1 });
    for (const ch of held) ch.abort(new Error("done"));
  });

  it("bytes are counted as they arrive: a peer that sent part of its package and stalled does not block another", async () => {
    const a = await startTestNode({ ...P2P, "migration-retries": "1" });
    const b = await startTestNode({ ...P2P, "accept-migrations": "any", "max-package-size": "1MiB", "migration-timeout": "20s" });
    await a.node.addAgent({ wasmPath: heartbeat });
    const size = 1024 * 1024;
    const [r1, r2] = [await rogue(), await rogue()];
    expect(await r1.stall(addr(b), madeUpOffer("part-1"), size, 512 * 1024)).toMatchObject({ ok: true });
    expect(await r2.stall(addr(b), madeUpOffer("part-2"), size, 512 * 1024)).toMatchObject({ ok: true });
    expect(await a.node.migrate("heartbeat", [addr(b)])).toMatchObject({ outcome: "done", attempts: 1 });
  });
});
