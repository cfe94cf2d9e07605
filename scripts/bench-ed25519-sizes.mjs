#!/usr/bin/env node
// Ed25519 by message size: libsodium (sodium-native) against node:crypto (OpenSSL), signing and
// verifying, median of 5 rounds each; where they cross sets SODIUM_SIGN_MAX_BYTES and
// SODIUM_VERIFY_MAX_BYTES (src/identity/sodium.ts). Both make the same 64 bytes (checked here).
//   node scripts/bench-ed25519-sizes.mjs
import { createPrivateKey, createPublicKey, randomBytes, sign, verify } from "node:crypto";
import { createRequire } from "node:module";

const sodium = createRequire(import.meta.url)("sodium-native");
/** An Ed25519 seed as PKCS #8 DER: this prefix, then the 32 bytes. */
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SIZES = [1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 1048576];
const ROUNDS = 5;

const seed = randomBytes(32);
const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
const publicKey = createPublicKey(privateKey);
const pk = Buffer.alloc(32);
const sk = Buffer.alloc(64);
sodium.crypto_sign_seed_keypair(pk, sk, seed);

/** Median µs of `f` over ROUNDS rounds of enough calls for ~20 MB of message each. */
function time(f, bytes) {
  const calls = Math.max(20, Math.floor(2e7 / bytes));
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) f();
    rounds.push(((performance.now() - t0) * 1000) / calls);
  }
  return rounds.sort((a, b) => a - b)[Math.floor(ROUNDS / 2)];
}

console.log("| Message | sign: libsodium | sign: node:crypto | verify: libsodium | verify: node:crypto |");
console.log("|---|---|---|---|---|");
for (const n of SIZES) {
  const m = randomBytes(n);
  const sig = Buffer.alloc(64);
  sodium.crypto_sign_detached(sig, m, sk);
  if (!sign(null, m, privateKey).equals(sig)) throw new Error(`the two signatures of ${n} bytes differ`);
  const cells = [
    time(() => sodium.crypto_sign_detached(sig, m, sk), n),
    time(() => sign(null, m, privateKey), n),
    time(() => sodium.crypto_sign_verify_detached(sig, m, pk), n),
    time(() => verify(null, m, publicKey, sig), n),
  ];
  console.log(`| ${n.toLocaleString("en-US")} B | ${cells.map((c) => `${c.toFixed(1)} µs`).join(" | ")} |`);
}
