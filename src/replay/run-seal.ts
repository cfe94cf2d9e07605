// The run seal (segment seal v2): one signature with the agent's key over a run of consecutive
// event-log segments, instead of one per segment (replay/segment-seal.ts has v1, still read).
//   leaf      = SHA-256(prevHash ‖ SHA-256(segment body))   (prevHash: the checkpoint before it)
//   root      = Merkle tree hash of the run's leaves, in order (RFC 9162 §2.1 shape: interior nodes
//               SHA-256(0x01 ‖ left ‖ right), the left subtree the largest power of two below n;
//               a leaf is not hashed again — it is 64 bytes of input, a node 65)
//   signature = Ed25519(agent key, "igord-event-run-v2" ‖ u32 count ‖ root)
// Each segment carries the run's signature and its inclusion proof ([u32 index][u32 count][32-byte
// sibling hashes, leaf upwards]), so it is checked alone: the leaf recomputed from its body and the
// closing checkpoint's prevHash must lead to a root the agent signed. A segment changed, or moved to
// another place in the history, fails exactly as under v1.
// A checkpoint signs 1 + 1/RUN_SEAL_SEGMENTS times instead of twice. The newest run stays open (its
// rows carry their leaves, unsigned) until it is full; it is sealed before anything leaves the node or
// is verified, and at start after a crash (sealOpenRuns).
import { sha256, sha256Into } from "../hash/bytes.js";
import { type Ed25519Key, signBytes, verifyBytes } from "../identity/keys.js";

/** Segments (with observations) per run seal: a checkpoint costs 1 + 1/RUN_SEAL_SEGMENTS signatures. */
export const RUN_SEAL_SEGMENTS = 16;
/** A proof claiming a larger run is refused (a run is never larger than the node's constant; this bounds what a peer sends). */
export const MAX_RUN_SEAL_SEGMENTS = 1 << 16;

const DOMAIN = new TextEncoder().encode("igord-event-run-v2");
/** 0x01 ‖ left ‖ right, rewritten for each interior node (a fresh concat per node showed on the checkpoint path). */
const NODE_INPUT = new Uint8Array(65);
NODE_INPUT[0] = 1;

const LEAF_INPUT = new Uint8Array(64);

/**
 * A segment's run-seal leaf from its encoded body, SHA-256(prevHash ‖ SHA-256(body)): the body's
 * digest goes straight into the leaf's input, and the leaf into `out` when given (32 bytes: the
 * checkpointer carves it from its slab).
 */
export function runLeafOfBody(prevHash: Uint8Array, body: Uint8Array, out?: Uint8Array): Uint8Array {
  if (prevHash.length !== 32) throw new RangeError("prevHash must be 32 bytes");
  LEAF_INPUT.set(prevHash, 0);
  sha256Into(body, LEAF_INPUT, 32);
  return out ? sha256Into(LEAF_INPUT, out, 0) : sha256(LEAF_INPUT);
}

function node(left: Uint8Array, right: Uint8Array): Uint8Array {
  NODE_INPUT.set(left, 1);
  NODE_INPUT.set(right, 33);
  return sha256(NODE_INPUT);
}

/** The largest power of two strictly below n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) throw new RangeError("a run has at least one segment");
  return rootOf(leaves, 0, leaves.length);
}

/** The root of leaves[lo, hi): both subtrees are hashed before their node is. */
function rootOf(leaves: readonly Uint8Array[], lo: number, hi: number): Uint8Array {
  if (hi - lo === 1) return leaves[lo] as Uint8Array;
  const k = split(hi - lo);
  const left = rootOf(leaves, lo, lo + k);
  return node(left, rootOf(leaves, lo + k, hi));
}

/** The root and every leaf's inclusion path (siblings from the leaf upwards), in O(n log n) hashes. */
export function merklePaths(leaves: readonly Uint8Array[]): { root: Uint8Array; paths: Uint8Array[][] } {
  if (leaves.length === 0) throw new RangeError("a run has at least one segment");
  if (leaves.length === 1) return { root: leaves[0] as Uint8Array, paths: [[]] };
  const k = split(leaves.length);
  const l = merklePaths(leaves.slice(0, k));
  const r = merklePaths(leaves.slice(k));
  return { root: node(l.root, r.root), paths: [...l.paths.map((p) => [...p, r.root]), ...r.paths.map((p) => [...p, l.root])] };
}

