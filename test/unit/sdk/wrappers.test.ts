// The AssemblyScript SDK's HTTP and payment wrappers against igor's ABI: what they pass to the host
// (method, URL, `Key: Value\n` header lines, body, buffer sizes) and what they make of each answer,
// including igor's Go SDK policy on the -5 size hint (one retry with the hinted size, within a cap).
// The host here writes exactly what igor's http_request / wallet_pay / wallet_receipt write.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { paymentSigningBytes } from "../../../src/hostcalls/wallet-pay.js";
import { AS_FIXTURES } from "../../helpers/node.js";

interface HttpCall { method: string; url: string; headers: string; body: string; cap: number }
interface PayCall { amount: bigint; recipient: string; memo: string; cap: number }
type HttpAnswer = { status: number; body: Uint8Array } | { code: number; hint?: number };

let memory: WebAssembly.Memory;
let httpCalls: HttpCall[] = [];
let httpAnswers: HttpAnswer[] = [];
let payCalls: PayCall[] = [];
let payAnswers: ({ receipt: Uint8Array } | { code: number; hint?: number })[] = [];
let receiptAnswers: (Uint8Array | number)[] = [];
let receiptCaps: number[] = [];
let receiptIndices: number[] = [];
/** What wallet_receipt_count answers instead of the count (-5: the node did not answer). */
let countAnswer: number | null = null;

const text = (ptr: number, len: number) => Buffer.from(memory.buffer, ptr, len).toString("utf8");
const view = () => new DataView(memory.buffer);

function writeLenPrefixed(ptr: number, cap: number, data: Uint8Array, hint: (n: number) => number): number | null {
  if (4 + data.length > cap) {
    if (cap >= 4) view().setUint32(ptr, hint(data.length), true);
    return null;
  }
  view().setUint32(ptr, data.length, true);
  new Uint8Array(memory.buffer, ptr + 4, data.length).set(data);
  return 4 + data.length;
}

const igor = {
  http_request(mp: number, ml: number, up: number, ul: number, hp: number, hl: number, bp: number, bl: number, rp: number, rc: number): number {
    httpCalls.push({ method: text(mp, ml), url: text(up, ul), headers: text(hp, hl), body: text(bp, bl), cap: rc });
    const a = httpAnswers.shift();
    if (a === undefined) throw new Error("unexpected http_request");
    if ("code" in a) {
      if (a.hint !== undefined) view().setUint32(rp, a.hint, true);
      return a.code;
    }
    return writeLenPrefixed(rp, rc, a.body, (n) => n) === null ? -5 : a.status;
  },
  wallet_pay(amount: bigint, rp: number, rl: number, mp: number, ml: number, op: number, oc: number): number {
    payCalls.push({ amount, recipient: text(rp, rl), memo: text(mp, ml), cap: oc });
    const a = payAnswers.shift();
    if (a === undefined) throw new Error("unexpected wallet_pay");
    if ("code" in a) {
      if (a.hint !== undefined) view().setUint32(op, a.hint, true);
      return a.code;
    }
    return writeLenPrefixed(op, oc, a.receipt, (n) => n) ?? -5;
  },
  wallet_receipt_count: () => countAnswer ?? receiptAnswers.length,
  wallet_receipt(index: number, bp: number, cap: number): number {
    receiptCaps.push(cap);
    receiptIndices.push(index);
    const a = receiptAnswers[index];
    if (typeof a === "number") return a;
    if (a === undefined) return -1;
    if (a.length > cap) return -4;
    new Uint8Array(memory.buffer, bp, a.length).set(a);
    return a.length;
  },
};

interface Exports {
  get(): void;
  request_with_headers(): void;
  post_empty(): void;
  pay(amount: bigint): void;
  receipt_count(): number;
  receipt(i: number): void;
  take_mark(): number;
  clear_mark(): void;
  find(amount: bigint): number;
  terms(): bigint;
  last_status(): number;
  last_error(): number;
  out_len(): number;
  out_ptr(): number;
  memory: WebAssembly.Memory;
}

