// What the checkpoint-commit and commit-thread tests share: an agent's lease, a tiny module, agents
// with a genesis checkpoint and commits of their next ones, and fresh SQLite files removed after
// each test.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite from "better-sqlite3";
import type Database from "better-sqlite3";
import { onTestFinished } from "vitest";
import type { Lease } from "../../src/authority/lease.js";
import { didFromPublicKey } from "../../src/identity/did.js";
import { generateKey } from "../../src/identity/keys.js";
import { Checkpointer } from "../../src/scheduler/checkpointer.js";
import { MIGRATIONS } from "../../src/store/schema.js";
import { DB_FILE, type SqliteStore } from "../../src/store/sqlite-store.js";
import type { CheckpointCommit } from "../../src/store/types.js";
import { tempDir } from "./node.js";

export const lease: Lease = { state: "ACTIVE_OWNER", epoch: { major: 0n, generation: 0n }, expiresAtMs: null, handoff: null };
export const WASM = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
export const WASM_HASH = "93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476";

/**
 * A database path in a fresh directory, removed when the test ends (onTestFinished: this module is
 * loaded once per worker, isolate: false, so an afterEach it registered would serve one file only).
 */
export function freshDbPath(): string {
  const dir = tempDir();
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, DB_FILE);
}

/** Agents with `lease` and a genesis checkpoint each, through the checkpointer. */
export function addLeasedAgents(store: SqliteStore, ids: readonly string[]): void {
  const cp = new Checkpointer(store, store.nodeKey());
  for (const agentId of ids) {
    const identity = generateKey();
    const s = { agentId, tick: 0n, budget: 1000n, price: 1n, state: new Uint8Array(16), wasmHash: WASM_HASH, identity, lease };
    cp.genesis(s, { agentId, did: didFromPublicKey(identity.publicKey), wasmHash: WASM_HASH, wasmBytes: WASM, manifest: "{}", identity, lease });
  }
}

/**
 * A script for a child process (node --input-type=module -e): a store at `path` with its commit
 * thread, a Checkpointer `cp`, and `subject(agentId)`, an agent with a genesis checkpoint; then `body`.
 */
export function checkpointingChildScript(path: string, sync: "full" | "normal", body: string): string {
  const dist = new URL("../../dist/", import.meta.url).href;
  return `
    import { Checkpointer } from "${dist}scheduler/checkpointer.js";
    import { SqliteStore } from "${dist}store/sqlite-store.js";
    import { generateKey } from "${dist}identity/keys.js";
    import { didFromPublicKey } from "${dist}identity/did.js";
    const lease = { state: "ACTIVE_OWNER", epoch: { major: 0n, generation: 0n }, expiresAtMs: null, handoff: null };
    const store = SqliteStore.open(${JSON.stringify(path)}, { sync: "${sync}", commitThread: true });
    const cp = new Checkpointer(store, store.nodeKey());
    const subject = (agentId) => {
      const identity = generateKey();
      const s = { agentId, tick: 0n, budget: 1000000n, price: 1n, state: new Uint8Array(64), wasmHash: "${WASM_HASH}", identity, lease };
      cp.genesis(s, { agentId, did: didFromPublicKey(identity.publicKey), wasmHash: s.wasmHash, wasmBytes: new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]), manifest: "{}", identity, lease });
      return s;
    };
    ${body}
  `;
}

/** An agent's next checkpoint (random hash and bytes) under `lease`, with the segment of its last four ticks. */
export function leasedCommit(agentId: string, tick: bigint, prevHash: Uint8Array, status: CheckpointCommit["status"] = "active", statusReason: string | null = null): CheckpointCommit {
  return {
    agentId, tick, budget: 1000n - tick, hash: randomBytes(32), prevHash, blob: randomBytes(300), reason: "periodic", receipt: null, status, statusReason,
    lease: { state: lease.state, epoch: lease.epoch },
    events: { fromTick: tick - 4n, toTick: tick, abiVersion: 1, engineVersion: 1, blob: randomBytes(50), postHashes: randomBytes(32), signature: randomBytes(64) },
    settledPayments: [],
  };
}