/** The root an inclusion path leads to (RFC 9162 §2.1.3.2), or null when the path cannot belong to a tree of `count` leaves. */
export function rootFromPath(leaf: Uint8Array, index: number, count: number, path: readonly Uint8Array[]): Uint8Array | null {
  if (index >= count) return null;
  let fn = index;
  let sn = count - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = node(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = node(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

export function runSigningBytes(count: number, root: Uint8Array): Uint8Array {
  const out = new Uint8Array(DOMAIN.length + 4 + 32);
  out.set(DOMAIN, 0);
  new DataView(out.buffer).setUint32(DOMAIN.length, count, true);
  out.set(root, DOMAIN.length + 4);
  return out;
}

export interface RunProof {
  index: number;
  count: number;
  path: Uint8Array[];
}

export function encodeRunProof(p: RunProof): Uint8Array {
  const out = new Uint8Array(8 + 32 * p.path.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, p.index, true);
  dv.setUint32(4, p.count, true);
  p.path.forEach((h, i) => out.set(h, 8 + 32 * i));
  return out;
}

/** null when the bytes are not a proof of a run this node would accept. */
export function decodeRunProof(b: Uint8Array): RunProof | null {
  if (b.length < 8 || (b.length - 8) % 32 !== 0) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const index = dv.getUint32(0, true);
  const count = dv.getUint32(4, true);
  if (count === 0 || count > MAX_RUN_SEAL_SEGMENTS || index >= count) return null;
  const path: Uint8Array[] = [];
  for (let off = 8; off < b.length; off += 32) path.push(b.subarray(off, off + 32));
  return { index, count, path };
}

/** Why `leaf` is not sealed by `signature` under `publicKey` with this proof, or null when it is. */
export function runSealProblem(publicKey: Uint8Array, leaf: Uint8Array, proofBytes: Uint8Array, signature: Uint8Array): string | null {
  const proof = decodeRunProof(proofBytes);
  if (!proof) return "carries a malformed run-seal proof";
  const root = rootFromPath(leaf, proof.index, proof.count, proof.path);
  if (!root) return "carries a run-seal proof that fits no run of its size";
  if (signature.length !== 64 || !verifyBytes(publicKey, runSigningBytes(proof.count, root), signature)) {
    return "is not signed by the agent's key in its sealed run (altered after it was recorded, or moved from elsewhere in the history)";
  }
  return null;
}

/** A sealed run as stored: its segments' tick span, its leaves in order, the signature over their root. */
export interface SealedRun {
  fromTick: bigint;
  toTick: bigint;
  leaves: Uint8Array[];
  signature: Uint8Array;
}

/** Seals a run with the agent's key (on the calling thread: off the checkpoint path only). */
export function sealRun(key: Ed25519Key, run: Omit<SealedRun, "signature">): SealedRun {
  return { ...run, signature: signBytes(key, runSigningBytes(run.leaves.length, merkleRoot(run.leaves))) };
}

/** Each leaf's seal in a run: the run's signature and the leaf's encoded proof. */
export function runProofs(run: Pick<SealedRun, "leaves" | "signature">): { leaf: Uint8Array; proof: Uint8Array; signature: Uint8Array }[] {
  const { paths } = merklePaths(run.leaves);
  return run.leaves.map((leaf, index) => ({ leaf, proof: encodeRunProof({ index, count: run.leaves.length, path: paths[index] as Uint8Array[] }), signature: run.signature }));
}

/** A segment row whose run is still open: its leaf, no seal yet. */
export interface OpenSegment {
  fromTick: bigint;
  toTick: bigint;
  leaf?: Uint8Array;
  runProof?: Uint8Array;
  signature?: Uint8Array;
}

/**
 * Segments (oldest first) with those of open runs sealed in memory, as one run, with `key`: what a
 * reader of a store it may not write (export, `verify --agent`) hands on. The seal vouches for the
 * rows as stored, as a seal made at write time by the same node would (the key is in the same store).
 */
export function sealOpenInMemory<S extends OpenSegment>(segments: readonly S[], key: Ed25519Key): S[] {
  const open = segments.filter((s) => s.leaf && !s.runProof && !s.signature);
  if (open.length === 0) return [...segments];
  const run = sealRun(key, { fromTick: (open[0] as S).fromTick, toTick: (open.at(-1) as S).toTick, leaves: open.map((s) => s.leaf as Uint8Array) });
  const proofs = runProofs(run);
  const sealed = new Map(open.map((s, i) => [s, proofs[i] as { proof: Uint8Array; signature: Uint8Array }]));
  return segments.map((s) => {
    const p = sealed.get(s);
    if (!p) return s;
    const { leaf: _leaf, ...rest } = s;
    return { ...rest, runProof: p.proof, signature: p.signature } as S;
  });
}

/** What sealOpenRuns needs of a store. */
export interface RunSealStore {
  openEventRuns(agentId?: string): { agentId: string; fromTick: bigint; toTick: bigint; leaves: Uint8Array[] }[];
  sealEventRun(agentId: string, run: SealedRun): void;
  identity(agentId: string): Ed25519Key;
}

/**
 * Seals every open run (of one agent, or all) in the store with its agent's key: before a migration
 * package is built, at a node's stop, and at its start (after a crash the open runs are still open).
 * Returns the number of runs sealed.
 */
export function sealOpenRuns(store: RunSealStore, agentId?: string): number {
  const runs = store.openEventRuns(agentId);
  for (const r of runs) store.sealEventRun(r.agentId, sealRun(store.identity(r.agentId), r));
  return runs.length;
}

/**
 * Per agent, the run its checkpoints are filling (leaves of committed segments, in order). The
 * checkpointer asks `next` for each segment with observations, and tells `committed` what the store
 * took (a refused checkpoint leaves the run as it was). An agent it starts tracking continues the
 * run the store holds open for it (`adopt`), so a store's open segments always follow its newest run.
 */
export class OpenRuns {
  /**
   * Each agent's open run: its leaves back to back in one buffer (LEAF_BYTES each, `count` of them),
   * not one Uint8Array per leaf: a leaf as its own typed array and ArrayBuffer cost ~10× its 32 bytes
   * on the main thread's heap, and every agent of a node holds up to RUN_SEAL_SEGMENTS − 1 of them.
   */
  private readonly runs = new Map<string, { fromTick: bigint; bytes: Uint8Array; count: number }>();

  constructor(private readonly size = RUN_SEAL_SEGMENTS) {}

  adopt(agentId: string, open: { fromTick: bigint; leaves: Uint8Array[] } | undefined): void {
    if (!open || open.leaves.length === 0) {
      this.runs.delete(agentId);
      return;
    }
    const run = { fromTick: open.fromTick, bytes: new Uint8Array(leafCapacity(open.leaves.length) * LEAF_BYTES), count: 0 };
    for (const leaf of open.leaves) appendLeaf(run, leaf);
    this.runs.set(agentId, run);
  }

  /** A new segment's leaf; when it fills the agent's run, the run to seal and the bytes to sign. */
  next(agentId: string, fromTick: bigint, toTick: bigint, leaf: Uint8Array): RunStep | null {
    const open = this.runs.get(agentId);
    if ((open?.count ?? 0) + 1 < this.size) return null;
    // Views of the run's buffer, not copies: they live only while the sealing checkpoint is in
    // flight, and nothing writes below `count` (a refused seal leaves the run as it was).
    const leaves = open ? leavesOf(open, true) : [];
    leaves.push(leaf);
    return { run: { fromTick: open?.fromTick ?? fromTick, toTick, leaves }, signingBytes: runSigningBytes(leaves.length, merkleRoot(leaves)) };
  }

  /** The store took a checkpoint: its segment's leaf joins the run, or (`runSeal`) the run is sealed. */
  committed(agentId: string, c: { events?: { fromTick: bigint; leaf?: Uint8Array }; runSeal?: unknown }): void {
    const leaf = c.events?.leaf;
    if (!leaf || !c.events) return;
    if (c.runSeal) {
      this.runs.delete(agentId);
      return;
    }
    let open = this.runs.get(agentId);
    if (!open) {
      open = { fromTick: c.events.fromTick, bytes: new Uint8Array(leafCapacity(1) * LEAF_BYTES), count: 0 };
      this.runs.set(agentId, open);
    }
    appendLeaf(open, leaf);
  }

  /** The agent's open run's leaves, each its own copy (tests; the checkpoint path uses next). */
  leaves(agentId: string): Uint8Array[] {
    const open = this.runs.get(agentId);
    return open ? leavesOf(open) : [];
  }

  forget(agentId: string): void {
    this.runs.delete(agentId);
  }
}

/** A run-seal leaf: a SHA-256 digest. */
export const LEAF_BYTES = 32;
/** Leaves an agent's open-run buffer holds at first; it doubles when full (most runs of an idle node stay short). */
const OPEN_RUN_FIRST_LEAVES = 4;

function leafCapacity(leaves: number): number {
  let n = OPEN_RUN_FIRST_LEAVES;
  while (n < leaves) n *= 2;
  return n;
}

function appendLeaf(run: { bytes: Uint8Array; count: number }, leaf: Uint8Array): void {
  if (leaf.length !== LEAF_BYTES) throw new RangeError(`a run-seal leaf is ${LEAF_BYTES} bytes, not ${leaf.length}`);
  if ((run.count + 1) * LEAF_BYTES > run.bytes.length) {
    const grown = new Uint8Array(leafCapacity(run.count + 1) * LEAF_BYTES);
    grown.set(run.bytes.subarray(0, run.count * LEAF_BYTES));
    run.bytes = grown;
  }
  run.bytes.set(leaf, run.count * LEAF_BYTES);
  run.count++;
}

/** The run's leaves in order: copies, or (`views`) views of its buffer. */
function leavesOf(run: { bytes: Uint8Array; count: number }, views = false): Uint8Array[] {
  const leaves: Uint8Array[] = [];
  for (let i = 0; i < run.count; i++) {
    const from = i * LEAF_BYTES;
    leaves.push(views ? run.bytes.subarray(from, from + LEAF_BYTES) : run.bytes.slice(from, from + LEAF_BYTES));
  }
  return leaves;
}

export interface RunStep {
  run: Omit<SealedRun, "signature">;
  signingBytes: Uint8Array;
}
