// A lineage event's kind is not in its signed bytes (checkpoint/overrides.ts signs the checkpoint it
// follows, its tick, both budgets and its reason), but two kinds are told by their reason's form: a
// lost payment's names its tick and receipt, a code upgrade's both modules. An event that arrives
// (a peer's package, an export's overrides.json) whose kind is not the one its signed reason
// records was relabelled after it was signed: a lost payment relabelled a top-up would no longer
// tell the agent that its run paid and was lost (resume_interrupted) nor list it that receipt, and
// the agent could pay again; an upgrade relabelled a top-up would hide the module change.
import { isLostPaymentReason } from "../budget/lost-payment.js";
import { LOST_PAYMENT_KIND } from "./overrides.js";
import { CODE_UPGRADE_KIND, isCodeUpgradeReason } from "./upgrades.js";

/** What is wrong with the event's kind given its reason's form; null when they agree. */
export function lineageKindProblem(e: { kind: string; reason: string }): string | null {
  const asUpgrade = isCodeUpgradeReason(e.reason);
  const asLostPayment = isLostPaymentReason(e.reason);
  if (asUpgrade !== (e.kind === CODE_UPGRADE_KIND)) {
    return asUpgrade ? `a lineage event of kind ${e.kind} whose signed reason records a code upgrade` : `a code_upgrade lineage event whose signed reason records no code upgrade`;
  }
  if (asLostPayment !== (e.kind === LOST_PAYMENT_KIND)) {
    return asLostPayment ? `a lineage event of kind ${e.kind} whose signed reason records a lost payment` : `a lost_payment lineage event whose signed reason records no lost payment`;
  }
  return null;
}