/** A checkpoint's own columns (schema 11 adds its segment's to its row). */
export const CHECKPOINT_OWN_COLUMNS = "id, agent_id, seq, tick, hash, prev_hash, budget, reason, blob, created_at";

/** Whether this file stores linked segments in their checkpoints' rows (schema 11 on). */
export function segmentsInRows(db: Database.Database): boolean {
  return (db.prepare("SELECT COUNT(*) AS n FROM pragma_table_info('checkpoints') WHERE name = 'seg_blob'").get() as { n: number }).n > 0;
}

/** Schema 11's linked segments, in their checkpoints' rows, with event_log_segments' column names. */
const SEGMENT_IN_ROW =
  "c.id, c.agent_id, c.seg_from_tick AS from_tick, c.seg_to_tick AS to_tick, c.hash AS checkpoint_hash, c.seg_abi_version AS abi_version, c.seg_engine_version AS engine_version, c.seg_blob AS blob, c.seg_post_hashes AS post_hashes, c.seg_signature AS signature, c.seg_recorded_unsigned AS recorded_unsigned, c.seg_leaf AS leaf, c.seg_run_proof AS run_proof";
const SEGMENT_COLUMNS = ["from_tick", "to_tick", "abi_version", "engine_version", "blob", "post_hashes", "signature", "recorded_unsigned", "leaf", "run_proof"];

/**
 * A temporary view `segments` on this connection: every stored segment (those in their
 * checkpoints' rows and the unlinked ones), with event_log_segments' columns, and updatable (a test
 * that alters a stored segment updates the view). Reads and alterations that do not depend on where
 * the schema keeps a segment.
 */
export function segmentsView(db: Database.Database): void {
  const set = (prefix: string) => SEGMENT_COLUMNS.map((c) => `${prefix}${c} = NEW.${c}`).join(", ");
  db.exec(`
    CREATE TEMP VIEW segments AS
      SELECT ${SEGMENT_IN_ROW} FROM main.checkpoints c WHERE c.seg_blob IS NOT NULL
      UNION ALL SELECT id, agent_id, from_tick, to_tick, checkpoint_hash, abi_version, engine_version, blob, post_hashes, signature, recorded_unsigned, leaf, run_proof FROM main.event_log_segments;
    CREATE TEMP TRIGGER segments_update INSTEAD OF UPDATE ON segments BEGIN
      UPDATE checkpoints SET ${set("seg_")} WHERE OLD.id > 0 AND id = OLD.id;
      UPDATE event_log_segments SET ${set("")} WHERE OLD.id < 0 AND id = OLD.id;
    END;
  `);
}

/** A connection to the file with the `segments` view (segmentsView). */
export function segmentsDb(path: string, opts: Database.Options = {}): Database.Database {
  const db = new BetterSqlite(path, opts);
  segmentsView(db);
  return db;
}

/** Takes a database back to schema 12: no outbox_floors (migration 13). */
export function asSchema12(db: Database.Database): void {
  asSchema13(db);
  db.exec("DROP TABLE IF EXISTS outbox_floors; DELETE FROM schema_version WHERE version > 12;");
}

/**
 * Rebuilds a database's checkpoints table exactly as migrations 1-`version` left it, every row kept,
 * and sets schema_version to `version` (the file must be at `version` + 1 in every other way).
 */
function checkpointsTableAsOf(db: Database.Database, version: number): void {
  const reference = new BetterSqlite(":memory:");
  const sqlOf = (name: string): string => reference.prepare("SELECT sql FROM sqlite_master WHERE name = ?").pluck().get(name) as string;
  let table: string;
  let index: string;
  try {
    reference.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
    for (const m of MIGRATIONS.slice(0, version)) reference.exec(m);
    table = sqlOf("checkpoints");
    index = sqlOf("checkpoints_segment_recorded_unsigned");
  } finally {
    reference.close();
  }
  const columns = (db.prepare("SELECT name FROM pragma_table_info('checkpoints')").pluck().all() as string[]).join(", ");
  db.exec(`
    ALTER TABLE checkpoints RENAME TO checkpoints_newer;
    DROP INDEX checkpoints_segment_recorded_unsigned;
    ${table};
    INSERT INTO checkpoints (${columns}) SELECT ${columns} FROM checkpoints_newer;
    DROP TABLE checkpoints_newer;
    ${index};
    DELETE FROM schema_version WHERE version > ${version};
  `);
}

