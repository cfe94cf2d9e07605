// Node execution receipts that arrive with an agent (a peer's migration package, an imported export)
// are another node's word for what the agent's ticks cost. The receiving node continues its own
// receipts from the newest one (its budget after, its last tick): a receipt claiming more budget
// than the checkpoint at its last tick held made the receiving node sign, for ticks it never ran, a
// cost the agent never spent; one ending out of order made it bill ticks already billed; one with a
// negative cost gave money back in the agent's accounts. Each is refused before anything is stored.
// Real nodes, real SQLite files, real WASM, libp2p over loopback, the igord binary for export/import.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { decodeReceipt, encodeReceipt, type Receipt, receiptSigningBytes } from "../../src/budget/receipt.js";
import { parseCheckpoint } from "../../src/checkpoint/codec.js";
import { hex } from "../../src/hash/bytes.js";
import { peerIdFromPublicKey } from "../../src/identity/did.js";
import { generateKey, signBytes } from "../../src/identity/keys.js";
import { buildOutgoingPackage } from "../../src/migration/outgoing.js";
import { decodePackage, encodePackage, type MigrationPackage } from "../../src/migration/package.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { igord, killAll } from "../helpers/process.js";
import { RoguePeer } from "../helpers/rogue.js";

const rogues: RoguePeer[] = [];
afterEach(async () => {
  await Promise.all(rogues.splice(0).map((r) => r.stop()));
  await stopAllNodes();
  await killAll();
});

const heartbeat = join(EXAMPLES, "heartbeat.wasm");
// Every checkpoint carries a receipt; the rogue peer's packages must reach admission.
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "30ms", "receipt-interval": "0", "migration-timeout": "5s", "peer-refresh": "0" };
const addr = (t: TestNode): string => t.node.migration!.addresses()[0]!;

async function rogue(): Promise<RoguePeer> {
  const r = await RoguePeer.start();
  rogues.push(r);
  return r;
}

/** `r` with `change` applied, signed by a node key made up on the spot (any peer id is a key anyone can mint). */
function resigned(r: Receipt, change: Partial<Omit<Receipt, "signature" | "nodeId">>): Uint8Array {
  const key = generateKey();
  const fields = { ...r, ...change, nodeId: peerIdFromPublicKey(key.publicKey) };
  return encodeReceipt({ ...fields, signature: signBytes(key, receiptSigningBytes(fields)) });
}

/** A node that ran heartbeat past a few receipted checkpoints, its package for a new node, and a target. */
async function sourceAndTarget(): Promise<{ b: TestNode; pkg: MigrationPackage; headBudget: bigint }> {
  const a = await startTestNode(P2P);
  const b = await startTestNode(P2P);
  await a.node.addAgent({ wasmPath: heartbeat });
  await a.waitFor<TickEvent>("tick", (e) => e.tick >= 12n);
  await a.node.scheduler.pause("heartbeat", "recorded");
  const lease = a.node.store.lease("heartbeat")!;
  const pkg = decodePackage(buildOutgoingPackage(a.node.store, { agentId: "heartbeat", epoch: lease.epoch, checkpointHash: hex(a.node.store.head("heartbeat")!.hash), haveWasm: false, baseHash: null }));
  expect(pkg.receipts.length).toBeGreaterThanOrEqual(2);
  const head = parseCheckpoint(pkg.history.at(-1)!);
  // The pause's receipt ends at the head, at its budget.
  expect(decodeReceipt(pkg.receipts.at(-1)!)).toMatchObject({ tickEnd: head.tick, budgetAfter: head.budget });
  return { b, pkg, headBudget: head.budget };
}

/** Sends `pkg` with its receipts replaced: refused MIGRATION_LINEAGE naming `said`, nothing stored; the honest package is then taken. */
async function expectRefused(b: TestNode, pkg: MigrationPackage, receipts: Uint8Array[], said: RegExp): Promise<void> {
  const reply = await (await rogue()).send(addr(b), encodePackage({ ...pkg, receipts }));
  expect(reply).toMatchObject({ stage: "result", ok: false, code: "MIGRATION_LINEAGE" });
  expect(reply.message).toMatch(said);
  expect(b.node.store.agent("heartbeat")).toBeUndefined();
  expect(b.node.store.receiptCount("heartbeat")).toBe(0);
  expect(await (await rogue()).send(addr(b), encodePackage(pkg))).toMatchObject({ stage: "result", ok: true });
  expect(b.node.store.receiptCount("heartbeat")).toBe(pkg.receipts.length);
}

