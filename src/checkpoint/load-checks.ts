// Checks run before an agent is resumed from its stored head checkpoint. Each failure names the
// check; the caller quarantines the agent and never overwrites or deletes what is stored.
import { ErrorCode, IgordError } from "../errors.js";
import { type Checkpoint, isSigned, parseCheckpoint } from "./codec.js";
import { checkpointHash, verifyCheckpointSignature, versionStepProblem } from "./lineage.js";
import { equalBytes, hex } from "../hash/bytes.js";

export interface HeadToCheck {
  agentId: string;
  blob: Uint8Array;
  /** The hash recorded next to the blob when it was stored. */
  storedHash: Uint8Array;
  /** The hash of the previous checkpoint in the stored history, or null for the first one. */
  previousHash: Uint8Array | null;
  /** That checkpoint's version byte, or null for the first one. */
  previousVersion: number | null;
  /** SHA-256 (hex) of the WASM the agent is about to run. */
  wasmHash: string;
  /** The agent's identity public key. */
  publicKey: Uint8Array;
  /**
   * The hash of a checkpoint whose signature the caller has just verified (migration admission, for
   * the head it stored): a head with this hash is not verified again. Its content hash is still checked.
   */
  signatureVerified?: Uint8Array;
}

function fail(code: (typeof ErrorCode)[keyof typeof ErrorCode], check: string, message: string): never {
  throw new IgordError(code, `checkpoint check "${check}" failed: ${message}`, { details: { check } });
}

export function checkHead(h: HeadToCheck): Checkpoint {
  const cp = parseCheckpoint(h.blob, `stored checkpoint of agent "${h.agentId}"`);
  if (!equalBytes(checkpointHash(h.blob), h.storedHash)) {
    fail(ErrorCode.CheckpointInvalid, "content-hash", `the stored blob no longer matches its recorded hash (corrupted storage)`);
  }
  if (hex(cp.wasmHash) !== h.wasmHash) {
    fail(
      ErrorCode.CheckpointWasmMismatch,
      "wasm-hash",
      `checkpoint was made for WASM ${hex(cp.wasmHash).slice(0, 16)}…, not ${h.wasmHash.slice(0, 16)}…`,
    );
  }
  if (!isSigned(cp)) fail(ErrorCode.CheckpointSignature, "signature", `checkpoint is v0x0${cp.version}, which carries no signature`);
  const verified = h.signatureVerified !== undefined && equalBytes(h.signatureVerified, h.storedHash);
  if (!verified && !verifyCheckpointSignature(cp)) fail(ErrorCode.CheckpointSignature, "signature", "the Ed25519 signature does not verify");
  if (!equalBytes(cp.publicKey, h.publicKey)) {
    fail(ErrorCode.CheckpointForeignKey, "identity", "checkpoint is signed by a key other than the agent's identity");
  }
  if (h.previousHash !== null && !equalBytes(cp.prevHash, h.previousHash)) {
    fail(ErrorCode.CheckpointChainBroken, "prev-hash", "prevHash does not match the previous checkpoint in the stored history");
  }
  const stepDown = h.previousVersion === null ? null : versionStepProblem(h.previousVersion, cp.version);
  if (stepDown) fail(ErrorCode.CheckpointVersion, "version", stepDown);
  return cp;
}
