// Hashing, signing and verifying checkpoints (EI-3: one linear, signed chain per agent).
// Content hash = SHA-256 of the whole blob; it becomes the next checkpoint's prevHash.
// Signing domain = blob[0:145] ‖ state (everything but the signature slot).
import { sha256 } from "../hash/bytes.js";
import { type Ed25519Key, signBytes, verifyBytes } from "../identity/keys.js";
import { type Checkpoint, HEADER_SIZE, SIGNATURE_OFFSET } from "./codec.js";

export const GENESIS_PREV_HASH = new Uint8Array(32);

export function checkpointHash(blob: Uint8Array): Uint8Array {
  return sha256(blob);
}

export function signingDomain(blob: Uint8Array): Uint8Array {
  const out = new Uint8Array(blob.length - 64);
  out.set(blob.subarray(0, SIGNATURE_OFFSET), 0);
  out.set(blob.subarray(HEADER_SIZE[4]), SIGNATURE_OFFSET);
  return out;
}

/** The signing domain as two views of the blob (for a signer that copies them once anyway). */
export function signingDomainParts(blob: Uint8Array): [Uint8Array, Uint8Array] {
  return [blob.subarray(0, SIGNATURE_OFFSET), blob.subarray(HEADER_SIZE[4])];
}

/** Fills the signature slot of an encoded v0x04 blob, in place, and returns it. */
export function signCheckpoint(blob: Uint8Array, key: Ed25519Key): Uint8Array {
  blob.set(signBytes(key, signingDomain(blob)), SIGNATURE_OFFSET);
  return blob;
}

/** True when a v0x04 checkpoint's signature is valid under its embedded public key. */
export function verifyCheckpointSignature(cp: Checkpoint): boolean {
  if (cp.version !== 4) return false;
  return verifyBytes(cp.publicKey, signingDomain(cp.bytes), cp.signature);
}
