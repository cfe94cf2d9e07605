// igor's binary checkpoint format (see docs/CHECKPOINT_FORMAT.md). Reads v0x02, v0x03, v0x04 and
// v0x05; writes v0x05. Little-endian. A version byte is never reused: a new field, or a new meaning
// of the signature, means a new version.
import { ErrorCode, IgordError } from "../errors.js";
import { MAX_EPOCH_PART } from "../authority/lease.js";

/** v0x05 is v0x04's layout; only what its signature covers differs (lineage.ts). */
export const HEADER_SIZE = { 2: 57, 3: 81, 4: 209, 5: 209 } as const;
export type CheckpointVersion = keyof typeof HEADER_SIZE;
export const CURRENT_VERSION = 5 as const;
/** The first version that carries a signature (v0x02 and v0x03 carry none). */
export const FIRST_SIGNED_VERSION = 4;
/** The signature covers everything except the 64-byte signature slot. */
export const SIGNATURE_OFFSET = 145;
/** Where the 32-byte SHA-256 of the module that made the checkpoint sits, in every version. */
export const WASM_HASH_OFFSET = 25;
/**
 * The largest tick a node holds: the header carries an unsigned 64-bit tick, but a node stores ticks
 * as SQLite INTEGER (signed 64-bit). An agent at this tick runs no more (TICK_LIMIT, scheduler).
 */
export const MAX_TICK = 2n ** 63n - 1n;
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;
/** Refuse checkpoints larger than this before touching them. */
export const MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024 + HEADER_SIZE[CURRENT_VERSION];

export interface CheckpointFields {
  budget: bigint;
  price: bigint;
  tick: bigint;
  wasmHash: Uint8Array;
  epochMajor: bigint;
  epochGeneration: bigint;
  /** Unix ns; 0 = no lease. */
  leaseExpiry: bigint;
  prevHash: Uint8Array;
  publicKey: Uint8Array;
}

export interface Checkpoint extends CheckpointFields {
  version: CheckpointVersion;
  headerSize: number;
  /** Zeros for v2/v3 (unsigned formats). */
  signature: Uint8Array;
  state: Uint8Array;
  bytes: Uint8Array;
}

const ZERO32 = new Uint8Array(32);

function bad(code: (typeof ErrorCode)[keyof typeof ErrorCode], message: string): never {
  throw new IgordError(code, message);
}

