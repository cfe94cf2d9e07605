// Packages a node should never be harmed by: duplicates, replays of old packages, stale epochs,
// tampered replay windows, oversized and malformed data — and one larger than libp2p's 4 MiB
// message limit that must arrive intact.
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { hex, sha256 } from "../../src/hash/bytes.js";
import { encodeCheckpoint, parseCheckpoint, SIGNATURE_OFFSET } from "../../src/checkpoint/codec.js";
import { checkpointHash, signCheckpoint } from "../../src/checkpoint/lineage.js";
import { signBudgetOverride } from "../../src/checkpoint/overrides.js";
import { decodeIdentityFile, generateKey, signBytes } from "../../src/identity/keys.js";
import { segmentSigningBytes } from "../../src/replay/segment-seal.js";
import { signStatusQuery } from "../../src/migration/status-proof.js";
import { sha256Hex } from "../../src/hash/bytes.js";
import { encodeSegment, decodeSegment } from "../../src/eventlog/tick-log.js";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { encodeReceipt, receiptSigningBytes } from "../../src/budget/receipt.js";
import { peerIdFromPublicKey } from "../../src/identity/did.js";
import { buildOutgoingPackage } from "../../src/migration/outgoing.js";
import { decodePackage, encodePackage } from "../../src/migration/package.js";
import { MIGRATE_PROTOCOL } from "../../src/migration/service.js";
import { FrameChannel } from "../../src/p2p/frames.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode, tempDir } from "../helpers/node.js";
import { offerOf, RoguePeer, type RogueReply } from "../helpers/rogue.js";
import { startNode } from "../../src/testing/index.js";
import { startAgent } from "../../src/node/agent-lifecycle.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

const rogues: RoguePeer[] = [];
afterEach(async () => {
  await Promise.all(rogues.splice(0).map((r) => r.stop()));
  await stopAllNodes();
});

const survivor = join(EXAMPLES, "survivor.wasm");
const heartbeat = join(EXAMPLES, "heartbeat.wasm");
// The rogue peer's packages must reach admission, so every node here takes agents from any peer.
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };

const addr = (t: TestNode): string => t.node.migration!.addresses()[0]!;
/** For tests that sign tens of thousands of items themselves before the target's part begins. */
const HEAVY_SETUP_TIMEOUT_MS = 120_000;
/**
 * The scale tests' sizes: IGORD_SOAK runs them at full size; CI at half, where checking the items on
 * the main thread (what they catch) still holds it past the bound below (~1.9 s for 20,000 events,
 * ~1.5 s for 10,000 seals and their decoding, against 1 s or three times the decoding).
 */
const SOAK = process.env.IGORD_SOAK !== undefined;
const MANY_EVENTS = SOAK ? 40_000 : 20_000;
const MANY_SEALS = SOAK ? 20_000 : 10_000;

async function rogue(): Promise<RoguePeer> {
  const r = await RoguePeer.start();
  rogues.push(r);
  return r;
}

/** The package a node would send for its agent's current head (the agent paused first). */
async function recordPackage(t: TestNode, agentId: string): Promise<Uint8Array> {
  await t.node.scheduler.pause(agentId, "recorded");
  const lease = t.node.store.lease(agentId)!;
  return buildOutgoingPackage(t.node.store, { agentId, epoch: lease.epoch, checkpointHash: hex(t.node.store.head(agentId)!.hash), haveWasm: false, baseHash: null });
}

/**
 * The package's newest segment with its clock reading a minute later, re-signed with the agent's key
 * (which travels in the package): only replay can tell. Signed alone (a v1 seal), not in its run:
 * the run's seal would not cover the altered body.
 */
function alteredWindow(pkg: ReturnType<typeof decodePackage>): ReturnType<typeof decodePackage>["segments"][number] {
  const seg = pkg.segments.at(-1)!;
  const logs = decodeSegment(seg.blob);
  const clock = logs.flatMap((l) => l.entries).find((e) => e.id === HostcallId.clock_now)!;
  clock.payload = new Uint8Array(clock.payload);
  clock.payload[5] = (clock.payload[5]! + 1) % 256;
  const closing = parseCheckpoint(pkg.history.find((b) => parseCheckpoint(b).tick === seg.toTick)!);
  const { runProof: _proof, ...altered } = { ...seg, blob: encodeSegment(logs) };
  return { ...altered, signature: signBytes(decodeIdentityFile(pkg.identity), segmentSigningBytes(closing.prevHash, altered)) };
}

function snapshot(t: TestNode, agentId: string) {
  return { lease: t.node.store.lease(agentId), head: t.node.store.head(agentId)?.hash, count: t.node.store.historyCount(agentId) };
}

/**
 * A source holding heartbeat's recorded package, and a target running a resident agent whose tick
 * times are recorded from the moment `send` sends a package: `maxGap()` is the longest the target's
 * main thread kept it waiting.
 */
async function targetWithResident(): Promise<{
  pkg: ReturnType<typeof decodePackage>;
  b: TestNode;
  /** Sends a package from a rogue peer; the resident's ticks are timed from here (the test's own work before it is not the target's). */
  send: (bytes: Uint8Array, o?: { resultTimeoutMs?: number }) => Promise<RogueReply>;
  maxGap: () => number;
}> {
  const a = await startTestNode(P2P);
  // Time enough for admission's checks of the long packages these tests send to run to their end
  // (they measure the resident's cadence meanwhile), even on a slow machine.
  const b = await startTestNode({ ...P2P, "migration-timeout": "60s" });
  await b.node.addAgent({ wasmPath: await writeWat(join(b.dir, "wasm"), "resident", watAgent()) });
  await b.waitFor<TickEvent>("tick", (e) => e.agentId === "resident" && e.tick >= 3n);
  await a.node.addAgent({ wasmPath: heartbeat });
  await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
  const pkg = decodePackage(await recordPackage(a, "heartbeat"));
  const times: number[] = [];
  let timing = false;
  b.node.scheduler.on("tick", (e: TickEvent) => {
    if (timing && e.agentId === "resident") times.push(e.at);
  });
  const send = async (bytes: Uint8Array, o: { resultTimeoutMs?: number } = {}): Promise<RogueReply> => {
    // Built, signed and read for its offer on this same main thread before the clock starts.
    const peer = await rogue();
    const offer = offerOf(bytes);
    timing = true;
    return peer.send(addr(b), bytes, { ...o, offer });
  };
  return { pkg, b, send, maxGap: () => Math.max(...times.slice(1).map((t, i) => t - times[i]!)) };
}

