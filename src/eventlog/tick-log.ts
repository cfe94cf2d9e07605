// The per-tick observation log. Every hostcall invocation — success, error or zero-length — appends
// exactly one entry: its hostcall id, the result code it returned, and the observed payload.
// Binary form (little-endian): [u64 tick][u32 count] then per entry [u16 id][i32 result][u32 len][payload].
import { ErrorCode, IgordError } from "../errors.js";

export interface LogEntry {
  id: number;
  result: number;
  payload: Uint8Array;
}

export interface TickLog {
  tick: bigint;
  entries: LogEntry[];
  /** SHA-256 of the state the tick produced (kept beside the log, not in its encoding). */
  postHash?: Uint8Array;
}

/** Decoding refuses logs that claim more than this many entries or bytes. */
export const MAX_TICK_LOG_ENTRIES = 1_000_000;
export const MAX_TICK_LOG_BYTES = 256 * 1024 * 1024;

/** Bytes that are not a tick log or segment: every reader (restart, audit, admission, timeline) reports it coded. */
export class TickLogFormatError extends IgordError {
  constructor(message: string) {
    super(ErrorCode.EventLogInvalid, message);
  }
}

export function encodedSize(log: TickLog): number {
  let n = 12;
  for (const e of log.entries) n += 10 + e.payload.length;
  return n;
}

export function encodeTickLog(log: TickLog): Uint8Array {
  const out = new Uint8Array(encodedSize(log));
  writeTickLog(log, out, new DataView(out.buffer), 0);
  return out;
}

/** Writes the log's encoding at `off` of `out` (viewed by `dv`); returns the offset after it. */
function writeTickLog(log: TickLog, out: Uint8Array, dv: DataView, off: number): number {
  dv.setBigUint64(off, log.tick, true);
  dv.setUint32(off + 8, log.entries.length, true);
  off += 12;
  for (const e of log.entries) {
    dv.setUint16(off, e.id, true);
    dv.setInt32(off + 2, e.result, true);
    dv.setUint32(off + 6, e.payload.length, true);
    out.set(e.payload, off + 10);
    off += 10 + e.payload.length;
  }
  return off;
}

/**
 * The stored event logs of the ticks since a checkpoint: [fromTick, toTick] is the range covered;
 * `blob` holds the logs of the ticks that observed something (encodeSegment), `postHashes` their
 * resulting states' SHA-256 (32 bytes each, same order), recorded under these ABI/engine versions.
 */
export interface EventLogSegment {
  fromTick: bigint;
  toTick: bigint;
  abiVersion: number;
  engineVersion: number;
  blob: Uint8Array;
  postHashes: Uint8Array;
  /** The agent's Ed25519 signature binding the segment to its lineage (replay/segment-seal.ts); absent on segments from before igord signed them. */
  signature?: Uint8Array;
  /** Run seal (v2, replay/run-seal.ts): `signature` is its run's, and this the segment's inclusion proof. */
  runProof?: Uint8Array;
  /** On a segment of a run still open on the node that recorded it: its run-seal leaf, to be sealed. */
  leaf?: Uint8Array;
}

/** Bytes of a segment's body before its post-state hashes (replay/audit-plan.ts encodeSegmentBody). */
export const SEGMENT_BODY_HEADER_BYTES = 28;
const ZERO_HASH = new Uint8Array(32);

/**
 * A segment encoded straight into its body form (what its seal hashes; encodeSegmentBody's layout:
 * [u32 abi][u32 engine][u64 from][u64 to][u32 hashes len][hashes][logs]) in one buffer; `blob` and
 * `postHashes` are views into `body`, so the checkpoint's hot path builds no second copy to hash.
 * A log without a 32-byte post hash contributes 32 zero bytes, as before.
 */
export function encodeSegmentWithBody(
  logs: readonly TickLog[],
  head: { fromTick: bigint; toTick: bigint; abiVersion: number; engineVersion: number },
  /** Where the body's bytes come from (every byte is written); a fresh array by default. */
  alloc?: (size: number) => Uint8Array,
): { body: Uint8Array; blob: Uint8Array; postHashes: Uint8Array } {
  const hashesLen = logs.length * 32;
  let size = SEGMENT_BODY_HEADER_BYTES + hashesLen;
  for (const log of logs) size += encodedSize(log);
  const body = alloc ? alloc(size) : new Uint8Array(size);
  const dv = new DataView(body.buffer, body.byteOffset, body.length);
  dv.setUint32(0, head.abiVersion, true);
  dv.setUint32(4, head.engineVersion, true);
  dv.setBigUint64(8, head.fromTick, true);
  dv.setBigUint64(16, head.toTick, true);
  dv.setUint32(24, hashesLen, true);
  let off = SEGMENT_BODY_HEADER_BYTES;
  for (const log of logs) {
    body.set(log.postHash?.length === 32 ? log.postHash : ZERO_HASH, off);
    off += 32;
  }
  const blobStart = off;
  for (const log of logs) off = writeTickLog(log, body, dv, off);
  return { body, blob: body.subarray(blobStart), postHashes: body.subarray(SEGMENT_BODY_HEADER_BYTES, blobStart) };
}

