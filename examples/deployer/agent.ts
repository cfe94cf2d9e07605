// deployer (igor's agents/deployer, in AssemblyScript): pays a compute provider and deploys itself.
// Phases CheckBudget → PayProvider → Deploy → Monitor (+ Reconciling after a crash). POST /v1/deploy
// → 402 terms (500,000 µ¢ to mockcloud-provider, "compute-deployment") → payment intent → pay →
// deploy intent → POST /v1/deploy with `X-Payment: hex(receipt)` and {"wasm_hash","budget_offer"} →
// 201 dep-NNNN → GET /v1/deploy/{id} every 3 ticks until running. Every act (the payment, the
// deployment) is an EffectLog intent: recorded and begun, covered by a checkpoint, then done and confirmed.
// Capabilities: clock, rand, log, wallet, http (localhost), x402 (mockcloud-provider, ≤ 5,000,000 µ¢).
//
// The provider is at http://localhost:8500 as in igor; build with `--use IGOR_MOCKCLOUD_PORT=N` to
// aim at another port.
import {
  Encoder, Decoder, Intent, register, log, walletBalance, httpGet, httpPost, httpRequest, httpErrorName, PaymentTerms, toHex,
} from "igord/sdk";
import { IntentAgent } from "../lib/demo";
import { payIntent, payload, reconcilePayment, recordIntent, recordPaymentIntent } from "../lib/intents";
import { jsonString, short } from "../lib/text";
export * from "igord/sdk/exports";

// @ts-ignore: compile-time constant, defined only by `--use IGOR_MOCKCLOUD_PORT=N`
const MOCKCLOUD_PORT: i32 = isDefined(IGOR_MOCKCLOUD_PORT) ? IGOR_MOCKCLOUD_PORT : 8500;
const DEPLOY_URL = "http://localhost:" + MOCKCLOUD_PORT.toString() + "/v1/deploy";
const DEPLOY_COST: i64 = 500_000; // matches mockcloud
const DEPLOY_BODY = '{"wasm_hash":"0000000000000000000000000000000000000000000000000000000000000000","budget_offer":500000}';
const POLL_EVERY: u64 = 3;
const STATUS_EVERY: u64 = 5;
const TAG = "[deployer]";

// Intent kinds: the first byte of an intent's data.
const INTENT_PAYMENT: u8 = 0x01;
const INTENT_DEPLOYMENT: u8 = 0x02;

const PHASE_CHECK_BUDGET: u8 = 0;
const PHASE_PAY_PROVIDER: u8 = 1;
const PHASE_DEPLOY: u8 = 2;
const PHASE_MONITOR: u8 = 3;
const PHASE_RECONCILING: u8 = 4;

function intentKind(intent: Intent): u8 {
  const p = payload(intent);
  return p.length == 0 ? 0 : p[0];
}

const STATUS_NAMES: string[] = ["none", "pending", "provisioning", "running", "terminated"];

function statusCode(s: string): u8 {
  for (let i = 1; i < STATUS_NAMES.length; i++) if (STATUS_NAMES[i] == s) return <u8>i;
  return 0;
}

class Deployer extends IntentAgent {
  phase: u8 = PHASE_CHECK_BUDGET;
  deploymentId: string = "";
  deployStatus: u8 = 0;
  paidCount: u32 = 0;
  totalPaid: i64 = 0;
  lastReceipt: Uint8Array = new Uint8Array(0);

  tick(): bool {
    if (this.advance()) log("[deployer] Agent initialized. Self-provisioning compute.");
    const ageS = this.ageS;

    if (this.effects.unresolved().length > 0) {
      this.phase = PHASE_RECONCILING;
      this.reconcileUnresolved();
      // A receipt in hand (one recovered from a lost tick included) is deployed with, not paid again.
      this.phase = this.deploymentId.length > 0 ? PHASE_MONITOR : this.lastReceipt.length > 0 ? PHASE_DEPLOY : PHASE_CHECK_BUDGET;
      return true;
    }

    const next = this.nextDue();
    if (next !== null) {
      const kind = intentKind(next);
      if (kind == INTENT_PAYMENT) return this.executePayment(next);
      if (kind == INTENT_DEPLOYMENT) return this.executeDeploy(next);
      this.effects.compensate(next.id);
      this.effects.prune();
    }
    if (this.waiting()) return false;

    if (this.phase == PHASE_CHECK_BUDGET) return this.checkBudget(ageS);
    if (this.phase == PHASE_PAY_PROVIDER) return this.payProvider();
    if (this.phase == PHASE_DEPLOY) return this.deploy();
    if (this.phase == PHASE_MONITOR) return this.monitor(ageS);
    return false;
  }

