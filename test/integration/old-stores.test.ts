// Data dirs written by real older igord builds (test/fixtures/old-stores, made by
// scripts/old-store-fixtures.sh from this repo's history), opened by this one: an operator who
// upgrades igord reads, audits, exports and moves the agents those builds left, and loses nothing.
// Real SQLite files, real WASM, the igord binary, libp2p on loopback.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { decodeReceipt, encodeReceipt, receiptSigningBytes } from "../../src/budget/receipt.js";
import { peerIdFromPublicKey } from "../../src/identity/did.js";
import { generateKey, signBytes } from "../../src/identity/keys.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { ROOT, startTestNode, stopAllNodes, type TestNode, tempDir } from "../helpers/node.js";
import { igord, killAll } from "../helpers/process.js";

afterEach(async () => {
  await stopAllNodes();
  await killAll();
});

const FIXTURES = join(ROOT, "test", "fixtures", "old-stores");
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0", "tick-interval": "50ms" };
const addr = (t: TestNode): string => t.node.migration!.addresses()[0]!;
const digest = (file: string): string => createHash("sha256").update(readFileSync(file)).digest("hex");

/** A node dir (`<dir>/data/igord.db`) holding the fixture's database as the old build left it. */
function oldStore(name: string): { dir: string; dataDir: string; db: string } {
  const dir = tempDir();
  const dataDir = join(dir, "data");
  mkdirSync(dataDir, { mode: 0o700 });
  const db = join(dataDir, DB_FILE);
  writeFileSync(db, gunzipSync(readFileSync(join(FIXTURES, `${name}.db.gz`))), { mode: 0o600 });
  return { dir, dataDir, db };
}

/** An export's `<agent>.receipts` file: `[u32 count]`, then `[u32 len][receipt]` each. */
function readReceiptsFile(file: string): Uint8Array[] {
  const bytes = readFileSync(file);
  const out: Uint8Array[] = [];
  for (let o = 4, i = 0; i < bytes.readUInt32LE(0); i++) {
    const len = bytes.readUInt32LE(o);
    out.push(new Uint8Array(bytes.subarray(o + 4, o + 4 + len)));
    o += 4 + len;
  }
  return out;
}

function writeReceiptsFile(file: string, receipts: readonly Uint8Array[]): void {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(receipts.length, 0);
  writeFileSync(file, Buffer.concat([head, ...receipts.flatMap((r) => [Buffer.from(Uint32Array.of(r.length).buffer), Buffer.from(r)])]));
}

/** A node started on an old data dir: the schema upgrades and its stored agents resume. */
async function startOn(dir: string, flags: Record<string, string> = {}): Promise<TestNode> {
  return startTestNode({ "tick-interval": "50ms", ...flags }, { dir, resumeStored: true });
}

describe("a data dir of the first day's igord (store schema 4: event logs not signed yet)", () => {
  it("igord verify and export, read as it is, say the store is too old to read and to start igord on it once; the file is untouched; after that start the history audits VALID and exports", { timeout: 60_000 }, async () => {
    const old = oldStore("schema4-heartbeat");
    const before = digest(old.db);
    for (const args of [
      ["verify", "--agent", "heartbeat", "--data-dir", old.dataDir],
      ["verify", "--agent", "heartbeat", "--replay", "--data-dir", old.dataDir],
      ["export", "heartbeat", "--out", join(tempDir(), "exported"), "--data-dir", old.dataDir],
    ]) {
      const r = igord(args);
      // It said "no such table: history_bases (SQLITE_ERROR) [STORE_ERROR]".
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stderr).toMatch(/schema version 4.*start igord once on this data dir to upgrade it.*\[STORE_SCHEMA\]/);
    }
    expect(digest(old.db)).toBe(before);
    // inspect reads the head alone, as it is.
    expect(igord(["inspect", "--agent", "heartbeat", "--data-dir", old.dataDir]).stdout).toMatch(/signature:\s+VALID/);
    // A start upgrades the file and signs the old event logs; the agent goes on from its tick.
    const stored = SqliteStore.open(old.db, { readonly: true });
    const tick = stored.head("heartbeat")!.tick;
    stored.close();
    const t = await startOn(old.dir);
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick === tick + 2n, 20_000);
    await t.stop();
    const audit = igord(["verify", "--agent", "heartbeat", "--replay", "--data-dir", old.dataDir]);
    expect(audit.status, audit.stdout + audit.stderr).toBe(0);
    expect(audit.stdout).toMatch(/replay: VALID/);
    expect(igord(["export", "heartbeat", "--out", join(tempDir(), "exported"), "--data-dir", old.dataDir]).status).toBe(0);
  });
});

describe("a data dir of igord from 2026-12-01 (schema 16) holding a receipt with a negative cost", () => {
  // That igord billed a lost payment twice when it stopped between debiting it and the next tick:
  // the receipt after the stop's gives it back (cost -99857 µ¢ against a 100000 µ¢ lost payment).
  const AGENT = "x402buyer";

  it("the upgraded node's agent migrates to another node of this version, and its export imports; a negative cost no lost payment accounts for is still refused", { timeout: 60_000 }, async () => {
    const old = oldStore("schema16-negative-receipt");
    const db = SqliteStore.open(old.db, { readonly: true });
    const receipts = db.receipts(AGENT);
    db.close();
    expect(receipts.some((r) => r.cost < 0n)).toBe(true);
    // Its export, read as it is, verifies; import took it RECEIPT_INVALID ("has a negative cost").
    const exported = join(tempDir(), "exported");
    expect(igord(["export", AGENT, "--out", exported, "--data-dir", old.dataDir]).status).toBe(0);
    expect(igord(["verify", exported]).stdout).toMatch(/^VALID/);
    const imported = igord(["import", exported, "--data-dir", join(tempDir(), "data")]);
    expect(imported.status, imported.stderr).toBe(0);
    // The same receipt giving back more than the lost payment debited before it is refused, as any negative cost is.
    const file = join(exported, `${AGENT}.receipts`);
    const blobs = readReceiptsFile(file);
    const i = blobs.findIndex((b) => decodeReceipt(b).cost < 0n);
    const key = generateKey();
    const fields = { ...decodeReceipt(blobs[i]!), cost: -100_001n, nodeId: peerIdFromPublicKey(key.publicKey) };
    writeReceiptsFile(file, blobs.map((b, j) => (j === i ? encodeReceipt({ ...fields, signature: signBytes(key, receiptSigningBytes(fields)) }) : b)));
    const forged = igord(["import", exported, "--data-dir", join(tempDir(), "data")]);
    expect(forged.status).toBe(1);
    expect(forged.stderr).toMatch(/negative cost \(-100001 µ¢\), more than the 100000 µ¢ of lost payments debited before it \[RECEIPT_INVALID\]/);
    // The node upgraded on it moves the agent on: it was refused MIGRATION_LINEAGE and stuck there for good.
    const a = await startOn(old.dir, P2P);
    const b = await startTestNode(P2P);
    const r = await a.node.migrate(AGENT, [addr(b)]);
    expect(r.error).toBeNull();
    expect(r.outcome).toBe("done");
    const tick = b.node.store.head(AGENT)!.tick;
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === AGENT && e.tick === tick + 2n, 20_000);
    expect(b.node.store.receipts(AGENT).map((x) => x.cost)).toEqual(expect.arrayContaining(receipts.map((x) => x.cost)));
  });
});
