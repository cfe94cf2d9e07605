// The migration package (pure codec): everything an agent needs to continue on another node —
// identity, manifest, WASM (unless the target holds it), the checkpoint history that continues its
// lineage, budget overrides, receipts and the replay window's event-log segments — in one binary
// blob, sent in chunks. Layout (little endian):
//   "IGPK" | u8 version | u32 header length | header JSON | sections, in the header's order
// The header lists every section's length; decoding checks them against the bytes before slicing.
import type { Epoch } from "../authority/lease.js";
import { lineageKindProblem } from "../checkpoint/lineage-kind.js";
import { MAX_EVENT_INTEGER } from "../checkpoint/overrides.js";
import { type HistoryBase, historyBaseFromJson, historyBaseToJson } from "../checkpoint/history-base.js";
import { hex } from "../hash/bytes.js";
import { ErrorCode, IgordError } from "../errors.js";
import { bool, epoch, hex32, jsonBytes, MAX_AGENT_ID_CHARS, MAX_DID_CHARS, optStr, str, uint } from "../p2p/frames.js";
import { decodeSegmentFile, encodeSegmentFile } from "../replay/audit-plan.js";
import type { LineageEvent, StoredSegment } from "../store/sqlite-store.js";
import { LINEAGE_KINDS } from "../store/types.js";

export const PACKAGE_MAGIC = "IGPK";
export const PACKAGE_VERSION = 1;
/** Sanity caps on counts in a header (a package is also capped in bytes by --max-package-size). */
export const MAX_PACKAGE_ITEMS = 1_000_000;
const MAX_HEADER_BYTES = 16 * 1024 * 1024;

export interface MigrationPackage {
  agentId: string;
  did: string;
  /** Manifest JSON text, exactly as the agent was loaded with it. */
  manifest: string;
  wasmHash: string;
  /** null when the target already holds the module with this hash. */
  wasm: Uint8Array | null;
  /** The agent's identity file bytes ([u32 64][seed][public key]). */
  identity: Uint8Array;
  /** The source's epoch at handoff (the head checkpoint carries the same). */
  epoch: Epoch;
  /** Hex SHA-256 of the head checkpoint being handed off. */
  checkpointHash: string;
  /** The checkpoint the history continues from (one the target holds), or null: from genesis. */
  baseHash: string | null;
  /** Checkpoint blobs in chain order after baseHash, ending with the head (empty: the base is the head). */
  history: Uint8Array[];
  /**
   * For a first hop of a history pruned by --history-retention: the agent-signed record of where it
   * starts (its first shipped checkpoint), so the target verifies from there, not from genesis.
   */
  historyBase?: HistoryBase | null;
  overrides: LineageEvent[];
  receipts: Uint8Array[];
  segments: StoredSegment[];
  /**
   * Earlier modules the shipped event-log segments were recorded with (a code upgrade inside the
   * window), by hex SHA-256; the agent's current module is `wasm`. Absent from the header when empty.
   */
  modules?: { hash: string; bytes: Uint8Array }[];
  /**
   * Wall time (Unix ms, the source's clock) the head checkpoint's tick committed: the target ticks
   * the agent an interval after it (clamped to one interval from its arrival). Absent: unknown (an
   * older peer's package, or an agent that never ticked).
   */
  lastTickAt?: number;
  /**
   * The agent was resumed after an interruption and handed off before a tick told it
   * (resume_interrupted): the target's first tick must. Absent: false (an older peer's package).
   */
  interrupted?: boolean;
}

interface SectionLengths {
  wasm: number | null;
  identity: number;
  history: number[];
  receipts: number[];
  segments: number[];
  /** Checkpoint hash each segment was committed with (hex). */
  segmentCheckpoints: string[];
  /** Earlier modules (present only when the package ships some). */
  modules?: number[];
  moduleHashes?: string[];
}

