// Hashing, signing and verifying checkpoints (EI-3: one linear, signed chain per agent).
// Content hash = SHA-256 of the whole blob; it becomes the next checkpoint's prevHash.
// Signing domain: v0x05 = CHECKPOINT_V5_DOMAIN ‖ blob[0:145] ‖ state; v0x04 = blob[0:145] ‖ state.
//
// Why v0x05: the agent's key also signs its payment receipts (hostcalls/wallet-pay.ts, igor's layout,
// which cannot change), and a receipt of 145 signed bytes whose amount ends in the byte 0x04 is a
// well-formed v0x04 checkpoint the paying guest chose the fields of. No receipt starts with the v0x05
// domain: read as a receipt, it pays ~7.5e18 µ¢, at a host timestamp in 2235, to a recipient of
// 3.5 MB (wallet_pay takes 256 B at most). And a chain never steps down from v0x05
// (versionStepProblem): once an agent has a v0x05 checkpoint, no v0x04 one extends its history.
import { equalBytes, sha256 } from "../hash/bytes.js";
import { RECEIPT_KEY_BYTES, receiptKeyOffset } from "../hostcalls/receipt-layout.js";
import { type Ed25519Key, signBytes, verifyBytes } from "../identity/keys.js";
import { type Checkpoint, CURRENT_VERSION, HEADER_SIZE, isSigned, SIGNATURE_OFFSET } from "./codec.js";

export const GENESIS_PREV_HASH = new Uint8Array(32);

/** What a v0x05 signature covers first, as the other signed records of igord name theirs. */
export const CHECKPOINT_V5_DOMAIN = new TextEncoder().encode("igord-checkpoint-v5\0");
/** The first version whose signature is domain-separated: a chain never goes back below it. */
export const DOMAIN_SEPARATED_VERSION = 5;

/** v0x04 and v0x05 share their header; state starts here in both. */
const SIGNED_HEADER_SIZE = HEADER_SIZE[CURRENT_VERSION];

export function checkpointHash(blob: Uint8Array): Uint8Array {
  return sha256(blob);
}

function domainOf(blob: Uint8Array): Uint8Array | null {
  return (blob[0] as number) >= DOMAIN_SEPARATED_VERSION ? CHECKPOINT_V5_DOMAIN : null;
}

export function signingDomain(blob: Uint8Array): Uint8Array {
  const domain = domainOf(blob);
  const d = domain?.length ?? 0;
  const out = new Uint8Array(d + blob.length - 64);
  if (domain) out.set(domain, 0);
  out.set(blob.subarray(0, SIGNATURE_OFFSET), d);
  out.set(blob.subarray(SIGNED_HEADER_SIZE), d + SIGNATURE_OFFSET);
  return out;
}

/**
 * The signing domain as parts (for a signer that copies them once anyway): the constant v0x05
 * prefix and two views of the blob. No copy of the state is made here.
 */
export function signingDomainParts(blob: Uint8Array): readonly Uint8Array[] {
  const head = blob.subarray(0, SIGNATURE_OFFSET);
  const state = blob.subarray(SIGNED_HEADER_SIZE);
  const domain = domainOf(blob);
  return domain ? [domain, head, state] : [head, state];
}

/** Fills the signature slot of an encoded v0x04 or v0x05 blob, in place, and returns it. */
export function signCheckpoint(blob: Uint8Array, key: Ed25519Key): Uint8Array {
  blob.set(signBytes(key, signingDomain(blob)), SIGNATURE_OFFSET);
  return blob;
}

/**
 * True when a signed (v0x04 or v0x05) checkpoint's signature is valid under its embedded public key.
 * A v0x04 one whose signed bytes are laid out as a payment receipt naming that same key does not
 * count: it is a receipt the guest shaped (an honest checkpoint would have to hold, at bytes 16..20
 * and after its recipient-to-be, lengths that add up to its own size, and end with its key).
 */
export function verifyCheckpointSignature(cp: Checkpoint): boolean {
  if (!isSigned(cp)) return false;
  const signed = signingDomain(cp.bytes);
  if (cp.version < DOMAIN_SEPARATED_VERSION && readsAsReceiptOf(signed, cp.publicKey)) return false;
  return verifyBytes(cp.publicKey, signed, cp.signature);
}

function readsAsReceiptOf(signed: Uint8Array, publicKey: Uint8Array): boolean {
  const at = receiptKeyOffset(signed);
  return at >= 0 && equalBytes(signed.subarray(at, at + RECEIPT_KEY_BYTES), publicKey);
}

/**
 * Why a checkpoint of version `next` may not follow one of version `prev` in one chain, or null. A
 * chain never steps down from v0x05: a v0x04 signature has no domain, so a payment receipt can pass
 * for one (see the head of this file). Old histories (v0x04 only, or v0x04 then v0x05) are fine.
 */
export function versionStepProblem(prev: number, next: number): string | null {
  if (prev >= DOMAIN_SEPARATED_VERSION && next < DOMAIN_SEPARATED_VERSION) {
    return `v0x0${next} after a v0x0${prev} checkpoint (a history never goes back to an older version: a v0x04 signature carries no domain, and a payment receipt can pass for one)`;
  }
  return null;
}
