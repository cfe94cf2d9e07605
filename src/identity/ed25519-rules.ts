// What libsodium's Ed25519 verification refuses before its point equation
// (crypto_sign_ed25519_verify_detached, not built with ED25519_COMPAT): S not below the group order
// L, an R or a public key of small order, a public key not in canonical form. node:crypto (OpenSSL)
// checks RFC 8032's cofactorless equation alone and takes small-order keys and R: with the identity
// point as the key, R the identity and S = 0 verify for any message. The two verifiers must agree
// (a node where libsodium does not load verifies with node:crypto), so the node:crypto path refuses
// these first, exactly as libsodium does.

/** The group order L, little-endian (libsodium's sc25519_is_canonical). */
const ORDER_LE = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
]);

const ALL_FF_THEN_7F = (first: number): number[] => [first, ...new Array<number>(30).fill(0xff), 0x7f];

/**
 * Encodings of the points of order 1, 2, 4 and 8, non-canonical forms included, compared ignoring
 * the sign bit (libsodium's ge25519_has_small_order blocklist).
 */
const SMALL_ORDER = [
  new Array<number>(32).fill(0), // 0 (order 4)
  [1, ...new Array<number>(31).fill(0)], // 1 (order 1)
  [
    0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
    0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
  ], // order 8
  [
    0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
    0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
  ], // order 8
  ALL_FF_THEN_7F(0xec), // p - 1 (order 2)
  ALL_FF_THEN_7F(0xed), // p (= 0, order 4)
  ALL_FF_THEN_7F(0xee), // p + 1 (= 1, order 1)
].map((b) => Uint8Array.from(b));

/** S (32 bytes, little-endian) < L. */
function scalarCanonical(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const a = s[i] as number;
    const b = ORDER_LE[i] as number;
    if (a !== b) return a < b;
  }
  return false;
}

function hasSmallOrder(p: Uint8Array): boolean {
  return SMALL_ORDER.some((b) => {
    for (let i = 0; i < 31; i++) if (p[i] !== b[i]) return false;
    return ((p[31] as number) & 0x7f) === b[31];
  });
}

/** y (the sign bit aside) below p = 2^255 - 19: not 0x7f, then thirty 0xff, then a byte ≥ 0xed. */
function pointCanonical(p: Uint8Array): boolean {
  if (((p[31] as number) & 0x7f) !== 0x7f) return true;
  for (let i = 30; i > 0; i--) if (p[i] !== 0xff) return true;
  return (p[0] as number) < 0xed;
}

/**
 * Whether libsodium refuses this key and signature whatever the message (lengths checked by the
 * caller: 32 and 64 bytes).
 */
export function refusedByLibsodium(publicKey: Uint8Array, signature: Uint8Array): boolean {
  return !scalarCanonical(signature.subarray(32, 64)) || hasSmallOrder(signature.subarray(0, 32)) || !pointCanonical(publicKey) || hasSmallOrder(publicKey);
}
