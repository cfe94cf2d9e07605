// A payment receipt and a checkpoint are signed by the same agent key. A receipt of 145 signed bytes
// (amount low byte 0x04, recipient + memo = 89 bytes) reads as a v0x04 checkpoint with an empty
// state, signed by the agent, whose budget, tick, WASM hash, epoch and prevHash the paying guest
// chose. v0x05 signs its checkpoints under a domain no receipt can start with, and no chain goes
// back from v0x05 to v0x04, so such a receipt extends no history igord writes.
import { describe, expect, it } from "vitest";
import { encodeCheckpoint, HEADER_SIZE, parseCheckpoint, SIGNATURE_OFFSET } from "../../../src/checkpoint/codec.js";
import { checkpointHash, GENESIS_PREV_HASH, signCheckpoint, verifyCheckpointSignature } from "../../../src/checkpoint/lineage.js";
import { verifyChain } from "../../../src/checkpoint/verify-chain.js";
import { sha256 } from "../../../src/hash/bytes.js";
import { paymentSigningBytes, verifyPaymentReceipt } from "../../../src/hostcalls/wallet-pay.js";
import { generateKey, signBytes } from "../../../src/identity/keys.js";

const agent = generateKey();
const enc = new TextEncoder();

/**
 * The receipt wallet_pay hands back for this payment, signed as the node signs it (host-io-services:
 * signBytes of the agent's key over wallet-pay's signing bytes), and its signed part.
 */
function pay(amount: bigint, recipient: Uint8Array, memo: Uint8Array): { receipt: Uint8Array; signed: Uint8Array; signature: Uint8Array } {
  // A timestamp whose low byte keeps the forged budget positive (the host picks it; many do).
  const signed = paymentSigningBytes(amount, 1_700_000_000_000_000_000n, recipient, memo, agent.publicKey);
  const signature = signBytes(agent, signed);
  const receipt = new Uint8Array(signed.length + 64);
  receipt.set(signed);
  receipt.set(signature, signed.length);
  return { receipt, signed, signature };
}

/** The receipt's signed bytes and signature laid out as a checkpoint blob: `signed(145) ‖ signature(64)`. */
function asCheckpoint(signed: Uint8Array, signature: Uint8Array): Uint8Array {
  const blob = new Uint8Array(signed.length + 64);
  blob.set(signed.subarray(0, SIGNATURE_OFFSET), 0);
  blob.set(signature, SIGNATURE_OFFSET);
  blob.set(signed.subarray(SIGNATURE_OFFSET), HEADER_SIZE[5]);
  return blob;
}

const WASM = sha256(enc.encode("wasm"));

/**
 * A payment whose receipt reads as a checkpoint with this version byte (the amount's low byte) and
 * prevHash: a 40-byte recipient and a 49-byte memo (89 bytes, so the receipt signs exactly 145), the
 * memo holding the prevHash at checkpoint offset 81 (receipt offset 24 + 40 + 17).
 */
function receiptCheckpoint(version: number, prevHash: Uint8Array): { receipt: Uint8Array; blob: Uint8Array } {
  const recipient = enc.encode("0x".padEnd(40, "a"));
  const memo = new Uint8Array(49).fill(0x6d);
  memo.set(prevHash, 17);
  const { receipt, signed, signature } = pay((1_000_000_000n << 8n) | BigInt(version), recipient, memo);
  expect(signed.length).toBe(SIGNATURE_OFFSET);
  return { receipt, blob: asCheckpoint(signed, signature) };
}

