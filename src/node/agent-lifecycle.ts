// What an operator does to one agent on a live node (igord stop / start / remove through the control
// API). The rules, also in docs/OPERATIONS.md:
// - stop: the tick in flight commits, the agent is checkpointed and leaves its worker; it is stored
//   `stopped` (reason operator_stop) and stays stopped across restarts, its file in the agents dir
//   included. Its lease is KEPT (state and epoch: no other node may take it, its state lives here)
//   but no longer renewed, so it lapses; `start` renews it like a restart does (a lapsed lease is
//   recovered at major + 1, logged as lease_recovered).
// - start: resumed from its head checkpoint with the load checks and the replay-rule check, then
//   stored `active` again; a failure quarantines it with the reason, as at any start (it stays
//   stored stopped). A stop is a clean end: the first tick after start hears resume_interrupted 0.
//   Not so the stop of an agent whose run was thrown away (failed, or quarantined after a crash): it
//   is stored with reason operator_stop_interrupted, held like operator_stop, and the first tick
//   after start hears 1, as it would have without the stop.
// - remove: stopped as above, then stored `removed` with its lease RETIRED at its epoch: this node
//   never runs it again. Nothing is deleted: checkpoints, event logs, receipts and lineage stay, so
//   `igord verify --agent X [--replay]` still checks it and `igord agents --all` lists it. Its id stays
//   taken: a .wasm of that name left in the agents dir is not re-created (logged once, at info).
// - all three are refused MIGRATION_IN_PROGRESS while a hop of the agent is under way.
// - commands on one agent run one after the other, in the order they came (node/agent-turns.ts),
//   the upgrades --upgrade-agents-dir takes from a changed file included.
import { formatEpoch } from "../authority/lease.js";
import { signBudgetOverride } from "../checkpoint/overrides.js";
import { ErrorCode, IgordError } from "../errors.js";
import { interruptedAfter } from "../hostcalls/interrupted.js";
import { stoppedByDivergence } from "../replay/policy.js";
import type { AgentRow } from "../store/sqlite-store.js";
import type { IgordNode } from "./node.js";
import { ownedLease } from "./stored-resume.js";

export const OPERATOR_STOP = "operator_stop";
/**
 * A stop after which a start must still tell the agent its last run was interrupted: the stop threw
 * away the tick in flight (that run may have acted: a POST, a payment, debited as lost), or the agent
 * was not running because its run had been thrown away (it failed, or its last stored state is one
 * after which ticks ran uncommitted), and no checkpoint is taken then. Held like `operator_stop`.
 */
export const OPERATOR_STOP_INTERRUPTED = "operator_stop_interrupted";
export const OPERATOR_REMOVE = "operator_remove";
/**
 * Why a running agent is paused while its code is upgraded (node/code-upgrade.ts): not an operator's
 * stop. A node stopped before the upgrade restarted it resumes it at its next start.
 */
export const UPGRADE_PAUSE = "code_upgrade";
/** The same pause, which threw away a tick in flight: the code that resumes is told its last run was interrupted. */
export const UPGRADE_PAUSE_INTERRUPTED = "code_upgrade_interrupted";

/** Stored stopped only because an upgrade paused it and the node stopped before it ran again. */
export function pausedByUpgrade(row: AgentRow): boolean {
  return row.status === "stopped" && (row.reason === UPGRADE_PAUSE || row.reason === UPGRADE_PAUSE_INTERRUPTED);
}

/** Stored stopped by a stop that checkpointed the running agent: nothing ran after its head. */
export function stoppedCleanly(row: AgentRow): boolean {
  return row.status === "stopped" && row.reason !== OPERATOR_STOP_INTERRUPTED && row.reason !== UPGRADE_PAUSE_INTERRUPTED;
}

function storedAgent(node: IgordNode, id: string): AgentRow {
  const row = node.store.agent(id);
  if (!row) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${id}" on this node`);
  return row;
}

/**
 * Refuses to run a stored agent the operator stopped or removed, or the divergence policy stopped (a
 * load from the agents dir, igord run): a restart must not quietly run again an agent whose replay
 * did not reproduce; the operator decides, with igord start.
 */
export function refuseIfHeld(row: AgentRow, source: string): void {
  if (row.status === "removed") {
    throw new IgordError(ErrorCode.AgentRemoved, `agent "${row.agentId}" was removed from this node (igord remove); ${source} does not re-create it: its history is kept under that id. Rename the file to start a new agent from it`, {
      details: { agentId: row.agentId },
    });
  }
  if (row.status === "stopped" && (row.reason === OPERATOR_STOP || row.reason === OPERATOR_STOP_INTERRUPTED)) {
    throw new IgordError(ErrorCode.AgentStopped, `agent "${row.agentId}" is stopped (igord stop); run igord start ${row.agentId} to resume it`, { details: { agentId: row.agentId, reason: row.reason } });
  }
  if (row.status === "stopped" && stoppedByDivergence(row.reason)) {
    throw new IgordError(ErrorCode.AgentStopped, `agent "${row.agentId}" is stopped (${String(row.reason)}: its replay did not reproduce, see igord verify --replay --agent ${row.agentId}); run igord start ${row.agentId} to run it again`, {
      details: { agentId: row.agentId, reason: row.reason },
    });
  }
}

/**
 * Refuses an operator's command while a hop of the agent is under way: the hop decides whether it
 * runs here or there (a revert resumes it here, a move retires it), so a stop taken meanwhile was
 * undone by the revert while the store said operator_stop.
 */
function refuseIfMoving(node: IgordNode, id: string, command: string): void {
  if (node.migration?.moving(id)) {
    throw new IgordError(ErrorCode.MigrationInProgress, `${command} "${id}" refused: it is migrating; try again once the migration is done (igord migrations)`, { details: { agentId: id } });
  }
}