const schemaOfFile = (db: Database.Database): number => (db.prepare("SELECT MAX(version) AS v FROM schema_version").get() as { v: number }).v;

/** Takes a database back to schema 16: no tick_at column on its checkpoints (migration 17). */
export function asSchema16(db: Database.Database): void {
  if (schemaOfFile(db) < 17) return;
  db.exec("ALTER TABLE checkpoints DROP COLUMN tick_at; DELETE FROM schema_version WHERE version > 16;");
}

/**
 * Takes a database back to schema 15: no checkpoint_keys tables nor their triggers (migration 16),
 * its checkpoints table rebuilt with its UNIQUE (agent_id, seq) constraint, every row kept.
 */
export function asSchema15(db: Database.Database): void {
  asSchema16(db);
  if (schemaOfFile(db) < 16) return;
  db.exec(`
    DROP TRIGGER checkpoint_keys_insert;
    DROP TRIGGER checkpoint_keys_move;
    DROP TRIGGER checkpoint_keys_delete;
    DROP TRIGGER checkpoint_keys_fixed;
    DROP TABLE checkpoint_keys;
    DROP TABLE checkpoint_keys_recent;
  `);
  checkpointsTableAsOf(db, 15);
}

/**
 * Takes a database back to schema 14: its checkpoints table rebuilt exactly as migrations 1-14 left
 * it (the segment's columns after the state, migration 15 reorders them), every row kept.
 */
export function asSchema14(db: Database.Database): void {
  asSchema15(db);
  if (schemaOfFile(db) < 15) return;
  checkpointsTableAsOf(db, 14);
}

/** Takes a database back to schema 13: no pending receptions (migration 14), nor what came after. */
export function asSchema13(db: Database.Database): void {
  asSchema14(db);
  db.exec("DROP TABLE IF EXISTS pending_receptions; DELETE FROM schema_version WHERE version > 13;");
}

/** Takes a database back to schema 11: no head_changes count (migration 12), nor what came after. */
export function asSchema11(db: Database.Database): void {
  asSchema12(db);
  db.exec("DROP TABLE IF EXISTS head_changes; DELETE FROM schema_version WHERE version > 11;");
}

/**
 * Puts a database's event-log segments back as schema 10 stored them: each linked one in
 * event_log_segments under its checkpoint's row id, not in the row (the seg_* columns dropped),
 * and schema_version at 10. A file already of schema 10 or older is left as it is.
 */
export function segmentsAsSchema10(db: Database.Database): void {
  asSchema11(db);
  if (!segmentsInRows(db)) return;
  db.exec(`
    INSERT INTO event_log_segments (id, agent_id, ${SEGMENT_COLUMNS.join(", ")}, checkpoint_hash)
      SELECT c.id, c.agent_id, ${SEGMENT_COLUMNS.map((col) => `c.seg_${col}`).join(", ")}, c.hash FROM checkpoints c WHERE c.seg_blob IS NOT NULL;
    DROP INDEX checkpoints_segment_recorded_unsigned;
    ${SEGMENT_COLUMNS.map((col) => `ALTER TABLE checkpoints DROP COLUMN seg_${col};`).join("\n")}
    DELETE FROM schema_version WHERE version > 10;
  `);
}

/**
 * Puts a database's event-log segments back as schema 9 stored them (a table of their own, ids in
 * insertion order, indexed by (agent_id, to_tick); no floors), with the exact SQL migrations 2, 6
 * and 8 left in sqlite_master, and schema_version at 9. Every column but the id is kept.
 */
export function segmentsAsSchema9(db: Database.Database): void {
  segmentsAsSchema10(db);
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