/** The longest the resident may wait while a package that must not hold the target is checked. */
const HOLD_BOUND_MS = 1000;

/**
 * HOLD_BOUND_MS, or three times what decoding `bytes` takes on this machine now if that is more: a
 * package of tens of thousands of items is decoded in one piece (the target's header parse, and the
 * rogue peer encrypting it on this same thread), and on a loaded machine that alone nears a second.
 * What these tests catch, checking the items in one piece, held the thread ten times as long.
 */
function holdBoundFor(bytes: Uint8Array): number {
  const started = performance.now();
  decodePackage(bytes);
  return Math.max(HOLD_BOUND_MS, 3 * (performance.now() - started));
}

/** Waits for the resident's ticks to go on after the package's answer. */
async function residentTicksOn(b: TestNode): Promise<void> {
  const after = Date.now();
  await b.waitFor<TickEvent>("tick", (e) => e.agentId === "resident" && e.at > after + 50);
}

describe("packages that must not harm the live agent", () => {
  // Acceptance 26: an older package to the owner is refused; the live agent untouched.
  it("a recorded package for an earlier head of an agent the node now owns is refused; the live agent is untouched", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    const recorded = await recordPackage(a, "heartbeat");
    const recordedTick = a.node.store.head("heartbeat")!.tick;
    await a.node.resumeAgent("heartbeat");
    await a.waitFor<TickEvent>("tick", (e) => e.tick > recordedTick + 2n);
    expect((await a.node.migrate("heartbeat", [addr(b)])).outcome).toBe("done");
    const before = snapshot(b, "heartbeat");
    const reply = await (await rogue()).send(addr(b), recorded);
    expect(reply).toMatchObject({ stage: "offer_reply", ok: false, code: "MIGRATION_OWNED_HERE" });
    expect(snapshot(b, "heartbeat")).toEqual(before);
    expect(b.node.scheduler.view("heartbeat")?.status).toBe("running");
  });

  // Acceptance 26: a replayed package is an idempotent retry.
  it("an identical retry of the migration a node took is success without effect", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: heartbeat });
    const pkg = await recordPackage(a, "heartbeat");
    const r1 = await (await rogue()).send(addr(b), pkg);
    expect(r1).toMatchObject({ stage: "result", ok: true });
    const before = snapshot(b, "heartbeat");
    const r2 = await (await rogue()).send(addr(b), pkg);
    expect(r2).toMatchObject({ stage: "offer_reply", ok: true, already: true });
    expect(snapshot(b, "heartbeat")).toEqual(before);
    expect(b.logs.events("migration_duplicate")).toHaveLength(1);
  });

  // Acceptance 26: stale packages refused, nothing stored changes, epochs never go backwards.
  it("an old package replayed to a node that owns the agent, or retired it at a newer epoch, is refused and nothing stored changes", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: survivor });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    const old = await recordPackage(a, "survivor");
    await a.node.resumeAgent("survivor");
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= 6n);
    expect((await a.node.migrate("survivor", [addr(b)])).outcome).toBe("done");
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor");
    expect((await b.node.migrate("survivor", [addr(a)])).outcome).toBe("done");
    // A owns it at (2,0); B retired it at (1,x). The package from (0,x) goes to both.
    const aBefore = snapshot(a, "survivor");
    const bBefore = snapshot(b, "survivor");
    const toA = await (await rogue()).send(addr(a), old);
    const toB = await (await rogue()).send(addr(b), old);
    expect(toA).toMatchObject({ ok: false, code: "MIGRATION_OWNED_HERE" });
    expect(toB).toMatchObject({ ok: false, code: "MIGRATION_STALE" });
    expect(snapshot(a, "survivor")).toMatchObject({ head: aBefore.head, count: aBefore.count, lease: { state: "ACTIVE_OWNER", epoch: aBefore.lease!.epoch } });
    expect(snapshot(b, "survivor")).toEqual(bBefore);
    expect(a.node.scheduler.view("survivor")?.status).toBe("running");
  });

  // Acceptance 27: replay data that does not reproduce the checkpoint.
  it("a package whose replay window was tampered with is refused by replay verification; the untouched one is accepted", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode({ ...P2P, "replay-mode": "full" });
    const c = await startTestNode({ ...P2P, "replay-mode": "on-migrate" });
    await a.node.addAgent({ wasmPath: survivor });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 5n);
    const honest = await recordPackage(a, "survivor");
    const pkg = decodePackage(honest);
    const tampered = encodePackage({ ...pkg, segments: [...pkg.segments.slice(0, -1), alteredWindow(pkg)] });
    const refused = await (await rogue()).send(addr(b), tampered);
    expect(refused.ok).toBe(false);
    expect(refused.code).toMatch(/^REPLAY_/);
    expect(b.node.store.agent("survivor")).toBeUndefined();
    const accepted = await (await rogue()).send(addr(c), honest);
    expect(accepted).toMatchObject({ stage: "result", ok: true });
    expect(c.logs.events("migration_received")[0]?.replayed).toBeGreaterThan(0);
  });

  it("a log line altered in an older shipped segment, one on-migrate admission does not replay, is refused as forged; nothing is stored", async () => {
    const a = await startTestNode({ ...P2P, "checkpoint-interval": "30ms" });
    const c = await startTestNode({ ...P2P, "replay-mode": "on-migrate" });
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 12n);
    const pkg = decodePackage(await recordPackage(a, "heartbeat"));
    expect(pkg.segments.length).toBeGreaterThan(1);
    const seg = pkg.segments[0]!;
    const logs = decodeSegment(seg.blob);
    const line = logs.flatMap((l) => l.entries).find((e) => e.id === HostcallId.log_emit && e.payload.byteLength > 0)!;
    line.payload = new TextEncoder().encode(new TextDecoder().decode(line.payload).replace("heartbeat", "HEARTBEAT"));
    const forged = encodePackage({ ...pkg, segments: [{ ...seg, blob: encodeSegment(logs) }, ...pkg.segments.slice(1)] });
    const reply = await (await rogue()).send(addr(c), forged);
    expect(reply).toMatchObject({ ok: false, code: "EVENT_LOG_FORGED" });
    expect(c.node.store.agent("heartbeat")).toBeUndefined();
    // The same package untouched is taken, and its segments keep their signatures.
    expect(await (await rogue()).send(addr(c), encodePackage(pkg))).toMatchObject({ stage: "result", ok: true });
    const stored = c.node.store.eventSegments("heartbeat");
    expect(stored.length).toBe(pkg.segments.length);
    expect(stored.every((s) => s.signature?.byteLength === 64)).toBe(true);
  });

  it("malformed packages are refused with a format error and store nothing", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: heartbeat });
    const pkg = await recordPackage(a, "heartbeat");
    // The rogue decodes the package to build its offer, so corrupt a section, not the header.
    const decoded = decodePackage(pkg);
    const badSig = encodePackage({ ...decoded, history: decoded.history.map((h, i) => (i === decoded.history.length - 1 ? flipLastByte(h) : h)) });
    const r1 = await (await rogue()).send(addr(b), badSig);
    expect(r1.ok).toBe(false);
    expect(["MIGRATION_LINEAGE", "MIGRATION_FRAME_INVALID"]).toContain(r1.code);
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    expect(b.node.store.migrations()).toHaveLength(0);
  });

  it("an event-log segment claiming ticks its checkpoints do not cover is refused in every replay mode, before any replay", async () => {
    const a = await startTestNode(P2P);
    const periodic = await startTestNode({ ...P2P, "replay-mode": "periodic" });
    const full = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    const pkg = decodePackage(await recordPackage(a, "heartbeat"));
    const seg = pkg.segments.at(-1)!;
    const huge = encodePackage({ ...pkg, segments: [...pkg.segments.slice(0, -1), { ...seg, fromTick: 1n, toTick: 2n ** 63n }] });
    for (const target of [periodic, full]) {
      const reply = await (await rogue()).send(addr(target), huge);
      expect(reply).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE" });
      expect(target.node.store.agent("heartbeat")).toBeUndefined();
    }
    // Leaving the window out does not skip verification either.
    const none = await (await rogue()).send(addr(full), encodePackage({ ...pkg, segments: [] }));
    expect(none).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE" });
  });
});

