// Ed25519 keys through node:crypto, signing through libsodium where it loads (identity/sodium.ts).
// A key is stored as its 32-byte seed; the public key and the KeyObjects are derived. Public keys are
// imported through JWK (≈5 µs, vs ≈75 µs for SPKI DER).
import { createHash, createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign, verify } from "node:crypto";
import { refusedByLibsodium } from "./ed25519-rules.js";
import { SODIUM_SIGN_MAX_BYTES, SODIUM_VERIFY_MAX_BYTES, sodiumSignInto, sodiumVerify } from "./sodium.js";

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

export interface Ed25519Key {
  seed: Uint8Array;
  publicKey: Uint8Array;
  privateKeyObject: KeyObject;
  publicKeyObject: KeyObject;
  /** libsodium's form of the private key: seed ‖ public key (64 bytes). */
  secretKey: Uint8Array;
}

/** Keys derived from seeds kept at once (oldest dropped first); see keyFromSeed. */
export const DERIVED_KEY_CACHE_SIZE = 4_096;
const derivedKeys = new Map<string, Ed25519Key>();

/**
 * The key of a seed. Deriving one costs ~0.7 ms (OpenSSL's PKCS#8 import, then the public key's
 * export), and a migration hop reads the agent's key three times (the package, its admission, the
 * resume), so derived keys are kept by seed. The KeyObjects are immutable; every caller gets its own
 * copy of the byte arrays.
 */
export function keyFromSeed(seed: Uint8Array): Ed25519Key {
  if (seed.length !== 32) throw new Error(`an Ed25519 seed is 32 bytes, got ${seed.length}`);
  const id = Buffer.from(seed.buffer, seed.byteOffset, seed.length).toString("base64");
  let k = derivedKeys.get(id);
  if (!k) {
    const privateKeyObject = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
    const publicKeyObject = createPublicKey(privateKeyObject);
    const x = publicKeyObject.export({ format: "jwk" }).x as string;
    const publicKey = new Uint8Array(Buffer.from(x, "base64url"));
    const secretKey = new Uint8Array(64);
    secretKey.set(seed, 0);
    secretKey.set(publicKey, 32);
    k = { seed: Uint8Array.from(seed), publicKey, privateKeyObject, publicKeyObject, secretKey };
    if (derivedKeys.size >= DERIVED_KEY_CACHE_SIZE) derivedKeys.delete(derivedKeys.keys().next().value as string);
    derivedKeys.set(id, k);
  }
  return { seed: Uint8Array.from(k.seed), publicKey: Uint8Array.from(k.publicKey), privateKeyObject: k.privateKeyObject, publicKeyObject: k.publicKeyObject, secretKey: Uint8Array.from(k.secretKey) };
}

/**
 * A new key from 32 bytes of the OS's entropy (an Ed25519 private key is any 32-byte seed, RFC 8032
 * §5.1.5). Not generateKeyPairSync: on Node 20 a KeyGenJob's weak callback, run by a GC inside a
 * later JWK export, was seen to deadlock the main thread on a mutex it already held.
 */
export function generateKey(): Ed25519Key {
  return keyFromSeed(new Uint8Array(randomBytes(32)));
}

const publicKeyCache = new Map<string, KeyObject>();

export function publicKeyObject(raw: Uint8Array): KeyObject {
  const x = Buffer.from(raw).toString("base64url");
  let k = publicKeyCache.get(x);
  if (!k) {
    k = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
    if (publicKeyCache.size > 10_000) publicKeyCache.clear();
    publicKeyCache.set(x, k);
  }
  return k;
}

export function signBytes(key: Ed25519Key, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  return data.length <= SODIUM_SIGN_MAX_BYTES && sodiumSignInto(key.secretKey, data, out, 0) ? out : signBytesOpenSsl(key, data);
}

/**
 * node:crypto's (OpenSSL's) verification: where libsodium does not load, and to compare the two. It
 * refuses first what libsodium refuses (identity/ed25519-rules.ts), so both give the same verdict.
 */
export function verifyBytesOpenSsl(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64 || refusedByLibsodium(publicKey, signature)) return false;
  try {
    return verify(null, data, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

/** The signature node:crypto (OpenSSL) makes: where libsodium does not load, and to compare the two. */
export function signBytesOpenSsl(key: Ed25519Key, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, data, key.privateKeyObject));
}

/** Valid signatures remembered at once (oldest dropped first); see verifyBytes. */
export const VERIFIED_CACHE_SIZE = 4_096;
const verified = new Set<string>();

/**
 * Whether `signature` is `publicKey`'s Ed25519 signature of `data`. A valid one is remembered by
 * the SHA-256 of (key ‖ signature ‖ data), fixed-size parts first so the digest names exactly one
 * triple: the same checkpoint is verified by a migration's admission, again as the stored head the
 * next hop continues from, and again when the agent resumes (~0.1 ms each); hashing costs a few µs.
 * Only successes are remembered: anything that did not verify is checked again in full.
 */
export function verifyBytes(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  const id = createHash("sha256").update(publicKey).update(signature).update(data).digest("base64");
  if (verified.has(id)) return true;
  const ok = (data.length <= SODIUM_VERIFY_MAX_BYTES ? sodiumVerify(publicKey, data, signature) : null) ?? verifyBytesOpenSsl(publicKey, data, signature);
  if (ok) {
    if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.values().next().value as string);
    verified.add(id);
  }
  return ok;
}

/** igor's identity file: [u32 LE len=64][64 bytes: seed ‖ public key] (Go's ed25519.PrivateKey). */
export function encodeIdentityFile(key: Ed25519Key): Uint8Array {
  const out = new Uint8Array(68);
  new DataView(out.buffer).setUint32(0, 64, true);
  out.set(key.seed, 4);
  out.set(key.publicKey, 36);
  return out;
}

export function decodeIdentityFile(bytes: Uint8Array): Ed25519Key {
  if (bytes.length !== 68) throw new Error(`identity file is ${bytes.length} bytes, expected 68`);
  const len = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  if (len !== 64) throw new Error(`identity file declares a ${len}-byte key, expected 64`);
  const key = keyFromSeed(bytes.subarray(4, 36));
  if (!Buffer.from(key.publicKey).equals(Buffer.from(bytes.subarray(36, 68)))) {
    throw new Error("identity file's public key does not match its private key");
  }
  return key;
}