describe("receipts a peer's package brings", () => {
  it("a newest receipt claiming more budget than its checkpoint held is refused: the target would bill the difference for ticks it never ran", async () => {
    const { b, pkg, headBudget } = await sourceAndTarget();
    const last = decodeReceipt(pkg.receipts.at(-1)!);
    // 5 units more than the head held: the target's first receipt would have cost them.
    const inflated = resigned(last, { budgetAfter: headBudget + 5_000_000n });
    await expectRefused(b, pkg, [...pkg.receipts.slice(0, -1), inflated], /budget/);
  });

  it("a receipt with a negative cost is refused", async () => {
    const { b, pkg } = await sourceAndTarget();
    const first = decodeReceipt(pkg.receipts[0]!);
    await expectRefused(b, pkg, [resigned(first, { cost: -1_000n }), ...pkg.receipts.slice(1)], /negative/);
  });

  it("receipts out of tick order are refused: the target would continue from the older one and bill its ticks again", async () => {
    const { b, pkg } = await sourceAndTarget();
    // Honest receipts, each validly signed, the oldest moved last.
    await expectRefused(b, pkg, [...pkg.receipts.slice(1), pkg.receipts[0]!], /order|overlap/);
  });

  it("a newest receipt ending at a tick no checkpoint of the history is at is refused (its budget cannot be checked)", async () => {
    const { b, pkg, headBudget } = await sourceAndTarget();
    const first = decodeReceipt(pkg.receipts[0]!);
    const head = parseCheckpoint(pkg.history.at(-1)!).tick;
    const checkpointed = new Set(pkg.history.map((h) => parseCheckpoint(h).tick));
    let between = head - 1n;
    while (between > first.tickStart && checkpointed.has(between)) between--;
    expect(checkpointed.has(between)).toBe(false);
    // One receipt for all the ticks, ending where no checkpoint says what the budget was.
    await expectRefused(b, pkg, [resigned(first, { tickEnd: between, budgetAfter: headBudget + 5_000_000n })], /checkpoint/);
  });
});

describe("receipts an export brings to igord import", () => {
  /** heartbeat run on a node, stopped, exported with the binary: the export folder and its receipts file. */
  async function exported(): Promise<{ t: TestNode; ex: string; file: string; receipts: Uint8Array[]; headBudget: bigint }> {
    const t = await startTestNode({ "tick-interval": "10ms", "checkpoint-interval": "30ms", "receipt-interval": "0" });
    await t.node.addAgent({ wasmPath: heartbeat });
    await t.waitFor<TickEvent>("tick", (e) => e.tick >= 12n);
    await t.stop();
    const ex = join(t.dir, "ex");
    expect(igord(["export", "heartbeat", "--out", ex, "--data-dir", t.config.dataDir]).status).toBe(0);
    const file = join(ex, "heartbeat.receipts");
    const bytes = readFileSync(file);
    const receipts: Uint8Array[] = [];
    for (let o = 4, i = 0; i < bytes.readUInt32LE(0); i++) {
      const len = bytes.readUInt32LE(o);
      receipts.push(new Uint8Array(bytes.subarray(o + 4, o + 4 + len)));
      o += 4 + len;
    }
    expect(receipts.length).toBeGreaterThanOrEqual(2);
    const headBudget = parseCheckpoint(readFileSync(join(ex, "heartbeat.checkpoint"))).budget;
    return { t, ex, file, receipts, headBudget };
  }

  function writeReceipts(file: string, receipts: readonly Uint8Array[]): void {
    const parts = [Buffer.alloc(4)];
    parts[0]!.writeUInt32LE(receipts.length, 0);
    for (const r of receipts) {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(r.length, 0);
      parts.push(len, Buffer.from(r));
    }
    writeFileSync(file, Buffer.concat(parts));
  }

  function expectImportRefused(t: TestNode, ex: string, said: RegExp): void {
    const C = join(t.dir, "C");
    const imp = igord(["import", ex, "--data-dir", C, "--control", "off"]);
    expect(imp.stderr).toContain("RECEIPT_INVALID");
    expect(imp.stderr).toMatch(said);
    expect(imp.status).toBe(1);
    expect(existsSync(join(C, DB_FILE))).toBe(false);
  }

  it("a receipt with a negative cost, or a newest one claiming more budget than its checkpoint held, is refused RECEIPT_INVALID with nothing stored", async () => {
    const { t, ex, file, receipts, headBudget } = await exported();
    const first = decodeReceipt(receipts[0]!);
    writeReceipts(file, [resigned(first, { cost: -1_000n }), ...receipts.slice(1)]);
    expectImportRefused(t, ex, /negative/);
    const last = decodeReceipt(receipts.at(-1)!);
    writeReceipts(file, [...receipts.slice(0, -1), resigned(last, { budgetAfter: headBudget + 5_000_000n })]);
    expectImportRefused(t, ex, /budget/);
    // The honest file imports, every receipt stored once.
    writeReceipts(file, receipts);
    const C = join(t.dir, "C");
    expect(igord(["import", ex, "--data-dir", C, "--control", "off"]).status).toBe(0);
    const store = SqliteStore.open(join(C, DB_FILE), { readonly: true });
    try {
      expect(store.receiptCount("heartbeat")).toBe(receipts.length);
    } finally {
      store.close();
    }
  });
});
