import { describe, expect, it } from "vitest";
import { base58Decode, base58Encode } from "../../../src/hash/base58.js";
import { DID_CACHE_SIZE, didFromPublicKey, peerIdFromPublicKey, publicKeyFromDid } from "../../../src/identity/did.js";
import { decodeIdentityFile, encodeIdentityFile, generateKey, keyFromSeed, signBytes, verifyBytes } from "../../../src/identity/keys.js";

describe("identity", () => {
  it("derives did:key:z6Mk… and round-trips it", () => {
    const k = generateKey();
    const did = didFromPublicKey(k.publicKey);
    expect(did).toMatch(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/);
    expect(publicKeyFromDid(did)).toEqual(k.publicKey);
  });

  it("matches the did:key spec test vector", () => {
    // did:key spec: Ed25519 public key 0x2e6fcce3... ↔ did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp
    const did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
    expect(didFromPublicKey(publicKeyFromDid(did))).toBe(did);
  });

  it("a DID derived again, from any view of the same key bytes, is the same; past the cache bound too", () => {
    const did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
    const key = publicKeyFromDid(did);
    const padded = new Uint8Array(40);
    padded.set(key, 5);
    expect(didFromPublicKey(key)).toBe(did);
    expect(didFromPublicKey(padded.subarray(5, 37))).toBe(did);
    // A key one byte apart is another DID, not the one remembered.
    const other = Uint8Array.from(key);
    other[31] = (other[31] as number) ^ 1;
    expect(didFromPublicKey(other)).not.toBe(did);
    expect(publicKeyFromDid(didFromPublicKey(other))).toEqual(other);
    for (let i = 0; i <= DID_CACHE_SIZE; i++) didFromPublicKey(generateKey().publicKey);
    expect(didFromPublicKey(key)).toBe(did);
  });

  it("node peer ids look like libp2p Ed25519 peer ids", () => {
    expect(peerIdFromPublicKey(generateKey().publicKey)).toMatch(/^12D3KooW/);
  });

  it("a key is fully determined by its seed, and signs verifiably", () => {
    const k = generateKey();
    const again = keyFromSeed(k.seed);
    expect(again.publicKey).toEqual(k.publicKey);
    const sig = signBytes(again, new Uint8Array([1, 2, 3]));
    expect(verifyBytes(k.publicKey, new Uint8Array([1, 2, 3]), sig)).toBe(true);
    expect(verifyBytes(k.publicKey, new Uint8Array([1, 2, 4]), sig)).toBe(false);
  });

  it("a key read again from its seed is derived once, and no caller can change another's copy", () => {
    const seed = new Uint8Array(32).fill(7);
    const first = keyFromSeed(seed);
    first.seed.fill(0);
    first.publicKey.fill(0);
    seed.fill(9);
    const again = keyFromSeed(new Uint8Array(32).fill(7));
    expect(again.seed).toEqual(new Uint8Array(32).fill(7));
    expect(again.publicKey).not.toEqual(new Uint8Array(32));
    expect(again.privateKeyObject).toBe(first.privateKeyObject);
    expect(keyFromSeed(new Uint8Array(32).fill(9)).publicKey).not.toEqual(again.publicKey);
    const sig = signBytes(again, new Uint8Array([1]));
    expect(verifyBytes(again.publicKey, new Uint8Array([1]), sig)).toBe(true);
  });

  it("a signature that verified once still fails for any other key, message or signature", () => {
    const k = generateKey();
    const other = generateKey();
    const msg = new Uint8Array([5, 6, 7]);
    const sig = signBytes(k, msg);
    expect(verifyBytes(k.publicKey, msg, sig)).toBe(true);
    expect(verifyBytes(k.publicKey, msg, sig)).toBe(true);
    expect(verifyBytes(other.publicKey, msg, sig)).toBe(false);
    expect(verifyBytes(k.publicKey, new Uint8Array([5, 6, 8]), sig)).toBe(false);
    const bad = sig.slice();
    bad[10] = (bad[10] ?? 0) ^ 1;
    expect(verifyBytes(k.publicKey, msg, bad)).toBe(false);
    // The same bytes moved between the parts name another triple.
    const joined = new Uint8Array([...sig.subarray(63), ...msg]);
    expect(verifyBytes(k.publicKey, joined, new Uint8Array([...sig.subarray(0, 63), 0]))).toBe(false);
  });

  it("reads and writes igor's identity file format and refuses corrupt ones", () => {
    const k = generateKey();
    const file = encodeIdentityFile(k);
    expect(file.byteLength).toBe(68);
    expect(decodeIdentityFile(file).publicKey).toEqual(k.publicKey);
    const bad = file.slice();
    bad[40] = (bad[40] ?? 0) ^ 1;
    expect(() => decodeIdentityFile(bad)).toThrow(/does not match its private key/);
    expect(() => decodeIdentityFile(file.subarray(0, 60))).toThrow(/60 bytes, expected 68/);
  });

  it("base58 keeps leading zeros", () => {
    const b = Uint8Array.from([0, 0, 1, 2, 255]);
    expect(base58Decode(base58Encode(b))).toEqual(b);
  });
});
