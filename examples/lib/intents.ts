// The intent steps the acting demos share, in the SDK's pattern (docs/AGENT_ABI.md, "resume_interrupted
// and the EffectLog"): record and begin the intent in one tick; act and confirm in a later tick, once a
// checkpoint has covered the InFlight intent. An intent that was InFlight when the node died comes
// back Unresolved (the SDK asks the host at tick start) and is reconciled, never acted on blindly.
import { Decoder, EffectLog, Encoder, Intent, IntentState, log, randBytes, toHex, walletPay, payErrorName } from "igord/sdk";
import { short } from "./text";

const INTENT_KEY_BYTES = 16;
/**
 * Ticks between begin and act. An agent cannot see checkpoints; igord takes one every 5 s by default
 * (igor too), i.e. every 5 ticks at the default 1 s interval, so 6 ticks leave room for one.
 */
// @ts-ignore: compile-time constant, defined only by `--use IGOR_CHECKPOINT_WAIT_TICKS=N`
export const CHECKPOINT_WAIT_TICKS: u64 = isDefined(IGOR_CHECKPOINT_WAIT_TICKS) ? <u64>IGOR_CHECKPOINT_WAIT_TICKS : 6;

/**
 * Records `body` under a random 16-byte key and begins it (the intent's data is [u64 tick][body]);
 * returns the key, or "" if the log refused it.
 */
export function recordIntent(effects: EffectLog, body: Uint8Array, tick: u64, tag: string, what: string): string {
  const key = new Uint8Array(INTENT_KEY_BYTES);
  randBytes(key);
  const id = toHex(key);
  if (effects.record(id, new Encoder().u64(tick).raw(body).finish()) != 0 || effects.begin(id) != 0) {
    log(tag + " ERROR: failed to record " + what.toLowerCase() + " intent");
    return "";
  }
  log(tag + " " + what + " intent RECORDED (key=" + short(id) + "). Waiting for checkpoint...");
  return id;
}

/** What the agent recorded (the intent's data after its tick). */
export function payload(intent: Intent): Uint8Array {
  return intent.data.length < 8 ? new Uint8Array(0) : intent.data.subarray(8);
}

/** An InFlight intent whose wait for a checkpoint is over. */
export function dueToAct(intent: Intent, tick: u64): bool {
  if (intent.state != IntentState.InFlight || intent.data.length < 8) return false;
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
 * Settles an unresolved payment intent (payload from byte `offset`: [i64 amount][recipient][memo]).
 * The agent cannot tell whether the lost ticks paid: if they did, igord debited that payment when
 * it restarted (its payment journal, a `lost_payment` lineage event), but the receipt went with the
 * lost state, so the agent has nothing to show the provider. igor's demos flip a coin here; these
 * compensate and pay again when the provider asks (see examples/README.md).
 */
export function reconcilePayment(effects: EffectLog, intent: Intent, offset: i32, tag: string): void {
  log(tag + " RECONCILING: unresolved payment (key=" + short(intent.id) + ")");
  const d = new Decoder(payload(intent).subarray(offset));
  const amount = d.i64();
  const recipient = d.string();
  effects.compensate(intent.id);
  log(tag + " Reconciled: payment of " + amount.toString() + " to " + recipient +
    " unknown: a lost tick's payment is debited at restart but its receipt is gone — will pay again");
}
