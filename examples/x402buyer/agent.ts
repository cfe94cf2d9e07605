// x402buyer (igor's agents/x402buyer, in AssemblyScript): pays for premium data with x402.
// GET /api/premium-data → 402 with terms [i64 amount][u32][recipient][u32][memo] → record and begin a
// payment intent → once a checkpoint has covered it, wallet_pay and confirm → GET again with
// `X-Payment: hex(receipt)` → 200. Capabilities: clock, rand, log, http (localhost), x402
// (paywall-provider, at most 1,000,000 µ¢), wallet (to find, after a crash, the receipt of a payment
// made in a lost tick: see examples/lib/intents.ts).
//
// The paywall is at http://localhost:8402 as in igor; build with `--use IGOR_PAYWALL_PORT=N` (see
// scripts/build-agents.mjs) to aim at another port.
import {
  Encoder, Decoder, Intent, register, log, httpGet, httpRequest, httpErrorName, HttpResponse, PaymentTerms, toHex,
} from "igord/sdk";
import { IntentAgent } from "../lib/demo";
import { payIntent, reconcilePayment, recordPaymentIntent } from "../lib/intents";
import { short } from "../lib/text";
export * from "igord/sdk/exports";

// @ts-ignore: compile-time constant, defined only by `--use IGOR_PAYWALL_PORT=N`
const PAYWALL_PORT: i32 = isDefined(IGOR_PAYWALL_PORT) ? IGOR_PAYWALL_PORT : 8402;
const PAYWALL_URL = "http://localhost:" + PAYWALL_PORT.toString() + "/api/premium-data";
/** Fetch on ticks 1, 4, 7, … (igor: every 3 ticks, to show repeated payment cycles). */
const FETCH_EVERY: u64 = 3;
const STATUS_EVERY: u64 = 5;
const TAG = "[x402buyer]";

class X402Buyer extends IntentAgent {
  paidCount: u32 = 0;
  dataCount: u32 = 0;
  totalPaid: i64 = 0;
  /** Set by a payment: the next tick retries the request with the receipt (igor's fast tick). */
  fetchNow: bool = false;
  /** The receipt of the last payment, until the paywall has taken it. */
  lastReceipt: Uint8Array = new Uint8Array(0);

  tick(): bool {
    if (this.advance()) log("[x402buyer] Agent initialized. Fetching premium data from paywall.");
    const ageS = this.ageS;
    // After a crash, an intent whose outcome is unknown is reconciled first, never blindly retried.
    if (this.reconcileUnresolved()) return true;
    // An intent begun in an earlier tick is paid once a checkpoint has covered it.
    const next = this.nextDue();
    if (next !== null) return this.executePayment(next);
    if (this.waiting()) return false;

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
    const res = withReceipt ? httpGetPaid(PAYWALL_URL, this.lastReceipt) : httpGet(PAYWALL_URL);
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

  /** Records and begins the payment; it is made in a later tick, after a checkpoint has saved the intent. */
  recordPaymentIntent(terms: PaymentTerms): bool {
    recordPaymentIntent(this.effects, new Encoder().i64(terms.amount).string(terms.recipient).string(terms.memo).finish(), this.tickCount, this.lastNs, TAG, "Payment");
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

  /** A payment made in a lost tick comes back as its receipt: the next tick shows it to the paywall. */
  reconcile(intent: Intent): void {
    const paid = reconcilePayment(this.effects, intent, 0, TAG);
    if (paid === null) return;
    this.paidCount++;
    this.totalPaid += paid.amount;
    this.lastReceipt = paid.receipt;
    this.fetchNow = true;
  }

  marshal(enc: Encoder): void {
    this.marshalLife(enc);
    enc.bool(this.reconciling).u32(this.paidCount).u32(this.dataCount).i64(this.totalPaid).bool(this.fetchNow).bytes(this.lastReceipt);
    this.effects.marshal(enc);
  }

  unmarshal(dec: Decoder): void {
    this.unmarshalLife(dec);
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