let sdk: Exports;
const out = () => Buffer.from(memory.buffer, sdk.out_ptr(), sdk.out_len());

beforeEach(async () => {
  httpCalls = [];
  httpAnswers = [];
  payCalls = [];
  payAnswers = [];
  receiptAnswers = [];
  receiptCaps = [];
  receiptIndices = [];
  countAnswer = null;
  const bytes = readFileSync(join(AS_FIXTURES, "sdk_calls.wasm"));
  const { instance } = await WebAssembly.instantiate(bytes, {
    igor,
    env: { abort: () => { throw new Error("abort"); } },
  });
  sdk = instance.exports as unknown as Exports;
  memory = sdk.memory;
});

describe("SDK http wrappers", () => {
  it("httpGet passes method and URL with no headers and an 8 KiB buffer, and returns status and body as is", () => {
    httpAnswers.push({ status: 402, body: Buffer.from("terms") });
    sdk.get();
    expect(httpCalls).toEqual([{ method: "GET", url: "http://localhost:8402/api/premium-data", headers: "", body: "", cap: 8192 }]);
    expect([sdk.last_status(), sdk.last_error(), out().toString()]).toEqual([402, 0, "terms"]);
  });

  it("httpRequest sends headers as `Key: Value\\n` lines in insertion order, and the body", () => {
    httpAnswers.push({ status: 201, body: new Uint8Array(0) });
    sdk.request_with_headers();
    expect(httpCalls[0]).toMatchObject({
      method: "POST",
      headers: "X-Payment: 00c2ab\nContent-Type: application/json\n",
      body: "{}",
    });
    expect([sdk.last_status(), sdk.last_error(), sdk.out_len()]).toEqual([201, 0, 0]);
  });

  it("httpPost sets Content-Type even when empty, as igor's HTTPPost", () => {
    httpAnswers.push({ status: 402, body: new Uint8Array(1) });
    sdk.post_empty();
    expect(httpCalls[0]).toMatchObject({ method: "POST", headers: "Content-Type: \n", body: "" });
  });

  it("on -5 retries once with a buffer of the hinted body size plus the 4-byte prefix", () => {
    const big = Buffer.alloc(20_000, 0x61);
    httpAnswers.push({ status: 200, body: big }, { status: 200, body: big });
    sdk.get();
    expect(httpCalls.map((c) => c.cap)).toEqual([8192, 20_004]);
    expect([sdk.last_status(), sdk.last_error()]).toEqual([200, 0]);
    expect(out().equals(big)).toBe(true);
  });

  it("gives up with -5 when the hint is above 4 MiB or the retry is still too small", () => {
    httpAnswers.push({ code: -5, hint: 4 * 1024 * 1024 + 1 });
    sdk.get();
    expect(httpCalls).toHaveLength(1);
    expect([sdk.last_status(), sdk.last_error()]).toEqual([0, -5]);
    httpAnswers.push({ code: -5, hint: 10_000 }, { code: -5, hint: 20_000 });
    sdk.get();
    expect(httpCalls.map((c) => c.cap)).toEqual([8192, 8192, 10_004]);
    expect(sdk.last_error()).toBe(-5);
  });

  it("returns the host's other codes as errors without retrying", () => {
    for (const code of [-1, -2, -3, -4]) {
      httpAnswers.push({ code });
      sdk.get();
      expect([sdk.last_status(), sdk.last_error(), sdk.out_len()]).toEqual([0, code, 0]);
    }
    expect(httpCalls).toHaveLength(4);
  });

  it("parses igor's 402 terms [i64 amount][u32][recipient][u32][memo]", () => {
    const terms = Buffer.alloc(8 + 4 + 16 + 4 + 19);
    terms.writeBigInt64LE(100_000n, 0);
    terms.writeUInt32LE(16, 8);
    terms.write("paywall-provider", 12);
    terms.writeUInt32LE(19, 28);
    terms.write("premium-data-access", 32);
    httpAnswers.push({ status: 402, body: terms });
    sdk.get();
    expect(sdk.terms()).toBe(100_000n);
    expect(out().toString()).toBe("paywall-provider|premium-data-access");
    httpAnswers.push({ status: 402, body: Buffer.from("not terms") });
    sdk.get();
    expect(sdk.terms()).toBe(0n);
  });

  // A 402 body is whatever the paid server sends: a length near 2^31 must not wrap a bounds check
  // and send the parse 2 GiB past the body (an abort, failing the agent on a server's reply).
  for (const len of [0x7ffffff0, 0x7ffffff4, 0x80000000, 0xffffffff]) {
    it(`reads a 402 whose recipient or memo length (${len.toString(16)}) runs past the body as a body without them, never trapping`, () => {
      const terms = Buffer.alloc(8 + 4 + 4 + 4);
      terms.writeBigInt64LE(100_000n, 0);
      terms.writeUInt32LE(len, 8);
      httpAnswers.push({ status: 402, body: terms });
      sdk.get();
      expect(sdk.terms()).toBe(0n);
      terms.writeUInt32LE(0, 8);
      terms.writeUInt32LE(len, 12);
      httpAnswers.push({ status: 402, body: terms });
      sdk.get();
      expect([sdk.terms(), out().toString()]).toEqual([100_000n, "|"]);
    });
  }
});

