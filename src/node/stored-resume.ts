// Reading a stored agent back for a resume: the lease it may resume under, the last stored window to
// verify, and where its receipts carry on; and the resume itself (IgordNode.resumeAgent): the load
// checks on the head, the budget after overrides, the interrupted flag, the placement.
import { resolve } from "node:path";
import type { Logger } from "pino";
import { formatEpoch, type Lease, type LeaseTiming } from "../authority/lease.js";
import { parseCheckpoint } from "../checkpoint/codec.js";
import { ErrorCode, IgordError } from "../errors.js";
import { decodeSegment } from "../eventlog/tick-log.js";
import { equalBytes } from "../hash/bytes.js";
import { MAX_ADMISSION_REPLAY_TICKS } from "../migration/admission-context.js";
import type { ReplayItem } from "../replay/engine.js";
import { segmentReplayItems } from "../replay/segment-items.js";
import { type AgentRow, corruptionError, type LineageEvent, type SqliteStore } from "../store/sqlite-store.js";
import { checkHead } from "../checkpoint/load-checks.js";
import { headModule } from "../checkpoint/upgrades.js";
import { interruptedAfter } from "../hostcalls/interrupted.js";
import { moduleBytes, type PreparedAgent, prepareFromBytes } from "../loader/prepare.js";
import { parseManifest } from "../manifest/manifest.js";
import type { AgentView } from "../scheduler/scheduler.js";
import type { PreplacedAgent } from "../scheduler/preplaced.js";
import { refuseIfHeld, stoppedCleanly } from "./agent-lifecycle.js";
import { debitLostPayments, paidAfterHead } from "./lost-payments.js";
import { agentSpec, type IgordNode } from "./node.js";
import { NOT_QUARANTINED_CODES, QUARANTINE_CODES } from "./quarantine.js";

/** An agent that moved away from this node (its lease here RETIRED) lives elsewhere now: LEASE_RETIRED. */
export function refuseIfRetired(agentId: string, lease: Lease | undefined): void {
  if (lease?.state !== "RETIRED") return;
  const where = lease.handoff?.target ? ` to ${lease.handoff.target}` : "";
  throw new IgordError(ErrorCode.LeaseRetired, `agent "${agentId}" is retired on this node (it moved${where} at epoch ${formatEpoch(lease.epoch)})`, {
    details: { target: lease.handoff?.target ?? null, epoch: formatEpoch(lease.epoch) },
  });
}

/**
 * The stored lease of an agent this node may run or change: an agent handed off (HANDOFF_INITIATED,
 * or RECOVERY_REQUIRED with a handoff) needs resolution first, and a retired one lives elsewhere now.
 */
export function ownedLease(store: SqliteStore, agentId: string): Lease {
  const lease = store.lease(agentId);
  if (!lease) throw new IgordError(ErrorCode.AgentNotFound, `no lease for agent "${agentId}"`);
  if (lease.state === "HANDOFF_INITIATED") {
    throw new IgordError(
      ErrorCode.LeaseHandoffUnresolved,
      `agent "${agentId}" was being handed off to ${lease.handoff?.target ?? "another node"} at epoch ${formatEpoch(lease.epoch)}; resolve it (igord recover) before it runs here`,
    );
  }
  if (lease.state === "RECOVERY_REQUIRED" && lease.handoff !== null) {
    throw new IgordError(
      ErrorCode.LeaseHandoffUnresolved,
      `agent "${agentId}" was sent to ${lease.handoff.target} without a confirmation (epoch ${formatEpoch(lease.epoch)}); it runs here again only when that node says it does not hold it, or after igord recover`,
    );
  }
  refuseIfRetired(agentId, lease);
  return lease;
}

/** The stored lease (ownedLease), epoch restored as it was (never reset). */
export function resumableLease(store: SqliteStore, timing: LeaseTiming, agentId: string): Lease {
  const lease = ownedLease(store, agentId);
  if (lease.expiresAtMs === null && timing.durationMs > 0 && lease.state === "ACTIVE_OWNER") {
    // Leases were off (or this database predates them): take a lease at the same epoch.
    const next = { ...lease, expiresAtMs: Date.now() + timing.durationMs };
    store.writeLease(agentId, { state: lease.state, epoch: lease.epoch }, next);
    return next;
  }
  return lease;
}

