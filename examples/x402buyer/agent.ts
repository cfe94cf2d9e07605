// x402buyer (igor's agents/x402buyer, in AssemblyScript): pays for premium data with x402.
// GET /api/premium-data → 402 with terms [i64 amount][u32][recipient][u32][memo] → record a payment
// intent and let a checkpoint take it → in a later tick begin, wallet_pay, confirm → GET again with
// `X-Payment: hex(receipt)` → 200. Capabilities: clock, rand, log, http (localhost), x402
// (paywall-provider, at most 1,000,000 µ¢).
//
// The paywall is at http://localhost:8402 as in igor; build with `--use IGOR_PAYWALL_PORT=N` (see
// scripts/build-agents.mjs) to aim at another port.
import {
  Agent, Encoder, Decoder, EffectLog, Intent, IntentState, register, clockNow, log,
  httpGet, httpRequest, httpErrorName, HttpResponse, PaymentTerms, toHex,
} from "../../agents/sdk";
import { payIntent, recordIntent, simulatedSettled } from "../lib/intents";
import { short } from "../lib/text";
export * from "../../agents/sdk/exports";

// @ts-ignore: compile-time constant, defined only by `--use IGOR_PAYWALL_PORT=N`
const PAYWALL_PORT: i32 = isDefined(IGOR_PAYWALL_PORT) ? IGOR_PAYWALL_PORT : 8402;
const PAYWALL_URL = "http://localhost:" + PAYWALL_PORT.toString() + "/api/premium-data";
/** Fetch on ticks 1, 4, 7, … (igor: every 3 ticks, to show repeated payment cycles). */
const FETCH_EVERY: u64 = 3;
const STATUS_EVERY: u64 = 5;
const TAG = "[x402buyer]";

class X402Buyer extends Agent {
  tickCount: u64 = 0;
  birthNs: i64 = 0;
  lastNs: i64 = 0;
  reconciling: bool = false;
  paidCount: u32 = 0;
  dataCount: u32 = 0;
  totalPaid: i64 = 0;
  /** Set by a payment: the next tick retries the request with the receipt (igor's fast tick). */
  fetchNow: bool = false;
  /** The receipt of the last payment, until the paywall has taken it. */
  lastReceipt: Uint8Array = new Uint8Array(0);
  effects: EffectLog = new EffectLog();

  init(): void {}

  tick(): bool {
    this.tickCount++;
    const now = clockNow();
    if (this.birthNs == 0) {
      this.birthNs = now;
      log("[x402buyer] Agent initialized. Fetching premium data from paywall.");
    }
    this.lastNs = now;
    const ageS = (this.lastNs - this.birthNs) / 1_000_000_000;

    // After a crash, an intent whose outcome is unknown is reconciled first, never blindly retried.
    const unresolved = this.effects.unresolved();
    if (unresolved.length > 0) {
      this.reconciling = true;
      for (let i = 0; i < unresolved.length; i++) this.reconcile(unresolved[i]);
      this.effects.prune();
      this.reconciling = false;
      return true;
    }

    // An intent recorded in an earlier tick (and so in a checkpoint by now) is executed.
    const pending = this.effects.pending();
    for (let i = 0; i < pending.length; i++) {
      if (pending[i].state == IntentState.Recorded) return this.executePayment(pending[i]);
    }

    if (this.tickCount % FETCH_EVERY != 1 && !this.fetchNow) {
      if (this.tickCount % STATUS_EVERY == 0) {
        log("[x402buyer] tick=" + this.tickCount.toString() + " age=" + ageS.toString() + "s payments=" +
          this.paidCount.toString() + " data=" + this.dataCount.toString() + " total_paid=" + this.totalPaid.toString());
      }
      return false;
    }

    this.fetchNow = false;
    log("[x402buyer] Fetching premium data (tick=" + this.tickCount.toString() + ")...");
    const withReceipt = this.lastReceipt.length > 0;
    let res = withReceipt ? httpGetPaid(PAYWALL_URL, this.lastReceipt) : httpGet(PAYWALL_URL);
    if (!res.ok) {
      log("[x402buyer] HTTP error: " + httpErrorName(res.error));
      return false;
    }
    if (res.status == 200) {
      this.dataCount++;
      this.lastReceipt = new Uint8Array(0); // consumed
      log("[x402buyer] PREMIUM DATA RECEIVED: " + res.text());
      return false;
    }
    if (res.status == 402) {
      const terms = PaymentTerms.parse(res.body);
      if (terms.amount <= 0) {
        log("[x402buyer] Invalid payment terms in 402 response");
        return false;
      }
      log("[x402buyer] 402 PAYMENT REQUIRED: " + terms.amount.toString() + " microcents to " + terms.recipient + " (" + terms.memo + ")");
      return this.recordPaymentIntent(terms);
    }
    if (withReceipt) {
      // igord's paywall refuses a receipt it cannot accept (403) or has seen (409): it is spent.
      this.lastReceipt = new Uint8Array(0);
      log("[x402buyer] Receipt REFUSED (status " + res.status.toString() + "): " + res.text());
      return false;
    }
    log("[x402buyer] Unexpected status " + res.status.toString() + ": " + res.text());
    return false;
  }

