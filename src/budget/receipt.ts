// Node execution receipts (igor §8.3): the node signs, with its own key, that it ran an agent's
// ticks [tickStart, tickEnd] for `cost` microcents. Receipts cover contiguous tick ranges and their
// costs sum to the budget spent. Binary: signed bytes, then [u32 sigLen][signature].
// Signed bytes: [u32 len][agentId][u32 len][nodeId][u64 tickStart][u64 tickEnd][i64 cost][i64 budgetAfter][i64 timestamp ns].
import { ErrorCode, IgordError } from "../errors.js";

export interface Receipt {
  agentId: string;
  nodeId: string;
  tickStart: bigint;
  tickEnd: bigint;
  cost: bigint;
  budgetAfter: bigint;
  timestampNs: bigint;
  signature: Uint8Array;
}

/**
 * The fields of a receipt this node is about to sign, checked: ticks only ever cost, so a negative
 * cost means the node's accounting is wrong (it would bill something twice further on), and the
 * node refuses to sign it rather than put a wrong sum under its key.
 */
export function receiptFields<R extends Omit<Receipt, "signature">>(r: R): R {
  if (r.cost < 0n) {
    throw new IgordError(ErrorCode.ReceiptInvalid, `refusing to sign a receipt of "${r.agentId}" for ticks ${r.tickStart}..${r.tickEnd} with a negative cost (${r.cost} µ¢): the node's count of what those ticks cost is wrong`, {
      details: { agentId: r.agentId, tickStart: String(r.tickStart), tickEnd: String(r.tickEnd), cost: String(r.cost) },
    });
  }
  return r;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function receiptSigningBytes(r: Omit<Receipt, "signature">): Uint8Array {
  const a = enc.encode(r.agentId);
  const n = enc.encode(r.nodeId);
  const out = new Uint8Array(8 + a.length + n.length + 40);
  const dv = new DataView(out.buffer);
  let o = 0;
  dv.setUint32(o, a.length, true);
  out.set(a, (o += 4));
  o += a.length;
  dv.setUint32(o, n.length, true);
  out.set(n, (o += 4));
  o += n.length;
  dv.setBigUint64(o, r.tickStart, true);
  dv.setBigUint64(o + 8, r.tickEnd, true);
  dv.setBigInt64(o + 16, r.cost, true);
  dv.setBigInt64(o + 24, r.budgetAfter, true);
  dv.setBigInt64(o + 32, r.timestampNs, true);
  return out;
}

export function encodeReceipt(r: Receipt): Uint8Array {
  const body = receiptSigningBytes(r);
  const out = new Uint8Array(body.length + 4 + r.signature.length);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, r.signature.length, true);
  out.set(r.signature, body.length + 4);
  return out;
}

export function decodeReceipt(bytes: Uint8Array): Receipt {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const need = (o: number, n: number) => {
    if (o + n > bytes.length) throw new Error("receipt is truncated");
  };
  let o = 0;
  need(o, 4);
  const al = dv.getUint32(o, true);
  need((o += 4), al);
  const agentId = dec.decode(bytes.subarray(o, o + al));
  o += al;
  need(o, 4);
  const nl = dv.getUint32(o, true);
  need((o += 4), nl);
  const nodeId = dec.decode(bytes.subarray(o, o + nl));
  o += nl;
  need(o, 44);
  const r = {
    agentId,
    nodeId,
    tickStart: dv.getBigUint64(o, true),
    tickEnd: dv.getBigUint64(o + 8, true),
    cost: dv.getBigInt64(o + 16, true),
    budgetAfter: dv.getBigInt64(o + 24, true),
    timestampNs: dv.getBigInt64(o + 32, true),
  };
  const sl = dv.getUint32(o + 40, true);
  need(o + 44, sl);
  return { ...r, signature: bytes.slice(o + 44, o + 44 + sl) };
}