/** The last stored segment of event logs as a replay chain from the checkpoint before it. */
export function storedReplayItems(store: SqliteStore, logger: Logger, agentId: string): ReplayItem[] {
  const segment = store.lastEventSegment(agentId);
  if (!segment || segment.toTick < segment.fromTick) return [];
  if (segment.toTick - segment.fromTick + 1n > BigInt(MAX_ADMISSION_REPLAY_TICKS)) {
    logger.warn({ event: "replay_skipped", agent: agentId, ticks: String(segment.toTick - segment.fromTick + 1n) }, "the last stored window is too long to verify at resume");
    return [];
  }
  const before = store.checkpointAtTick(agentId, segment.fromTick - 1n);
  if (!before) return [];
  return segmentReplayItems(segment, decodeSegment(segment.blob), parseCheckpoint(before.blob).state);
}

/**
 * Where the agent's receipts resume after a restart: the last receipted tick, and the cost of the
 * ticks since (budget at the last receipt, plus overrides and lost payments in between, minus the
 * head's budget). A receipt's budget after is its last tick's checkpoint's, so every lineage event
 * from that tick on is in between, but those after the head: the head's budget lacks them too.
 */
export function receiptPosition(
  store: SqliteStore,
  logger: Logger,
  agentId: string,
  headBudget: bigint,
  headHash: Uint8Array,
  events: readonly LineageEvent[],
): { tick: bigint; costSince: bigint } | undefined {
  const base = store.receiptBase(agentId);
  if (!base) return undefined;
  const topUps = events
    .filter((e) => e.tick >= base.tick && !equalBytes(e.afterHash, headHash))
    .reduce((sum, e) => sum + (e.newBudget - e.oldBudget), 0n);
  const costSince = base.budget + topUps - headBudget;
  if (costSince < 0n) {
    // Ticks never give money back: the last receipt's budget after already lacked a lost payment
    // debited after its checkpoint (receipts signed before igord ended them at the checkpoint's
    // budget). Counting it again would bill it a second time as a negative cost.
    logger.warn(
      { event: "receipt_position_inconsistent", agent: agentId, tick: String(base.tick), costSince: String(costSince) },
      `the last receipt of ${agentId} (tick ${base.tick}) ends below its checkpoint's budget; its next receipt starts from a cost of 0`,
    );
    return { tick: base.tick, costSince: 0n };
  }
  return { tick: base.tick, costSince };
}

/** The agent's stored module, prepared with its stored manifest and this node's capabilities. */
function storedModule(node: IgordNode, row: AgentRow, wasmPath: string | undefined): PreparedAgent {
  const bytes = node.store.wasm(row.wasmHash);
  if (!bytes) throw new IgordError(ErrorCode.StoreCorrupt, `WASM ${row.wasmHash} of agent "${row.agentId}" is missing from the store`);
  return prepareFromBytes({
    agentId: row.agentId,
    bytes: moduleBytes(bytes),
    manifest: parseManifest(row.manifest, `stored manifest of agent "${row.agentId}"`),
    source: wasmPath ?? `stored WASM of agent "${row.agentId}"`,
    offered: node.capabilities.snapshot(),
    cache: node.cache,
  });
}

function refuseIfRunning(node: IgordNode, agentId: string, preplaced: PreplacedAgent | undefined): void {
  if (node.scheduler.view(agentId)?.status !== "running") return;
  preplaced?.discard();
  // Resuming it again would reset its in-memory chain head under a checkpoint in flight.
  throw new IgordError(ErrorCode.AgentExists, `agent "${agentId}" is already running on this node`);
}

export interface ResumeOptions {
  windowVerified?: boolean;
  preplaced?: PreplacedAgent;
  heldUntil?: Promise<unknown>;
  /** igord start: the operator's deliberate start, which alone runs an agent held stopped (refuseIfHeld). */
  operatorStart?: boolean;
}

