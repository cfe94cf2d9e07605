// A batch of checkpoint commits packed for the commit thread (store/commit-thread.ts) in one
// transferred buffer: cloning ~300 commit objects with postMessage cost the main thread ~8 µs per
// checkpoint (a sixth of its time), and the byte arrays the commits hold are views into larger
// buffers (a segment's body, a signer thread's reply), each of which a clone copies whole. The
// fields every periodic checkpoint has are written here; any other field (a receipt, an outbox,
// a pruning plan, lost payments, or one a later change adds) travels beside the buffer by
// structured clone, so no field is ever dropped on the way. A segment's run-seal leaf and the run
// seal a run's last checkpoint carries are packed too: every segment has a leaf, and one in the
// extras sent its whole segment (and the body buffer its arrays view) by structured clone.
import type { SealedRun } from "../replay/run-seal.js";
import type { CheckpointCommit, EventLogSegment } from "./types.js";

export interface PackedCommits {
  count: number;
  data: Uint8Array;
  /** Per commit, the fields not in `data` (null: none). */
  extras: (Record<string, unknown> | null)[] | null;
}

const FLAG_LEASE = 1;
const FLAG_EVENTS = 2;
const FLAG_SIGNATURE = 4;
const FLAG_SETTLED = 8;
const FLAG_LEAF = 16;
const FLAG_RUN_SEAL = 32;
const FLAG_TICK_AT = 64;
const NULL_STRING = 0xffff_ffff;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Fields written into the buffer (others go in extras); receipt only when null. */
const PACKED = new Set(["agentId", "tick", "budget", "hash", "prevHash", "blob", "reason", "receipt", "status", "statusReason", "events", "lease", "settledPayments", "runSeal", "tickAt"]);
const PACKED_EVENTS = new Set(["fromTick", "toTick", "abiVersion", "engineVersion", "blob", "postHashes", "signature", "leaf"]);
const PACKED_RUN_SEAL = new Set(["fromTick", "toTick", "leaves", "signature"]);
const PACKED_LEASE = new Set(["state", "epoch"]);

function onlyKeys(o: object, known: ReadonlySet<string>): boolean {
  for (const k in o) if (!known.has(k)) return false;
  return true;
}

/** Char codes below this are ASCII: one UTF-8 byte each, the same value. */
const ASCII_END = 0x80;
/** A new pack buffer is this much larger than its batch needs, so the next batches fit when it comes back. */
const PACK_HEADROOM = 1.5;

/** Upper bound of a string's UTF-8 bytes plus its length field. */
const strBound = (s: string | null): number => 4 + (s === null ? 0 : s.length * 3);

/**
 * Packs `commits`; into `spare` when it is large enough (a buffer the commit thread sent back: a
 * fresh one per batch, a few hundred KiB, was mapped and its pages faulted in on every batch, and
 * unmapped again by the thread that freed it), else into a new buffer with room to be reused.
 */
