// The load checks on a stored head: a caller that has just verified a head's signature (migration
// admission) may say so for that hash only; any other head is verified as always.
import { describe, expect, it } from "vitest";
import { encodeCheckpoint } from "../../../src/checkpoint/codec.js";
import { checkHead } from "../../../src/checkpoint/load-checks.js";
import { checkpointHash, GENESIS_PREV_HASH, signCheckpoint } from "../../../src/checkpoint/lineage.js";
import { type IgordError } from "../../../src/errors.js";
import { hex, sha256 } from "../../../src/hash/bytes.js";
import { generateKey } from "../../../src/identity/keys.js";

const key = generateKey();
const wasmHash = sha256(new Uint8Array([1]));
const fields = { budget: 999n, price: 1000n, tick: 42n, wasmHash, epochMajor: 1n, epochGeneration: 2n, leaseExpiry: 0n, prevHash: GENESIS_PREV_HASH, publicKey: key.publicKey };

function head(blob: Uint8Array, signatureVerified?: Uint8Array) {
  return { agentId: "a", blob, storedHash: checkpointHash(blob), previousHash: null, previousVersion: null, wasmHash: hex(wasmHash), publicKey: key.publicKey, ...(signatureVerified ? { signatureVerified } : {}) };
}

function refusedCode(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as IgordError).code;
  }
  return "accepted";
}

describe("checkHead", () => {
  it("verifies the signature unless the caller verified this very head; a head with another hash is verified as always", () => {
    const good = signCheckpoint(encodeCheckpoint(fields, new Uint8Array([7])), key);
    const forged = good.slice();
    forged[forged.byteLength - 1] = (forged[forged.byteLength - 1] as number) ^ 1; // the signature's last byte
    expect(refusedCode(() => checkHead(head(good)))).toBe("accepted");
    expect(refusedCode(() => checkHead(head(forged)))).toBe("CHECKPOINT_SIGNATURE");
    // Said verified for another head (the good one's hash): the forged one is still verified, and refused.
    expect(refusedCode(() => checkHead(head(forged, checkpointHash(good))))).toBe("CHECKPOINT_SIGNATURE");
    // Said verified for itself: not verified again (admission checked exactly these bytes).
    expect(refusedCode(() => checkHead(head(forged, checkpointHash(forged))))).toBe("accepted");
    // The content hash is checked whatever the caller says.
    expect(refusedCode(() => checkHead({ ...head(good, checkpointHash(good)), storedHash: checkpointHash(forged) }))).toBe("CHECKPOINT_INVALID");
  });

  it("a stored v0x04 head after a v0x05 checkpoint is refused by its version (a payment receipt can pass for a v0x04 checkpoint); after a v0x04 one it loads", () => {
    const previous = signCheckpoint(encodeCheckpoint({ ...fields, tick: 41n }, new Uint8Array([6])), key);
    const unsigned = encodeCheckpoint({ ...fields, prevHash: checkpointHash(previous) }, new Uint8Array([7]));
    unsigned[0] = 4;
    const v4 = signCheckpoint(unsigned, key);
    const after = (version: number) => ({ ...head(v4), previousHash: checkpointHash(previous), previousVersion: version });
    expect(refusedCode(() => checkHead(after(5)))).toBe("CHECKPOINT_VERSION");
    expect(() => checkHead(after(5))).toThrow(/check "version" failed: v0x04 after a v0x05 checkpoint/);
    expect(refusedCode(() => checkHead(after(4)))).toBe("accepted");
  });
});