  /** Records the payment; it is executed in a later tick, after a checkpoint has saved the intent. */
  recordPaymentIntent(terms: PaymentTerms): bool {
    recordIntent(this.effects, new Encoder().i64(terms.amount).string(terms.recipient).string(terms.memo).finish(), TAG, "Payment");
    return false; // the normal interval: a fast tick could pay before the intent is checkpointed
  }

  executePayment(intent: Intent): bool {
    const paid = payIntent(this.effects, intent, 0, TAG);
    if (paid === null) return false;
    this.paidCount++;
    this.totalPaid += paid.amount;
    this.lastReceipt = paid.receipt;
    log("[x402buyer] Payment CONFIRMED: " + paid.amount.toString() + " microcents (key=" + short(intent.id) + ", receipt=" + paid.receipt.length.toString() + " bytes)");
    this.fetchNow = true;
    return true; // a fast tick retries the request with the receipt
  }

  /** An unresolved payment, settled as igor's demo does (simulatedSettled). */
  reconcile(intent: Intent): void {
    log("[x402buyer] RECONCILING: unresolved payment (key=" + short(intent.id) + ")");
    const d = new Decoder(intent.data);
    const amount = d.i64();
    const recipient = d.string();
    if (simulatedSettled(intent)) {
      this.paidCount++;
      this.totalPaid += amount;
      this.effects.confirm(intent.id);
      log("[x402buyer] Reconciled: payment of " + amount.toString() + " to " + recipient + " COMPLETED before crash");
    } else {
      this.effects.compensate(intent.id);
      log("[x402buyer] Reconciled: payment of " + amount.toString() + " to " + recipient + " DID NOT complete — will retry");
    }
  }

  marshal(enc: Encoder): void {
    enc.u64(this.tickCount).i64(this.birthNs).i64(this.lastNs).bool(this.reconciling)
      .u32(this.paidCount).u32(this.dataCount).i64(this.totalPaid).bool(this.fetchNow).bytes(this.lastReceipt);
    this.effects.marshal(enc);
  }

  unmarshal(dec: Decoder): void {
    this.tickCount = dec.u64();
    this.birthNs = dec.i64();
    this.lastNs = dec.i64();
    this.reconciling = dec.bool();
    this.paidCount = dec.u32();
    this.dataCount = dec.u32();
    this.totalPaid = dec.i64();
    this.fetchNow = dec.bool();
    this.lastReceipt = dec.bytes();
    this.effects.unmarshal(dec);
  }
}

function httpGetPaid(url: string, receipt: Uint8Array): HttpResponse {
  const h = new Map<string, string>();
  h.set("X-Payment", toHex(receipt));
  return httpRequest("GET", url, h, null);
}

register(new X402Buyer());