export function packCommits(commits: readonly CheckpointCommit[], spare?: ArrayBuffer): PackedCommits {
  let size = 0;
  let extras: (Record<string, unknown> | null)[] | null = null;
  const flags = new Uint8Array(commits.length);
  for (let i = 0; i < commits.length; i++) {
    const c = commits[i] as CheckpointCommit;
    let f = 0;
    let extra: Record<string, unknown> | null = null;
    for (const k in c) {
      if (PACKED.has(k) && !(k === "receipt" && c.receipt !== null)) continue;
      const v = (c as unknown as Record<string, unknown>)[k];
      if (v !== undefined) (extra ??= {})[k] = v;
    }
    size += strBound(c.agentId) + 16 + 4 + c.hash.length + 4 + c.prevHash.length + 4 + c.blob.length + strBound(c.reason) + strBound(c.status) + strBound(c.statusReason) + 1;
    if (c.lease) {
      if (onlyKeys(c.lease, PACKED_LEASE)) {
        f |= FLAG_LEASE;
        size += strBound(c.lease.state) + 16;
      } else (extra ??= {}).lease = c.lease;
    }
    const e = c.events;
    if (e) {
      if (onlyKeys(e, PACKED_EVENTS)) {
        f |= FLAG_EVENTS;
        size += 24 + 4 + e.blob.length + 4 + e.postHashes.length;
        if (e.signature) {
          f |= FLAG_SIGNATURE;
          size += 4 + e.signature.length;
        }
        if (e.leaf) {
          f |= FLAG_LEAF;
          size += 4 + e.leaf.length;
        }
      } else (extra ??= {}).events = e;
    }
    const r = c.runSeal;
    if (r) {
      if (onlyKeys(r, PACKED_RUN_SEAL)) {
        f |= FLAG_RUN_SEAL;
        size += 16 + 4 + 4 + r.signature.length;
        for (const l of r.leaves) size += 4 + l.length;
      } else (extra ??= {}).runSeal = r;
    }
    if (c.tickAt !== undefined) {
      f |= FLAG_TICK_AT;
      size += 8;
    }
    if (c.settledPayments) {
      f |= FLAG_SETTLED;
      size += 4;
      for (const h of c.settledPayments) size += 4 + h.length;
    }
    flags[i] = f;
    if (extra) (extras ??= new Array<Record<string, unknown> | null>(commits.length).fill(null))[i] = extra;
  }
  const buf = spare && spare.byteLength >= size ? Buffer.from(spare, 0, spare.byteLength) : Buffer.allocUnsafeSlow(Math.ceil(size * PACK_HEADROOM));
  // 64-bit fields through a DataView: Buffer's writeBigInt64LE splits the value with bigint
  // arithmetic, allocating several bigints per field (~2 % of the main thread's allocation).
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  let off = 0;
  const i64 = (v: bigint): void => {
    // setBigInt64 wraps a value out of range where writeBigInt64LE threw: refused as before.
    if (v < INT64_MIN || v > INT64_MAX) throw new RangeError(`a commit's 64-bit field is out of range: ${v}`);
    dv.setBigInt64(off, v, true);
    off += 8;
  };
  const bytes = (b: Uint8Array): void => {
    off = buf.writeUInt32LE(b.length, off);
    buf.set(b, off);
    off += b.length;
  };
  const str = (s: string | null): void => {
    if (s === null) {
      off = buf.writeUInt32LE(NULL_STRING, off);
      return;
    }
    // ASCII (agent ids, reasons, statuses, lease states) is its own UTF-8, written here; Buffer's
    // encoder (a native call, ~100 ns each, five strings a commit) only for anything else.
    const at = off + 4;
    let n = 0;
    for (; n < s.length; n++) {
      const ch = s.charCodeAt(n);
      if (ch >= ASCII_END) break;
      buf[at + n] = ch;
    }
    if (n < s.length) n = buf.write(s, at, "utf8");
    buf.writeUInt32LE(n, off);
    off = at + n;
  };
  for (let i = 0; i < commits.length; i++) {
    const c = commits[i] as CheckpointCommit;
    const f = flags[i] as number;
    str(c.agentId);
    i64(c.tick);
    i64(c.budget);
    bytes(c.hash);
    bytes(c.prevHash);
    bytes(c.blob);
    str(c.reason);
    str(c.status);
    str(c.statusReason);
    buf[off++] = f;
    if (f & FLAG_LEASE) {
      const l = c.lease as NonNullable<CheckpointCommit["lease"]>;
      str(l.state);
      i64(l.epoch.major);
      i64(l.epoch.generation);
    }
    if (f & FLAG_EVENTS) {
      const e = c.events as EventLogSegment;
      i64(e.fromTick);
      i64(e.toTick);
      off = buf.writeUInt32LE(e.abiVersion, off);
      off = buf.writeUInt32LE(e.engineVersion, off);
      bytes(e.blob);
      bytes(e.postHashes);
      if (f & FLAG_SIGNATURE) bytes(e.signature as Uint8Array);
      if (f & FLAG_LEAF) bytes(e.leaf as Uint8Array);
    }
    if (f & FLAG_RUN_SEAL) {
      const r = c.runSeal as SealedRun;
      i64(r.fromTick);
      i64(r.toTick);
      off = buf.writeUInt32LE(r.leaves.length, off);
      for (const l of r.leaves) bytes(l);
      bytes(r.signature);
    }
    if (f & FLAG_TICK_AT) {
      dv.setFloat64(off, c.tickAt as number, true);
      off += 8;
    }
    if (f & FLAG_SETTLED) {
      const hashes = c.settledPayments as readonly Uint8Array[];
      off = buf.writeUInt32LE(hashes.length, off);
      for (const h of hashes) bytes(h);
    }
  }
  return { count: commits.length, data: buf.subarray(0, off), extras };
}

