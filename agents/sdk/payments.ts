// Payments (capability `x402`) and the node's receipts (capability `wallet`), with igor's ABI and its
// Go SDK's buffer policy: a 1 KiB receipt buffer, and on -5 one retry with the hinted size (up to
// 64 KiB). A payment receipt is `[i64 amount][i64 ts ns][u32 len][recipient][u32 len][memo]
// [32 B agent public key]` followed by a 64-byte Ed25519 signature by the agent's own key.

@external("igor", "wallet_pay")
declare function igor_wallet_pay(
  amount: i64,
  recipient: usize, recipientLen: i32,
  memo: usize, memoLen: i32,
  out: usize, outCap: i32,
): i32;
@external("igor", "wallet_receipt_count") declare function igor_wallet_receipt_count(): i32;
@external("igor", "wallet_receipt") declare function igor_wallet_receipt(index: i32, buf: usize, cap: i32): i32;

/** -1: less budget left in this tick than the amount. */
export const PAY_ERR_INSUFFICIENT_BUDGET: i32 = -1;
/** -2: recipient over 256 B or memo over 512 B. */
export const PAY_ERR_INPUT_TOO_LONG: i32 = -2;
/** -3: recipient not in `allowed_recipients`, or no authority (not the active owner within its lease). */
export const PAY_ERR_RECIPIENT_BLOCKED: i32 = -3;
/** -4: amount above `max_payment_microcents`. */
export const PAY_ERR_AMOUNT_EXCEEDED: i32 = -4;
/** -5: receipt buffer too small (the SDK retries once with the hinted size). */
export const PAY_ERR_BUFFER_TOO_SMALL: i32 = -5;
/** -6: amount ≤ 0, an argument outside memory, or the key could not sign. */
export const PAY_ERR_PROCESSING: i32 = -6;
/** SDK-side: the host claimed a receipt longer than the buffer it filled. */
export const PAY_ERR_TRUNCATED: i32 = -100;

/** First receipt buffer, as igor's SDK. */
export const PAY_INITIAL_RECEIPT_BYTES: i32 = 1024;
/** Largest receipt the SDK retries for after a -5 size hint, as igor's SDK. */
export const PAY_MAX_RETRY_RECEIPT_BYTES: u32 = 64 * 1024;
/** wallet_receipt gives no size hint: the SDK doubles its buffer up to this. */
export const NODE_RECEIPT_MAX_BYTES: i32 = 64 * 1024;
/** wallet_receipt -1: no receipt at that index. */
export const WALLET_ERR_BAD_INDEX: i32 = -1;
/** wallet_receipt -4: the buffer is too small (no size hint). */
export const WALLET_ERR_BUFFER_TOO_SMALL: i32 = -4;
/** wallet_receipt_count / wallet_receipt -5: the node could not answer in time; not "none" (ask again in a later tick). */
export const WALLET_ERR_UNANSWERED: i32 = -5;

/** The outcome of walletPay: the signed receipt, or an error code. */
export class Payment {
  /** The signed payment receipt (empty unless `error` is 0). */
  receipt: Uint8Array;
  /** 0, or the host's negative code (PAY_ERR_*). */
  error: i32;

  /** Made by walletPay. */
  constructor(receipt: Uint8Array, error: i32) {
    this.receipt = receipt;
    this.error = error;
  }

  /** True when the payment was made (`error` is 0). */
  get ok(): bool {
    return this.error == 0;
  }
}

/** The name of a wallet_pay code, for logs. */
export function payErrorName(code: i32): string {
  if (code == PAY_ERR_INSUFFICIENT_BUDGET) return "insufficient budget";
  if (code == PAY_ERR_INPUT_TOO_LONG) return "input too long";
  if (code == PAY_ERR_RECIPIENT_BLOCKED) return "recipient not allowed";
  if (code == PAY_ERR_AMOUNT_EXCEEDED) return "amount exceeds cap";
  if (code == PAY_ERR_BUFFER_TOO_SMALL) return "receipt buffer too small";
  if (code == PAY_ERR_PROCESSING) return "payment failed";
  if (code == PAY_ERR_TRUNCATED) return "receipt truncated";
  return "code " + code.toString();
}

