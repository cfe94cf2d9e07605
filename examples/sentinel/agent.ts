// sentinel (igor's agents/sentinel, in AssemblyScript): a treasury operator. A simulated treasury
// ($10,000 at birth) spends $50–$250 a tick; below $3,000 the agent records and begins a $5,000
// refill intent and, once a checkpoint has covered it, executes (a simulated bridge transfer) and
// confirms it. An intent found Unresolved after a crash is reconciled against the (simulated) bridge
// status, never blindly retried. Capabilities: clock, rand, log.
import { Encoder, Decoder, Intent, register, randU64, log } from "igord/sdk";
import { IntentAgent } from "../lib/demo";
import { recordIntent } from "../lib/intents";
import { dollars, short } from "../lib/text";
export * from "igord/sdk/exports";

const INITIAL_BALANCE: u64 = 10_000_00; // cents
const REFILL_THRESHOLD: u64 = 3_000_00;
const REFILL_AMOUNT: u64 = 5_000_00;
const SPEND_MIN: u64 = 50_00;
const SPEND_RANGE: u64 = 200_00;
const STATUS_EVERY: u64 = 5;

class Sentinel extends IntentAgent {
  balance: u64 = 0;
  refillCount: u32 = 0;
  spendTotal: u64 = 0;
  /** xorshift64 state, seeded once from rand_bytes and kept in the checkpoint. */
  rngState: u64 = 0;

  rng(): u64 {
    let x = this.rngState;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    this.rngState = x;
    return x;
  }

  tick(): bool {
    if (this.advance()) {
      this.balance = INITIAL_BALANCE;
      this.rngState = randU64() | 1; // xorshift must not start at 0
      log("[sentinel] Treasury initialized: $" + dollars(this.balance));
    }
    const ageS = this.ageS;
    if (this.reconcileUnresolved()) return true;
    const next = this.nextDue();
    if (next !== null) return this.executeRefill(next);
    if (this.waiting()) return false;

    let spend = SPEND_MIN + (this.rng() % SPEND_RANGE);
    if (spend > this.balance) spend = this.balance;
    this.balance -= spend;
    this.spendTotal += spend;

    if (this.tickCount % STATUS_EVERY == 0) {
      log("[sentinel] tick=" + this.tickCount.toString() + " age=" + ageS.toString() + "s balance=$" + dollars(this.balance) +
        " spent=$" + dollars(this.spendTotal) + " refills=" + this.refillCount.toString());
    }
    if (this.balance < REFILL_THRESHOLD) {
      log("[sentinel] ALERT: balance $" + dollars(this.balance) + " below threshold $" + dollars(REFILL_THRESHOLD) + " — initiating refill");
      return this.recordRefillIntent(ageS);
    }
    return false;
  }

  /** The refill runs in a later tick, once a checkpoint has covered the intent. */
  recordRefillIntent(ageS: i64): bool {
    const data = new Encoder().u64(REFILL_AMOUNT).u64(this.balance).i64(ageS).finish();
    recordIntent(this.effects, data, this.tickCount, this.lastNs, "[sentinel]", "Refill");
    return false;
  }

  executeRefill(intent: Intent): bool {
    log("[sentinel] Refill IN-FLIGHT: executing bridge transfer (key=" + short(intent.id) + ")");
    log("[sentinel] Bridge: source=chain-A dest=chain-B amount=$" + dollars(REFILL_AMOUNT));
    // A crash between begin and confirm leaves the intent Unresolved on resume.
    this.balance += REFILL_AMOUNT;
    this.refillCount++;
    this.effects.confirm(intent.id);
    log("[sentinel] Refill CONFIRMED: balance now $" + dollars(this.balance) + " (key=" + short(intent.id) + ")");
    this.effects.prune();
    return true;
  }

  /** As igor's demo: asks the (simulated) bridge whether the transfer completed. */
  reconcile(intent: Intent): void {
    log("[sentinel] RECONCILING: found unresolved intent (key=" + short(intent.id) + ")");
    log("[sentinel] Checking bridge status for in-flight transfer...");
    // igor's simulated bridge: the transfer went through when the key's first byte is even.
    if ((<i32>parseInt(intent.id.substring(0, 2), 16)) % 2 == 0) {
      this.balance += REFILL_AMOUNT;
      this.refillCount++;
      this.effects.confirm(intent.id);
      log("[sentinel] Reconciled: transfer COMPLETED before crash");
      log("[sentinel] Balance credited: $" + dollars(this.balance) + " (no duplicate execution)");
    } else {
      this.effects.compensate(intent.id);
      log("[sentinel] Reconciled: transfer DID NOT complete before crash");
      log("[sentinel] Compensated — will retry in next cycle");
    }
  }

  marshal(enc: Encoder): void {
    this.marshalLife(enc);
    enc.u64(this.balance).u32(this.refillCount).u64(this.spendTotal);
    this.effects.marshal(enc);
    enc.bool(this.reconciling).u64(this.rngState);
  }

  unmarshal(dec: Decoder): void {
    this.unmarshalLife(dec);
    this.balance = dec.u64();
    this.refillCount = dec.u32();
    this.spendTotal = dec.u64();
    this.effects.unmarshal(dec);
    this.reconciling = dec.bool();
    this.rngState = dec.u64();
  }
}

register(new Sentinel());
