// The data dir holds the node key and every agent's private key: it is private to its owner (0700,
// database files 0600), and only one process at a time may run agents from it.
//
// The lock is an exclusive SQLite lock (a POSIX record lock underneath) on a dedicated file, held
// for the life of the process: the kernel releases it when the process dies, SIGKILL included, so
// a stale lock cannot outlive its holder. The pid file next to it only names the holder in the
// error message; it is never trusted as a lock.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { diskFullError, ErrorCode, IgordError } from "../errors.js";
import { DB_FILE } from "./types.js";

export const DATA_DIR_MODE = 0o700;
export const DATA_FILE_MODE = 0o600;
export const LOCK_FILE = "igord.lock";
export const PID_FILE = "igord.pid";
/** Files in the data dir kept owner-only: the database (keys) with its WAL, shm and journal; the lock and pid files. */
const PRIVATE_FILE = /^igord\.(db|lock)(-wal|-shm|-journal)?$|^igord\.pid$/;

function fsError(what: string, path: string, e: unknown): IgordError {
  const full = diskFullError(e, `cannot ${what} ${path}`);
  if (full) return full;
  return new IgordError(ErrorCode.StoreError, `cannot ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
}

/**
 * Creates the data dir private to its owner, or makes an existing one private: the dir 0700 and
 * the database files already in it 0600 (SQLite gives a new WAL or shm file its database's mode).
 */
export function prepareDataDir(dir: string): void {
  refuseForeignDir(dir);
  try {
    mkdirSync(dir, { recursive: true, mode: DATA_DIR_MODE });
  } catch (e) {
    throw fsError("create data dir", dir, e);
  }
  restrict(dir, DATA_DIR_MODE);
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch (e) {
    throw dataDirAccessError(dir, e) ?? fsError("read data dir", dir, e);
  }
  for (const f of files) if (PRIVATE_FILE.test(f)) restrict(join(dir, f), DATA_FILE_MODE);
}

/**
 * The data dir (or a file of it) this process may not read or change: said so, naming its owner
 * and this process's user (the commonest cause is running igord as another user than the one that
 * made the data dir), instead of a bare EACCES, or a reader's "no database" for a database that is
 * there; null for any other failure.
 */
export function dataDirAccessError(path: string, e: unknown): IgordError | null {
  const errno = (e as NodeJS.ErrnoException).code;
  if (errno !== "EACCES" && errno !== "EPERM") return null;
  const uid = process.getuid?.() ?? null;
  let owner: number | null = null;
  try {
    owner = statSync(path).uid;
  } catch {
    // a folder above it this user cannot enter: its owner stays unknown
  }
  const whose =
    owner === null
      ? `cannot be reached by uid ${uid ?? "?"} (a folder above it is closed to this user)`
      : owner === uid
        ? `belongs to this user (uid ${owner}) but its permissions keep igord out`
        : `belongs to uid ${owner} and igord runs as uid ${uid ?? "?"}`;
  return new IgordError(
    ErrorCode.ConfigInvalid,
    `the data dir ${path} ${whose} (${errno}): run igord as the data dir's owner, whose keys it holds (a data dir is private to one user: 0700)`,
    { cause: e, details: { path, errno, owner, uid } },
  );
}

/** What igord itself keeps in a data dir (the database and its side files, the lock, pid, control token and address). */
const IGORD_FILE = /^igord\.(db|lock)(-wal|-shm|-journal)?$|^igord\.pid$|^control\.(token|addr)$/;

/**
 * Refuses, before anything in it changes, a directory that holds files but none of igord's (no
 * database): a typo such as --data-dir /srv/www had it made 0700 and igord's files written among
 * another program's. An empty or new directory, or one igord has used, is a data dir.
 */
function refuseForeignDir(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return; // absent (created below), or not a directory (mkdir says so)
  }
  if (entries.length === 0 || entries.some((f) => IGORD_FILE.test(f))) return;
  throw new IgordError(
    ErrorCode.ConfigInvalid,
    `--data-dir ${dir} holds other files (${entries.slice(0, 3).join(", ")}${entries.length > 3 ? ", …" : ""}) and no igord database: igord makes its data dir private (0700) and keeps its keys there; give it an empty or new directory`,
    { details: { path: dir, entries: entries.length } },
  );
}