/** Resumes a stored agent from its head checkpoint after the load checks; quarantines it if they fail. */
export async function resumeStoredAgent(node: IgordNode, agentId: string, wasmPath?: string, opts: ResumeOptions = {}): Promise<AgentView> {
  refuseIfRunning(node, agentId, opts.preplaced);
  // An agent that just failed or stopped here has its last checkpoint still being committed: resumed
  // from the head before it, it would run ticks that checkpoint commits again (and its own next
  // checkpoint would be refused CHECKPOINT_CHAIN_BROKEN).
  const inFlight = node.scheduler.settledFor(agentId);
  if (inFlight) {
    await inFlight;
    refuseIfRunning(node, agentId, opts.preplaced);
  }
  try {
    const row = node.store.agent(agentId);
    if (!row) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${agentId}" in ${node.store.path}`);
    // Held (stopped by the operator or by a divergence, removed): only igord start runs it again, never
    // a resume that merely finds it stored (igord resume --checkpoint, the control API's resume).
    if (row.status === "removed" || opts.operatorStart !== true) refuseIfHeld(row, "a resume");
    const lease = resumableLease(node.store, node.leaseTiming, agentId);
    // An agent just received: what admission prepared and verified, not read and checked again.
    const admitted = opts.preplaced?.admitted?.prepared.wasmHash === row.wasmHash ? opts.preplaced.admitted : null;
    const identity = admitted?.identity ?? node.store.identity(agentId);
    const prepared = admitted?.prepared ?? storedModule(node, row, wasmPath);
    const manifest = prepared.manifest;
    const head = node.store.head(agentId);
    if (!head) throw new IgordError(ErrorCode.CheckpointInvalid, `agent "${agentId}" has no checkpoint in the store`);
    const previous = head.seq > 1n ? node.store.checkpointAt(agentId, head.seq - 1n) : undefined;
    debitLostPayments(node.store, node.logger, agentId);
    const events = node.store.lineageEvents(agentId);
    const headWasm = headModule(events, head.hash, prepared.wasmHash);
    const cp = checkHead({
      agentId,
      blob: head.blob,
      storedHash: head.hash,
      previousHash: previous?.hash ?? null,
      previousVersion: previous ? (previous.blob[0] as number) : null,
      // After a code upgrade and before the new code's first checkpoint, the head is the old code's.
      wasmHash: headWasm,
      publicKey: identity.publicKey,
      ...(admitted ? { signatureVerified: admitted.headHash } : {}),
    });
    const override = events.filter((e) => equalBytes(e.afterHash, head.hash)).at(-1);
    const budget = override ? override.newBudget : cp.budget;
    node.quarantined.delete(agentId);
    node.checkpointer.track(agentId, { hash: head.hash, tick: cp.tick, budget: cp.budget }, receiptPosition(node.store, node.logger, agentId, cp.budget, head.hash, events));
    const spec = agentSpec(prepared, identity);
    const meta = {
      wasmHash: prepared.wasmHash,
      wasmPath: wasmPath ? resolve(wasmPath) : `stored:${prepared.wasmHash}`,
      capabilities: [...manifest.capabilities.keys()].sort(),
      did: row.did,
      identity,
      limits: manifest.resourceLimits,
      tickIntervalMs: manifest.tickIntervalMs,
    };
    const interrupted = interruptedAfter({ reason: head.reason, stoppedCleanly: stoppedCleanly(row) }) || paidAfterHead(events, head.hash);
    // Right after a code upgrade the head's state is the old code's: the new code may read it into a new layout.
    const stateOfOlderModule = headWasm !== prepared.wasmHash;
    const placed = opts.preplaced?.take({ wasmHash: prepared.wasmHash, state: cp.state, budget, price: node.config.price, interrupted, publicKey: identity.publicKey, stateOfOlderModule });
    const view = await node.scheduler.add(spec, meta, { tick: cp.tick, budget, price: node.config.price, state: cp.state, lease, interrupted, stateOfOlderModule, lastTickAt: node.store.headTickAt(agentId), ...(placed ? { placed } : {}), ...(opts.heldUntil ? { heldUntil: opts.heldUntil } : {}) });
    // An agent just admitted by migration had this very window replayed at admission.
    // Right after a code upgrade the last stored window is the old code's: the audit replays it with that code.
    if (!opts.windowVerified && headWasm === prepared.wasmHash) node.scheduler.verifyStored(agentId, storedReplayItems(node.store, node.logger, agentId));
    return view;
  } catch (e) {
    opts.preplaced?.discard();
    const err = corruptionError(e, `the stored rows of agent "${agentId}" cannot be read`) ?? (e as IgordError);
    if (err.code === ErrorCode.LeaseRetired) {
      // Moved away: not a failure (a caller that loads its file says so once).
    } else if (QUARANTINE_CODES.has(err.code)) {
      node.logger.error({ event: "agent_quarantined", agent: agentId, code: err.code, details: err.details }, err.message);
    } else {
      node.logger.error({ event: "agent_resume_failed", agent: agentId, code: err.code, details: err.details }, `cannot resume ${agentId}: ${err.message}`);
    }
    // A stored owner that cannot start is never invisible: it is listed with its reason.
    if (!NOT_QUARANTINED_CODES.has(err.code) && !node.scheduler.has(agentId)) {
      node.quarantined.set(agentId, { code: err.code, message: err.message, at: Date.now() });
    }
    throw err;
  }
}