describe("a replay window too slow to verify in time", () => {
  // Reads the clock, then spins (~40-150 ms here, with the machine's speed): each tick is replayed at admission (it observed something).
  /** How long the slow agent may take to reach the ticks a test needs (the CI machine is sometimes twice as slow). */
  const SLOW_TICKS_WAIT_MS = 40_000;
  const SLOW = watAgent({
    imports: '(import "igor" "clock_now" (func $clock (result i64)))',
    onTick: `(drop (call $clock))
    (local.set $n (i32.const 150000000))
    (loop $spin (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br_if $spin (local.get $n)))`,
  }).replace('(func (export "agent_tick") (result i32)', '(func (export "agent_tick") (result i32) (local $n i32)');

  it("is refused with MIGRATION_REPLAY_TIMEOUT once admission's replays pass their share of --migration-timeout; the target stores nothing and keeps no staging placement", async () => {
    // No periodic checkpoint: the window before the handoff is every tick since genesis.
    const a = await startTestNode({ ...P2P, "checkpoint-interval": "0" });
    // The window below (32 ticks or more) takes 1.3 s or more to replay; this target gives replays half of 1 s.
    // (A 12-tick window replayed in ~500 ms in a fast phase of this VM: taken.)
    const b = await startTestNode({ ...P2P, "migration-timeout": "1s" });
    const wasmPath = await writeWat(tempDir("igord-slow-"), "slow", SLOW, CAPS("clock"));
    await a.node.addAgent({ wasmPath });
    // Each tick spins ~40 ms and is verified again on its worker: seconds of ticking, more on a loaded machine.
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "slow" && e.tick >= 32n, SLOW_TICKS_WAIT_MS);
    const pkg = await recordPackage(a, "slow");
    const window = decodePackage(pkg).segments.at(-1)!;
    expect(window.toTick - window.fromTick + 1n).toBeGreaterThanOrEqual(32n);
    const reply = await (await rogue()).send(addr(b), pkg);
    expect(reply).toMatchObject({ stage: "result", ok: false, code: "MIGRATION_REPLAY_TIMEOUT" });
    expect(b.node.store.agent("slow")).toBeUndefined();
    expect(b.node.pool.has("slow~incoming")).toBe(false);
   }, 90_000);

  it("with --replay-mode full, older segments replay only while that time lasts: the window before the handoff replays, the package is taken", async () => {
    // Periodic checkpoints: short segments, the one before the handoff among them.
    const a = await startTestNode({ ...P2P, "checkpoint-interval": "150ms" });
    const b = await startTestNode({ ...P2P, "replay-mode": "full", "migration-timeout": "2s" });
    const wasmPath = await writeWat(tempDir("igord-slow-"), "slow", SLOW, CAPS("clock"));
    await a.node.addAgent({ wasmPath });
    // 50 ticks or more (2 s or more to replay) against this target's 1 s for replays: not all of them replay.
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "slow" && e.tick >= 50n, SLOW_TICKS_WAIT_MS);
    const pkg = decodePackage(await recordPackage(a, "slow"));
    const shipped = pkg.segments.reduce((n, s) => n + Number(s.toTick - s.fromTick + 1n), 0);
    expect(await (await rogue()).send(addr(b), encodePackage(pkg), { resultTimeoutMs: 10_000 })).toMatchObject({ stage: "result", ok: true });
    const replayed = b.logs.events("migration_received")[0]?.replayed as number;
    const newest = pkg.segments.at(-1)!;
    expect(replayed).toBeGreaterThanOrEqual(Number(newest.toTick - newest.fromTick + 1n));
    expect(replayed).toBeLessThan(shipped);
    expect(b.node.store.eventSegments("slow")).toHaveLength(pkg.segments.length);
   }, 90_000);
});

