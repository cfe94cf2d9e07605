import { describe, expect, it } from "vitest";
import { encodeCheckpoint } from "../../../src/checkpoint/codec.js";
import { checkpointHash, GENESIS_PREV_HASH, signCheckpoint } from "../../../src/checkpoint/lineage.js";
import { sha256 } from "../../../src/hash/bytes.js";
import { signBudgetOverride } from "../../../src/checkpoint/overrides.js";
import { type BudgetOverride, type ChainEntry, verifyChain } from "../../../src/checkpoint/verify-chain.js";
import { type Ed25519Key, generateKey } from "../../../src/identity/keys.js";

const WASM = sha256(new Uint8Array([1, 2, 3]));

/** A history as igord writes it (v0x05), or with `version: 4` steps as an igord before v0x05 wrote them. */
function chain(key: Ed25519Key, steps: { tick: bigint; budget: bigint; epoch?: [bigint, bigint]; signer?: Ed25519Key; version?: 4 }[]): ChainEntry[] {
  let prev: Uint8Array = GENESIS_PREV_HASH;
  return steps.map((s) => {
    const signer = s.signer ?? key;
    const blob = signCheckpoint(
      withVersion(s.version, encodeCheckpoint(
        {
          budget: s.budget,
          price: 1000n,
          tick: s.tick,
          wasmHash: WASM,
          epochMajor: s.epoch?.[0] ?? 0n,
          epochGeneration: s.epoch?.[1] ?? 0n,
          leaseExpiry: 0n,
          prevHash: prev,
          publicKey: signer.publicKey,
        },
        new Uint8Array([Number(s.tick)]),
      )),
      signer,
    );
    prev = checkpointHash(blob);
    return { name: `${String(s.tick).padStart(10, "0")}.ckpt`, bytes: blob };
  });
}

/** The same layout with another version byte, signed as that version signs (lineage.signCheckpoint reads it). */
function withVersion(version: 4 | undefined, blob: Uint8Array): Uint8Array {
  if (version !== undefined) blob[0] = version;
  return blob;
}

const key = generateKey();
const steps = [
  { tick: 0n, budget: 1000n },
  { tick: 5n, budget: 900n },
  { tick: 10n, budget: 800n },
  { tick: 15n, budget: 700n },
  { tick: 20n, budget: 600n },
];

describe("history verification", () => {
  it("a clean history is VALID with one DID", () => {
    const r = verifyChain(chain(key, steps));
    expect(r.valid).toBe(true);
    expect(r.reasons).toEqual([]);
    expect(r.did).toMatch(/^did:key:z6Mk/);
    expect([r.checkpoints, r.firstTick, r.lastTick]).toEqual([5, 0n, 20n]);
  });

  it("an old v0x04 history, and one that goes on in v0x05 (what a node writes after an upgrade), are VALID", () => {
    const old = steps.map((s) => ({ ...s, version: 4 as const }));
    const r4 = verifyChain(chain(key, old));
    expect([r4.valid, r4.reasons]).toEqual([true, []]);
    const upgraded = verifyChain(chain(key, [...old.slice(0, 3), ...steps.slice(3)]));
    expect([upgraded.valid, upgraded.reasons]).toEqual([true, []]);
  });

  it("a v0x04 checkpoint after a v0x05 one is INVALID, the step down named (a payment receipt can pass for a v0x04 checkpoint)", () => {
    const r = verifyChain(chain(key, [...steps.slice(0, 3), { ...steps[3]!, version: 4 }]));
    expect(r.valid).toBe(false);
    expect(r.reasons).toEqual([expect.stringMatching(/^0000000015\.ckpt: v0x04 after a v0x05 checkpoint \(a history never goes back/)]);
  });

  it("a flipped byte is INVALID (signature)", () => {
    const c = chain(key, steps);
    c[2]!.bytes[209] = (c[2]!.bytes[209] ?? 0) ^ 1;
    const r = verifyChain(c);
    expect(r.valid).toBe(false);
    expect(r.reasons.join("\n")).toMatch(/0000000010\.ckpt: signature INVALID/);
  });

  it("a deleted middle checkpoint is INVALID (chain broken)", () => {
    const c = chain(key, steps);
    c.splice(2, 1);
    const r = verifyChain(c);
    expect(r.reasons.join("\n")).toMatch(/0000000015\.ckpt: prevHash does not match 0000000005\.ckpt/);
  });

  it("ticks going backwards are INVALID", () => {
    const r = verifyChain(chain(key, [...steps.slice(0, 3), { tick: 7n, budget: 650n }]));
    expect(r.reasons.join("\n")).toMatch(/tick 7 does not increase \(previous 0000000010\.ckpt is tick 10\)/);
  });

  it("a changed key is INVALID", () => {
    const other = generateKey();
    const r = verifyChain(chain(key, [...steps.slice(0, 3), { tick: 15n, budget: 700n, signer: other }]));
    expect(r.reasons.join("\n")).toMatch(/signed by a different key/);
  });

  it("a budget increase is INVALID unless a signed override records it", () => {
    const bumped = chain(key, [...steps.slice(0, 3), { tick: 15n, budget: 5000n }]);
    expect(verifyChain(bumped).reasons.join("\n")).toMatch(/budget increased from 800 to 5000 without a recorded top-up/);
    const fields = { afterHash: checkpointHash(bumped[2]!.bytes), tick: 10n, oldBudget: 800n, newBudget: 6000n, reason: "operator top-up" };
    const topUp: BudgetOverride = { ...fields, signature: signBudgetOverride(key, fields) };
    expect(verifyChain(bumped, [topUp]).valid).toBe(true);
    const forged: BudgetOverride = { ...topUp, signature: signBudgetOverride(generateKey(), fields) };
    expect(verifyChain(bumped, [forged]).reasons.join("\n")).toMatch(/override.*invalid signature/);
  });

  it("an override after the head (no checkpoint follows it yet) must be signed too: it sets the budget the agent resumes with", () => {
    const c = chain(key, steps);
    const fields = { afterHash: checkpointHash(c.at(-1)!.bytes), tick: 20n, oldBudget: 600n, newBudget: 60_000n, reason: "operator top-up" };
    const topUp: BudgetOverride = { ...fields, signature: signBudgetOverride(key, fields) };
    expect(verifyChain(c, [topUp]).valid).toBe(true);
    const forged: BudgetOverride = { ...topUp, newBudget: 6_000_000n };
    const r = verifyChain(c, [forged]);
    expect(r.valid).toBe(false);
    expect(r.reasons.join("\n")).toMatch(/budget override after 0000000020\.ckpt \(the head\) has an invalid signature/);
  });

  it("an epoch going backwards is INVALID", () => {
    const r = verifyChain(
      chain(key, [
        { tick: 0n, budget: 10n, epoch: [1n, 0n] },
        { tick: 1n, budget: 9n, epoch: [1n, 3n] },
        { tick: 2n, budget: 8n, epoch: [1n, 2n] },
      ]),
    );
    expect(r.reasons.join("\n")).toMatch(/epoch went back from \(1,3\) to \(1,2\)/);
  });

  it("an unreadable file is INVALID and named", () => {
    const c = chain(key, steps);
    c[1] = { name: "0000000005.ckpt", bytes: new Uint8Array(30) };
    expect(verifyChain(c).reasons.join("\n")).toMatch(/0000000005\.ckpt: unreadable/);
  });
});
