// What the checkpoint-commit and commit-thread tests share: an agent's lease, a tiny module, and
// fresh SQLite files removed after each test.
import { rmSync } from "node:fs";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { afterEach } from "vitest";
import type { Lease } from "../../src/authority/lease.js";
import { MIGRATIONS } from "../../src/store/schema.js";
import { DB_FILE } from "../../src/store/sqlite-store.js";
import { tempDir } from "./node.js";

export const lease: Lease = { state: "ACTIVE_OWNER", epoch: { major: 0n, generation: 0n }, expiresAtMs: null, handoff: null };
export const WASM = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
export const WASM_HASH = "93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A database path in a fresh directory, removed after the test. */
export function freshDbPath(): string {
  const dir = tempDir();
  dirs.push(dir);
  return join(dir, DB_FILE);
}

/**
 * Puts a database's event-log segments back as schema 9 stored them (a table of their own, ids in
 * insertion order, indexed by (agent_id, to_tick); no floors), with the exact SQL migrations 2, 6
 * and 8 left in sqlite_master, and schema_version at 9. Every column but the id is kept.
 */
export function segmentsAsSchema9(db: Database.Database): void {
  db.exec(`
    ALTER TABLE event_log_segments RENAME TO event_log_segments_v10;
    DROP INDEX event_log_segments_unlinked;
    DROP TABLE event_log_floors;
  `);
  // Migration 2's table and index, then the columns migrations 6 and 8 added, as they added them.
  db.exec(MIGRATIONS[1] as string);
  db.exec(`
    ALTER TABLE event_log_segments ADD COLUMN signature BLOB;
    ALTER TABLE event_log_segments ADD COLUMN recorded_unsigned INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE event_log_segments ADD COLUMN leaf BLOB;
    ALTER TABLE event_log_segments ADD COLUMN run_proof BLOB;
    INSERT INTO event_log_segments (id, agent_id, from_tick, to_tick, checkpoint_hash, abi_version, engine_version, blob, post_hashes, signature, recorded_unsigned, leaf, run_proof)
      SELECT ROW_NUMBER() OVER (ORDER BY to_tick, abs(id)), agent_id, from_tick, to_tick, checkpoint_hash, abi_version, engine_version, blob, post_hashes, signature, recorded_unsigned, leaf, run_proof FROM event_log_segments_v10;
    DROP TABLE event_log_segments_v10;
    DELETE FROM schema_version WHERE version > 9;
  `);
}