function flipLastByte(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b);
  out[out.byteLength - 1] = (out[out.byteLength - 1]! ^ 0xff) & 0xff;
  return out;
}

/** A copy of an agent with a custom section of `bytes` appended (ignored by the engine, hashed). */
function paddedAgent(src: string, bytes: number): string {
  const dir = tempDir("igord-big-");
  const wasm = readFileSync(src);
  const name = Buffer.from("igord-test-padding");
  const payload = Buffer.concat([leb(name.byteLength), name, Buffer.alloc(bytes, 0xab)]);
  const out = join(dir, "bigagent.wasm");
  writeFileSync(out, Buffer.concat([wasm, Buffer.from([0]), leb(payload.byteLength), payload]));
  copyFileSync(src.replace(/\.wasm$/, ".manifest.json"), join(dir, "bigagent.manifest.json"));
  return out;
}

function leb(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return Buffer.from(out);
}

describe("large packages", () => {
  // Acceptance 29: a package over 4 MiB migrates intact.
  it("moves a package over libp2p's 4 MiB message limit in chunks, intact", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    const big = paddedAgent(heartbeat, 6 * 1024 * 1024);
    await a.node.addAgent({ wasmPath: big });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "bigagent" && e.tick >= 2n);
    const r = await a.node.migrate("bigagent", [addr(b)]);
    expect(r.outcome).toBe("done");
    const sent = a.node.store.migrations({ agentId: "bigagent" })[0]!.bytes;
    expect(sent).toBeGreaterThan(6 * 1024 * 1024);
    const wasmHash = a.node.store.agent("bigagent")!.wasmHash;
    expect(sha256Hex(b.node.store.wasm(wasmHash)!)).toBe(wasmHash);
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "bigagent");
    // Coming back, A already holds the module and the head: only the new part travels.
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "bigagent" && e.tick >= 4n);
    expect((await b.node.migrate("bigagent", [addr(a)])).outcome).toBe("done");
    expect(b.node.store.migrations({ agentId: "bigagent" })[0]!.bytes).toBeLessThan(64 * 1024);
  });

  it("a large package is held once on the target while it is admitted, not once more for each copy made of it", async () => {
    // 40 MiB of module: the package's bytes as they arrived, the sections decoded from them, and the
    // module handed to the loader must not each stay alive through admission.
    const SIZE = 40 * 1024 * 1024;
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const arrayBytes = (): number => {
      gc();
      gc();
      return process.memoryUsage().arrayBuffers;
    };
    const a = await startTestNode(P2P);
    let during = 0;
    const b = await startNode({ flags: P2P, migrationHooks: { beforeStore: () => void (during = arrayBytes()) } });
    await a.node.addAgent({ wasmPath: paddedAgent(heartbeat, SIZE) });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "bigagent" && e.tick >= 2n);
    const encoded = await recordPackage(a, "bigagent");
    const before = arrayBytes();
    expect(await (await rogue()).send(b.node.migration!.addresses()[0]!, encoded, { resultTimeoutMs: 30_000 })).toMatchObject({ stage: "result", ok: true });
    // What the sender still holds is in `before`; on top of it the target holds the package once.
    expect((during - before) / SIZE).toBeLessThan(1.5);
  });

  for (const signal of [false, true]) {
    it(`a target that reads the package too slowly: the write times out with the last frame still in this node's buffer, so the hop is reverted, not left RECOVERY_REQUIRED (target ${signal ? "with" : "without"} the durable signal)`, async () => {
      const TIMEOUT_MS = 1000;
      const a = await startTestNode({ ...P2P, "migration-timeout": `${TIMEOUT_MS}ms`, "migration-retries": "1" });
      await a.node.addAgent({ wasmPath: paddedAgent(heartbeat, 8 * 1024 * 1024) });
      await a.waitFor<TickEvent>("tick", (e) => e.agentId === "bigagent" && e.tick >= 2n);
      const r = await rogue();
      await r.answerPrice();
      let got = 0;
      let total = 0;
      await r.p2p.handle(MIGRATE_PROTOCOL, async (stream) => {
        const ch = new FrameChannel(stream);
        try {
          await ch.receiveJson(5000, "offer");
          await ch.sendJson({ type: "offer_reply", ok: true, haveWasm: false, baseHash: null, ...(signal ? { durableSignal: true } : {}) });
          total = Number((await ch.receiveJson(5000, "transfer")).bytes);
          await ch.sendJson({ type: "transfer_reply", ok: true });
          ch.acceptChunks();
          // One chunk every half a timeout: each of the source's writes waits, the whole hop runs out.
          for (let n = 0; n < total; n += (await ch.receive(60_000, "chunk")).byteLength, got = n) {
            await new Promise((res) => setTimeout(res, TIMEOUT_MS / 2));
          }
        } finally {
          await ch.close();
        }
      });
      const res = await a.node.migrate("bigagent", [r.p2p.getMultiaddrs()[0]!.toString()]);
      // What the target had read when the source gave up: the stream is gone, it has no more.
      expect(got).toBeLessThan(total);
      expect(res.outcome).toBe("reverted");
      expect(a.node.store.lease("bigagent")?.state).toBe("ACTIVE_OWNER");
      await a.waitFor<TickEvent>("tick", (e) => e.agentId === "bigagent");
    }, 60_000);
  }

  it("a package over the target's --max-package-size is refused before it is read", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode({ ...P2P, "max-package-size": "1MiB" });
    await a.node.addAgent({ wasmPath: paddedAgent(heartbeat, 2 * 1024 * 1024) });
    const r = await a.node.migrate("bigagent", [addr(b)]);
    expect(r.outcome).toBe("reverted");
    expect(r.error?.code).toBe("MIGRATION_PACKAGE_TOO_LARGE");
    expect(b.node.store.agent("bigagent")).toBeUndefined();
    expect(a.node.scheduler.view("bigagent")?.status).toBe("running");
  });
});

