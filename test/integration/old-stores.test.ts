// Data dirs written by real older igord builds (test/fixtures/old-stores, made by
// scripts/old-store-fixtures.sh from this repo's history), opened by this one: an operator who
// upgrades igord reads, audits, exports and moves the agents those builds left, and loses nothing.
// Real SQLite files, real WASM, the igord binary, libp2p on loopback.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { ROOT, startTestNode, stopAllNodes, type TestNode, tempDir } from "../helpers/node.js";
import { igord, killAll } from "../helpers/process.js";

afterEach(async () => {
  await stopAllNodes();
  await killAll();
});

const FIXTURES = join(ROOT, "test", "fixtures", "old-stores");
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
