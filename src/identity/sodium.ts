// Ed25519 through libsodium (the sodium-native package's prebuilt addon) where it loads: 26–35 µs a
// signature on this machine against 46–59 µs for node:crypto's OpenSSL, and 63–65 µs a verification
// against 128–150, measured side by side (docs/BENCHMARKS.md, "checkpoints — libsodium signs"); a
// checkpoint costs one signature, a hop's admission a few verifications.
// Ed25519 signatures are deterministic (RFC 8032 §5.1.6): both give the same 64 bytes for a key and
// a message (test/unit/identity/sodium.test.ts), so which one signed is invisible in every format.
// libsodium's verification is RFC 8032's, and stricter where RFC 8032 leaves room (it also refuses
// small-order public keys and R points, which no honest signer makes).
// Where the addon cannot load (a platform without a prebuild), node:crypto does both, as it always did.
import { createRequire } from "node:module";

/** The part of sodium-native's API igord uses. */
interface SodiumApi {
  crypto_sign_detached(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/** libsodium's secret key: the 32-byte seed followed by the 32-byte public key. */
export const SODIUM_SECRET_KEY_BYTES = 64;

/**
 * Messages longer than this are signed by node:crypto even where libsodium loads. An Ed25519
 * signature hashes its message twice with SHA-512, and OpenSSL's SHA-512 runs faster than
 * libsodium's portable one, while libsodium's fixed cost is lower: on this machine they cross at
 * 8 KiB (45.5 against 45.2 µs), and above it node:crypto takes 83 % of libsodium's time at 16 KiB,
 * 60 % at 1 MiB (a checkpoint is its 209-byte header and its state; `scripts/bench-ed25519-sizes.mjs`,
 * docs/BENCHMARKS.md "signing large states"). The same 64 bytes either way.
 */
export const SODIUM_SIGN_MAX_BYTES = 8 * 1024;

/**
 * Messages longer than this are verified by node:crypto even where libsodium loads (one SHA-512 of
 * the message; libsodium's fixed cost is lower still, so they cross later: 96 against 104 µs at
 * 32 KiB, 150 against 136 at 64 KiB). node:crypto's verification refuses first what libsodium
 * refuses (identity/ed25519-rules.ts), so the verdict is the same either way.
 */
export const SODIUM_VERIFY_MAX_BYTES = 48 * 1024;

let api: SodiumApi | null | undefined;

/** libsodium, or null where it does not load; IGORD_ED25519=openssl keeps node:crypto (for comparison). */
function sodium(): SodiumApi | null {
  if (api === undefined) {
    api = null;
    if (process.env.IGORD_ED25519 !== "openssl") {
      try {
        api = createRequire(import.meta.url)("sodium-native") as SodiumApi;
      } catch {
        api = null;
      }
    }
  }
  return api;
}

/** Whether signatures are made by libsodium in this thread. */
export function sodiumSigns(): boolean {
  return sodium() !== null;
}

/**
 * The Ed25519 signature of `message` by `secretKey` (seed ‖ public key) into `out` at `offset`, by
 * libsodium; false (nothing written) where libsodium is not loaded. Throws on a malformed key.
 */
export function sodiumSignInto(secretKey: Uint8Array, message: Uint8Array, out: Uint8Array, offset: number): boolean {
  const s = sodium();
  if (!s) return false;
  if (secretKey.length !== SODIUM_SECRET_KEY_BYTES) throw new Error(`an Ed25519 secret key is ${SODIUM_SECRET_KEY_BYTES} bytes, got ${secretKey.length}`);
  s.crypto_sign_detached(out.subarray(offset, offset + 64), message, secretKey);
  return true;
}

/**
 * Whether `signature` is `publicKey`'s Ed25519 signature of `message`, by libsodium; null where
 * libsodium is not loaded. The caller checks the lengths (32 and 64 bytes) first.
 */
export function sodiumVerify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean | null {
  const s = sodium();
  return s ? s.crypto_sign_verify_detached(signature, message, publicKey) : null;
}