  checkBudget(ageS: i64): bool {
    if (this.deploymentId.length > 0) {
      log("[deployer] tick=" + this.tickCount.toString() + " age=" + ageS.toString() + "s Have deployment, resuming monitoring.");
      this.phase = PHASE_MONITOR;
      return true;
    }
    const balance = walletBalance();
    log("[deployer] tick=" + this.tickCount.toString() + " age=" + ageS.toString() + "s budget=" + balance.toString() + " deploy_cost=" + DEPLOY_COST.toString());
    if (balance >= DEPLOY_COST) {
      log("[deployer] Budget sufficient. Proceeding to pay compute provider.");
      this.phase = PHASE_PAY_PROVIDER;
      return true;
    }
    log("[deployer] Insufficient budget. Waiting...");
    return false;
  }

  payProvider(): bool {
    // Probe the provider for its terms.
    const res = httpPost(DEPLOY_URL, "", null);
    if (!res.ok) {
      log("[deployer] HTTP error probing provider: " + httpErrorName(res.error));
      return false;
    }
    if (res.status != 402) {
      log("[deployer] Expected 402, got " + res.status.toString());
      return false;
    }
    const terms = PaymentTerms.parse(res.body);
    if (terms.amount <= 0) {
      log("[deployer] Invalid payment terms in 402 response");
      return false;
    }
    log("[deployer] 402 PAYMENT REQUIRED: " + terms.amount.toString() + " microcents to " + terms.recipient + " (" + terms.memo + ")");
    const data = new Encoder().u8(INTENT_PAYMENT).i64(terms.amount).string(terms.recipient).string(terms.memo).finish();
    recordPaymentIntent(this.effects, data, this.tickCount, this.lastNs, TAG, "Payment");
    return false; // the normal interval: a fast tick could pay before the intent is checkpointed
  }

  deploy(): bool {
    if (this.lastReceipt.length == 0) {
      log("[deployer] No receipt available. Restarting payment.");
      this.phase = PHASE_PAY_PROVIDER;
      return true;
    }
    recordIntent(this.effects, new Encoder().u8(INTENT_DEPLOYMENT).bytes(this.lastReceipt).finish(), this.tickCount, this.lastNs, TAG, "Deploy");
    return false;
  }

  executePayment(intent: Intent): bool {
    const paid = payIntent(this.effects, intent, 1, TAG);
    if (paid === null) return false;
    this.paidCount++;
    this.totalPaid += paid.amount;
    this.lastReceipt = paid.receipt;
    log("[deployer] Payment CONFIRMED: " + paid.amount.toString() + " microcents (receipt=" + paid.receipt.length.toString() + " bytes). Proceeding to deploy.");
    this.phase = PHASE_DEPLOY;
    return true;
  }

  executeDeploy(intent: Intent): bool {
    const d = new Decoder(payload(intent).subarray(1));
    const receipt = d.bytes();
    if (d.err()) {
      log("[deployer] ERROR: corrupt deploy intent");
      this.effects.compensate(intent.id);
      return false;
    }
    log("[deployer] Deployment IN-FLIGHT (key=" + short(intent.id) + ")");
    const h = new Map<string, string>();
    h.set("X-Payment", toHex(receipt));
    h.set("Content-Type", "application/json");
    const res = httpRequest("POST", DEPLOY_URL, h, Uint8Array.wrap(String.UTF8.encode(DEPLOY_BODY)));
    if (!res.ok || res.status != 201) {
      if (!res.ok) log("[deployer] Deploy HTTP error: " + httpErrorName(res.error));
      else log("[deployer] Deploy failed: status=" + res.status.toString() + " body=" + res.text());
      this.effects.compensate(intent.id);
      this.effects.prune();
      if (res.ok) {
        // The provider refused the receipt (spent or invalid): pay again rather than retry it forever.
        this.lastReceipt = new Uint8Array(0);
        this.phase = PHASE_PAY_PROVIDER;
      }
      return false;
    }
    const id = jsonString(res.text(), "deployment_id");
    if (id.length == 0) {
      log("[deployer] Deploy response missing deployment_id");
      this.effects.compensate(intent.id);
      this.effects.prune();
      return false;
    }
    this.deploymentId = id;
    this.deployStatus = 1;
    this.lastReceipt = new Uint8Array(0); // consumed
    this.effects.confirm(intent.id);
    log("[deployer] DEPLOYED: id=" + id + " status=pending. Now monitoring.");
    this.effects.prune();
    this.phase = PHASE_MONITOR;
    return true;
  }

