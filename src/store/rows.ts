// From SQLite rows to the store's types, and the store's errors: pure functions shared by every
// layer of the store, so each layer file holds only its queries.
import { diskFullError, ErrorCode, IgordError } from "../errors.js";
import type { AgentRow, AgentStatus, CheckpointRow, MigrationDirection, MigrationRow, MigrationState, StoredSegment } from "./types.js";

/** A BLOB column as a Uint8Array of its own: a copy, not a view over the Buffer better-sqlite3 returned. */
export const u8 = (b: Buffer | Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length).slice();

export function storeError(message: string, cause?: unknown): IgordError {
  return new IgordError(ErrorCode.StoreError, message, cause === undefined ? {} : { cause });
}

/** A failed write: DISK_FULL when SQLite or the OS said there is no room, else STORE_ERROR; both begin with `what`. */
export function writeError(what: string, e: unknown): IgordError {
  return diskFullError(e, what) ?? storeError(`${what}: ${(e as Error).message}`, e);
}

/** SQLite's own word that the file is damaged (a page, a row): STORE_CORRUPT naming `what`; else null. */
export function corruptionError(e: unknown, what: string): IgordError | null {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== "string" || !(code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB")) return null;
  return new IgordError(ErrorCode.StoreCorrupt, `${what}: ${(e as Error).message} (${code})`, { cause: e });
}

/**
 * What SQLite said while opening or reading the database at `path`, by its code: STORE_CORRUPT (with
 * a restore from a backup, as the writers' integrity check says it), DISK_FULL, or STORE_ERROR naming
 * the file and the code. Anything else (an IgordError, a file's error) is returned as it is.
 */
export function databaseError(e: unknown, path: string): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  if (e instanceof IgordError || typeof code !== "string" || !code.startsWith("SQLITE_")) return e;
  return corruptionError(e, `${path} is corrupt; restore it from a backup`) ?? diskFullError(e, path) ?? storeError(`${path}: ${(e as Error).message} (${code})`, e);
}

/** The column holding the time each migration state was first reached. */
export const STATE_COLUMN: Record<MigrationState, string> = {
  requested: "requested_at",
  transferring: "transferring_at",
  awaiting_confirmation: "awaiting_at",
  done: "done_at",
  failed: "failed_at",
  recovery: "recovery_at",
};

export function rowToAgent(r: Record<string, unknown>): AgentRow {
  return {
    agentId: r.agent_id as string,
    did: r.did as string,
    wasmHash: r.wasm_hash as string,
    manifest: r.manifest as string,
    status: r.status as AgentStatus,
    reason: (r.reason as string | null) ?? null,
  };
}

export function rowToMigration(r: Record<string, unknown>): MigrationRow {
  const at: Partial<Record<MigrationState, number>> = {};
  for (const [state, col] of Object.entries(STATE_COLUMN)) if (r[col] !== null && r[col] !== undefined) at[state as MigrationState] = Number(r[col]);
  return {
    id: Number(r.id),
    agentId: r.agent_id as string,
    direction: r.direction as MigrationDirection,
    peer: (r.peer as string | null) ?? null,
    state: r.state as MigrationState,
    checkpointHash: (r.checkpoint_hash as string | null) ?? null,
    epoch: r.epoch_major === null ? null : { major: r.epoch_major as bigint, generation: r.epoch_generation as bigint },
    attempts: Number(r.attempts),
    fallbacks: Number(r.fallbacks),
    bytes: Number(r.bytes),
    error: r.error_code ? { code: r.error_code as string, message: (r.error_message as string | null) ?? "" } : null,
    at,
    updatedAt: Number(r.updated_at),
  };
}

export function rowToSegment(r: Record<string, unknown>): StoredSegment {
  return {
    fromTick: r.from_tick as bigint,
    toTick: r.to_tick as bigint,
    checkpointHash: u8(r.checkpoint_hash as Buffer),
    abiVersion: Number(r.abi_version),
    engineVersion: Number(r.engine_version),
    blob: u8(r.blob as Buffer),
    postHashes: u8(r.post_hashes as Buffer),
    ...(r.signature ? { signature: u8(r.signature as Buffer) } : {}),
    ...(r.run_proof ? { runProof: u8(r.run_proof as Buffer) } : {}),
    ...(r.leaf ? { leaf: u8(r.leaf as Buffer) } : {}),
  };
}

export function rowToCheckpoint(r: Record<string, unknown>): CheckpointRow {
  return {
    agentId: r.agent_id as string,
    seq: r.seq as bigint,
    tick: r.tick as bigint,
    hash: u8(r.hash as Buffer),
    prevHash: u8(r.prev_hash as Buffer),
    budget: r.budget as bigint,
    reason: r.reason as string,
    blob: u8(r.blob as Buffer),
    createdAt: Number(r.created_at),
  };
}
