// The intent steps the paying demos share, in igor's order: record (the tick then ends so a
// checkpoint can take the intent), and later begin → walletPay → confirm (or compensate).
import { Decoder, EffectLog, Intent, log, randBytes, toHex, walletPay, payErrorName } from "../../agents/sdk";
import { short } from "./text";

const INTENT_KEY_BYTES = 16;

/** Records `data` under a random 16-byte key; returns the key, or "" if the log refused it. */
export function recordIntent(effects: EffectLog, data: Uint8Array, tag: string, what: string): string {
  const key = new Uint8Array(INTENT_KEY_BYTES);
  randBytes(key);
  const id = toHex(key);
  if (effects.record(id, data) != 0) {
    log(tag + " ERROR: failed to record " + what.toLowerCase() + " intent");
    return "";
  }
  log(tag + " " + what + " intent RECORDED (key=" + short(id) + "). Waiting for checkpoint...");
  return id;
}

export class Paid {
  constructor(public amount: i64, public recipient: string, public receipt: Uint8Array) {}
}

/**
 * Executes a payment intent whose data, from byte `offset`, is [i64 amount][recipient][memo]: begin,
 * pay, confirm. Null when it could not be paid (the intent is then compensated and pruned).
 */
export function payIntent(effects: EffectLog, intent: Intent, offset: i32, tag: string): Paid | null {
  const d = new Decoder(intent.data.subarray(offset));
  const amount = d.i64();
  const recipient = d.string();
  const memo = d.string();
  if (d.err()) {
    log(tag + " ERROR: corrupt payment intent");
    effects.compensate(intent.id);
    return null;
  }
  if (effects.begin(intent.id) != 0) {
    log(tag + " ERROR: failed to begin payment");
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
 * Settles an unresolved payment intent (data from byte `offset`: [i64 amount][recipient][memo]) as
 * igor's demos do; returns the amount if it went through (confirmed), else 0 (compensated).
 */
export function reconcilePayment(effects: EffectLog, intent: Intent, offset: i32, tag: string): i64 {
  log(tag + " RECONCILING: unresolved payment (key=" + short(intent.id) + ")");
  const d = new Decoder(intent.data.subarray(offset));
  const amount = d.i64();
  const recipient = d.string();
  if (simulatedSettled(intent)) {
    effects.confirm(intent.id);
    log(tag + " Reconciled: payment of " + amount.toString() + " to " + recipient + " COMPLETED before crash");
    return amount;
  }
  effects.compensate(intent.id);
  log(tag + " Reconciled: payment of " + amount.toString() + " to " + recipient + " DID NOT complete — will retry");
  return 0;
}

/**
 * igor's demos settle an unresolved payment or transfer against a simulated ledger (there is no
 * chain to ask): it went through when the first byte of its key is even.
 */
export function simulatedSettled(intent: Intent): bool {
  return (<i32>parseInt(intent.id.substring(0, 2), 16)) % 2 == 0;
}