function pay(amount: i64, r: Uint8Array, m: Uint8Array, out: Uint8Array): i32 {
  return igor_wallet_pay(
    amount,
    r.length == 0 ? 0 : r.dataStart, r.length,
    m.length == 0 ? 0 : m.dataStart, m.length,
    out.dataStart, out.length,
  );
}

/** Pays `amount` microcents from the agent's budget to `recipient`; returns the signed receipt. */
export function walletPay(amount: i64, recipient: string, memo: string): Payment {
  const r = Uint8Array.wrap(String.UTF8.encode(recipient));
  const m = Uint8Array.wrap(String.UTF8.encode(memo));
  let out = new Uint8Array(PAY_INITIAL_RECEIPT_BYTES);
  let rc = pay(amount, r, m, out);
  if (rc == PAY_ERR_BUFFER_TOO_SMALL) {
    // The host checks the buffer before it debits anything, so the retry cannot pay twice.
    const needed = load<u32>(out.dataStart);
    if (needed > 0 && needed <= PAY_MAX_RETRY_RECEIPT_BYTES) {
      out = new Uint8Array(<i32>needed + 4);
      rc = pay(amount, r, m, out);
    }
  }
  if (rc < 0) return new Payment(new Uint8Array(0), rc);
  const len = load<u32>(out.dataStart);
  if (<u64>len + 4 > <u64>out.length) return new Payment(new Uint8Array(0), PAY_ERR_TRUNCATED);
  return new Payment(out.slice(4, 4 + <i32>len), 0);
}

/**
 * How many receipts the node holds for the agent (capability `wallet`): first the payment receipts
 * of runs that never committed (lost in a crash or thrown away; newest first; see findReceipt), then
 * its execution receipts, oldest first. WALLET_ERR_UNANSWERED (-5) when the node could not answer.
 */
export function walletReceiptCount(): i32 {
  return igor_wallet_receipt_count();
}

/** One of the node's execution receipts for the agent, or an error code. */
export class NodeReceipt {
  /** The receipt's bytes (empty unless `error` is 0). */
  bytes: Uint8Array;
  /** 0, or the host's negative code (WALLET_ERR_*). */
  error: i32;

  /** Made by walletReceipt. */
  constructor(bytes: Uint8Array, error: i32) {
    this.bytes = bytes;
    this.error = error;
  }
}

/** The node's receipt at `index` (capability `wallet`): a lost payment's receipt or an execution receipt. */
export function walletReceipt(index: i32): NodeReceipt {
  let cap = PAY_INITIAL_RECEIPT_BYTES;
  while (true) {
    const buf = new Uint8Array(cap);
    const rc = igor_wallet_receipt(index, buf.dataStart, cap);
    if (rc >= 0) return new NodeReceipt(buf.slice(0, rc), 0);
    if (rc != WALLET_ERR_BUFFER_TOO_SMALL || cap >= NODE_RECEIPT_MAX_BYTES) {
      return new NodeReceipt(new Uint8Array(0), rc);
    }
    cap <<= 1;
  }
}

/** A payment receipt's Ed25519 signature, its last bytes: what tells one receipt from another. */
const RECEIPT_SIGNATURE_BYTES: i32 = 64;
/** The fixed part of a payment receipt: amount, timestamp, two lengths, public key, signature. */
const PAYMENT_RECEIPT_FIXED_BYTES: i32 = 8 + 8 + 4 + 4 + 32 + RECEIPT_SIGNATURE_BYTES;

/** A payment receipt's fields (its bytes are `[i64 amount][i64 ts ns][u32][recipient][u32][memo][32 B key][64 B signature]`). */
export class PaymentReceipt {
  /** Microcents paid. */
  amount: i64;
  /** When the node signed it (the node's clock, as clockNow). */
  timestampNs: i64;
  /** Who was paid. */
  recipient: string;
  /** What for. */
  memo: string;

  /** Usually made by PaymentReceipt.parse. */
  constructor(amount: i64, timestampNs: i64, recipient: string, memo: string) {
    this.amount = amount;
    this.timestampNs = timestampNs;
    this.recipient = recipient;
    this.memo = memo;
  }