  monitor(ageS: i64): bool {
    if (this.deploymentId.length == 0) {
      log("[deployer] No deployment to monitor. Restarting.");
      this.phase = PHASE_CHECK_BUDGET;
      return true;
    }
    if (this.tickCount % POLL_EVERY != 0) {
      if (this.tickCount % STATUS_EVERY == 0) {
        log("[deployer] tick=" + this.tickCount.toString() + " age=" + ageS.toString() + "s monitoring deployment=" + this.deploymentId +
          " status=" + STATUS_NAMES[this.deployStatus] + " payments=" + this.paidCount.toString() + " total_paid=" + this.totalPaid.toString());
      }
      return false;
    }
    const res = httpGet(DEPLOY_URL + "/" + this.deploymentId);
    if (!res.ok) {
      log("[deployer] Status check error: " + httpErrorName(res.error));
      return false;
    }
    if (res.status != 200) {
      log("[deployer] Status check failed: " + res.status.toString());
      return false;
    }
    const status = jsonString(res.text(), "status");
    const code = statusCode(status);
    if (code == 3 && this.deployStatus != 3) {
      log("[deployer] DEPLOYMENT RUNNING! id=" + this.deploymentId + " — self-provisioning complete.");
    }
    if (code != 0) this.deployStatus = code;
    log("[deployer] tick=" + this.tickCount.toString() + " deployment=" + this.deploymentId + " status=" + status);
    return false;
  }

  reconcile(intent: Intent): void {
    const kind = intentKind(intent);
    if (kind == INTENT_PAYMENT) {
      const paid = reconcilePayment(this.effects, intent, 1, TAG);
      if (paid !== null) {
        this.paidCount++;
        this.totalPaid += paid.amount;
        this.lastReceipt = paid.receipt;
      }
    }
    else if (kind == INTENT_DEPLOYMENT) this.reconcileDeploy(intent);
    else {
      log("[deployer] RECONCILING: unknown intent type " + kind.toString() + ", compensating");
      this.effects.compensate(intent.id);
    }
  }

  /** A deployment is confirmed only if the provider knows it. */
  reconcileDeploy(intent: Intent): void {
    log("[deployer] RECONCILING: unresolved deployment (key=" + short(intent.id) + ")");
    if (this.deploymentId.length > 0) {
      const res = httpGet(DEPLOY_URL + "/" + this.deploymentId);
      if (res.ok && res.status == 200) {
        this.effects.confirm(intent.id);
        log("[deployer] Reconciled: deployment " + this.deploymentId + " EXISTS — confirming");
        return;
      }
    }
    this.effects.compensate(intent.id);
    log("[deployer] Reconciled: deployment DID NOT complete — will retry");
  }

  marshal(enc: Encoder): void {
    this.marshalLife(enc);
    enc.u8(this.phase).string(this.deploymentId)
      .u8(this.deployStatus).u32(this.paidCount).i64(this.totalPaid).bytes(this.lastReceipt);
    this.effects.marshal(enc);
  }

  unmarshal(dec: Decoder): void {
    this.unmarshalLife(dec);
    this.phase = dec.u8();
    this.deploymentId = dec.string();
    this.deployStatus = dec.u8();
    if (this.deployStatus >= <u8>STATUS_NAMES.length) this.deployStatus = 0;
    this.paidCount = dec.u32();
    this.totalPaid = dec.i64();
    this.lastReceipt = dec.bytes();
    this.effects.unmarshal(dec);
  }
}

register(new Deployer());
