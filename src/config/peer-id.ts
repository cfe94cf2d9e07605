// A peer id as the config takes it (--trusted-peer, the /p2p/ part of --bootstrap): the base58btc
// text of a libp2p multihash, checked here rather than with libp2p's peerIdFromString, which would
// load libp2p (and its crypto) into every start-up, `--listen off` and `igord --help` included. Only
// the forms libp2p writes a peer's id in (PeerId.toString()) are taken: trusted peers are matched by
// that text, so another spelling could never match.
import { base58Decode } from "../hash/base58.js";

const IDENTITY_MULTIHASH = 0x00;
const SHA256_MULTIHASH = 0x12;
const SHA256_BYTES = 32;
/** libp2p's protobuf PublicKey: field 1 (KeyType) then field 2 (Data, length-delimited). */
const KEY_TYPE_FIELD = 0x08;
const KEY_DATA_FIELD = 0x12;
/** Key types inlined in an identity multihash, with their public keys' lengths (RSA keys are hashed: SHA-256). */
const INLINE_KEY_BYTES: ReadonlyMap<number, number> = new Map([
  [1, 32], // Ed25519
  [2, 33], // secp256k1, compressed
]);

/** What is wrong with `text` as a peer id, or null when it is one. */
export function peerIdProblem(text: string): string | null {
  let bytes: Uint8Array;
  try {
    bytes = base58Decode(text);
  } catch (e) {
    return `not base58: ${(e as Error).message}`;
  }
  const [code, length] = bytes;
  if (code === SHA256_MULTIHASH && length === SHA256_BYTES && bytes.length === 2 + SHA256_BYTES) return null;
  if (code === IDENTITY_MULTIHASH && length === bytes.length - 2 && bytes[2] === KEY_TYPE_FIELD && bytes[4] === KEY_DATA_FIELD) {
    const keyBytes = INLINE_KEY_BYTES.get(bytes[3] as number);
    if (keyBytes !== undefined && bytes[5] === keyBytes && bytes.length === 6 + keyBytes) return null;
  }
  return `its ${bytes.length} bytes are no libp2p multihash of a public key (Ed25519, secp256k1) nor of its SHA-256 (RSA)`;
}