  /** Parses a payment receipt; null when the bytes are not one (a node execution receipt, say). */
  static parse(b: Uint8Array): PaymentReceipt | null {
    if (b.length < PAYMENT_RECEIPT_FIXED_BYTES) return null;
    const rlen = load<u32>(b.dataStart + 16);
    if (<u64>rlen + 24 > <u64>b.length) return null;
    const mlen = load<u32>(b.dataStart + 20 + rlen);
    if (<u64>PAYMENT_RECEIPT_FIXED_BYTES + <u64>rlen + <u64>mlen != <u64>b.length) return null;
    return new PaymentReceipt(
      load<i64>(b.dataStart), load<i64>(b.dataStart + 8),
      String.UTF8.decodeUnsafe(b.dataStart + 20, rlen),
      String.UTF8.decodeUnsafe(b.dataStart + 24 + rlen, mlen),
    );
  }
}

/**
 * Where the node's list of the agent's lost payments stood when a payment intent was recorded: the
 * signature of the newest lost payment it listed (`bytes`, 64 bytes; all zero when it listed none).
 * Keep it with the intent (`bytes`, then `ReceiptMark.of(bytes)`) and pass it to findReceipt: the
 * node lists lost payments newest first and only ever adds newer ones, so those listed before the
 * mark are exactly the ones lost after the intent was recorded, whatever the clocks of the node that
 * recorded it and of the node that paid read. (A receipt's timestamp is the clock of the node that
 * signed it: compared with the intent's own clock reading, a payment made where the clock reads
 * behind, after a hop or a clock stepped back, passed for an earlier purchase, and was paid again.)
 */
export class ReceiptMark {
  /** The newest listed lost payment's signature, or 64 zero bytes. */
  readonly bytes: Uint8Array;

  /** Usually made by receiptMark(), or from stored `bytes` by ReceiptMark.of. */
  constructor(bytes: Uint8Array) {
    this.bytes = new Uint8Array(RECEIPT_SIGNATURE_BYTES);
    if (bytes.length == RECEIPT_SIGNATURE_BYTES) this.bytes.set(bytes);
  }

  /** No lost payment was listed: every lost payment the node lists is newer. */
  static none(): ReceiptMark {
    return new ReceiptMark(new Uint8Array(0));
  }

  /** The mark whose `bytes` these are (anything but 64 bytes reads as none). */
  static of(bytes: Uint8Array): ReceiptMark {
    return new ReceiptMark(bytes);
  }

  /** True when the node listed no lost payment. */
  get isNone(): bool {
    for (let i = 0; i < RECEIPT_SIGNATURE_BYTES; i++) if (this.bytes[i] != 0) return false;
    return true;
  }

  /** Whether `receipt` is the lost payment this mark names. */
  names(receipt: Uint8Array): bool {
    if (this.isNone || receipt.length < RECEIPT_SIGNATURE_BYTES) return false;
    const at = receipt.length - RECEIPT_SIGNATURE_BYTES;
    for (let i = 0; i < RECEIPT_SIGNATURE_BYTES; i++) if (receipt[at + i] != this.bytes[i]) return false;
    return true;
  }
}

/**
 * The mark to keep with a payment intent, read when it is recorded (capability `wallet`; at most two
 * recorded reads); null when the node could not answer (WALLET_ERR_UNANSWERED): record the intent in
 * a later tick. See ReceiptMark and findReceipt.
 */
export function receiptMark(): ReceiptMark | null {
  const n = walletReceiptCount();
  if (n == WALLET_ERR_UNANSWERED) return null;
  if (n <= 0) return ReceiptMark.none();
  const r = walletReceipt(0);
  if (r.error == WALLET_ERR_UNANSWERED) return null;
  if (r.error != 0 || PaymentReceipt.parse(r.bytes) === null) return ReceiptMark.none();
  return new ReceiptMark(r.bytes.subarray(r.bytes.length - RECEIPT_SIGNATURE_BYTES));
}

