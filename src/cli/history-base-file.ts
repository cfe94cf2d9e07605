// The signed base of a pruned history in an export: `history/<agent>/history-base.json`, beside
// the checkpoints it stands in front of. Without it an export of a history pruned by
// --history-retention read as a history cut by someone (verify noted a start after genesis, import
// stored it with no base). A file that is not a well-formed base is a problem verify names, never
// silently a history without one.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { HistoryBase } from "../checkpoint/history-base.js";
import { hex } from "../hash/bytes.js";

export const HISTORY_BASE_FILE = "history-base.json";

/** Bytes a history-base file may have: its five fields take ~400. */
const HISTORY_BASE_FILE_MAX_BYTES = 4096;
const U64_MAX = 2n ** 64n - 1n;

interface HistoryBaseJson {
  originHash: string;
  baseHash: string;
  baseTick: string;
  pruned: string;
  signature: string;
}

export function historyBaseToJson(b: HistoryBase): string {
  const j: HistoryBaseJson = { originHash: hex(b.originHash), baseHash: hex(b.baseHash), baseTick: b.baseTick.toString(), pruned: b.pruned.toString(), signature: hex(b.signature) };
  return JSON.stringify(j, null, 2);
}

/** The base in `dir` (a history folder), none, or the problem that makes the file unreadable. */
export function readHistoryBaseFile(dir: string): { base?: HistoryBase; problem?: string } {
  const file = join(dir, HISTORY_BASE_FILE);
  if (!existsSync(file)) return {};
  const text = readFileSync(file);
  if (text.byteLength > HISTORY_BASE_FILE_MAX_BYTES) return { problem: `${HISTORY_BASE_FILE}: ${text.byteLength} bytes, more than a history base takes (${HISTORY_BASE_FILE_MAX_BYTES})` };
  let v: unknown;
  try {
    v = JSON.parse(text.toString("utf8"));
  } catch (e) {
    return { problem: `${HISTORY_BASE_FILE}: not JSON (${(e as Error).message})` };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { problem: `${HISTORY_BASE_FILE}: not an object` };
  const o = v as Record<string, unknown>;
  const bytes = (field: keyof HistoryBaseJson, n: number): Uint8Array | string => {
    const s = o[field];
    return typeof s === "string" && new RegExp(`^[0-9a-f]{${2 * n}}$`).test(s) ? new Uint8Array(Buffer.from(s, "hex")) : `${field} must be ${n} bytes of lowercase hex`;
  };
  const count = (field: keyof HistoryBaseJson): bigint | string => {
    const s = o[field];
    return typeof s === "string" && /^(0|[1-9][0-9]{0,19})$/.test(s) && BigInt(s) <= U64_MAX ? BigInt(s) : `${field} must be a decimal string of a 64-bit count`;
  };
  const fields = { originHash: bytes("originHash", 32), baseHash: bytes("baseHash", 32), baseTick: count("baseTick"), pruned: count("pruned"), signature: bytes("signature", 64) };
  const wrong = Object.values(fields).filter((f): f is string => typeof f === "string");
  if (wrong.length > 0) return { problem: `${HISTORY_BASE_FILE}: ${wrong.join("; ")}` };
  return { base: fields as HistoryBase };
}