function summary(node: IgordNode, id: string): Record<string, unknown> {
  const row = storedAgent(node, id);
  const head = node.store.head(id);
  const lease = node.store.lease(id);
  return {
    id,
    // What it does now (running, stopped, failed); the stored status when it is not loaded here.
    status: node.scheduler.view(id)?.status ?? row.status,
    reason: row.reason,
    tick: head ? head.tick.toString() : null,
    lease: lease ? { state: lease.state, epoch: formatEpoch(lease.epoch) } : null,
  };
}

/** Stops an agent: checkpointed, out of its worker, stored stopped (operator_stop) across restarts. */
export async function stopAgent(node: IgordNode, id: string): Promise<Record<string, unknown>> {
  const row = storedAgent(node, id);
  if (row.status === "removed") refuseIfHeld(row, "igord stop");
  // An agent that just failed has its failure's checkpoint still being committed, with its status:
  // written after this stop's, it would store the agent failed again, no longer held.
  await node.scheduler.settledFor(id);
  refuseIfMoving(node, id, "igord stop");
  if (node.scheduler.view(id)?.status === "running") {
    // A tick in flight is thrown away (its payments are debited as lost with the stop's checkpoint):
    // its run may have acted, so the re-run after a start is told so.
    await node.scheduler.pause(id, OPERATOR_STOP, OPERATOR_STOP_INTERRUPTED);
  } else {
    // Not running here (stopped for another reason, failed, quarantined): held stopped from now on,
    // without a checkpoint. Whether a start must say the last run was interrupted is kept.
    const head = node.store.head(id);
    const interrupted = !head || interruptedAfter({ reason: head.reason, stoppedCleanly: stoppedCleanly(storedAgent(node, id)) });
    node.store.setStatus(id, "stopped", interrupted ? OPERATOR_STOP_INTERRUPTED : OPERATOR_STOP);
    node.quarantined.delete(id);
  }
  const s = summary(node, id);
  node.logger.info({ event: "agent_stopped_by_operator", agent: id, tick: s.tick }, `agent ${id} stopped at tick ${String(s.tick)}; igord start ${id} resumes it`);
  return s;
}

/** Starts a stopped (or failed, or quarantined) agent again from its head checkpoint. */
export async function startAgent(node: IgordNode, id: string): Promise<Record<string, unknown>> {
  const row = storedAgent(node, id);
  if (row.status === "removed") refuseIfHeld(row, "igord start");
  refuseIfMoving(node, id, "igord start");
  if (node.scheduler.view(id)?.status === "running") return summary(node, id);
  // Resumed while still stored stopped (a clean end: resume_interrupted answers 0), then active.
  await node.resumeAgent(id, undefined, { operatorStart: true });
  node.store.setStatus(id, "active", null);
  node.logger.info({ event: "agent_started_by_operator", agent: id }, `agent ${id} started`);
  return summary(node, id);
}

/** Retires an agent on this node for good, keeping its whole history (verifiable, listed with --all). */
export async function removeAgent(node: IgordNode, id: string): Promise<Record<string, unknown>> {
  const row = storedAgent(node, id);
  if (row.status === "removed") return summary(node, id);
  // A failure's checkpoint still in flight commits its ticks first (kept in the history), not refused by the retired lease.
  await node.scheduler.settledFor(id);
  refuseIfMoving(node, id, "igord remove");
  if (node.scheduler.view(id)?.status === "running") await node.scheduler.pause(id, OPERATOR_REMOVE);
  const lease = node.store.lease(id);
  if (lease && lease.state !== "RETIRED") {
    if (lease.state === "HANDOFF_INITIATED" || lease.state === "HANDOFF_PENDING") {
      throw new IgordError(ErrorCode.LeaseTransition, `agent "${id}" is in a handoff (${lease.state}); resolve it first (igord recover)`);
    }
    node.store.writeLease(id, { state: lease.state, epoch: lease.epoch }, { ...lease, state: "RETIRED", expiresAtMs: null, handoff: null });
  }
  node.store.setStatus(id, "removed", OPERATOR_REMOVE);
  node.scheduler.forget(id);
  node.quarantined.delete(id);
  node.logger.info({ event: "agent_removed", agent: id }, `agent ${id} removed; its history is kept (igord verify --agent ${id}, igord agents --all)`);
  return summary(node, id);
}

/** Sets a stored agent's budget explicitly (igord resume --budget, a budget on load); recorded in its lineage, signed by the agent's key. */
export function overrideStoredBudget(node: IgordNode, agentId: string, newBudget: bigint, reason: string): void {
  // Only an agent this node owns: a top-up after a retired or handed-off head would set the budget
  // the agent resumes with should it come back to that head, though the command said it failed.
  const row = node.store.agent(agentId);
  if (!row) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${agentId}" in ${node.store.path}`);
  if (row.status === "removed") refuseIfHeld(row, "a budget override");
  ownedLease(node.store, agentId);
  const head = node.store.head(agentId);
  if (!head) throw new IgordError(ErrorCode.AgentNotFound, `agent "${agentId}" has no checkpoint`);
  const identity = node.store.identity(agentId);
  const fields = { afterHash: head.hash, tick: head.tick, oldBudget: head.budget, newBudget, reason };
  node.store.addLineageEvent(agentId, { kind: "budget_override", ...fields, signature: signBudgetOverride(identity, fields) });
  node.logger.info(
    { event: "budget_override", agent: agentId, tick: String(head.tick), oldBudget: String(head.budget), newBudget: String(newBudget), reason },
    `budget of ${agentId} set to ${newBudget} µ¢ (${reason})`,
  );
}
