// Reading a stored agent back for a resume: the lease it may resume under, the last stored window to
// verify, and where its receipts carry on. Used by IgordNode.resumeAgent.
import type { Logger } from "pino";
import { formatEpoch, type Lease, type LeaseTiming } from "../authority/lease.js";
import { parseCheckpoint } from "../checkpoint/codec.js";
import { ErrorCode, IgordError } from "../errors.js";
import { decodeSegment } from "../eventlog/tick-log.js";
import { equalBytes } from "../hash/bytes.js";
import { MAX_ADMISSION_REPLAY_TICKS } from "../migration/admission.js";
import type { ReplayItem } from "../replay/engine.js";
import { segmentReplayItems } from "../replay/segment-items.js";
import type { LineageEvent, SqliteStore } from "../store/sqlite-store.js";

/**
 * The stored lease, epoch restored as it was (never reset). An agent handed off (HANDOFF_INITIATED)
 * or retired is not resumed: the first needs resolution, the second lives elsewhere now.
 */
export function resumableLease(store: SqliteStore, timing: LeaseTiming, agentId: string): Lease {
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
  if (lease.state === "RETIRED") {
    const where = lease.handoff?.target ? ` to ${lease.handoff.target}` : "";
    throw new IgordError(ErrorCode.LeaseRetired, `agent "${agentId}" is retired on this node (it moved${where} at epoch ${formatEpoch(lease.epoch)})`, {
      details: { target: lease.handoff?.target ?? null, epoch: formatEpoch(lease.epoch) },
    });
  }
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
 * ticks since (budget at the last receipt, plus overrides in between, minus the head's budget).
 */
export function receiptPosition(
  store: SqliteStore,
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
  return { tick: base.tick, costSince: base.budget + topUps - headBudget };
}
