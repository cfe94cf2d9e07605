// The files an export keeps beside an agent's checkpoints in `history/<agent>/`:
// - `overrides.json`: its signed lineage events (igor's budget overrides; igord adds code upgrades,
//   lost payments, recoveries, imports), read by verify and import;
// - `history-base.json`: the signed base of a history pruned by --history-retention. Without it an
//   export of a pruned history read as a history cut by someone (verify noted a start after
//   genesis, import stored it with no base).
// A file that is not well formed is a problem verify names (the history is then INVALID), never a
// crash and never silently a history without it.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type HistoryBase, historyBaseFromJson, historyBaseToJson } from "../checkpoint/history-base.js";
import { lineageKindProblem } from "../checkpoint/lineage-kind.js";
import { MAX_EVENT_INTEGER } from "../checkpoint/overrides.js";
import { describeProblem, FileReadError, readRegularFile } from "../files/regular-file.js";
import { hex } from "../hash/bytes.js";
import { type LineageEvent, LINEAGE_KINDS } from "../store/types.js";

export const OVERRIDES_FILE = "overrides.json";
export const HISTORY_BASE_FILE = "history-base.json";

/** Bytes a history-base file may have: its five fields take ~400. */
const HISTORY_BASE_FILE_MAX_BYTES = 4096;
/** Bytes an overrides file may have: ~400 per lineage event, so ~160,000 events. */
export const OVERRIDES_FILE_MAX_BYTES = 64 * 1024 * 1024;

/** A file of a history folder: a regular file of at most `maxBytes` (a FIFO, device or symbolic link is never read), or its problem. */
function readFolderFile(file: string, name: string, maxBytes: number): { text: string } | { problem: string } {
  try {
    return { text: new TextDecoder().decode(readRegularFile(file, maxBytes, "refuse")) };
  } catch (e) {
    if (e instanceof FileReadError) return { problem: `${name}: ${describeProblem(e.problem)}` };
    throw e;
  }
}

/** Lowercase hex of exactly n bytes, or what is wrong with `v` as `field`. */
function hexBytes(v: unknown, field: string, n: number): Uint8Array | string {
  return typeof v === "string" && v.length === 2 * n && /^[0-9a-f]*$/.test(v) ? new Uint8Array(Buffer.from(v, "hex")) : `${field} must be ${n} bytes of lowercase hex`;
}

/**
 * A count as a decimal string (igor's files may hold a JSON number) up to MAX_EVENT_INTEGER (a
 * lineage event's tick and budgets are signed and stored as signed 64-bit integers), or what is
 * wrong with it.
 */
function count(v: unknown, field: string): bigint | string {
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  return typeof v === "string" && /^(0|[1-9][0-9]{0,19})$/.test(v) && BigInt(v) <= MAX_EVENT_INTEGER ? BigInt(v) : `${field} must be a decimal string of a count up to ${MAX_EVENT_INTEGER}`;
}

interface OverrideJson {
  /** Absent in igor's layout (budget overrides); written for the other kinds (code_upgrade…). */
  kind?: LineageEvent["kind"];
  afterHash: string;
  tick: string;
  oldBudget: string;
  newBudget: string;
  reason: string;
  signature: string;
}

export function overridesToJson(events: readonly LineageEvent[]): string {
  const json = events.map(
    (e): OverrideJson => ({
      ...(e.kind === "budget_override" ? {} : { kind: e.kind }),
      afterHash: hex(e.afterHash),
      tick: e.tick.toString(),
      oldBudget: e.oldBudget.toString(),
      newBudget: e.newBudget.toString(),
      reason: e.reason,
      signature: hex(e.signature),
    }),
  );
  return JSON.stringify(json, null, 2);
}

/** The lineage events in `dir` (a history folder), and the problems that make entries unreadable. */
export function readOverridesFile(dir: string): { events: LineageEvent[]; problems: string[] } {
  const file = join(dir, OVERRIDES_FILE);
  if (!existsSync(file)) return { events: [], problems: [] };
  const read = readFolderFile(file, OVERRIDES_FILE, OVERRIDES_FILE_MAX_BYTES);
  if ("problem" in read) return { events: [], problems: [read.problem] };
  let v: unknown;
  try {
    v = JSON.parse(read.text);
  } catch (e) {
    return { events: [], problems: [`${OVERRIDES_FILE}: not JSON (${(e as Error).message})`] };
  }
  if (!Array.isArray(v)) return { events: [], problems: [`${OVERRIDES_FILE}: not a list of lineage events`] };
  const events: LineageEvent[] = [];
  const problems: string[] = [];
  v.forEach((item: unknown, i) => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      problems.push(`${OVERRIDES_FILE}: entry ${i}: not an object`);
      return;
    }
    const o = item as Record<string, unknown>;
    const kind = o.kind === undefined ? "budget_override" : LINEAGE_KINDS.find((k) => k === o.kind);
    const f = {
      kind: kind ?? `kind ${JSON.stringify(o.kind)} is not one of ${LINEAGE_KINDS.join(", ")}`,
      afterHash: hexBytes(o.afterHash, "afterHash", 32),
      tick: count(o.tick, "tick"),
      oldBudget: count(o.oldBudget, "oldBudget"),
      newBudget: count(o.newBudget, "newBudget"),
      reason: typeof o.reason === "string" ? o.reason : "reason must be a string",
      signature: hexBytes(o.signature, "signature", 64),
    };
    const wrong = [f.afterHash, f.tick, f.oldBudget, f.newBudget, f.signature].filter((x): x is string => typeof x === "string");
    if (kind === undefined) wrong.unshift(f.kind);
    if (typeof o.reason !== "string") wrong.push(f.reason);
    else if (kind !== undefined) {
      const relabelled = lineageKindProblem({ kind, reason: o.reason });
      if (relabelled) wrong.push(relabelled);
    }
    if (wrong.length > 0) problems.push(`${OVERRIDES_FILE}: entry ${i}: ${wrong.join("; ")}`);
    else events.push(f as LineageEvent);
  });
  return { events, problems };
}

export function historyBaseFileText(b: HistoryBase): string {
  return JSON.stringify(historyBaseToJson(b), null, 2);
}

/** The base in `dir` (a history folder), none, or the problem that makes the file unreadable. */
export function readHistoryBaseFile(dir: string): { base?: HistoryBase; problem?: string } {
  const file = join(dir, HISTORY_BASE_FILE);
  if (!existsSync(file)) return {};
  const read = readFolderFile(file, HISTORY_BASE_FILE, HISTORY_BASE_FILE_MAX_BYTES);
  if ("problem" in read) return { problem: read.problem };
  let v: unknown;
  try {
    v = JSON.parse(read.text);
  } catch (e) {
    return { problem: `${HISTORY_BASE_FILE}: not JSON (${(e as Error).message})` };
  }
  const base = historyBaseFromJson(v);
  return typeof base === "string" ? { problem: `${HISTORY_BASE_FILE}: ${base}` } : { base };
}
