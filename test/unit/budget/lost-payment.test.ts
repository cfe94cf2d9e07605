import { describe, expect, it } from "vitest";
import { debit, lostPaymentReason, parseLostPayment } from "../../../src/budget/lost-payment.js";
import { generateKey, signBytes } from "../../../src/identity/keys.js";
import { paymentSigningBytes } from "../../../src/hostcalls/wallet-pay.js";

const enc = new TextEncoder();

/** A receipt naming `named`'s public key, signed with `signer`. */
function receipt(amount: bigint, named: ReturnType<typeof generateKey>, signer = named): Uint8Array {
  const signing = paymentSigningBytes(amount, 5n, enc.encode("paywall"), enc.encode("memo"), named.publicKey);
  return new Uint8Array([...signing, ...signBytes(signer, signing)]);
}

describe("lost payments", () => {
  it("a lost_payment reason carries the receipt: amount, recipient, tick and the agent's signature come back out of it", () => {
    const key = generateKey();
    const bytes = receipt(100_000n, key);
    const reason = lostPaymentReason(42n, bytes);
    expect(reason).toMatch(/^lost payment at tick 42: 100000 µ¢ to "paywall", receipt [0-9a-f]+$/);
    const p = parseLostPayment({ kind: "lost_payment", reason });
    expect(p?.tick).toBe(42n);
    expect(p?.receipt).toEqual(bytes);
    expect(p?.payment.amount).toBe(100_000n);
    expect(p?.payment.publicKey).toEqual(key.publicKey);
    expect(p?.signed).toBe(true);
    // Another kind, or a reason without a receipt, is no lost payment.
    expect(parseLostPayment({ kind: "budget_override", reason })).toBeNull();
    expect(parseLostPayment({ kind: "lost_payment", reason: "top-up" })).toBeNull();
  });

  it("a receipt signed by another key than the one it names is marked unsigned", () => {
    const forged = receipt(7n, generateKey(), generateKey());
    expect(parseLostPayment({ kind: "lost_payment", reason: lostPaymentReason(1n, forged) })?.signed).toBe(false);
  });

  it("a debit never takes the budget below zero", () => {
    expect(debit(10n, 3n)).toBe(7n);
    expect(debit(10n, 10n)).toBe(0n);
    expect(debit(10n, 11n)).toBe(0n);
  });
});
