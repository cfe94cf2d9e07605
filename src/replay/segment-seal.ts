// Binds an event-log segment to the agent's signed lineage. A segment is not part of the
// checkpoint (whose layout igor reads), so the agent's key signs it separately, in the same commit as
// the checkpoint that closes it:
//   signature = Ed25519(agent key, "igord-event-segment-v1" ‖ prevHash ‖ SHA-256(segment body))
// prevHash is the hash of the checkpoint before the segment (the closing checkpoint's prevHash), and
// the body names the tick range, so a verifier holding the verified chain checks that the segment is
// the one recorded between those two checkpoints: no log line, state hash or version can change, and
// no segment can be moved to another place in the history, without the agent's key.
// Since schema 8 a segment is sealed as one of a run (v2, replay/run-seal.ts: one signature per
// RUN_SEAL_SEGMENTS segments); v1 segments, stored or shipped before, are still read and checked.
import { type Checkpoint, isSigned } from "../checkpoint/codec.js";
import { sha256Into } from "../hash/bytes.js";
import type { EventLogSegment } from "../eventlog/tick-log.js";
import { verifyBytes } from "../identity/keys.js";
import { encodeSegmentBody } from "./audit-plan.js";
import { runLeafOfBody, runSealProblem } from "./run-seal.js";

const DOMAIN = new TextEncoder().encode("igord-event-segment-v1");

export function segmentSigningBytes(prevHash: Uint8Array, seg: Omit<EventLogSegment, "signature">): Uint8Array {
  return segmentSigningBytesOfBody(prevHash, encodeSegmentBody(seg));
}

/** The same bytes from a segment's body as encoded already (eventlog/tick-log.ts encodeSegmentWithBody). */
export function segmentSigningBytesOfBody(prevHash: Uint8Array, body: Uint8Array): Uint8Array {
  if (prevHash.length !== 32) throw new RangeError("prevHash must be 32 bytes");
  const out = new Uint8Array(DOMAIN.length + 64);
  out.set(DOMAIN, 0);
  out.set(prevHash, DOMAIN.length);
  sha256Into(body, out, DOMAIN.length + 32);
  return out;
}

/**
 * Why the segment is not the agent's record of the ticks up to `closing` (the history's checkpoint at
 * the segment's last tick), or null when its signature binds it there.
 */
export function segmentSealProblem(seg: EventLogSegment, closing: Checkpoint | undefined): string | null {
  const range = `event-log segment ${seg.fromTick}..${seg.toTick}`;
  if (!closing || closing.tick !== seg.toTick) return `${range} ends at no checkpoint of the history`;
  if (!isSigned(closing)) return `${range} ends at an unsigned v0x0${closing.version} checkpoint`;
  // A segment that records no observation is not signed (it would cost every checkpoint of an agent
  // that never observes a second signature): it says only "nothing was observed", which replay
  // alone confirms or refutes, as the agent's code and the checkpoints' states decide it.
  if (!seg.signature && seg.blob.length === 0 && seg.postHashes.length === 0) return null;
  if (seg.runProof) {
    // v2: the segment's leaf in a run the agent's key sealed (replay/run-seal.ts).
    if (!seg.signature) return `${range} carries a run-seal proof but no signature`;
    const problem = runSealProblem(closing.publicKey, runLeafOfBody(closing.prevHash, encodeSegmentBody(seg)), seg.runProof, seg.signature);
    return problem ? `${range} ${problem}` : null;
  }
  if (!seg.signature && seg.leaf) return `${range} is in a run not sealed yet`;
  if (!seg.signature || seg.signature.length !== 64) return `${range} carries no signature`;
  if (!verifyBytes(closing.publicKey, segmentSigningBytes(closing.prevHash, seg), seg.signature)) {
    return `${range} is not signed by the agent's key (altered after it was recorded, or moved from elsewhere in the history)`;
  }
  return null;
}