describe("tampered packages, each refused with its own code", () => {
  // Acceptance 27: wrong WASM hash, changed DID, garbage and oversized frames, each its own code, nothing stored.
  it("wrong WASM hash, changed DID, garbage and oversized frames", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 2n);
    const pkg = decodePackage(await recordPackage(a, "heartbeat"));
    const wasm = new Uint8Array(pkg.wasm!);
    wasm[wasm.byteLength - 1] = (wasm[wasm.byteLength - 1]! ^ 0xff) & 0xff;
    const r = await rogue();
    expect(await r.send(addr(b), encodePackage({ ...pkg, wasm }))).toMatchObject({ ok: false, code: "MIGRATION_WASM_HASH" });
    const otherDid = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
    expect(await r.send(addr(b), encodePackage({ ...pkg, did: otherDid }))).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE" });
    expect(await r.raw(addr(b), [new TextEncoder().encode("not json at all")])).toMatchObject({ ok: false, code: "MIGRATION_FRAME_INVALID" });
    expect(await r.raw(addr(b), [new Uint8Array(2 * 1024 * 1024)])).toMatchObject({ ok: false, code: "MIGRATION_FRAME_TOO_LARGE" });
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    expect(b.node.store.migrations()).toHaveLength(0);
  });
});

describe("modules a package ships", () => {
  it("a module no shipped segment was recorded with, or one shipped twice, is refused MIGRATION_WASM_HASH before anything is stored; the honest package is taken", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    const pkg = decodePackage(await recordPackage(a, "heartbeat"));
    expect(pkg.modules ?? []).toHaveLength(0);
    // Any bytes the target would keep for nothing (here another agent's whole module).
    const stray = new Uint8Array(readFileSync(survivor));
    const extra = { hash: sha256Hex(stray), bytes: stray };
    const reply = await (await rogue()).send(addr(b), encodePackage({ ...pkg, modules: [extra] }));
    expect(reply).toMatchObject({ ok: false, code: "MIGRATION_WASM_HASH" });
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    expect(b.node.store.wasm(extra.hash)).toBeUndefined();
    // The current module shipped again as an "earlier" one.
    const twice = { hash: pkg.wasmHash, bytes: new Uint8Array(pkg.wasm!) };
    expect(await (await rogue()).send(addr(b), encodePackage({ ...pkg, modules: [twice] }))).toMatchObject({ ok: false, code: "MIGRATION_WASM_HASH" });
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    expect(await (await rogue()).send(addr(b), encodePackage(pkg))).toMatchObject({ ok: true });
  });
});

describe("segments a package ships", () => {
  it("a segment shipped twice is refused MIGRATION_LINEAGE before anything is stored (it would be stored, and shipped on, twice); the honest package is taken", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    const pkg = decodePackage(await recordPackage(a, "heartbeat"));
    const seg = pkg.segments.at(-1)!;
    expect(seg).toBeDefined();
    const reply = await (await rogue()).send(addr(b), encodePackage({ ...pkg, segments: [...pkg.segments, { ...seg }] }));
    expect(reply).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE" });
    expect(reply.message).toContain("twice");
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    expect(await (await rogue()).send(addr(b), encodePackage(pkg))).toMatchObject({ ok: true });
    expect(b.node.store.eventSegments("heartbeat", 0n)).toHaveLength(pkg.segments.length);
  });
});

describe("receipts", () => {
  /** b, and the package of a's heartbeat with a receipt per checkpoint. */
  async function withReceipts(): Promise<{ b: TestNode; pkg: ReturnType<typeof decodePackage> }> {
    const a = await startTestNode({ ...P2P, "receipt-interval": "0" });
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    return { b, pkg: decodePackage(await recordPackage(a, "heartbeat")) };
  }

  it("a package carrying a forged receipt is refused (receipts are checked against their node's peer id)", async () => {
    const { b, pkg } = await withReceipts();
    expect(pkg.receipts.length).toBeGreaterThan(0);
    const forged = pkg.receipts.map((r, i) => (i === 0 ? flipLastByte(r) : r));
    const reply = await (await rogue()).send(addr(b), encodePackage({ ...pkg, receipts: forged }));
    expect(reply).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE" });
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    const honest = await (await rogue()).send(addr(b), encodePackage(pkg));
    expect(honest).toMatchObject({ ok: true });
    expect(b.node.store.receipts("heartbeat").length).toBe(pkg.receipts.length);
  });

  it("a package listing its receipts twice stores each once: the agent's node does not count a receipt twice", async () => {
    const { b, pkg } = await withReceipts();
    expect(pkg.receipts.length).toBeGreaterThan(0);
    expect(await (await rogue()).send(addr(b), encodePackage({ ...pkg, receipts: [...pkg.receipts, ...pkg.receipts] }))).toMatchObject({ ok: true });
    expect(b.node.store.receiptCount("heartbeat")).toBe(pkg.receipts.length);
  });

  it("a package carrying a validly signed receipt for ticks past its head is refused MIGRATION_LINEAGE, and the honest package then stores its own receipts only", async () => {
    const { b, pkg } = await withReceipts();
    const head = parseCheckpoint(pkg.history.at(-1)!).tick;
    // Any peer id is a key anyone can mint: a receipt "signed by a node" says nothing by itself.
    const minted = generateKey();
    const fields = { agentId: "heartbeat", nodeId: peerIdFromPublicKey(minted.publicKey), tickStart: head + 1n, tickEnd: 2n ** 62n, cost: 1n, budgetAfter: 0n, timestampNs: 0n };
    const far = encodeReceipt({ ...fields, signature: signBytes(minted, receiptSigningBytes(fields)) });
    const reply = await (await rogue()).send(addr(b), encodePackage({ ...pkg, receipts: [...pkg.receipts, far] }));
    expect(reply).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE" });
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    expect(await (await rogue()).send(addr(b), encodePackage(pkg))).toMatchObject({ ok: true });
    expect(b.node.store.lastReceiptTick("heartbeat")).toBeLessThanOrEqual(head);
  });
});