function restrict(path: string, mode: number): void {
  try {
    if ((statSync(path).mode & 0o777) !== mode) chmodSync(path, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return; // a WAL or shm file removed meanwhile
    throw dataDirAccessError(path, e) ?? fsError("restrict permissions of", path, e);
  }
}

/** Creates an empty file with owner-only permissions unless it exists (SQLite then keeps that mode). */
export function createPrivateFile(path: string): void {
  if (existsSync(path)) return;
  try {
    writeFileSync(path, new Uint8Array(0), { mode: DATA_FILE_MODE, flag: "wx" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw fsError("create", path, e);
  }
}

/** How often a holder checks that the lock and pid files at their paths are still its own. */
export const LOCK_CHECK_INTERVAL_MS = 250;

/**
 * What a holder's check found: its lock file is where it was (`held`); it was deleted or replaced
 * and this process now holds the file at the path again (`restored`, the pid file rewritten with it);
 * another process holds the file now at the path (`lost`); or it cannot be put back (`failed`).
 */
export type LockCheck = { state: "held" } | { state: "restored" } | { state: "lost"; error: IgordError } | { state: "failed"; error: IgordError };

/** A file's identity (device and inode), null when nothing is at `path`. */
export function fileId(path: string): string | null {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return null;
  }
}

/** The exclusive right to run agents from a data dir, held until release() or the process ends. */
export class DataDirLock {
  private constructor(
    readonly dir: string,
    /** Every lock file this process holds: the one it took, and any it put back at the path after that one was deleted. */
    private dbs: Database.Database[],
    /** The identity of the lock file this process last took at the path. */
    private held: string | null,
  ) {}

  /** Takes the lock at once or fails with DATA_DIR_LOCKED naming the holder's pid. */
  static acquire(dir: string): DataDirLock {
    prepareDataDir(dir);
    const path = join(dir, LOCK_FILE);
    const created = !existsSync(path);
    createPrivateFile(path);
    const db = lockFile(dir, path);
    // A lock file this process made beside an existing database may be a fresh one an operator's
    // `rm igord.lock` let it make: the live daemon still holds the deleted one, which no new process
    // can see, so it is looked for among the processes' open files.
    const other = created && existsSync(join(dir, DB_FILE)) ? holderOfRemovedLock(dir) : null;
    if (other !== null) {
      db.close();
      throw new IgordError(
        ErrorCode.DataDirLocked,
        `the data dir ${dir} is in use by pid ${other}, which holds its lock file ${LOCK_FILE} although that file was deleted; one process at a time runs agents from a data dir (stop pid ${other} first; never delete ${LOCK_FILE}: the operating system releases it when its process ends)`,
        { details: { dir, pid: other } },
      );
    }
    try {
      writePidFile(dir);
    } catch (e) {
      db.close();
      throw e;
    }
    return new DataDirLock(dir, [db], fileId(path));
  }

  /**
   * Checks that the lock file (and pid file) at their paths are still this holder's, putting them back
   * when they were deleted or replaced by a file no process holds.
   */
  check(): LockCheck {
    if (this.dbs.length === 0) return { state: "held" };
    const path = join(this.dir, LOCK_FILE);
    const now = fileId(path);
    if (now !== null && now === this.held) {
      // The lock file is the one this process holds; a pid file it cannot read now (no descriptor
      // left: EMFILE) may well name it still, and the lock is what excludes others.
      const pid = readPidFile(this.dir);
      if (pid === process.pid || pid === "unreadable") return { state: "held" };
      try {
        writePidFile(this.dir);
      } catch (e) {
        return { state: "failed", error: e as IgordError };
      }
      return { state: "restored" };
    }
    try {
      createPrivateFile(path);
      const db = lockFile(this.dir, path);
      this.dbs.push(db);
      this.held = fileId(path);
      writePidFile(this.dir);
      return { state: "restored" };
    } catch (e) {
      const error = e as IgordError;
      return { state: error.code === ErrorCode.DataDirLocked ? "lost" : "failed", error };
    }
  }

  release(): void {
    for (const db of this.dbs) db.close();
    this.dbs = [];
  }
}

/** Locks the file at `path` for this process's lifetime, or fails with DATA_DIR_LOCKED naming its holder. */
function lockFile(dir: string, path: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: 0 });
  } catch (e) {
    throw fsError("open lock file", path, e);
  }
  try {
    // EXCLUSIVE locking mode keeps the write lock of the first write transaction until close.
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
    db.exec("CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL)");
    db.prepare("DELETE FROM holder").run();
    db.prepare("INSERT INTO holder (pid) VALUES (?)").run(process.pid);
    db.exec("COMMIT");
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code?.startsWith("SQLITE_BUSY") || (e as { code?: string }).code?.startsWith("SQLITE_LOCKED")) {
      throw new IgordError(
        ErrorCode.DataDirLocked,
        `the data dir ${dir} is in use by ${holderText(dir)}; one process at a time runs agents from a data dir (inspect, verify and export work beside it)`,
        { details: { dir, pid: holderPid(dir) } },
      );
    }
    throw fsError("lock", path, e);
  }
  return db;
}

function writePidFile(dir: string): void {
  try {
    writeFileSync(join(dir, PID_FILE), `${process.pid}\n`, { mode: DATA_FILE_MODE });
  } catch (e) {
    throw fsError("write", join(dir, PID_FILE), e);
  }
}

/**
 * The pid of another process holding this data dir's lock file open after it was deleted (Linux:
 * its descriptor reads `<dir>/igord.lock (deleted)` in /proc), or null: none, or no /proc to ask.
 */
function holderOfRemovedLock(dir: string): number | null {
  let target: string;
  let pids: string[];
  try {
    target = `${join(realpathSync(dir), LOCK_FILE)} (deleted)`;
    pids = readdirSync("/proc");
  } catch {
    return null;
  }
  for (const name of pids) {
    const pid = Number(name);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${name}/fd`);
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${name}/fd/${fd}`) === target) return pid;
      } catch {
        // closed meanwhile
      }
    }
  }
  return null;
}

function holderPid(dir: string): number | null {
  const pid = readPidFile(dir);
  return pid === "unreadable" ? null : pid;
}

/** The pid the pid file names; null when there is none (or it names none); "unreadable" when it cannot be read now. */
function readPidFile(dir: string): number | null | "unreadable" {
  let text: string;
  try {
    text = readFileSync(join(dir, PID_FILE), "utf8");
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? null : "unreadable";
  }
  const pid = Number.parseInt(text, 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

function holderText(dir: string): string {
  const pid = holderPid(dir);
  // The holder writes its pid just after taking the lock: a racing reader may see none yet.
  return pid === null ? "another igord process" : `pid ${pid}`;
}
