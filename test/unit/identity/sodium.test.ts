// libsodium signs where it loads (identity/sodium.ts); Ed25519 is deterministic, so its signatures
// must be byte for byte node:crypto's (OpenSSL's), on RFC 8032's vectors and on random keys and
// messages, on the calling thread and on the signer threads.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { generateKey, keyFromSeed, signBytes, signBytesOpenSsl, verifyBytes, verifyBytesOpenSsl } from "../../../src/identity/keys.js";
import { SIGN_CHUNK_MAX, SignerPool } from "../../../src/identity/signer-pool.js";
import { sodiumSigns } from "../../../src/identity/sodium.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

// RFC 8032 §7.1, TEST 1 and TEST 2: seed, public key, message, signature.
const RFC8032 = [
  {
    seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    message: "",
    signature: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  },
  {
    seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    message: "72",
    signature: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
  },
];

let pool: SignerPool | null = null;
afterEach(async () => {
  await pool?.close();
  pool = null;
});

describe("Ed25519 signing through libsodium", () => {
  it("loads on this platform (the dependency ships a prebuilt addon)", () => {
    expect(sodiumSigns()).toBe(true);
  });

  it("gives RFC 8032's signatures", () => {
    for (const v of RFC8032) {
      const key = keyFromSeed(Buffer.from(v.seed, "hex"));
      expect(hex(key.publicKey)).toBe(v.publicKey);
      expect(hex(key.secretKey)).toBe(v.seed + v.publicKey);
      expect(hex(signBytes(key, Buffer.from(v.message, "hex")))).toBe(v.signature);
      expect(hex(signBytesOpenSsl(key, Buffer.from(v.message, "hex")))).toBe(v.signature);
    }
  });

  it("signs exactly as node:crypto does, for random keys and messages of every size up to 4 KiB", () => {
    for (let i = 0; i < 200; i++) {
      const key = generateKey();
      const message = new Uint8Array(randomBytes((i * 37) % 4097));
      const signature = signBytes(key, message);
      expect(hex(signature), `message ${i}`).toBe(hex(signBytesOpenSsl(key, message)));
      expect(verifyBytes(key.publicKey, message, signature)).toBe(true);
    }
  });

  it("the signer threads sign exactly as node:crypto does", async () => {
    pool = new SignerPool(2);
    const keys = Array.from({ length: 5 }, () => generateKey());
    const reqs = Array.from({ length: SIGN_CHUNK_MAX * 3 + 1 }, (_, i) => ({ key: keys[i % keys.length]!, message: new Uint8Array(randomBytes(64 + i)) }));
    const sigs = await Promise.all(reqs.map((r) => pool!.sign(r.key, r.message)));
    reqs.forEach((r, i) => expect(hex(sigs[i]!), `signature ${i}`).toBe(hex(signBytesOpenSsl(r.key, r.message))));
    expect(pool.fallbacks).toBe(0);
  });

  it("verifies as node:crypto does: valid signatures, and a flipped bit of the message, the signature or the key", () => {
    for (let i = 0; i < 100; i++) {
      const key = generateKey();
      const message = new Uint8Array(randomBytes(1 + ((i * 53) % 2048)));
      const signature = signBytes(key, message);
      const flip = (b: Uint8Array, at: number): Uint8Array => {
        const c = Uint8Array.from(b);
        c[at % c.byteLength] = (c[at % c.byteLength]! ^ (1 << (i % 8))) & 0xff;
        return c;
      };
      const cases: [Uint8Array, Uint8Array, Uint8Array][] = [
        [key.publicKey, message, signature],
        [key.publicKey, flip(message, i * 7), signature],
        [key.publicKey, message, flip(signature, i * 11)],
        [flip(key.publicKey, i * 13), message, signature],
      ];
      for (const [k, m, s] of cases) expect(verifyBytes(k, m, s), `case ${i}`).toBe(verifyBytesOpenSsl(k, m, s));
      expect(verifyBytes(key.publicKey, message, signature)).toBe(true);
      expect(verifyBytes(key.publicKey, flip(message, i * 7), signature)).toBe(false);
    }
    for (const v of RFC8032) expect(verifyBytes(Buffer.from(v.publicKey, "hex"), Buffer.from(v.message, "hex"), Buffer.from(v.signature, "hex"))).toBe(true);
  });

  it("a malformed secret key is refused, not signed with", () => {
    const key = generateKey();
    expect(() => signBytes({ ...key, secretKey: key.secretKey.subarray(0, 32), privateKeyObject: key.publicKeyObject }, new Uint8Array(8))).toThrow(/64 bytes/);
  });
});
