// wallet_pay(amount i64, recipient, rlen, memo, mlen, out, out_cap) -> i32 (capability "x402",
// event id 9, igor's ABI): an exact debit from the agent's budget and a payment receipt signed with
// the agent's own key, so a provider can verify it against the agent's DID.
//
// igor's check order and codes: recipient > 256 B or memo > 512 B → -2; unreadable argument → -6;
// amount <= 0 → -6; amount > max_payment_microcents (when set) → -4; recipient not in
// allowed_recipients (when set) → -3; out_cap too small → -5 with the receipt length as a u32 hint at
// `out` (before any debit); then (igord) no ACTIVE_OWNER authority within the lease → -3; the tick
// already made MAX_PAYMENTS_PER_TICK payments → -3; budget left
// in this tick < amount → -1; signing failed → -6 (nothing debited). Success writes
// [u32 len][receipt] at `out` and returns 4 + len.
//
// Receipt (igor's layout): [i64 amount][i64 ts ns][u32 rlen][recipient][u32 mlen][memo][32 B agent
// public key] then the 64-byte Ed25519 signature of everything before it.
//
// Recorded payload: the receipt on success, the u32 hint on -5, else empty. The debit is what the
// tick's recorded successful payments add up to (paymentsIn): the scheduler takes it from the budget
// when the tick commits. The main thread journals each receipt durably before handing its signature
// back (node/lost-payments.ts): a tick lost after paying (a crash before its checkpoint) is debited at the
// next start, once, as a signed lost_payment lineage event. Replay returns the recorded
// result and receipt, never debits, and checks that the receipt is for the amount, recipient and
// memo the agent passes now (the bytes: two invalid UTF-8 sequences decode to the same text).
import { ErrorCode, IgordError } from "../errors.js";
import { EMPTY, type Observation } from "../eventlog/recorder.js";
import type { LogEntry } from "../eventlog/tick-log.js";
import { equalBytes } from "../hash/bytes.js";
import { verifyBytes } from "../identity/keys.js";
import { guestBytes, type HostContext } from "./context.js";
import { receiptKeyOffset } from "./receipt-layout.js";
import { HostcallId } from "./registry.js";

export const PAY_MAX_RECIPIENT_BYTES = 256;
/**
 * Payments one tick may make; past it wallet_pay refuses (-3) before anything is signed. Each
 * payment's receipt is journalled durably before its signature goes back (an fsync, ~2.2 ms here,
 * off the main thread; the tick waits for it): 1,000 payments of 1 µ¢ in one tick held the main
 * thread syncing for 2.2 s when the sync ran on it, and would still hold the paying tick that long.
 */
export const MAX_PAYMENTS_PER_TICK = 64;
export const PAY_MAX_MEMO_BYTES = 512;
const PUBKEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
/** A receipt's length without its recipient and memo: amount, timestamp, two lengths, key, signature. */
export const PAYMENT_RECEIPT_FIXED_BYTES = 8 + 8 + 4 + 4 + PUBKEY_BYTES + SIGNATURE_BYTES;

export const PayResult = {
  insufficientBudget: -1,
  inputTooLong: -2,
  refused: -3,
  amountExceeded: -4,
  bufferTooSmall: -5,
  processing: -6,
} as const;

/** The manifest's `x402` options. */
export interface PayOptions {
  /** Exact recipients; empty = any. */
  allowedRecipients: string[];
  /** Largest single payment in microcents; 0 = no cap (igor's default). */
  maxPaymentMicrocents: bigint;
}

export function parsePayOptions(options: Readonly<Record<string, unknown>>): PayOptions {
  const r = options.allowed_recipients ?? [];
  if (!Array.isArray(r) || r.some((x) => typeof x !== "string")) {
    throw new IgordError(ErrorCode.ManifestInvalid, `capability "x402" option allowed_recipients must be an array of strings, got ${JSON.stringify(r)}`);
  }
  const m = options.max_payment_microcents ?? 0;
  const okNumber = typeof m === "number" && Number.isSafeInteger(m) && m >= 0;
  const okString = typeof m === "string" && /^\d+$/.test(m);
  if (!okNumber && !okString) {
    throw new IgordError(ErrorCode.ManifestInvalid, `capability "x402" option max_payment_microcents must be a non-negative integer (a string above 2^53), got ${JSON.stringify(m)}`);
  }
  return { allowedRecipients: r as string[], maxPaymentMicrocents: BigInt(m as number | string) };
}