describe("SDK payment wrappers", () => {
  it("walletPay passes amount, recipient and memo with a 1 KiB buffer and returns the receipt", () => {
    const receipt = Buffer.alloc(120 + 16 + 19, 7);
    payAnswers.push({ receipt });
    sdk.pay(100_000n);
    expect(payCalls).toEqual([{ amount: 100_000n, recipient: "paywall-provider", memo: "premium-data-access", cap: 1024 }]);
    expect(sdk.last_error()).toBe(0);
    expect(out().equals(receipt)).toBe(true);
  });

  it("on -5 retries once with the hinted receipt size (the host debits nothing before that check)", () => {
    const receipt = Buffer.alloc(3000, 9);
    payAnswers.push({ receipt }, { receipt });
    sdk.pay(5n);
    expect(payCalls.map((c) => c.cap)).toEqual([1024, 3004]);
    expect(out().equals(receipt)).toBe(true);
    payAnswers.push({ code: -5, hint: 64 * 1024 + 1 });
    sdk.pay(5n);
    expect(payCalls).toHaveLength(3);
    expect(sdk.last_error()).toBe(-5);
  });

  it("returns igor's refusal codes (budget, input, recipient, cap, processing) as errors", () => {
    for (const code of [-1, -2, -3, -4, -6]) {
      payAnswers.push({ code });
      sdk.pay(1n);
      expect([sdk.last_error(), sdk.out_len()]).toEqual([code, 0]);
    }
  });

  it("walletReceipt doubles its buffer on -4 (igor's call gives no hint) and reports a bad index", () => {
    receiptAnswers.push(Buffer.alloc(3000, 1));
    expect(sdk.receipt_count()).toBe(1);
    sdk.receipt(0);
    expect(receiptCaps).toEqual([1024, 2048, 4096]);
    expect([sdk.last_error(), sdk.out_len()]).toEqual([0, 3000]);
    sdk.receipt(5);
    expect([sdk.last_error(), sdk.out_len()]).toEqual([-1, 0]);
  });

  it("findReceipt finds the lost payment of exactly these terms listed after the intent's receipt mark, whatever its timestamp, and stops at the mark and at the first execution receipt", () => {
    const enc = new TextEncoder();
    const paid = (amount: bigint, ts: bigint, memo = "premium-data-access", sig = 4) =>
      Buffer.concat([paymentSigningBytes(amount, ts, enc.encode("paywall-provider"), enc.encode(memo), new Uint8Array(32).fill(3)), Buffer.alloc(64, sig)]);
    const execution = Buffer.alloc(150, 9); // the node's execution receipts follow the lost payments
    // An earlier purchase on the same terms, lost in an earlier crash: the newest lost payment listed
    // when this intent was recorded, so the intent's mark.
    const earlier = paid(100_000n, 5_000n, "premium-data-access", 5);
    receiptAnswers.push(earlier, execution);
    expect(sdk.take_mark()).toBe(1);
    expect(out().equals(earlier.subarray(earlier.length - 64))).toBe(true);
    expect(receiptIndices).toEqual([0]);

    // Then this intent's payment was lost, signed where the clock read behind the earlier one's, and
    // a payment on other terms after it. The node lists them newest first.
    const thisOne = paid(100_000n, 2_000n, "premium-data-access", 6);
    const newest = paid(100_000n, 3_000n, "another-memo", 7);
    receiptAnswers.unshift(newest, thisOne);
    receiptIndices = [];
    expect(sdk.find(100_000n)).toBe(1);
    expect(out().equals(thisOne)).toBe(true);
    expect(receiptIndices).toEqual([0, 1]);

    // Other terms: the search ends at the mark, never taking the earlier purchase for this one.
    receiptIndices = [];
    expect(sdk.find(100_001n)).toBe(0);
    expect(receiptIndices).toEqual([0, 1, 2]);
    receiptAnswers.splice(1, 1); // this one was never lost: only the earlier purchase matches, before the mark
    expect(sdk.find(100_000n)).toBe(0);
    expect(out().length).toBe(0);

    // Without a mark (none listed when the intent was recorded) every lost payment counts, up to the
    // first execution receipt.
    sdk.clear_mark();
    receiptIndices = [];
    expect(sdk.find(100_000n)).toBe(1);
    expect(out().equals(earlier)).toBe(true);
    receiptIndices = [];
    expect(sdk.find(100_001n)).toBe(0);
    expect(receiptIndices).toEqual([0, 1, 2]);
  });

  it("receiptMark is none when the node lists no lost payment, and unknown (null) when it could not answer, so the intent is recorded later", () => {
    expect(sdk.take_mark()).toBe(0); // no receipts at all
    receiptAnswers.push(Buffer.alloc(150, 9)); // an execution receipt only
    expect(sdk.take_mark()).toBe(0);
    expect(out().equals(Buffer.alloc(64))).toBe(true);
    countAnswer = -5;
    expect(sdk.take_mark()).toBe(-1);
    countAnswer = null;
    receiptAnswers[0] = -5;
    expect(sdk.take_mark()).toBe(-1);
  });

  it("findReceipt tells a search the node could not answer (-5, count or receipt) from a receipt not there, so a lost payment is not taken for unpaid", () => {
    const enc = new TextEncoder();
    const paid = (amount: bigint, ts: bigint) =>
      Buffer.concat([paymentSigningBytes(amount, ts, enc.encode("paywall-provider"), enc.encode("premium-data-access"), new Uint8Array(32).fill(3)), Buffer.alloc(64, 4)]);
    const other = paid(7n, 1_000n);
    receiptAnswers.push(other, paid(100_000n, 2_000n));

    countAnswer = -5;
    expect(sdk.find(100_000n)).toBe(-1);
    expect(out().length).toBe(0);
    expect(receiptIndices).toEqual([]);

    countAnswer = null;
    receiptAnswers[1] = -5; // the count came back, the receipt that might be it did not
    expect(sdk.find(100_000n)).toBe(-1);
    expect(receiptIndices).toEqual([0, 1]);

    receiptAnswers.pop(); // really not there: the list ends before it
    expect(sdk.find(100_000n)).toBe(0);
  });
});
