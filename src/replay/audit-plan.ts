// Plans an audit replay (pure): from the stored checkpoints and event-log segments, find the
// earliest checkpoint from which every later tick's log is stored, and build the chain of ticks to
// replay, expecting each later checkpoint's state at its tick.
import { equalBytes, sha256 } from "../hash/bytes.js";
import { type EventLogSegment, segmentLogSpans } from "../eventlog/tick-log.js";
import { HOSTCALL_ABI_VERSION } from "../hostcalls/registry.js";
import { buildChain, type IndexedChain } from "./chain.js";
import { REPLAY_ENGINE_VERSION } from "./engine.js";

export interface AuditCheckpoint {
  tick: bigint;
  state: Uint8Array;
}

export type AuditSegment = EventLogSegment;

/**
 * File form of a stored segment: "IGSG" | u8 2 | [64 signature] | body (signed alone, v1), or
 * "IGSG" | u8 3 | [64 run signature] | u32 proof len | proof | body (sealed in a run, v2:
 * replay/run-seal.ts), where body is the unsigned form [u32 abi][u32 engine][u64 from][u64 to][u32
 * hashes len][hashes][logs] (an unsigned segment is written, and old files are read, as the bare
 * body; the abi word is never "IGSG").
 */
export function encodeSegmentFile(s: AuditSegment): Uint8Array {
  const body = encodeSegmentBody(s);
  if (!s.signature) return body;
  if (s.runProof) {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, s.runProof.length, true);
    return Buffer.concat([SEGMENT_FILE_MAGIC, new Uint8Array([SEGMENT_FILE_RUN_SEALED]), s.signature, len, s.runProof, body]);
  }
  return Buffer.concat([SEGMENT_FILE_MAGIC, new Uint8Array([SEGMENT_FILE_SIGNED]), s.signature, body]);
}

const SEGMENT_FILE_MAGIC = new TextEncoder().encode("IGSG");
const SEGMENT_FILE_SIGNED = 2;
const SEGMENT_FILE_RUN_SEALED = 3;
const SIGNED_PREFIX = SEGMENT_FILE_MAGIC.length + 1 + 64;
/** A run-seal proof longer than this is refused (a path of 32-byte hashes: 2^16 segments need 520 bytes). */
const MAX_RUN_PROOF_BYTES = 8 + 32 * 32;

/** The unsigned form of a segment: what its signature covers (with the checkpoint it follows). */
export function encodeSegmentBody(s: AuditSegment): Uint8Array {
  const out = new Uint8Array(28 + s.postHashes.length + s.blob.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, s.abiVersion, true);
  dv.setUint32(4, s.engineVersion, true);
  dv.setBigUint64(8, s.fromTick, true);
  dv.setBigUint64(16, s.toTick, true);
  dv.setUint32(24, s.postHashes.length, true);
  out.set(s.postHashes, 28);
  out.set(s.blob, 28 + s.postHashes.length);
  return out;
}

export function decodeSegmentFile(bytes: Uint8Array, name: string): AuditSegment {
  if (bytes.length >= SIGNED_PREFIX && Buffer.from(bytes.subarray(0, 4)).equals(SEGMENT_FILE_MAGIC)) {
    if (bytes[4] === SEGMENT_FILE_RUN_SEALED) {
      if (bytes.length < SIGNED_PREFIX + 4) throw new Error(`${name} is shorter than a run-sealed segment header`);
      const len = new DataView(bytes.buffer, bytes.byteOffset + SIGNED_PREFIX, 4).getUint32(0, true);
      if (len > MAX_RUN_PROOF_BYTES || SIGNED_PREFIX + 4 + len > bytes.length) throw new Error(`${name} has a malformed run-seal proof`);
      const runProof = bytes.slice(SIGNED_PREFIX + 4, SIGNED_PREFIX + 4 + len);
      return { ...decodeSegmentBody(bytes.subarray(SIGNED_PREFIX + 4 + len), name), signature: bytes.slice(5, SIGNED_PREFIX), runProof };
    }
    if (bytes[4] !== SEGMENT_FILE_SIGNED) throw new Error(`${name} has segment file version ${bytes[4]}; this igord reads ${SEGMENT_FILE_SIGNED} and ${SEGMENT_FILE_RUN_SEALED}`);
    return { ...decodeSegmentBody(bytes.subarray(SIGNED_PREFIX), name), signature: bytes.slice(5, SIGNED_PREFIX) };
  }
  return decodeSegmentBody(bytes, name);
}

