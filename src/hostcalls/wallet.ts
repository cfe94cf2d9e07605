// wallet_balance() -> i64 (capability "wallet", event id 4): the agent's budget in microcents at the
// start of the tick, less what it paid so far in this tick (wallet_pay).
// wallet_receipt_count() -> i32 (id 5): how many receipts the node holds for the agent (first the
// receipts of its lost payments, newest first, then its node execution receipts: node/lost-payments.ts
// nodeReceipts); payload 4 B u32. wallet_receipt(index, buf, cap) -> i32 (id 6): copies receipt
// `index` (a payment receipt, or the budget/receipt.ts encoding) into buf and returns its length;
// -1 bad index, -4 buffer too small or outside memory. Both answer -5 (HostcallResult.unanswered,
// empty payload) when the main thread, which holds the receipts, did not answer in time: igor's ABI
// had no such case, and reading it as 0 receipts or a bad index told an agent reconciling a lost
// payment that nothing was paid. Every call is recorded (igor recorded neither error); payload: the
// receipt on success, else empty. Replay writes the recorded bytes.
import { EMPTY } from "../eventlog/recorder.js";
import { guestBytes, type HostContext, i64Payload, payloadOf, readI64Payload } from "./context.js";
import { HostcallId, HostcallResult } from "./registry.js";

export function walletBalance(ctx: HostContext): () => bigint {
  return () =>
    readI64Payload(
      ctx.source.observe(HostcallId.wallet_balance, () => ({ result: 0, payload: i64Payload(ctx.budget()) }), payloadOf(8))
        .payload,
    );
}

export function walletReceiptCount(ctx: HostContext): () => number {
  return () => {
    const o = ctx.source.observe(HostcallId.wallet_receipt_count, () => {
      const n = ctx.world.receipts ? ctx.world.receipts.count() : 0;
      if (n === null) return { result: HostcallResult.unanswered, payload: EMPTY };
      const payload = new Uint8Array(4);
      new DataView(payload.buffer).setUint32(0, n, true);
      return { result: n, payload };
    }, (rec) => (rec.result === HostcallResult.unanswered ? (rec.payload.length === 0 ? null : "an unanswered count recorded a payload") : payloadOf(4)(rec)));
    return o.result;
  };
}

export function walletReceipt(ctx: HostContext): (index: number, ptr: number, cap: number) => number {
  return (index, ptr, cap) => {
    const o = ctx.source.observe(HostcallId.wallet_receipt, () => {
      const read = index < 0 || !ctx.world.receipts ? { bytes: null } : ctx.world.receipts.get(index);
      if (read === null) return { result: HostcallResult.unanswered, payload: EMPTY };
      const bytes = read.bytes;
      if (bytes === null) return { result: HostcallResult.error, payload: EMPTY };
      if (bytes.length > cap >>> 0 || guestBytes(ctx, ptr, bytes.length) === null) return { result: HostcallResult.outOfBounds, payload: EMPTY };
      return { result: bytes.length, payload: bytes };
    }, (rec) => {
      if (rec.result < 0) return rec.payload.length === 0 ? null : `a ${rec.result} result recorded a payload`;
      if (rec.result !== rec.payload.length) return `result ${rec.result} for a ${rec.payload.length}-byte receipt`;
      return rec.payload.length <= cap >>> 0 ? null : `the recorded ${rec.payload.length}-byte receipt does not fit the ${cap}-byte buffer`;
    });
    if (o.result > 0) guestBytes(ctx, ptr, o.payload.length)?.set(o.payload);
    return o.result;
  };
}
