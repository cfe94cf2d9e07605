// The CLI's ways into a data dir's database, beside a running daemon or without one: read-only in one
// snapshot (inspect, verify, export, lineage), for writing without the data-dir lock (import,
// resume's staging), or only when the database exists (recover). A mistyped --data-dir is said so.
import { statSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, IgordError } from "../errors.js";
import { dataDirAccessError, prepareDataDir } from "../store/data-dir.js";
import { databaseError, DB_FILE, SqliteStore } from "../store/sqlite-store.js";

/** The data dir's database file, refused when there is none: a mistyped --data-dir is said so, never created. */
function existingDatabase(dataDir: string): string {
  const path = join(dataDir, DB_FILE);
  try {
    statSync(path);
  } catch (e) {
    // A database this user cannot reach is there all the same: the data dir is another user's.
    throw dataDirAccessError(dataDir, e) ?? new IgordError(ErrorCode.StoreError, `no igord database at ${path} (check --data-dir, or IGORD_DATA_DIR without it)`);
  }
  return path;
}

export function openStoreReadonly(dataDir: string): SqliteStore {
  return SqliteStore.open(existingDatabase(dataDir), { readonly: true });
}

/**
 * Runs `read` over one snapshot of the node's database, opened read-only: a command that reads
 * several tables beside a running daemon (export, verify) sees one moment of them, never a mix. What
 * SQLite says on the way is named as the daemon names it (a damaged file: STORE_CORRUPT, restore it).
 */
export function readStore<T>(dataDir: string, read: (store: SqliteStore) => T): T {
  const store = openStoreReadonly(dataDir);
  try {
    return store.snapshot(() => read(store));
  } catch (e) {
    throw databaseError(e, store.path);
  } finally {
    store.close();
  }
}

/**
 * Opens the database for a command that writes beside a daemon (import, resume's staging): no
 * data-dir lock. A new data dir is made: importing an agent is a way to start a node.
 */
export function openStore(dataDir: string): SqliteStore {
  prepareDataDir(dataDir);
  return SqliteStore.open(join(dataDir, DB_FILE));
}

/** Opens the database of a data dir that has one, for a change to what it stores (recover): none is made. */
export function openExistingStore(dataDir: string): SqliteStore {
  existingDatabase(dataDir);
  return openStore(dataDir);
}