/** A segment: several tick logs back to back (each self-delimiting). */
export function encodeSegment(logs: readonly TickLog[]): Uint8Array {
  // One buffer for the whole segment (a checkpoint encodes one on the daemon's hot path).
  let size = 0;
  for (const log of logs) size += encodedSize(log);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  let off = 0;
  for (const log of logs) off = writeTickLog(log, out, dv, off);
  return out;
}

export function decodeSegment(bytes: Uint8Array): TickLog[] {
  return segmentLogSpans(bytes).map((l) => decodeTickLog(l.bytes));
}

/** The tick logs an encoded segment holds, each with its post-state hash (copied out of the body). */
export function logsOfSegment(events: Pick<EventLogSegment, "blob" | "postHashes">): TickLog[] {
  const logs = decodeSegment(events.blob);
  for (let i = 0; i < logs.length; i++) logs[i]!.postHash = events.postHashes.slice(i * 32, i * 32 + 32);
  return logs;
}

/**
 * The tick logs of a segment as views of its bytes, each checked as decodeTickLog checks it, without
 * decoding entries: a long chain is replayed from the encoded logs, decoded one tick at a time.
 */
export function segmentLogSpans(bytes: Uint8Array): { tick: bigint; bytes: Uint8Array }[] {
  const logs: { tick: bigint; bytes: Uint8Array }[] = [];
  let off = 0;
  while (off < bytes.length) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset + off, bytes.length - off);
    if (bytes.length - off < 12) throw new TickLogFormatError(`segment truncated at byte ${off}`);
    const count = dv.getUint32(8, true);
    let end = 12;
    for (let i = 0; i < count; i++) {
      if (end + 10 > dv.byteLength) throw new TickLogFormatError(`segment truncated in a tick log at byte ${off}`);
      end += 10 + dv.getUint32(end + 6, true);
    }
    const log = bytes.subarray(off, off + end);
    walkTickLog(log, null);
    logs.push({ tick: dv.getBigUint64(0, true), bytes: log });
    off += end;
  }
  return logs;
}

/** `views`: payloads are views of `bytes` (which must then not change) instead of copies. */
export function decodeTickLog(bytes: Uint8Array, views = false): TickLog {
  const entries: LogEntry[] = [];
  const tick = walkTickLog(bytes, (id, result, from, to) => entries.push({ id, result, payload: views ? bytes.subarray(from, to) : bytes.slice(from, to) }));
  return { tick, entries };
}

/** Checks a tick log's framing and hands each entry to `entry` (payload as a byte range). */
function walkTickLog(bytes: Uint8Array, entry: ((id: number, result: number, from: number, to: number) => void) | null): bigint {
  if (bytes.length > MAX_TICK_LOG_BYTES)
    throw new TickLogFormatError(`tick log of ${bytes.length} bytes is too large`);
  if (bytes.length < 12)
    throw new TickLogFormatError(`tick log of ${bytes.length} bytes is shorter than its 12-byte header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const tick = dv.getBigUint64(0, true);
  const count = dv.getUint32(8, true);
  if (count > MAX_TICK_LOG_ENTRIES) throw new TickLogFormatError(`tick log claims ${count} entries`);
  let off = 12;
  for (let i = 0; i < count; i++) {
    if (off + 10 > bytes.length) throw new TickLogFormatError(`tick log truncated in entry ${i} header`);
    const len = dv.getUint32(off + 6, true);
    if (off + 10 + len > bytes.length)
      throw new TickLogFormatError(`tick log truncated in entry ${i} payload`);
    entry?.(dv.getUint16(off, true), dv.getInt32(off + 2, true), off + 10, off + 10 + len);
    off += 10 + len;
  }
  if (off !== bytes.length)
    throw new TickLogFormatError(`tick log has ${bytes.length - off} trailing bytes`);
  return tick;
}