function decodeSegmentBody(bytes: Uint8Array, name: string): AuditSegment {
  if (bytes.length < 28) throw new Error(`${name} is ${bytes.length} bytes, shorter than a segment header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const hashLen = dv.getUint32(24, true);
  if (hashLen % 32 !== 0 || 28 + hashLen > bytes.length) throw new Error(`${name} has a malformed hash table`);
  return {
    abiVersion: dv.getUint32(0, true),
    engineVersion: dv.getUint32(4, true),
    fromTick: dv.getBigUint64(8, true),
    toTick: dv.getBigUint64(16, true),
    postHashes: bytes.slice(28, 28 + hashLen),
    blob: bytes.slice(28 + hashLen),
  };
}

export interface AuditPlan {
  start: AuditCheckpoint | null;
  /** The ticks after `start` to the newest checkpoint, with their logs and expected state hashes. */
  chain: IndexedChain | null;
  /** Ticks at which a checkpoint's state is confirmed. */
  checkpointTicks: bigint[];
  /** Why the audit cannot run (e.g. logs recorded under another replay engine). */
  problems: string[];
}

/** A recorded state hash of all zeros: none was recorded. */
const NO_HASH = new Uint8Array(32);

export function planAudit(checkpoints: readonly AuditCheckpoint[], segments: readonly AuditSegment[]): AuditPlan {
  const problems: string[] = [];
  for (const s of segments) {
    if (s.abiVersion !== HOSTCALL_ABI_VERSION || s.engineVersion !== REPLAY_ENGINE_VERSION) {
      problems.push(
        `ticks ${s.fromTick}..${s.toTick} were recorded under hostcall ABI v${s.abiVersion} / replay engine v${s.engineVersion}; this igord has v${HOSTCALL_ABI_VERSION} / v${REPLAY_ENGINE_VERSION}, so a difference would not mean the agent is nondeterministic`,
      );
    }
  }
  // Each tick's encoded log (checked, not decoded: the worker decodes a tick as it replays it).
  const logs = new Map<bigint, Uint8Array>();
  const hashes = new Map<bigint, Uint8Array>();
  for (const s of segments) {
    const spans = segmentLogSpans(s.blob);
    for (let i = 0; i < spans.length; i++) {
      const l = spans[i] as { tick: bigint; bytes: Uint8Array };
      logs.set(l.tick, l.bytes);
      const h = s.postHashes.subarray(i * 32, i * 32 + 32);
      if (h.length === 32 && !equalBytes(h, NO_HASH)) hashes.set(l.tick, h);
    }
  }
  const last = checkpoints.at(-1);
  if (!last || problems.length > 0) return { start: null, chain: null, checkpointTicks: [], problems };
  // Walk back from the newest checkpoint while every tick is covered by a stored segment, a segment
  // at a time: the covering segment that starts lowest covers every tick from its start to t. The
  // segments are taken newest end first, once each: of those ending at t or later, the one starting
  // lowest covers t if it starts at t or earlier, and none does otherwise. (Looking over every segment
  // at each step cost segments²: 190 s of `igord verify --replay` at 20,000 segments.)
  const byEnd = [...segments].sort((a, b) => (a.toTick > b.toTick ? -1 : a.toTick < b.toTick ? 1 : 0));
  let taken = 0;
  let low: bigint | null = null;
  let t = last.tick;
  while (t > 0n) {
    for (; taken < byEnd.length && (byEnd[taken] as AuditSegment).toTick >= t; taken++) {
      const from = (byEnd[taken] as AuditSegment).fromTick;
      if (low === null || from < low) low = from;
    }
    if (low === null || low > t) break;
    t = low > 0n ? low - 1n : 0n;
  }
  const start = checkpoints.find((c) => c.tick >= t && c.tick < last.tick) ?? null;
  if (!start) return { start: null, chain: null, checkpointTicks: [], problems: ["no checkpoint is followed by a complete run of stored event logs"] };
  const byTick = new Map(checkpoints.map((c) => [c.tick, c]));
  const checkpointTicks: bigint[] = [];
  const chain = buildChain(start.tick + 1n, Number(last.tick - start.tick), start.state, (tick) => {
    const cp = byTick.get(tick);
    if (cp) checkpointTicks.push(tick);
    // Every tick's recorded state hash; a checkpoint's own state where one was taken (resumed in a
    // fresh instance after it: replay/chain.ts CHECKPOINTED).
    return { log: logs.get(tick), hash: cp ? sha256(cp.state) : hashes.get(tick), checkpoint: cp !== undefined };
  });
  return { start, chain, checkpointTicks, problems };
}

export interface ModuleRun {
  wasmHash: string;
  /** Item indices [from, to). */
  from: number;
  to: number;
}

/**
 * Splits replay items by the module that ran them: a tick ran the code named by the checkpoint that
 * closes it (the first at or after it), since an upgrade takes effect right after a checkpoint.
 */
export function moduleRuns(items: readonly { tick: bigint }[], checkpoints: readonly { tick: bigint; wasmHash: string }[]): ModuleRun[] {
  const runs: ModuleRun[] = [];
  let c = 0;
  items.forEach((item, i) => {
    while (c < checkpoints.length - 1 && (checkpoints[c] as { tick: bigint }).tick < item.tick) c++;
    const wasmHash = (checkpoints[c] as { wasmHash: string }).wasmHash;
    const last = runs.at(-1);
    if (last && last.wasmHash === wasmHash) last.to = i + 1;
    else runs.push({ wasmHash, from: i, to: i + 1 });
  });
  return runs;
}
