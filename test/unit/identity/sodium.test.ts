// libsodium signs where it loads (identity/sodium.ts); Ed25519 is deterministic, so its signatures
// must be byte for byte node:crypto's (OpenSSL's), on RFC 8032's vectors and on random keys and
// messages, on the calling thread and on the signer threads.
import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { generateKey, keyFromSeed, signBytes, signBytesOpenSsl, verifyBytes, verifyBytesOpenSsl } from "../../../src/identity/keys.js";
import { SIGN_CHUNK_MAX, SignerPool } from "../../../src/identity/signer-pool.js";
import { SODIUM_SIGN_MAX_BYTES, SODIUM_VERIFY_MAX_BYTES, sodiumSignInto, sodiumSigns, sodiumVerify } from "../../../src/identity/sodium.js";

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

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const P = 2n ** 255n - 19n;
const le = (b: Uint8Array): bigint => b.reduceRight((x, byte) => (x << 8n) | BigInt(byte), 0n);
const toLe = (x: bigint): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => Number((x >> BigInt(8 * i)) & 0xffn));
const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => Uint8Array.from([...a, ...b]);
const IDENTITY = toLe(1n);
/** The points of order 1, 2, 4 and 8 as libsodium lists them (ge25519_has_small_order), non-canonical forms included. */
const SMALL_ORDER = [
  0n,
  1n,
  0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826n,
  0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7n,
  P - 1n,
  P,
  P + 1n,
].map(toLe);
/** Ed25519's secret scalar for a seed (RFC 8032 §5.1.5). */
function clampedScalar(seed: Uint8Array): bigint {
  const d = createHash("sha512").update(seed).digest().subarray(0, 32);
  d[0]! &= 248;
  d[31]! &= 127;
  d[31]! |= 64;
  return le(d);
}

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

  it("a message longer than SODIUM_SIGN_MAX_BYTES or SODIUM_VERIFY_MAX_BYTES (signed or verified by node:crypto) gets libsodium's signature and verdict, up to 1 MiB", () => {
    const sizes = [SODIUM_SIGN_MAX_BYTES, SODIUM_SIGN_MAX_BYTES + 1, SODIUM_VERIFY_MAX_BYTES, SODIUM_VERIFY_MAX_BYTES + 1, 1024 * 1024];
    for (const size of sizes) {
      const key = generateKey();
      const message = new Uint8Array(randomBytes(size));
      const byLibsodium = new Uint8Array(64);
      expect(sodiumSignInto(key.secretKey, message, byLibsodium, 0)).toBe(true);
      const signature = signBytes(key, message);
      expect(hex(signature), `${size} bytes`).toBe(hex(byLibsodium));
      expect(hex(signature), `${size} bytes`).toBe(hex(signBytesOpenSsl(key, message)));
      expect(verifyBytes(key.publicKey, message, signature), `${size} bytes`).toBe(true);
      expect(sodiumVerify(key.publicKey, message, signature)).toBe(true);
      const changed = Uint8Array.from(message);
      changed[size - 1]! ^= 1;
      expect(verifyBytes(key.publicKey, changed, signature), `${size} bytes, last byte changed`).toBe(false);
      expect(verifyBytes(key.publicKey, message, Uint8Array.from(signature, (b, i) => (i === 40 ? b ^ 1 : b))), `${size} bytes, signature changed`).toBe(false);
    }
  });

  it("the signer threads sign exactly as node:crypto does", async () => {
    pool = new SignerPool(2);
    const keys = Array.from({ length: 5 }, () => generateKey());
    // Short messages (libsodium signs them) and a few over SODIUM_SIGN_MAX_BYTES (node:crypto does).
    const size = (i: number): number => (i % 50 === 7 ? SODIUM_SIGN_MAX_BYTES + 1 + i : 64 + i);
    const reqs = Array.from({ length: SIGN_CHUNK_MAX * 3 + 1 }, (_, i) => ({ key: keys[i % keys.length]!, message: new Uint8Array(randomBytes(size(i))) }));
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

  // libsodium refuses a key or an R of small order, a key not in canonical form, and S >= L; OpenSSL
  // (RFC 8032's cofactorless check) took the first two. A node without libsodium then counted as
  // signed what every other node refused: with the identity point as its key, a signature anyone
  // can make, for any message.
  it.each([
    ["short messages", 0],
    ["messages over SODIUM_VERIFY_MAX_BYTES (verifyBytes asks node:crypto)", SODIUM_VERIFY_MAX_BYTES + 1],
  ])("both verifiers refuse what libsodium refuses: small-order keys and R, non-canonical keys, S >= L (%s)", (_what, padding) => {
    const pad = new Uint8Array(padding);
    const message = (i: number): Uint8Array => concat(pad, new TextEncoder().encode(`a checkpoint ${i}`));
    const h = (r: Uint8Array, a: Uint8Array, m: Uint8Array): bigint => le(createHash("sha512").update(r).update(a).update(m).digest()) % L;
    const agree = (what: string, k: Uint8Array, m: Uint8Array, sig: Uint8Array): void => {
      expect(sodiumVerify(k, m, sig), `libsodium, ${what}`).toBe(false);
      expect(verifyBytesOpenSsl(k, m, sig), `node:crypto, ${what}`).toBe(false);
      expect(verifyBytes(k, m, sig), `verifyBytes, ${what}`).toBe(false);
    };
    // Each small-order encoding as the key, with R the identity and S = 0: [0]B = R + [h]A holds
    // whenever [h]A is the identity, i.e. for the messages whose h is a multiple of A's order (8 at most).
    for (const [n, key] of SMALL_ORDER.entries()) {
      let i = 0;
      while (h(IDENTITY, key, message(i)) % 8n !== 0n) i++;
      agree(`small-order key ${n}`, key, message(i), concat(IDENTITY, new Uint8Array(32)));
    }
    // A real key, R the identity: S = h·a (its signer picked r = 0).
    const k = keyFromSeed(new Uint8Array(randomBytes(32)));
    const a = clampedScalar(k.seed);
    const m = message(0);
    const s = (h(IDENTITY, k.publicKey, m) * a) % L;
    agree("R the identity point", k.publicKey, m, concat(IDENTITY, toLe(s)));
    // S + L: the same point equation, a second encoding of S.
    const sig = signBytes(k, m);
    agree("S >= L", k.publicKey, m, concat(sig.subarray(0, 32), toLe(le(sig.subarray(32)) + L)));
    // A key encoded with y >= p (here p + 2: no such point is anyone's key, but a verifier must not decode it).
    agree("a non-canonical key", toLe(P + 2n), m, sig);
    expect(verifyBytes(k.publicKey, m, sig)).toBe(true);
    expect(verifyBytesOpenSsl(k.publicKey, m, sig)).toBe(true);
  });

  it("a malformed secret key is refused, not signed with", () => {
    const key = generateKey();
    expect(() => signBytes({ ...key, secretKey: key.secretKey.subarray(0, 32), privateKeyObject: key.publicKeyObject }, new Uint8Array(8))).toThrow(/64 bytes/);
  });
});