export function parseCheckpoint(bytes: Uint8Array, what = "checkpoint"): Checkpoint {
  if (bytes.length === 0) bad(ErrorCode.CheckpointTruncated, `${what} is empty (0 bytes)`);
  if (bytes.length > MAX_CHECKPOINT_BYTES) bad(ErrorCode.CheckpointTruncated, `${what} is ${bytes.length} bytes, above the limit`);
  const version = bytes[0] as number;
  if (version !== 2 && version !== 3 && version !== 4 && version !== 5) {
    bad(ErrorCode.CheckpointVersion, `${what} has unknown version byte 0x${version.toString(16).padStart(2, "0")} (readable: 0x02, 0x03, 0x04, 0x05)`);
  }
  const headerSize = HEADER_SIZE[version];
  if (bytes.length < headerSize) {
    bad(ErrorCode.CheckpointTruncated, `${what} is ${bytes.length} bytes, shorter than the ${headerSize}-byte v0x0${version} header`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const budget = dv.getBigInt64(1, true);
  const price = dv.getBigInt64(9, true);
  if (budget < 0n) bad(ErrorCode.CheckpointInvalid, `${what} has a negative budget (${budget})`);
  if (price < 0n) bad(ErrorCode.CheckpointInvalid, `${what} has a negative price (${price})`);
  const tick = dv.getBigUint64(17, true);
  if (tick > MAX_TICK) bad(ErrorCode.CheckpointInvalid, `${what} has tick ${tick} past ${MAX_TICK}, the largest a node stores`);
  const epochMajor = version >= 3 ? dv.getBigUint64(57, true) : 0n;
  const epochGeneration = version >= 3 ? dv.getBigUint64(65, true) : 0n;
  if (epochMajor > MAX_EPOCH_PART) bad(ErrorCode.CheckpointInvalid, `${what} has epoch major ${epochMajor} past ${MAX_EPOCH_PART}, the largest a node stores`);
  if (epochGeneration > MAX_EPOCH_PART) bad(ErrorCode.CheckpointInvalid, `${what} has epoch generation ${epochGeneration} past ${MAX_EPOCH_PART}, the largest a node stores`);
  const sub = (o: number, n: number) => bytes.slice(o, o + n);
  return {
    version,
    headerSize,
    budget,
    price,
    tick,
    wasmHash: sub(WASM_HASH_OFFSET, 32),
    epochMajor,
    epochGeneration,
    leaseExpiry: version >= 3 ? dv.getBigUint64(73, true) : 0n,
    prevHash: version >= FIRST_SIGNED_VERSION ? sub(81, 32) : ZERO32.slice(),
    publicKey: version >= FIRST_SIGNED_VERSION ? sub(113, 32) : ZERO32.slice(),
    signature: version >= FIRST_SIGNED_VERSION ? sub(145, 64) : new Uint8Array(64),
    state: bytes.slice(headerSize),
    bytes,
  };
}

/**
 * A checkpoint's tick and budget, read from its header in place (parseCheckpoint copies the state and
 * every hash): for blobs parsed and verified before, looked at again by these two fields.
 */
export function checkpointTickAndBudget(bytes: Uint8Array): { tick: bigint; budget: bigint } {
  if (bytes.length < 25) bad(ErrorCode.CheckpointTruncated, `checkpoint is ${bytes.length} bytes, shorter than its tick`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  return { tick: dv.getBigUint64(17, true), budget: dv.getBigInt64(1, true) };
}

/** Whether a checkpoint of this version carries a signature (v0x04 and later). */
export function isSigned(cp: Pick<Checkpoint, "version">): boolean {
  return cp.version >= FIRST_SIGNED_VERSION;
}

/**
 * Encodes a v0x05 checkpoint with an empty signature slot (see lineage.signCheckpoint); into `out`
 * when given (exactly the checkpoint's length: every byte is written, the signature slot zeroed).
 */
export function encodeCheckpoint(f: CheckpointFields, state: Uint8Array, out?: Uint8Array): Uint8Array {
  // Checked one by one (a checkpoint is encoded per agent per round: no arrays built to check them).
  if (f.wasmHash.length !== 32) throw new RangeError("wasmHash must be 32 bytes");
  if (f.prevHash.length !== 32) throw new RangeError("prevHash must be 32 bytes");
  if (f.publicKey.length !== 32) throw new RangeError("publicKey must be 32 bytes");
  if (f.budget < 0n) throw new RangeError(`budget ${f.budget} is negative`);
  // The header's fields would wrap (DataView keeps the low 64 bits): refused instead.
  if (f.budget > I64_MAX || f.price < 0n || f.price > I64_MAX) throw new RangeError(`budget ${f.budget} or price ${f.price} is outside 0..${I64_MAX}`);
  if (f.tick < 0n || f.tick > MAX_TICK) throw new RangeError(`tick ${f.tick} is outside 0..${MAX_TICK}`);
  if (f.epochMajor < 0n || f.epochMajor > MAX_EPOCH_PART || f.epochGeneration < 0n || f.epochGeneration > MAX_EPOCH_PART) {
    throw new RangeError(`epoch (${f.epochMajor},${f.epochGeneration}) has a part outside 0..${MAX_EPOCH_PART}`);
  }
  if (f.leaseExpiry < 0n || f.leaseExpiry > U64_MAX) throw new RangeError(`lease expiry ${f.leaseExpiry} is outside 0..${U64_MAX}`);
  const size = HEADER_SIZE[CURRENT_VERSION] + state.length;
  if (out === undefined) out = new Uint8Array(size);
  else if (out.length !== size) throw new RangeError(`a checkpoint of this state is ${size} bytes, not ${out.length}`);
  else out.fill(0, SIGNATURE_OFFSET, HEADER_SIZE[CURRENT_VERSION]);
  const dv = new DataView(out.buffer, out.byteOffset, out.length);
  out[0] = CURRENT_VERSION;
  dv.setBigInt64(1, f.budget, true);
  dv.setBigInt64(9, f.price, true);
  dv.setBigUint64(17, f.tick, true);
  out.set(f.wasmHash, WASM_HASH_OFFSET);
  dv.setBigUint64(57, f.epochMajor, true);
  dv.setBigUint64(65, f.epochGeneration, true);
  dv.setBigUint64(73, f.leaseExpiry, true);
  out.set(f.prevHash, 81);
  out.set(f.publicKey, 113);
  out.set(state, HEADER_SIZE[CURRENT_VERSION]);
  return out;
}
