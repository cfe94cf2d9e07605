// `igord recover <agent> --reason "..."`: an operator resolves an agent this node cannot recover on
// its own (a handoff left unresolved, or RECOVERY_REQUIRED). The lease moves to ACTIVE_OWNER at
// major + 1 (compare-and-set), and the decision is recorded in the agent's lineage, signed by its key.
import { formatEpoch, transition } from "../authority/lease.js";
import { signBudgetOverride } from "../checkpoint/overrides.js";
import { ErrorCode, IgordError } from "../errors.js";
import { MIGRATION_TERMINAL } from "../store/types.js";
import { openExistingStore } from "./data-dir-store.js";

export function recoverCommand(agentId: string, o: { reason: string; dataDir: string }): number {
  if (o.reason.trim().length === 0) throw new IgordError(ErrorCode.ConfigInvalid, "--reason must say why (it is recorded in the lineage)");
  const store = openExistingStore(o.dataDir);
  try {
    const lease = store.lease(agentId);
    const head = store.head(agentId);
    if (!lease || !head) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${agentId}" in ${store.path}`);
    if (lease.state !== "RECOVERY_REQUIRED" && lease.state !== "HANDOFF_INITIATED") {
      throw new IgordError(ErrorCode.LeaseTransition, `agent "${agentId}" is ${lease.state} at ${formatEpoch(lease.epoch)}: nothing to recover`);
    }
    // Timing only matters for the new expiry: the daemon takes a fresh lease when it resumes the agent.
    const timing = { durationMs: 0, graceMs: 0, renewalWindow: 0.5 };
    const now = Date.now();
    const required = lease.state === "HANDOFF_INITIATED" ? transition(lease, { type: "ambiguous_handoff" }, timing) : lease;
    const next = transition(required, { type: "recover", cause: "operator", nowMs: now }, timing);
    const identity = store.identity(agentId);
    const fields = { afterHash: head.hash, tick: head.tick, oldBudget: head.budget, newBudget: head.budget, reason: `recover: ${o.reason}` };
    // The hop whose handoff this abandons: its record ends here too (the status query that would
    // have settled it stops once the lease holds no handoff).
    const abandoned = lease.handoff
      ? store.migrations({ agentId }).filter((m) => m.direction === "out" && !MIGRATION_TERMINAL.includes(m.state) && m.checkpointHash === lease.handoff?.checkpointHash)
      : [];
    const error = {
      code: ErrorCode.MigrationAmbiguous,
      message: `handoff to ${lease.handoff?.target ?? "its target"} abandoned by igord recover: ${o.reason}; the agent runs here at epoch ${formatEpoch(next.epoch)}`,
    };
    // One transaction: a new epoch without its recorded reason (or the reverse) is never stored.
    store.atomically(() => {
      store.writeLease(agentId, { state: lease.state, epoch: lease.epoch }, next);
      store.addLineageEvent(agentId, { kind: "recovery", ...fields, signature: signBudgetOverride(identity, fields) });
      for (const m of abandoned) store.updateMigration(m.id, { state: "failed", error });
    });
    process.stdout.write(
      `recovered ${agentId}: ${lease.state} ${formatEpoch(lease.epoch)} -> ACTIVE_OWNER ${formatEpoch(next.epoch)}` +
        `${lease.handoff ? ` (handoff to ${lease.handoff.target} abandoned)` : ""}; reason recorded: ${o.reason}\n`,
    );
    return 0;
  } finally {
    store.close();
  }
}