/**
 * The receipt of a payment the agent made in a tick that was lost (the node died, or the tick was
 * thrown away, after the payment and before a checkpoint covered it), matching `recipient`, `memo`
 * and `amount`, among the lost payments listed after `since` (the receiptMark() read when the payment
 * intent was recorded, so the receipt of an earlier purchase on the same terms is not taken for this
 * one; none: every lost payment). Capability `wallet`. Call it for an Unresolved payment intent
 * before paying again: the node debited that payment (when it restarted, or when it threw the run
 * away) and lists its receipt first among its receipts (wallet_receipt), newest first, ahead of its
 * execution receipts. Every read is a recorded observation, so replay finds exactly what the live
 * tick found. Unknown when the node could not answer (WALLET_ERR_UNANSWERED): the payment may have
 * been made, so leave the intent unresolved and look again in a later tick.
 */
export function findReceipt(recipient: string, memo: string, amount: i64, since: ReceiptMark = ReceiptMark.none()): ReceiptLookup {
  const n = walletReceiptCount();
  if (n == WALLET_ERR_UNANSWERED) return ReceiptLookup.unknown();
  for (let i = 0; i < n; i++) {
    const r = walletReceipt(i);
    if (r.error == WALLET_ERR_UNANSWERED) return ReceiptLookup.unknown();
    if (r.error != 0) break;
    const p = PaymentReceipt.parse(r.bytes);
    // Lost payments come first: the first execution receipt ends them; the mark ends the new ones.
    if (p === null || since.names(r.bytes)) break;
    if (p.amount == amount && p.recipient == recipient && p.memo == memo) return new ReceiptLookup(ReceiptSearch.Found, r.bytes);
  }
  return new ReceiptLookup(ReceiptSearch.NotFound);
}

/** What findReceipt learned. */
export enum ReceiptSearch {
  /** The node lists the payment's receipt: it was paid. */
  Found,
  /** The node answered and lists no such receipt: it was not paid. */
  NotFound,
  /** The node could not answer: it may have been paid; ask again in a later tick. */
  Unknown,
}

/** findReceipt's answer: the search's outcome and, when Found, the receipt (empty otherwise). */
export class ReceiptLookup {
  /** Made by findReceipt. */
  constructor(public status: ReceiptSearch, public receipt: Uint8Array = new Uint8Array(0)) {}

  /** The node could not answer. */
  static unknown(): ReceiptLookup {
    return new ReceiptLookup(ReceiptSearch.Unknown);
  }
}

/** x402 payment terms, the body of a 402: `[i64 amount][u32 len][recipient][u32 len][memo]`. */
export class PaymentTerms {
  /** Microcents asked (0 when the body was not terms). */
  amount: i64;
  /** Who is to be paid. */
  recipient: string;
  /** What for. */
  memo: string;

  /** Terms as given; usually made by PaymentTerms.parse. */
  constructor(amount: i64, recipient: string, memo: string) {
    this.amount = amount;
    this.recipient = recipient;
    this.memo = memo;
  }

  /** Parses terms as igor's demo agents do; amount 0 when the body is not terms. */
  static parse(body: Uint8Array): PaymentTerms {
    const none = new PaymentTerms(0, "", "");
    if (body.length < 12) return none;
    const amount = load<i64>(body.dataStart);
    let off = 8;
    const rlen = load<u32>(body.dataStart + off);
    off += 4;
    // Lengths are the server's: compared with what is left of the body, not as off + len, an i32
    // sum a length near 2^31 wrapped negative past the check (the decode then read 2 GiB and aborted).
    if (rlen > <u32>(body.length - off)) return none;
    const recipient = String.UTF8.decodeUnsafe(body.dataStart + off, rlen);
    off += <i32>rlen;
    if (body.length - off < 4) return new PaymentTerms(amount, recipient, "");
    const mlen = load<u32>(body.dataStart + off);
    off += 4;
    if (mlen > <u32>(body.length - off)) return new PaymentTerms(amount, recipient, "");
    return new PaymentTerms(amount, recipient, String.UTF8.decodeUnsafe(body.dataStart + off, mlen));
  }
}