export interface PaymentReceipt {
  amount: bigint;
  timestampNs: bigint;
  /** The recipient as text, for people (logs, reasons); invalid UTF-8 reads as U+FFFD. */
  recipient: string;
  memo: string;
  /** The bytes the receipt signs (views into it): what replay and the allowlist compare. */
  recipientBytes: Uint8Array;
  memoBytes: Uint8Array;
  publicKey: Uint8Array;
  signature: Uint8Array;
}

const dec = new TextDecoder();
const enc = new TextEncoder();

/** The signed part of a receipt. */
export function paymentSigningBytes(amount: bigint, timestampNs: bigint, recipient: Uint8Array, memo: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(PAYMENT_RECEIPT_FIXED_BYTES - SIGNATURE_BYTES + recipient.length + memo.length);
  const dv = new DataView(out.buffer);
  dv.setBigInt64(0, amount, true);
  dv.setBigInt64(8, timestampNs, true);
  dv.setUint32(16, recipient.length, true);
  out.set(recipient, 20);
  let o = 20 + recipient.length;
  dv.setUint32(o, memo.length, true);
  out.set(memo, o + 4);
  o += 4 + memo.length;
  out.set(publicKey.subarray(0, PUBKEY_BYTES), o);
  return out;
}

/** Parses a receipt; null when malformed. */
export function decodePaymentReceipt(b: Uint8Array): PaymentReceipt | null {
  if (b.length < PAYMENT_RECEIPT_FIXED_BYTES) return null;
  const k = receiptKeyOffset(b.subarray(0, b.length - SIGNATURE_BYTES));
  if (k < 0) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const rlen = dv.getUint32(16, true);
  const recipientBytes = b.subarray(20, 20 + rlen);
  const memoBytes = b.subarray(24 + rlen, k);
  return {
    amount: dv.getBigInt64(0, true),
    timestampNs: dv.getBigInt64(8, true),
    recipient: dec.decode(recipientBytes),
    memo: dec.decode(memoBytes),
    recipientBytes,
    memoBytes,
    publicKey: b.slice(k, k + PUBKEY_BYTES),
    signature: b.slice(k + PUBKEY_BYTES),
  };
}

/** Whether a receipt is signed by the key it names (a provider checks that key against the agent's DID). */
export function verifyPaymentReceipt(b: Uint8Array): boolean {
  const r = decodePaymentReceipt(b);
  if (!r) return false;
  return verifyBytes(r.publicKey, b.subarray(0, b.length - SIGNATURE_BYTES), r.signature);
}