describe("the budget an agent brings", () => {
  it("a budget override after the head that raises the budget past --max-incoming-budget is refused MIGRATION_BUDGET_TOO_HIGH, as a head carrying it would be", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode({ ...P2P, "max-incoming-budget": "2.0" });
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    const pkg = decodePackage(await recordPackage(a, "heartbeat"));
    const head = parseCheckpoint(pkg.history.at(-1)!);
    expect(head.budget).toBeLessThanOrEqual(2_000_000n);
    // A top-up after the head, signed with the agent's key (it travels in the package): the budget
    // the agent resumes with on the target is its new budget, not the head's.
    const fields = { afterHash: checkpointHash(pkg.history.at(-1)!), tick: head.tick, oldBudget: head.budget, newBudget: 9_000_000_000_000n, reason: "top-up" };
    const topUp = { kind: "budget_override" as const, ...fields, signature: signBudgetOverride(decodeIdentityFile(pkg.identity), fields) };
    const reply = await (await rogue()).send(addr(b), encodePackage({ ...pkg, overrides: [...pkg.overrides, topUp] }));
    expect(reply).toMatchObject({ ok: false, code: "MIGRATION_BUDGET_TOO_HIGH" });
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    // Within the limit it is taken, and the agent runs on with the budget it was topped up to.
    const within = { ...fields, newBudget: 1_900_000n };
    const small = { kind: "budget_override" as const, ...within, signature: signBudgetOverride(decodeIdentityFile(pkg.identity), within) };
    expect(await (await rogue()).send(addr(b), encodePackage({ ...pkg, overrides: [...pkg.overrides, small] }))).toMatchObject({ stage: "result", ok: true });
  });
});

describe("the budget an agent brings back", () => {
  it("a returning package that reorders the lineage events after the head is refused MIGRATION_BUDGET_TOO_HIGH: the budget checked is the one the agent resumes with here", async () => {
    // A's agent never ticks again once resumed (its next tick an hour away): it leaves at the head it
    // was topped up after, and the top-up (signed, after that head) stays in A's lineage.
    const a = await startTestNode({ ...P2P, "tick-interval": "1h", "lease-duration": "2h", "max-incoming-budget": "2.0" });
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.node.scheduler.pause("heartbeat", "topped up");
    a.node.overrideBudget("heartbeat", 1_500_000n, "top-up");
    await startAgent(a.node, "heartbeat");
    const head = a.node.store.head("heartbeat")!;
    expect((await a.node.migrate("heartbeat", [addr(b)])).outcome).toBe("done");
    expect(a.node.store.head("heartbeat")!.hash).toEqual(head.hash);
    const known = a.node.store.lineageEvents("heartbeat");
    const topUp = known.at(-1)!;
    expect(topUp).toMatchObject({ kind: "budget_override", newBudget: 1_500_000n, afterHash: head.hash });

    // A peer holding the agent's key (it travels with it) sends it back to that same head, with a
    // top-up of 1,000 units signed after it and placed before the event A already holds: A checked
    // the last event after the head of its own events and the package's together (A's own, 1.5
    // units), but stores only the new one after its own, and the agent resumed with 1,000 units.
    const pkg = decodePackage(buildOutgoingPackage(a.node.store, { agentId: "heartbeat", epoch: { major: 1n, generation: 0n }, checkpointHash: hex(head.hash), haveWasm: true, baseHash: hex(head.hash) }));
    expect(pkg.history).toEqual([]);
    const fields = { afterHash: head.hash, tick: head.tick, oldBudget: topUp.newBudget, newBudget: 1_000_000_000n, reason: "top-up" };
    const inflated = { kind: "budget_override" as const, ...fields, signature: signBudgetOverride(decodeIdentityFile(pkg.identity), fields) };
    const reply = await (await rogue()).send(addr(a), encodePackage({ ...pkg, overrides: [...known.slice(0, -1), inflated, topUp] }));
    expect(reply).toMatchObject({ stage: "result", ok: false, code: "MIGRATION_BUDGET_TOO_HIGH" });
    expect(a.node.store.lease("heartbeat")?.state).toBe("RETIRED");
    expect(a.node.store.lineageEvents("heartbeat")).toEqual(known);
    expect(a.node.scheduler.view("heartbeat")).toBeUndefined();
  });
});

describe("lineage event amounts", () => {
  it("a lineage event whose budget does not fit a signed 64-bit amount (2^63 µ¢ or more) is refused MIGRATION_FRAME_INVALID naming it; nothing stored", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    const pkg = decodePackage(await recordPackage(a, "heartbeat"));
    // Signed with the agent's key (it travels in the package), after a checkpoint of another history:
    // its signed bytes hold the amount as a signed 64-bit integer (2^63 wraps to -2^63).
    const fields = { afterHash: sha256(new TextEncoder().encode("elsewhere")), tick: 1n, oldBudget: 1n, newBudget: 2n ** 63n, reason: "top-up" };
    const huge = { kind: "budget_override" as const, ...fields, signature: signBudgetOverride(decodeIdentityFile(pkg.identity), fields) };
    // The offer is the honest package's (this test's own decoder refuses the package too).
    const reply = await (await rogue()).send(addr(b), encodePackage({ ...pkg, overrides: [...pkg.overrides, huge] }), { offer: offerOf(encodePackage(pkg)) });
    expect(reply).toMatchObject({ ok: false, code: "MIGRATION_FRAME_INVALID" });
    expect(reply.message).toMatch(/newBudget/);
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    expect(await (await rogue()).send(addr(b), encodePackage(pkg))).toMatchObject({ stage: "result", ok: true });
  });
});