export function encodePackage(p: MigrationPackage): Uint8Array {
  const segmentFiles = p.segments.map((s) => encodeSegmentFile(s));
  const lengths: SectionLengths = {
    wasm: p.wasm ? p.wasm.length : null,
    identity: p.identity.length,
    history: p.history.map((b) => b.length),
    receipts: p.receipts.map((b) => b.length),
    segments: segmentFiles.map((b) => b.length),
    segmentCheckpoints: p.segments.map((s) => hex(s.checkpointHash)),
    ...(p.modules && p.modules.length > 0 ? { modules: p.modules.map((m) => m.bytes.length), moduleHashes: p.modules.map((m) => m.hash) } : {}),
  };
  const header = jsonBytes({
    type: "package",
    agentId: p.agentId,
    did: p.did,
    manifest: p.manifest,
    wasmHash: p.wasmHash,
    epochMajor: p.epoch.major,
    epochGeneration: p.epoch.generation,
    checkpointHash: p.checkpointHash,
    baseHash: p.baseHash,
    historyBase: p.historyBase ? historyBaseToJson(p.historyBase) : null,
    overrides: p.overrides.map((e) => ({
      kind: e.kind,
      afterHash: hex(e.afterHash),
      tick: e.tick,
      oldBudget: e.oldBudget,
      newBudget: e.newBudget,
      reason: e.reason,
      signature: hex(e.signature),
    })),
    hasWasm: p.wasm !== null,
    ...(p.lastTickAt !== undefined ? { lastTickAt: p.lastTickAt } : {}),
    ...(p.interrupted === true ? { interrupted: true } : {}),
    lengths,
  });
  const parts: Uint8Array[] = [new TextEncoder().encode(PACKAGE_MAGIC), new Uint8Array([PACKAGE_VERSION]), u32(header.length), header];
  if (p.wasm) parts.push(p.wasm);
  parts.push(p.identity);
  // Appended one by one, not spread into push's arguments: a long history (over ~125,000 sections
  // in all) overflowed the call stack, and the agent could not be packaged at all.
  for (const list of [p.history, p.receipts, segmentFiles, (p.modules ?? []).map((m) => m.bytes)]) for (const b of list) parts.push(b);
  return Buffer.concat(parts);
}

const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function invalid(msg: string): never {
  throw new IgordError(ErrorCode.MigrationFrameInvalid, `migration package: ${msg}`);
}

function lengthList(v: unknown, field: string): number[] {
  if (!Array.isArray(v) || v.length > MAX_PACKAGE_ITEMS || v.some((n) => typeof n !== "number" || !Number.isSafeInteger(n) || n < 0)) {
    invalid(`lengths.${field} must be an array of byte counts`);
  }
  return v as number[];
}

