// Where the signing key sits in a payment receipt's signed part (igor's layout, which wallet-pay.ts
// writes and reads): [i64 amount][i64 ts ns][u32 rlen][recipient][u32 mlen][memo][32-byte key]. No
// imports: the checkpoint verifier reads it too (checkpoint/lineage.ts), to tell a receipt the guest
// shaped from a v0x04 checkpoint, whose signature carries no domain.

export const RECEIPT_KEY_BYTES = 32;
/** amount, timestamp and the recipient's length come before the recipient. */
const RECIPIENT_OFFSET = 20;
const MEMO_LENGTH_BYTES = 4;

/** Where the key of a receipt's signed part starts, or -1 when `signed` is not laid out as one. */
export function receiptKeyOffset(signed: Uint8Array): number {
  if (signed.length < RECIPIENT_OFFSET + MEMO_LENGTH_BYTES + RECEIPT_KEY_BYTES) return -1;
  const dv = new DataView(signed.buffer, signed.byteOffset, signed.length);
  const rlen = dv.getUint32(RECIPIENT_OFFSET - 4, true);
  const memoAt = RECIPIENT_OFFSET + rlen + MEMO_LENGTH_BYTES;
  if (memoAt + RECEIPT_KEY_BYTES > signed.length) return -1;
  const key = memoAt + dv.getUint32(memoAt - MEMO_LENGTH_BYTES, true);
  return key + RECEIPT_KEY_BYTES === signed.length ? key : -1;
}
