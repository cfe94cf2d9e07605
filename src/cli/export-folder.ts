// An igord export folder's files as the CLI reads them (`igord export` writes them): the agent's
// checkpoint, WASM, manifest, identity and node receipts beside `history/<agent>/`, which holds the
// checkpoints, event-log segments (events/), earlier modules (modules/), lineage events and history
// base. Every file is read only if it is a regular file, and only up to a named size.
import { existsSync, lstatSync, mkdirSync, readdirSync, rmdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { decodeReceipt, type Receipt } from "../budget/receipt.js";
import { ArrivingReceipts, type ReceiptHistory } from "../budget/receipt-check.js";
import { diskFullError, ErrorCode, IgordError } from "../errors.js";
import { describeProblem, FileReadError, fileKind, readRegularFile } from "../files/regular-file.js";
import { sha256Hex } from "../hash/bytes.js";
import { checkAgentId, MAX_WASM_BYTES } from "../loader/prepare.js";
import { MAX_MANIFEST_BYTES } from "../manifest/manifest.js";
import { decodeSegmentFile, type AuditSegment } from "../replay/audit-plan.js";
import type { ReceiptRow } from "../store/sqlite-store.js";

/** Bytes an event-log segment file of an export may have (a sanity cap: the node writes far less). */
export const SEGMENT_FILE_MAX_BYTES = 1024 ** 3;
/**
 * Bytes all of an export's segment files may have together: import, verify and audit hold them in
 * memory at once. A node keeps at most --event-log-max-bytes of an agent's logs (64 MiB by default).
 */
export const SEGMENTS_TOTAL_MAX_BYTES = 1024 ** 3;
/** Bytes a history folder's checkpoint files may have together (each is at most MAX_CHECKPOINT_BYTES): all are held in memory. */
export const CHECKPOINTS_TOTAL_MAX_BYTES = 1024 ** 3;
/** Bytes the earlier modules an export's checkpoints name may have together (each at most MAX_WASM_BYTES). */
export const MODULES_TOTAL_MAX_BYTES = 1024 ** 3;
/** Bytes an identity file may have (a key and its header take ~100). */
export const IDENTITY_FILE_MAX_BYTES = 4096;

/**
 * What the CLI reads from files (an export's, or those given to inspect and resume), with the codes
 * a file it cannot read takes: one that is not there, and one that is no regular file or too large.
 * A code of what was read, as its content's problems are named: every such file was WASM_NOT_FOUND.
 */
const FILE_CODES = {
  checkpoint: { missing: ErrorCode.CheckpointInvalid, other: ErrorCode.CheckpointInvalid },
  WASM: { missing: ErrorCode.WasmNotFound, other: ErrorCode.WasmMalformed },
  manifest: { missing: ErrorCode.ManifestNotFound, other: ErrorCode.ManifestInvalid },
  identity: { missing: ErrorCode.IdentityMissing, other: ErrorCode.IdentityCorrupt },
  receipts: { missing: ErrorCode.ReceiptInvalid, other: ErrorCode.ReceiptInvalid },
  "event-log segment": { missing: ErrorCode.EventLogInvalid, other: ErrorCode.EventLogInvalid },
  "last tick time": { missing: ErrorCode.ExportFolderInvalid, other: ErrorCode.ExportFolderInvalid },
} as const satisfies Record<string, { missing: ErrorCode; other: ErrorCode }>;

/** A kind of file the CLI reads (FILE_CODES). */
export type FileWhat = keyof typeof FILE_CODES;

/**
 * A file of an export or history folder: only a regular file (a FIFO or device there is never
 * read, so it cannot block the CLI) of at most `maxBytes`.
 */
export function readFile(path: string, what: FileWhat, maxBytes: number, links: "follow" | "refuse" = "follow"): Uint8Array {
  try {
    return readRegularFile(path, maxBytes, links);
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    const codes = FILE_CODES[what];
    throw new IgordError(e.problem.kind === "missing" ? codes.missing : codes.other, `${what} ${path} ${describeProblem(e.problem)}`, { details: { path } });
  }
}

/**
 * A file inside an export or history folder: as readFile, but a symbolic link there is refused, not
 * followed (export writes none; a folder from elsewhere could link its manifest, stored verbatim
 * and shipped with the agent, to any file of the importer's).
 */
export function readExportFile(path: string, what: FileWhat, maxBytes: number): Uint8Array {
  return readFile(path, what, maxBytes, "refuse");
}

/** The agent's manifest beside an export ("{}" when it has none). */
export function exportedManifest(dir: string, agentId: string): string {
  const file = join(dir, `${agentId}.manifest.json`);
  return existsSync(file) ? new TextDecoder().decode(readExportFile(file, "manifest", MAX_MANIFEST_BYTES)) : "{}";
}

/**
 * Whether the folder `path` inside an export or history folder is there (false when absent). Only a
 * folder is read, never a symbolic link to one: export writes no links, and a folder from elsewhere
 * could lead import to any folder of the importer's (its files are still checked, but need not be
 * read at all). Anything else there is refused EXPORT_FOLDER_INVALID.
 */
export function exportFolder(path: string): boolean {
  let s: ReturnType<typeof lstatSync>;
  try {
    s = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw new IgordError(ErrorCode.ExportFolderInvalid, `cannot read the folder ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (s.isDirectory()) return true;
  throw new IgordError(ErrorCode.ExportFolderInvalid, `${path} is ${fileKind(s)}: an export's folders are read only as folders, never through a link`);
}

/** An export's event-log segments, one file each. */
export const EVENTS_DIR = "events";
/** An export's earlier modules (an upgraded agent's), each named by its SHA-256. */
export const MODULES_DIR = "modules";

/**
 * The modules in an export's history folder that are `wanted` (the hashes its checkpoints name), by
 * hash: each file's bytes must hash to its name. Files of other names are never read; the wanted
 * ones within MODULES_TOTAL_MAX_BYTES together.
 */
export function readModules(historyDir: string, wanted: ReadonlySet<string>): Map<string, Uint8Array> {
  const d = join(historyDir, MODULES_DIR);
  const out = new Map<string, Uint8Array>();
  if (!exportFolder(d)) return out;
  const files = readdirSync(d).filter((f) => wanted.has(/^([0-9a-f]{64})\.wasm$/.exec(f)?.[1] ?? ""));
  readFilesWithin(d, files, "WASM", MAX_WASM_BYTES, MODULES_TOTAL_MAX_BYTES).forEach((bytes, i) => {
    const f = files[i] as string;
    const hash = f.slice(0, -".wasm".length);
    if (sha256Hex(bytes) !== hash) throw new IgordError(ErrorCode.CheckpointWasmMismatch, `${MODULES_DIR}/${f} does not hash to its name`);
    out.set(hash, bytes);
  });
  return out;
}

/** Bytes an export's `<agent>.last-tick.json` may have (it holds a tick and a time: a sanity cap). */
export const LAST_TICK_FILE_MAX_BYTES = 4096;

/** An export's `<agent>.last-tick.json`: when the head checkpoint's tick committed, so the agent keeps its cadence. */
export function lastTickFileName(agentId: string): string {
  return `${agentId}.last-tick.json`;
}

/** The file's text: the head's tick (a decimal string) and its wall time (ISO 8601, to the ms). */
export function lastTickFileText(tick: bigint, at: number): string {
  return JSON.stringify({ tick: tick.toString(), at: new Date(at).toISOString() }, null, 2);
}

/**
 * When the export's head tick committed (Unix ms), or null when the file is absent (an export made
 * without the time, or before it was exported: the agent ticks an interval after it starts). The
 * file is unsigned, and only ever moves the agent's next tick within one interval of its start (the
 * scheduler clamps it), but one naming another tick or no time is refused: the folder was altered.
 */
export function readLastTickAt(dir: string, agentId: string, headTick: bigint): number | null {
  const name = lastTickFileName(agentId);
  const file = join(dir, name);
  if (!existsSync(file)) return null;
  const text = new TextDecoder().decode(readExportFile(file, "last tick time", LAST_TICK_FILE_MAX_BYTES));
  const invalid = (why: string): IgordError => new IgordError(ErrorCode.ExportFolderInvalid, `${name}: ${why}`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw invalid(`not JSON (${(e as Error).message})`);
  }
  const o = (typeof v === "object" && v !== null ? v : {}) as { tick?: unknown; at?: unknown };
  if (o.tick !== headTick.toString()) throw invalid(`names tick ${JSON.stringify(o.tick)}, but the export's checkpoint is at tick ${headTick}`);
  const at = typeof o.at === "string" ? Date.parse(o.at) : Number.NaN;
  if (!Number.isSafeInteger(at) || at < 0) throw invalid(`"at" must be a time (ISO 8601) after 1970, not ${JSON.stringify(o.at)}`);
  return at;
}

/** Bytes an export's `<agent>.receipts` may have (a receipt is ~150 B: a sanity cap). */
export const RECEIPTS_FILE_MAX_BYTES = 256 * 1024 ** 2;

/**
 * An export's node execution receipts (`[u32 count]` then `[u32 len][receipt]` each, oldest first),
 * each held to what migration admission holds a package's to (budget/receipt-check.ts) against the
 * export's `history`. None when the file is absent (an export made before receipts were exported).
 */
export function readReceipts(file: string, history: ReceiptHistory): ReceiptRow[] {
  if (!existsSync(file)) return [];
  const bytes = readExportFile(file, "receipts", RECEIPTS_FILE_MAX_BYTES);
  const bad = (why: string): IgordError => new IgordError(ErrorCode.ReceiptInvalid, `${file}: ${why}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (bytes.length < 4) throw bad("shorter than its count");
  const count = dv.getUint32(0, true);
  const out: ReceiptRow[] = [];
  const arriving = new ArrivingReceipts(history);
  let o = 4;
  for (let i = 0; i < count; i++) {
    if (o + 4 > bytes.length) throw bad(`receipt ${i} of ${count} is missing`);
    const len = dv.getUint32(o, true);
    if (o + 4 + len > bytes.length) throw bad(`receipt ${i} is truncated`);
    const blob = bytes.slice(o + 4, o + 4 + len);
    o += 4 + len;
    let r: Receipt;
    try {
      r = decodeReceipt(blob);
    } catch (e) {
      throw bad(`receipt ${i} is unreadable: ${(e as Error).message}`);
    }
    const verdict = arriving.check(r, blob);
    if (typeof verdict === "object") throw bad(verdict.problem);
    if (verdict === "take") out.push({ tickStart: r.tickStart, tickEnd: r.tickEnd, cost: r.cost, budgetAfter: r.budgetAfter, nodeId: r.nodeId, blob });
  }
  if (o !== bytes.length) throw bad(`${bytes.length - o} bytes after its ${count} receipts`);
  const newest = arriving.finish();
  if (newest) throw bad(newest);
  return out;
}

/** A history folder's event-log segments, oldest first, within SEGMENTS_TOTAL_MAX_BYTES together. */
export function readSegments(historyDir: string): AuditSegment[] {
  const d = join(historyDir, EVENTS_DIR);
  if (!exportFolder(d)) return [];
  const files = readdirSync(d).filter((f) => f.endsWith(".seg"));
  return readFilesWithin(d, files, "event-log segment", SEGMENT_FILE_MAX_BYTES, SEGMENTS_TOTAL_MAX_BYTES)
    .map((bytes, i) => decodeSegmentFile(bytes, files[i] as string))
    .sort((a, b) => (a.toTick < b.toTick ? -1 : 1));
}

/**
 * The files `names` of folder `dir`, read whole to be held together: refused EXPORT_TOO_LARGE from
 * their sizes before any is read when they add up past `totalMax`, and each read within what is
 * left (a file that grew meanwhile is refused as it is read).
 */
export function readFilesWithin(dir: string, names: readonly string[], what: FileWhat, fileMax: number, totalMax: number): Uint8Array[] {
  const sizes = names.reduce((n, f) => n + regularFileSize(join(dir, f)), 0);
  if (sizes > totalMax) {
    throw new IgordError(ErrorCode.ExportTooLarge, `the ${what} files in ${dir} are ${sizes} bytes together, more than the ${totalMax}-byte limit`, {
      details: { bytes: sizes, limit: totalMax },
    });
  }
  let left = totalMax;
  return names.map((f) => {
    const bytes = readExportFile(join(dir, f), what, Math.min(fileMax, left));
    left -= bytes.length;
    return bytes;
  });
}

/** A regular file's size (a link is not followed); 0 for anything else, which its read refuses by name. */
function regularFileSize(path: string): number {
  try {
    const s = lstatSync(path);
    return s.isFile() ? s.size : 0;
  } catch {
    return 0;
  }
}

export function exportedAgentId(dir: string): string {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".checkpoint")) : [];
  if (files.length !== 1) {
    throw new IgordError(ErrorCode.ConfigInvalid, `${dir} must hold exactly one <agent>.checkpoint (found ${files.length}); is it an igord export?`);
  }
  // The id is the file's name: held to the rule every other way in holds it to (run, resume, migration).
  return checkAgentId((files[0] as string).slice(0, -".checkpoint".length));
}

/** An export's `<agent>.receipts`: `[u32 count]` then `[u32 len][receipt]` each, little-endian, as readReceipts reads it. */
export function receiptsFileBytes(receipts: readonly { blob: Uint8Array }[]): Buffer {
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  return Buffer.concat([u32(receipts.length), ...receipts.flatMap((r) => [u32(r.blob.length), r.blob])]);
}

/**
 * Writes an export into `root`, which must be empty or absent. Between that check and each write
 * anyone who can write there may put a file or a link at the path: each file is created new (O_EXCL,
 * which also never follows a link) and each folder made new, or the export stops with
 * EXPORT_PATH_TAKEN, so nothing is ever written through a link or over a file it did not create.
 */
export class ExportWriter {
  /** What this writer made, oldest first: an export that fails removes it (undo). */
  private readonly made: { path: string; dir: boolean }[] = [];

  /** Writes an export into `root` with `write`; if that throws, removes what it made before rethrowing. */
  static into<T>(root: string, write: (w: ExportWriter) => T): T {
    const w = new ExportWriter(root);
    try {
      return write(w);
    } catch (e) {
      w.undo();
      throw e;
    }
  }

  constructor(private readonly root: string) {
    if (existsSync(root) && !statSync(root).isDirectory()) {
      throw new IgordError(ErrorCode.ConfigInvalid, `${root} exists and is not a directory; export writes into a new or empty directory`);
    }
    if (existsSync(root) && readdirSync(root).length > 0) {
      throw new IgordError(ErrorCode.ConfigInvalid, `${root} is not empty; export refuses to overwrite anything`);
    }
    let first: string | undefined;
    try {
      first = mkdirSync(root, { recursive: true });
    } catch (e) {
      throw diskFullError(e, `cannot create ${root}`) ?? e;
    }
    // The folders mkdir made, from the first it made down to the root (none if the root was there).
    const made: string[] = [];
    for (let p = resolve(root); first !== undefined; p = dirname(p)) {
      made.unshift(p);
      if (p === resolve(first) || dirname(p) === p) break;
    }
    for (const path of made) this.made.push({ path, dir: true });
  }

  /** Makes the folder `parts` (under the root), which must not exist yet. */
  dir(parts: readonly string[]): void {
    const path = join(this.root, ...parts);
    this.creating(path, true, () => mkdirSync(path));
  }

  /** Creates the file `parts` (under the root), which must not exist yet, with `bytes`. */
  file(parts: readonly string[], bytes: Uint8Array | string, mode = 0o644): void {
    const path = join(this.root, ...parts);
    this.creating(path, false, () => writeFileSync(path, bytes, { flag: "wx", mode }));
  }

  /**
   * Removes what this writer made, newest first. Only that: a folder something else was put in
   * meanwhile stays, with what was put there, and a root that was there before stays.
   */
  undo(): void {
    for (const m of this.made.splice(0).reverse()) {
      try {
        if (m.dir) rmdirSync(m.path);
        else unlinkSync(m.path);
      } catch {
        // Not empty (another's file is in it) or already gone: left as it is.
      }
    }
  }

  private creating(path: string, dir: boolean, make: () => void): void {
    try {
      make();
      this.made.push({ path, dir });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") {
        throw new IgordError(ErrorCode.ExportPathTaken, `${path} appeared during the export (a file or link put there meanwhile); export writes only what it creates`);
      }
      // Anything but EEXIST: nothing was at the path before, so what is there now (a file cut short by
      // a full disk) is this writer's.
      this.made.push({ path, dir });
      throw diskFullError(e, `cannot write ${path}`) ?? e;
    }
  }
}