export function decodePackage(bytes: Uint8Array): MigrationPackage {
  if (bytes.length < 9) invalid(`${bytes.length} bytes is too short`);
  if (new TextDecoder().decode(bytes.subarray(0, 4)) !== PACKAGE_MAGIC) invalid("bad magic (not an igord package)");
  if (bytes[4] !== PACKAGE_VERSION) invalid(`version ${bytes[4]} is not supported (this node reads ${PACKAGE_VERSION})`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset + 5, 4).getUint32(0, true);
  if (headerLen > MAX_HEADER_BYTES || 9 + headerLen > bytes.length) invalid(`header length ${headerLen} runs past the package`);
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(9, 9 + headerLen))) as Record<string, unknown>;
  } catch (e) {
    return invalid(`header is not JSON: ${(e as Error).message}`);
  }
  if (h === null || typeof h !== "object" || h.type !== "package") invalid("header is not a package header");
  const T = "package";
  const l = h.lengths as Record<string, unknown> | undefined;
  if (!l || typeof l !== "object") invalid("header has no lengths");
  const hasWasm = bool(h, T, "hasWasm");
  const wasmLen = hasWasm ? lengthList([l.wasm], "wasm")[0] as number : 0;
  const identityLen = lengthList([l.identity], "identity")[0] as number;
  const history = lengthList(l.history, "history");
  const receipts = lengthList(l.receipts, "receipts");
  const segments = lengthList(l.segments, "segments");
  const segmentCheckpoints = l.segmentCheckpoints;
  if (!Array.isArray(segmentCheckpoints) || segmentCheckpoints.length !== segments.length || segmentCheckpoints.some((x) => typeof x !== "string" || !/^[0-9a-f]{64}$/.test(x))) {
    invalid("lengths.segmentCheckpoints must list one checkpoint hash per segment");
  }
  const modules = l.modules === undefined ? [] : lengthList(l.modules, "modules");
  const moduleHashes = l.moduleHashes ?? [];
  if (!Array.isArray(moduleHashes) || moduleHashes.length !== modules.length || moduleHashes.some((x) => typeof x !== "string" || !/^[0-9a-f]{64}$/.test(x))) {
    invalid("lengths.moduleHashes must list one module hash per module");
  }
  // No new checkpoint is fine only when the agent comes back unchanged to the node holding its head.
  if (history.length === 0 && (typeof h.baseHash !== "string" || h.baseHash !== h.checkpointHash)) invalid("no checkpoints");
  const total = [wasmLen, identityLen, ...history, ...receipts, ...segments, ...modules].reduce((a, b) => a + b, 0);
  if (9 + headerLen + total !== bytes.length) invalid(`sections add up to ${total} bytes but ${bytes.length - 9 - headerLen} follow the header`);
  let at = 9 + headerLen;
  const take = (n: number): Uint8Array => {
    // A plain Uint8Array copy (a Buffer's slice would be a view with Buffer semantics).
    const out = new Uint8Array(bytes.buffer, bytes.byteOffset + at, n).slice();
    at += n;
    return out;
  };
  const wasm = hasWasm ? take(wasmLen) : null;
  const identity = take(identityLen);
  const historyBlobs = history.map(take);
  const receiptBlobs = receipts.map(take);
  const segs = segments.map((n, i) => {
    try {
      return { ...decodeSegmentFile(take(n), `segment ${i}`), checkpointHash: fromHex(segmentCheckpoints[i] as string) };
    } catch (e) {
      return invalid((e as Error).message);
    }
  });
  const moduleBlobs = modules.map((n, i) => ({ hash: moduleHashes[i] as string, bytes: take(n) }));
  const lastTickAt = h.lastTickAt;
  if (lastTickAt !== undefined && lastTickAt !== null && !(typeof lastTickAt === "number" && Number.isSafeInteger(lastTickAt) && lastTickAt >= 0)) {
    invalid("lastTickAt must be a Unix time in ms");
  }
  const interrupted = h.interrupted;
  if (interrupted !== undefined && typeof interrupted !== "boolean") invalid("interrupted must be a boolean");
  const overrides = h.overrides;
  if (!Array.isArray(overrides) || overrides.length > MAX_PACKAGE_ITEMS) invalid("overrides must be an array");
  if (overrides.some((o) => o === null || typeof o !== "object" || Array.isArray(o))) invalid("overrides must be lineage event objects");
  return {
    agentId: str(h, T, "agentId", MAX_AGENT_ID_CHARS),
    did: str(h, T, "did", MAX_DID_CHARS),
    manifest: typeof h.manifest === "string" ? h.manifest : invalid("manifest must be a string"),
    wasmHash: hex32(h, T, "wasmHash"),
    wasm,
    identity,
    epoch: epoch(h, T),
    checkpointHash: hex32(h, T, "checkpointHash"),
    baseHash: optStr(h, T, "baseHash", 64) === null ? null : hex32(h, T, "baseHash"),
    history: historyBlobs,
    overrides: (overrides as Record<string, unknown>[]).map((o) => {
      const kind = LINEAGE_KINDS.find((k) => k === o.kind) ?? invalid(`lineage event kind ${JSON.stringify(o.kind)}`);
      const reason = typeof o.reason === "string" ? o.reason : invalid("override reason");
      const relabelled = lineageKindProblem({ kind, reason });
      if (relabelled) invalid(relabelled);
      return {
        kind,
        afterHash: fromHex(hex32(o, "override", "afterHash")),
        tick: signed64(o, "tick"),
        oldBudget: signed64(o, "oldBudget"),
        newBudget: signed64(o, "newBudget"),
        reason,
        signature: fromHex(typeof o.signature === "string" && /^[0-9a-f]{128}$/.test(o.signature) ? o.signature : invalid("override signature")),
      } satisfies LineageEvent;
    }),
    receipts: receiptBlobs,
    segments: segs,
    ...(moduleBlobs.length > 0 ? { modules: moduleBlobs } : {}),
    ...(typeof lastTickAt === "number" ? { lastTickAt } : {}),
    ...(interrupted === true ? { interrupted } : {}),
    historyBase: decodeHistoryBase(h.historyBase),
  };
}

/**
 * A lineage event's tick or budget: at most MAX_EVENT_INTEGER, what its signed bytes and the store
 * hold. One past it was signed wrapped to a negative amount and failed the store's write, answered
 * MIGRATION_BUSY with SQLite's message.
 */
function signed64(o: Record<string, unknown>, field: "tick" | "oldBudget" | "newBudget"): bigint {
  const n = uint(o, "override", field);
  if (n > MAX_EVENT_INTEGER) invalid(`a lineage event's ${field} ${n} is past ${MAX_EVENT_INTEGER} (a signed 64-bit amount)`);
  return n;
}

function decodeHistoryBase(v: unknown): HistoryBase | null {
  if (v === undefined || v === null) return null;
  const base = historyBaseFromJson(v);
  return typeof base === "string" ? invalid(`historyBase: ${base}`) : base;
}
