// did:key for Ed25519: "did:key:z" + base58btc(0xed 0x01 ‖ public key) → "did:key:z6Mk…".
// Node peer ids follow libp2p: base58btc(identity multihash of the protobuf-encoded public key) → "12D3KooW…".
import { base58Decode, base58Encode } from "../hash/base58.js";

const ED25519_MULTICODEC = [0xed, 0x01];

/**
 * DIDs kept by public key, at most this many (oldest dropped first): a hop derives the arriving
 * agent's DID four or five times (admission, chain check, placement, resume), ~7.5 µs of base58 each.
 */
export const DID_CACHE_SIZE = 4_096;
const dids = new Map<string, string>();

export function didFromPublicKey(publicKey: Uint8Array): string {
  const key = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.length).toString("latin1");
  const known = dids.get(key);
  if (known !== undefined) return known;
  const did = `did:key:z${base58Encode(Uint8Array.from([...ED25519_MULTICODEC, ...publicKey]))}`;
  if (dids.size >= DID_CACHE_SIZE) dids.delete(dids.keys().next().value as string);
  dids.set(key, did);
  return did;
}

export function publicKeyFromDid(did: string): Uint8Array {
  if (!did.startsWith("did:key:z")) throw new Error(`"${did}" is not a did:key (expected did:key:z…)`);
  const bytes = base58Decode(did.slice("did:key:z".length));
  if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) throw new Error(`"${did}" is not an Ed25519 did:key`);
  return bytes.subarray(2);
}

export function shortDid(did: string): string {
  return did.length > 24 ? `${did.slice(0, 16)}...${did.slice(-4)}` : did;
}

/** libp2p peer id of an Ed25519 public key: identity multihash over protobuf {Type: Ed25519, Data}. */
export function peerIdFromPublicKey(publicKey: Uint8Array): string {
  const proto = Uint8Array.from([0x08, 0x01, 0x12, 0x20, ...publicKey]);
  return base58Encode(Uint8Array.from([0x00, proto.length, ...proto]));
}

/** The Ed25519 public key inside a libp2p peer id (identity multihash), or null for another kind. */
export function publicKeyFromPeerId(peerId: string): Uint8Array | null {
  let bytes: Uint8Array;
  try {
    bytes = base58Decode(peerId);
  } catch {
    return null;
  }
  // [0x00 identity][len 36][0x08 0x01 (Ed25519)][0x12 0x20][32-byte key]
  if (bytes.length !== 38 || bytes[0] !== 0x00 || bytes[1] !== 36 || bytes[2] !== 0x08 || bytes[3] !== 0x01 || bytes[4] !== 0x12 || bytes[5] !== 0x20) return null;
  return bytes.slice(6);
}
