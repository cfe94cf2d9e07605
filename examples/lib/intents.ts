// The intent steps the acting demos share, in the SDK's pattern (docs/AGENT_ABI.md, "resume_interrupted
// and the EffectLog"): record and begin the intent in one tick; act and confirm in a later tick, once a
// checkpoint has covered the InFlight intent. An intent that was InFlight when the node died comes
// back Unresolved (the SDK asks the host at tick start) and is reconciled, never acted on blindly.
import { Decoder, EffectLog, Encoder, Intent, IntentState, ReceiptLookup, ReceiptMark, ReceiptSearch, findReceipt, log, randBytes, receiptMark, toHex, walletPay, payErrorName } from "igord/sdk";
import { short } from "./text";

const INTENT_KEY_BYTES = 16;
/** An intent's data starts with [u64 tick recorded][i64 clock reading when recorded], then its body. */
const INTENT_HEADER_BYTES = 16;
/**
 * Ticks between begin and act. An agent cannot see checkpoints; igord takes one every 5 s by default
 * (igor too), i.e. every 5 ticks at the default 1 s interval, so 6 ticks leave room for one. A
 * payment does not depend on it (igord checkpoints the paying tick's starting state before it signs);
 * the other acts (sentinel's refill, deployer's deploy) do.
 */
// @ts-ignore: compile-time constant, defined only by `--use IGOR_CHECKPOINT_WAIT_TICKS=N`
export const CHECKPOINT_WAIT_TICKS: u64 = isDefined(IGOR_CHECKPOINT_WAIT_TICKS) ? <u64>IGOR_CHECKPOINT_WAIT_TICKS : 6;

/**
 * Records `body` under a random 16-byte key and begins it (the intent's data is [u64 tick][i64 nowNs]
 * [body], `nowNs` the tick's clock reading); returns the key, or "" if the log refused it.
 */
export function recordIntent(effects: EffectLog, body: Uint8Array, tick: u64, nowNs: i64, tag: string, what: string): string {
  const key = new Uint8Array(INTENT_KEY_BYTES);
  randBytes(key);
  const id = toHex(key);
  if (effects.record(id, new Encoder().u64(tick).i64(nowNs).raw(body).finish()) != 0 || effects.begin(id) != 0) {
    log(tag + " ERROR: failed to record " + what.toLowerCase() + " intent");
    return "";
  }
  log(tag + " " + what + " intent RECORDED (key=" + short(id) + "). Waiting for checkpoint...");
  return id;
}

/**
 * Records and begins a payment intent: `terms` ([i64 amount][recipient][memo], from any offset the
 * caller decodes at) followed by the node's receiptMark(), which reconcilePayment needs to tell this
 * payment from earlier purchases on the same terms. "" when the node could not list its receipts
 * (the caller asks again in a later tick) or the log refused it.
 */
export function recordPaymentIntent(effects: EffectLog, terms: Uint8Array, tick: u64, nowNs: i64, tag: string, what: string): string {
  const mark = receiptMark();
  if (mark === null) {
    log(tag + " The node could not list its receipts: " + what.toLowerCase() + " intent not recorded yet");
    return "";
  }
  return recordIntent(effects, new Encoder().raw(terms).raw(mark.bytes).finish(), tick, nowNs, tag, what);
}

/** What the agent recorded (the intent's data after its header). */
export function payload(intent: Intent): Uint8Array {
  return intent.data.length < INTENT_HEADER_BYTES ? new Uint8Array(0) : intent.data.subarray(INTENT_HEADER_BYTES);
}

/** An InFlight intent whose wait for a checkpoint is over. */
export function dueToAct(intent: Intent, tick: u64): bool {
  if (intent.state != IntentState.InFlight || intent.data.length < INTENT_HEADER_BYTES) return false;
  return tick >= load<u64>(intent.data.dataStart) + CHECKPOINT_WAIT_TICKS;
}

export class Paid {
  constructor(public amount: i64, public recipient: string, public receipt: Uint8Array) {}
}

/**
 * Executes a begun payment intent whose payload, from byte `offset`, is [i64 amount][recipient][memo]:
 * pay, confirm. Null when it could not be paid (the intent is then compensated and pruned).
 */
export function payIntent(effects: EffectLog, intent: Intent, offset: i32, tag: string): Paid | null {
  const d = new Decoder(payload(intent).subarray(offset));
  const amount = d.i64();
  const recipient = d.string();
  const memo = d.string();
  if (d.err()) {
    log(tag + " ERROR: corrupt payment intent");
    effects.compensate(intent.id);
    return null;
  }
  log(tag + " Payment IN-FLIGHT: " + amount.toString() + " microcents to " + recipient + " (key=" + short(intent.id) + ")");
  // A crash between begin and confirm leaves the intent Unresolved on resume.
  const p = walletPay(amount, recipient, memo);
  if (!p.ok) {
    log(tag + " Payment FAILED: " + payErrorName(p.error));
    effects.compensate(intent.id);
    effects.prune();
    return null;
  }
  effects.confirm(intent.id);
  effects.prune();
  return new Paid(amount, recipient, p.receipt);
}

/**
 * Settles an unresolved payment intent (payload from byte `offset`: [i64 amount][recipient][memo]
 * [receipt mark], as recordPaymentIntent wrote it). The agent cannot tell from its own state whether
 * the lost ticks paid; the node can: a payment signed in a tick that never reached a checkpoint was
 * debited when the node restarted, and its receipt is listed first among the node's receipts. So the
 * agent looks for a receipt of exactly this payment, among those lost since the intent was recorded
 * (findReceipt after the intent's receipt mark): found, the payment was made and
 * the intent is confirmed with that receipt (returned, to be shown to the provider); not found, no
 * payment left the budget, the intent is compensated (null) and the agent pays when next asked;
 * unknown (the node could not answer), the intent stays unresolved (null) for the next tick to
 * settle: compensating it then could pay twice. (igor's demos flip a coin here.)
 */
export function reconcilePayment(effects: EffectLog, intent: Intent, offset: i32, tag: string): Paid | null {
  log(tag + " RECONCILING: unresolved payment (key=" + short(intent.id) + ")");
  const d = new Decoder(payload(intent).subarray(offset));
  const amount = d.i64();
  const recipient = d.string();
  const memo = d.string();
  const mark = ReceiptMark.of(d.fixedBytes(d.remaining));
  // An intent whose terms do not decode names no payment to look for: none was made.
  const found = d.err() ? new ReceiptLookup(ReceiptSearch.NotFound) : findReceipt(recipient, memo, amount, mark);
  if (found.status == ReceiptSearch.Unknown) {
    log(tag + " The node could not list its receipts: the payment stays unresolved until it can");
    return null;
  }
  if (found.status == ReceiptSearch.NotFound) {
    effects.compensate(intent.id);
    log(tag + " Reconciled: payment of " + amount.toString() + " to " + recipient + " was NOT made — will pay when asked");
    return null;
  }
  effects.confirm(intent.id);
  log(tag + " Reconciled: payment of " + amount.toString() + " to " + recipient + " WAS made in a lost tick — receipt recovered (" +
    found.receipt.length.toString() + " bytes), not paying again");
  return new Paid(amount, recipient, found.receipt);
}