describe("many lineage events", () => {
  // The test signs 42,000 items itself before it sends at full size (6 s in CI; past 30 s on a machine loaded 7 times over).
  it(`a package carrying ${MANY_EVENTS.toLocaleString("en")} validly signed lineage events and 2,000 more checkpoints is checked without holding the target's main thread: a resident agent keeps its cadence`, { timeout: HEAVY_SETUP_TIMEOUT_MS }, async () => {
    const { pkg, b, send, maxGap } = await targetWithResident();
    // Signed with the agent's key (it travels in the package), each after a checkpoint of another history.
    const key = decodeIdentityFile(pkg.identity);
    const events = Array.from({ length: MANY_EVENTS }, (_, i) => {
      const fields = { afterHash: sha256(new TextEncoder().encode(`elsewhere ${i}`)), tick: BigInt(i), oldBudget: 1n, newBudget: 1n, reason: "top-up" };
      return { kind: "budget_override" as const, ...fields, signature: signBudgetOverride(key, fields) };
    });
    // The chain goes on for 2,000 signed checkpoints (no window ships for them: refused after the lineage).
    const history = [...pkg.history];
    for (let i = 0; i < 2_000; i++) {
      const last = parseCheckpoint(history.at(-1)!);
      history.push(signCheckpoint(encodeCheckpoint({ ...last, tick: last.tick + 1n, prevHash: checkpointHash(history.at(-1)!) }, last.state), key));
    }
    const many = encodePackage({ ...pkg, checkpointHash: hex(checkpointHash(history.at(-1)!)), history, overrides: [...pkg.overrides, ...events] });
    const bound = holdBoundFor(many);
    expect(await send(many, { resultTimeoutMs: 60_000 })).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE" });
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    await residentTicksOn(b);
    // What is left in one piece is decoding the package (its 13 MB header of 40,000 events); checking
    // 40,000 events held the thread ~3.7 s.
    expect(maxGap()).toBeLessThan(bound);
  });
});

describe("many sealed segments", () => {
  it(`a package of ${MANY_SEALS.toLocaleString("en")} checkpoints, each with its own signed segment, has its seals checked without holding the target's main thread`, { timeout: HEAVY_SETUP_TIMEOUT_MS }, async () => {
    const { pkg, b, send, maxGap } = await targetWithResident();
    const key = decodeIdentityFile(pkg.identity);
    const { abiVersion, engineVersion } = pkg.segments[0]!;
    const history = [...pkg.history];
    const segments = [...pkg.segments];
    for (let i = 0; i < MANY_SEALS; i++) {
      const last = parseCheckpoint(history.at(-1)!);
      const prevHash = checkpointHash(history.at(-1)!);
      const tick = last.tick + 1n;
      const cp = signCheckpoint(encodeCheckpoint({ ...last, tick, prevHash }, last.state), key);
      history.push(cp);
      // One observation per segment: a segment that records one must carry a seal.
      const seg = { fromTick: tick, toTick: tick, abiVersion, engineVersion, blob: encodeSegment([{ tick, entries: [{ id: HostcallId.clock_now, result: 0, payload: new Uint8Array(8) }] }]), postHashes: new Uint8Array(32) };
      segments.push({ ...seg, signature: signBytes(key, segmentSigningBytes(prevHash, seg)), checkpointHash: checkpointHash(cp) });
    }
    const many = encodePackage({ ...pkg, checkpointHash: hex(checkpointHash(history.at(-1)!)), history, segments });
    const bound = holdBoundFor(many);
    // Refused at the replay of the window before the handoff (its logs are not the agent's).
    const reply = await send(many, { resultTimeoutMs: 60_000 });
    expect(reply.ok).toBe(false);
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    await residentTicksOn(b);
    // What is left in one piece is decoding the package (~0.4 s for 40,000 items here); 20,000
    // seals held the thread ~2.7 s more.
    expect(maxGap()).toBeLessThan(bound);
  });
});

describe("a long history that verifies slowly", () => {
  it("is refused MIGRATION_TIMEOUT once admission's checks pass their share of --migration-timeout, not verified to the end long after the source gave up; nothing is stored", async () => {
    const a = await startTestNode(P2P);
    // Half of 2 s for admission's checks and replays; verifying the history below takes ~4 s. The
    // package (~14 MB) must also arrive within the timeout: with 1 s it once did not, in a suite
    // run beside another on the same two cores (the target reset the stream, no `result`).
    const b = await startTestNode({ ...P2P, "migration-timeout": "2s" });
    await a.node.addAgent({ wasmPath: heartbeat });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    const pkg = decodePackage(await recordPackage(a, "heartbeat"));
    const key = decodeIdentityFile(pkg.identity);
    const last = parseCheckpoint(pkg.history.at(-1)!);
    // 60,000 more checkpoints, each validly signed with the agent's key (which travels in the package).
    const more: Uint8Array[] = [];
    let prev = pkg.history.at(-1)!;
    for (let i = 1; i <= 60_000; i++) {
      const blob = signCheckpoint(encodeCheckpoint({ ...last, tick: last.tick + BigInt(i), prevHash: checkpointHash(prev) }, last.state), key);
      more.push(blob);
      prev = blob;
    }
    const long = encodePackage({ ...pkg, checkpointHash: hex(checkpointHash(prev)), history: [...pkg.history, ...more] });
    const reply = await (await rogue()).send(addr(b), long, { resultTimeoutMs: 60_000 });
    // Refused by admission's share, not by the package's arrival.
    expect(reply).toMatchObject({ ok: false, code: "MIGRATION_TIMEOUT", message: expect.stringContaining("lineage checks passed their share") });
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    expect(b.node.store.migrations()).toHaveLength(0);
  });
});

describe("a long history that does not verify", () => {
  it("is refused at its first bad checkpoint: 50,000 checkpoints with forged signatures cost the target one refusal, not 50,000 verifications and reasons", async () => {
    const { pkg, b, send, maxGap } = await targetWithResident();
    const last = parseCheckpoint(pkg.history.at(-1)!);
    const forged: Uint8Array[] = [];
    let prev = pkg.history.at(-1)!;
    for (let i = 1; i <= 50_000; i++) {
      const blob = encodeCheckpoint({ ...last, tick: last.tick + BigInt(i), prevHash: checkpointHash(prev) }, last.state);
      blob.fill(7, SIGNATURE_OFFSET, SIGNATURE_OFFSET + 64);
      forged.push(blob);
      prev = blob;
    }
    const long = encodePackage({ ...pkg, checkpointHash: hex(checkpointHash(prev)), history: [...pkg.history, ...forged] });
    const sent = Date.now();
    expect(await send(long, { resultTimeoutMs: 60_000 })).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE" });
    expect(Date.now() - sent).toBeLessThan(4000);
    // The refusal names the first bad checkpoint, not every one.
    const refusal = b.logs.events("migration_refused").at(-1) as { msg?: string } | undefined;
    expect(refusal?.msg?.length ?? 0).toBeLessThan(2000);
    expect(refusal?.msg).toContain("signature INVALID");
    await residentTicksOn(b);
    expect(maxGap()).toBeLessThan(HOLD_BOUND_MS);
  });
});