/** The commits packed by packCommits (byte fields are views into `p.data`). */
export function unpackCommits(p: PackedCommits): CheckpointCommit[] {
  const buf = Buffer.from(p.data.buffer, p.data.byteOffset, p.data.length);
  const dv = new DataView(p.data.buffer, p.data.byteOffset, p.data.length);
  let off = 0;
  const bytes = (): Buffer => {
    const n = buf.readUInt32LE(off);
    off += 4;
    const b = buf.subarray(off, off + n);
    off += n;
    return b;
  };
  const str = (): string | null => {
    const n = buf.readUInt32LE(off);
    off += 4;
    if (n === NULL_STRING) return null;
    const s = buf.toString("utf8", off, off + n);
    off += n;
    return s;
  };
  const i64 = (): bigint => {
    const v = dv.getBigInt64(off, true);
    off += 8;
    return v;
  };
  const u32 = (): number => {
    const v = buf.readUInt32LE(off);
    off += 4;
    return v;
  };
  const out: CheckpointCommit[] = [];
  for (let i = 0; i < p.count; i++) {
    const agentId = str() as string;
    const tick = i64();
    const budget = i64();
    const hash = bytes();
    const prevHash = bytes();
    const blob = bytes();
    const reason = str() as string;
    const status = str() as CheckpointCommit["status"];
    const statusReason = str();
    const c: CheckpointCommit = { agentId, tick, budget, hash, prevHash, blob, reason, receipt: null, status, statusReason };
    const f = buf[off++] as number;
    if (f & FLAG_LEASE) {
      const state = str() as NonNullable<CheckpointCommit["lease"]>["state"];
      const major = i64();
      c.lease = { state, epoch: { major, generation: i64() } };
    }
    if (f & FLAG_EVENTS) {
      const fromTick = i64();
      const toTick = i64();
      const abiVersion = u32();
      const engineVersion = u32();
      const e: EventLogSegment = { fromTick, toTick, abiVersion, engineVersion, blob: bytes(), postHashes: bytes() };
      if (f & FLAG_SIGNATURE) e.signature = bytes();
      if (f & FLAG_LEAF) e.leaf = bytes();
      c.events = e;
    }
    if (f & FLAG_RUN_SEAL) {
      const fromTick = i64();
      const toTick = i64();
      const n = u32();
      const leaves: Uint8Array[] = [];
      for (let k = 0; k < n; k++) leaves.push(bytes());
      c.runSeal = { fromTick, toTick, leaves, signature: bytes() };
    }
    if (f & FLAG_TICK_AT) {
      c.tickAt = dv.getFloat64(off, true);
      off += 8;
    }
    if (f & FLAG_SETTLED) {
      const n = u32();
      const hashes: Uint8Array[] = [];
      for (let k = 0; k < n; k++) hashes.push(bytes());
      c.settledPayments = hashes;
    }
    const extra = p.extras?.[i];
    out.push(extra ? Object.assign(c, extra) : c);
  }
  return out;
}