/** The payments a tick made: its recorded successful wallet_pay calls. */
export function paymentsIn(entries: readonly LogEntry[]): { total: bigint; receipts: Uint8Array[] } {
  let total = 0n;
  const receipts: Uint8Array[] = [];
  for (const e of entries) {
    if (e.id !== HostcallId.wallet_pay || e.result <= 0 || e.payload.length < 8) continue;
    total += new DataView(e.payload.buffer, e.payload.byteOffset, 8).getBigInt64(0, true);
    receipts.push(e.payload);
  }
  return { total, receipts };
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

export function walletPay(ctx: HostContext, opts: PayOptions | undefined): (amount: bigint, rPtr: number, rLen: number, mPtr: number, mLen: number, out: number, cap: number) => number {
  const options = opts ?? parsePayOptions({});
  // Bytes, not decoded text: decoding maps every invalid UTF-8 sequence to U+FFFD, so a text
  // comparison lets a recipient through that is not the allowed name the receipt would sign.
  const allowed = options.allowedRecipients.map((r) => enc.encode(r));
  return (amount, rPtr, rLen, mPtr, mLen, outPtr, outCap) => {
    const rlen = rLen >>> 0;
    const mlen = mLen >>> 0;
    const cap = outCap >>> 0;
    /** The checks that depend only on the arguments and the manifest: a code, or what to pay. */
    const validate = (): number | { recipient: Uint8Array; memo: Uint8Array; size: number } => {
      if (rlen > PAY_MAX_RECIPIENT_BYTES || mlen > PAY_MAX_MEMO_BYTES) return PayResult.inputTooLong;
      const recipient = guestBytes(ctx, rPtr, rlen);
      const memo = guestBytes(ctx, mPtr, mlen);
      if (recipient === null || memo === null) return PayResult.processing;
      if (amount <= 0n) return PayResult.processing;
      if (options.maxPaymentMicrocents > 0n && amount > options.maxPaymentMicrocents) return PayResult.amountExceeded;
      if (allowed.length > 0 && !allowed.some((a) => equalBytes(a, recipient))) return PayResult.refused;
      return { recipient: recipient.slice(), memo: memo.slice(), size: PAYMENT_RECEIPT_FIXED_BYTES + rlen + mlen };
    };
    const live = (): Observation => {
      const v = validate();
      if (typeof v === "number") return { result: v, payload: EMPTY };
      if (4 + v.size > cap) return { result: PayResult.bufferTooSmall, payload: u32(v.size) };
      if (guestBytes(ctx, outPtr, 4 + v.size) === null) return { result: PayResult.processing, payload: EMPTY };
      // CE-4: money leaving the budget is a side effect, for the active owner only.
      if (!ctx.authority()) return { result: PayResult.refused, payload: EMPTY };
      if ((ctx.paymentsThisTick?.() ?? 0) >= MAX_PAYMENTS_PER_TICK) return { result: PayResult.refused, payload: EMPTY };
      if (!ctx.spend?.(amount, true)) return { result: PayResult.insufficientBudget, payload: EMPTY };
      const signing = paymentSigningBytes(amount, ctx.world.nowNs(), v.recipient, v.memo, ctx.publicKey?.() ?? new Uint8Array(PUBKEY_BYTES));
      const signature = ctx.world.signPayment?.(signing) ?? null;
      if (signature === null || signature.length !== SIGNATURE_BYTES) return { result: PayResult.processing, payload: EMPTY };
      ctx.spend?.(amount, false);
      const receipt = new Uint8Array(v.size);
      receipt.set(signing);
      receipt.set(signature, signing.length);
      return { result: 4 + v.size, payload: receipt };
    };
    const check = (rec: Observation): string | null => {
      const v = validate();
      if (typeof v === "number") return rec.result === v ? null : `the agent's arguments give ${v} now, the log recorded ${rec.result}`;
      if (rec.result === PayResult.bufferTooSmall) return rec.payload.length === 4 ? null : "a -5 result must record a 4-byte hint";
      if (rec.result <= 0) return rec.payload.length === 0 ? null : `a ${rec.result} result recorded a payload`;
      const r = decodePaymentReceipt(rec.payload);
      if (!r || rec.result !== 4 + rec.payload.length) return "the recorded payment receipt is malformed";
      if (r.amount !== amount || !equalBytes(r.recipientBytes, v.recipient) || !equalBytes(r.memoBytes, v.memo)) return "the agent pays another amount, recipient or memo than the recorded receipt";
      return 4 + rec.payload.length <= cap ? null : `the recorded receipt does not fit the ${cap}-byte buffer the agent passes`;
    };
    const o = ctx.source.observe(HostcallId.wallet_pay, live, check);
    if (o.result > 0) {
      guestBytes(ctx, outPtr, o.result)?.set([...u32(o.payload.length), ...o.payload]);
    } else if (o.result === PayResult.bufferTooSmall && cap >= 4) {
      guestBytes(ctx, outPtr, 4)?.set(o.payload);
    }
    return o.result;
  };
}

/** What an agent's recorded payments add up to, and any receipt that is not its own signed one. */
export interface PaymentsReport {
  count: number;
  total: bigint;
  problems: string[];
}

/**
 * Accounts for the payments recorded in an agent's event logs: each successful wallet_pay receipt
 * must name `publicKey` (the agent's, from its DID) and carry its valid signature.
 */
export function accountPayments(logs: Iterable<{ tick: bigint; entries: readonly LogEntry[] }>, publicKey: Uint8Array): PaymentsReport {
  const report: PaymentsReport = { count: 0, total: 0n, problems: [] };
  for (const log of logs) {
    for (const receipt of paymentsIn(log.entries).receipts) {
      const r = decodePaymentReceipt(receipt);
      report.count++;
      if (!r) {
        report.problems.push(`tick ${log.tick}: a payment receipt is malformed`);
        continue;
      }
      report.total += r.amount;
      const own = r.publicKey.every((b, i) => b === publicKey[i]);
      if (!own || !verifyPaymentReceipt(receipt)) report.problems.push(`tick ${log.tick}: the payment of ${r.amount} to ${JSON.stringify(r.recipient)} is not signed by the agent's key`);
    }
  }
  return report;
}