describe("a target that never answers", () => {
  it("each attempt times out before anything is sent (retriable), then the next candidate takes the agent", async () => {
    const hole = await (await rogue()).blackhole();
    const a = await startTestNode({ ...P2P, "migration-timeout": "300ms", "migration-retries": "2" });
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: heartbeat });
    const r = await a.node.migrate("heartbeat", [hole, addr(b)]);
    expect(r).toMatchObject({ outcome: "done", target: addr(b), attempts: 3, fallbacks: 1 });
    expect(a.logs.events("migration_attempt_failed").map((l) => [l.code, l.class])).toEqual([
      ["MIGRATION_TIMEOUT", "retriable"],
      ["MIGRATION_TIMEOUT", "retriable"],
    ]);
  });
});

describe("the migration-status query", () => {
  // Acceptance 34: a forged status query fences nothing.
  it("is answered only when signed with the agent's key: a forged query fences nothing", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: heartbeat });
    const did = a.node.store.agent("heartbeat")!.did;
    const epoch = { epochMajor: "99", epochGeneration: "0" };
    const r = await rogue();
    const unsigned = await r.status(addr(b), { agentId: "heartbeat", did, ...epoch });
    expect(unsigned).toMatchObject({ state: "refused", code: "MIGRATION_LINEAGE" });
    const wrongKey = signStatusQuery(generateKey(), "heartbeat", did, { major: 99n, generation: 0n }, b.node.migration!.peerId);
    const forged = await r.status(addr(b), { agentId: "heartbeat", did, ...epoch, signature: hex(wrongKey) });
    expect(forged).toMatchObject({ state: "refused" });
    expect(b.node.store.fence("heartbeat", did)).toBeUndefined();
    // The real holder's signed query is answered; it offered nothing here, so nothing is fenced
    // (migration-peers.test.ts: only the peer whose offer was taken settles a handoff).
    const real = await a.node.migration!.queryStatus(addr(b), "heartbeat", { major: 0n, generation: 0n });
    expect(real.state).toBe("not_owned");
    expect(b.node.store.fence("heartbeat", did)).toBeUndefined();
  });
});

describe("the window replayed while the signatures are checked", () => {
  // Acceptance 27: a bad signature.
  it("a package whose head signature is forged and whose window replays wrong is refused for the signature, after the early replay has ended; the honest package sent right after is admitted", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: survivor });
    await a.waitFor<TickEvent>("tick", (e) => e.tick >= 5n);
    const honest = await recordPackage(a, "survivor");
    const pkg = decodePackage(honest);
    // The head's signature broken (the package names the broken head, so it is read that far), and
    // the window before it altered so that it replays wrong.
    const forgedHead = Uint8Array.from(pkg.history.at(-1)!);
    forgedHead[SIGNATURE_OFFSET + 7] = forgedHead[SIGNATURE_OFFSET + 7]! ^ 0x01;
    const forgedHash = sha256(forgedHead);
    const window = { ...alteredWindow(pkg), checkpointHash: forgedHash };
    const forged = encodePackage({ ...pkg, checkpointHash: hex(forgedHash), history: [...pkg.history.slice(0, -1), forgedHead], segments: [...pkg.segments.slice(0, -1), window] });
    const replays: string[] = [];
    const replay = b.node.pool.replay.bind(b.node.pool);
    b.node.pool.replay = (agentId, ...rest) => {
      replays.push(agentId);
      return replay(agentId, ...rest);
    };
    const refused = await (await rogue()).send(addr(b), forged);
    // The worker replayed the window before the signatures were checked ...
    expect(replays).toEqual(["survivor~incoming"]);
    // ... and the refusal is still the signature's, sent once that replay was over.
    expect(refused).toMatchObject({ ok: false, code: "MIGRATION_LINEAGE" });
    expect(b.node.pool.has("survivor~incoming")).toBe(false);
    expect(b.node.store.agent("survivor")).toBeUndefined();
    expect(await (await rogue()).send(addr(b), honest)).toMatchObject({ stage: "result", ok: true });
    expect(b.logs.events("migration_received")[0]?.replayed).toBeGreaterThan(0);
  });
});

describe("a window too long to replay, before the signatures are checked", () => {
  it("is refused REPLAY_WINDOW_TOO_LARGE at once: the early replay never lays out its millions of ticks on the main thread, and a resident agent keeps its cadence", async () => {
    const { pkg, b, send, maxGap } = await targetWithResident();
    // A head signed with the agent's key (it travels in the package) two million ticks after the
    // real one, and the one segment between them: empty, which needs no seal.
    const last = parseCheckpoint(pkg.history.at(-1)!);
    const far = last.tick + 2_000_000n;
    const head = signCheckpoint(encodeCheckpoint({ ...last, tick: far, prevHash: checkpointHash(pkg.history.at(-1)!) }, last.state), decodeIdentityFile(pkg.identity));
    const window = { fromTick: last.tick + 1n, toTick: far, abiVersion: pkg.segments[0]!.abiVersion, engineVersion: pkg.segments[0]!.engineVersion, blob: new Uint8Array(0), postHashes: new Uint8Array(0), checkpointHash: checkpointHash(head) };
    const long = encodePackage({ ...pkg, checkpointHash: hex(checkpointHash(head)), history: [...pkg.history, head], segments: [...pkg.segments, window] });
    const sent = Date.now();
    const reply = await send(long);
    expect(reply).toMatchObject({ ok: false, code: "REPLAY_WINDOW_TOO_LARGE" });
    expect(Date.now() - sent).toBeLessThan(1500);
    expect(b.node.pool.has("heartbeat~incoming")).toBe(false);
    expect(b.node.store.agent("heartbeat")).toBeUndefined();
    await residentTicksOn(b);
    expect(maxGap()).toBeLessThan(HOLD_BOUND_MS);
  });
});