describe("a payment receipt never passes for a checkpoint that extends a history", () => {
  it("a receipt of amount 0x…04 over 89 bytes of recipient and memo is a well-formed v0x04 checkpoint, whose signature does not count: its signed bytes are a receipt's by the same key", () => {
    const { receipt, blob } = receiptCheckpoint(4, GENESIS_PREV_HASH);
    expect(verifyPaymentReceipt(receipt)).toBe(true);
    const forged = parseCheckpoint(blob);
    expect([forged.version, forged.state.length]).toEqual([4, 0]);
    expect(forged.publicKey).toEqual(agent.publicKey);
    expect(forged.prevHash).toEqual(GENESIS_PREV_HASH);
    expect(forged.budget).toBeGreaterThan(0n);
    // The signature is the agent's over these very bytes; they are laid out as a receipt naming the key.
    expect(verifyCheckpointSignature(forged)).toBe(false);
    expect(verifyChain([{ name: "forged.ckpt", bytes: blob }]).valid).toBe(false);
  });

  it("so is one whose memo holds the key where a checkpoint's is, with a state after it", () => {
    // recipient 40 + memo 100: the memo's bytes 49..81 land at checkpoint offset 113 (the key).
    const memo = new Uint8Array(100).fill(0x6d);
    memo.set(agent.publicKey, 113 - 64);
    const { signed, signature } = pay((7n << 8n) | 4n, enc.encode("0x".padEnd(40, "a")), memo);
    const forged = parseCheckpoint(asCheckpoint(signed, signature));
    expect(forged.version).toBe(4);
    expect(forged.publicKey).toEqual(agent.publicKey);
    expect(forged.state.length).toBeGreaterThan(0);
    expect(verifyCheckpointSignature(forged)).toBe(false);
  });

  it("an honest v0x04 checkpoint still verifies, also one whose state ends with the agent's key", () => {
    const fields = { budget: 10n, price: 1n, tick: 3n, wasmHash: WASM, epochMajor: 0n, epochGeneration: 0n, leaseExpiry: 0n, prevHash: GENESIS_PREV_HASH, publicKey: agent.publicKey };
    for (const state of [new Uint8Array([1, 2, 3]), agent.publicKey.slice()]) {
      const blob = encodeCheckpoint(fields, state);
      blob[0] = 4;
      expect(verifyCheckpointSignature(parseCheckpoint(signCheckpoint(blob, agent)))).toBe(true);
    }
  });

  it("the same forged v0x04 checkpoint is refused after a v0x05 head, the chain naming the step down", () => {
    const fields = { budget: 10n, price: 1n, tick: 1n, wasmHash: WASM, epochMajor: 0n, epochGeneration: 0n, leaseExpiry: 0n, prevHash: GENESIS_PREV_HASH, publicKey: agent.publicKey };
    const head = signCheckpoint(encodeCheckpoint(fields, new Uint8Array([1])), agent);
    expect(parseCheckpoint(head).version).toBe(5);
    const { blob } = receiptCheckpoint(4, checkpointHash(head));
    const forged = parseCheckpoint(blob);
    expect(forged.prevHash).toEqual(checkpointHash(head));
    expect(forged.tick).toBeGreaterThan(1n);
    expect(verifyCheckpointSignature(forged)).toBe(false);
    const report = verifyChain([
      { name: "head.ckpt", bytes: head },
      { name: "forged.ckpt", bytes: blob },
    ]);
    expect(report.valid).toBe(false);
    expect(report.reasons.join("\n")).toMatch(/forged\.ckpt: v0x04 after a v0x05 checkpoint/);
  });

  it("a receipt of amount 0x…05 does not verify as a v0x05 checkpoint: v0x05 signs under its own domain", () => {
    const { receipt, blob } = receiptCheckpoint(5, GENESIS_PREV_HASH);
    expect(verifyPaymentReceipt(receipt)).toBe(true);
    const cp = parseCheckpoint(blob);
    expect(cp.version).toBe(5);
    expect(cp.publicKey).toEqual(agent.publicKey);
    expect(verifyCheckpointSignature(cp)).toBe(false);
  });

  it("a v0x05 checkpoint's signature is over its domain: the same bytes signed without it do not verify", () => {
    const fields = { budget: 10n, price: 1n, tick: 1n, wasmHash: WASM, epochMajor: 0n, epochGeneration: 0n, leaseExpiry: 0n, prevHash: GENESIS_PREV_HASH, publicKey: agent.publicKey };
    const unsigned = encodeCheckpoint(fields, new Uint8Array([1, 2, 3]));
    const undomained = unsigned.slice();
    const body = new Uint8Array(undomained.length - 64);
    body.set(undomained.subarray(0, SIGNATURE_OFFSET));
    body.set(undomained.subarray(HEADER_SIZE[5]), SIGNATURE_OFFSET);
    undomained.set(signBytes(agent, body), SIGNATURE_OFFSET);
    expect(verifyCheckpointSignature(parseCheckpoint(undomained))).toBe(false);
    expect(verifyCheckpointSignature(parseCheckpoint(signCheckpoint(unsigned, agent)))).toBe(true);
  });
});
