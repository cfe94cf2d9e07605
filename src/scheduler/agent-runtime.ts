// An agent as the scheduler holds it (AgentRuntime), what it shows of it (AgentView), and the events
// and options the scheduler's parts share. Types only, plus the view.
import type { Logger } from "pino";
import type { TickMeter } from "../budget/meter.js";
import type { IgordError } from "../errors.js";
import type { TickTally } from "../metrics/metrics.js";
import type { LogEntry, TickLog } from "../eventlog/tick-log.js";
import type { Ed25519Key } from "../identity/keys.js";
import type { LeaseBelief, LeaseRenewal, OutboxBatch } from "../store/sqlite-store.js";
import type { Lease, LeaseTiming } from "../authority/lease.js";
import type { DivergencePolicy, ReplayMode } from "../replay/policy.js";
import type { AgentSpec } from "../wasm/pool.js";
import type { ReplayWindow } from "../replay/window.js";
import { wallTimeOf } from "./clock.js";
import type { DueEntry } from "./due-queue.js";

export type AgentStatus = "running" | "stopped" | "failed";

export interface AgentInit {
  tick: bigint;
  budget: bigint;
  price: bigint;
  /** The agent's lease on this node (null when leases are off for it). */
  lease?: Lease | null;
  /** null for a fresh agent. */
  state: Uint8Array | null;
  /** Ticks may have run after `state` without being committed (hostcalls/interrupted.ts). */
  interrupted?: boolean;
  /** `state` was checkpointed by an older module (a code upgrade the new code has not checkpointed since). */
  stateOfOlderModule?: boolean;
  /**
   * The agent's instance, already being placed in the pool with these same fields (a migrated
   * agent's, placed while its reception committed: node/preplace.ts); absent: add() places it.
   */
  placed?: Promise<{ state: Uint8Array; events: LogEntry[] }>;
  /**
   * The agent is added but not scheduled until this resolves (a migrated agent resumed while its
   * reception's fsync runs): no tick before. Should it reject, the agent is withdrawn (unloaded and
   * dropped, nothing checkpointed), as if never added.
   */
  heldUntil?: Promise<unknown>;
  /**
   * Wall time (Unix ms) the tick of `state` committed, wherever it ran (null or absent: unknown):
   * its next tick is due an interval after it, not an interval after the agent is added.
   */
  lastTickAt?: number | null;
}

export interface AgentMeta {
  wasmHash: string;
  wasmPath: string;
  capabilities: readonly string[];
  did: string;
  identity: Ed25519Key;
  /** The manifest's resource_limits the scheduler enforces (absent or null: none). */
  limits?: { maxCpuMillis: bigint | null; maxStorageBytes: bigint | null };
  /** The manifest's tick_interval_ms (absent or null: the node's --tick-interval). */
  tickIntervalMs?: number | null;
}

export interface AgentRuntime {
  id: string;
  /** Added under AgentInit.heldUntil, which has not resolved: schedule() queues nothing. */
  held: boolean;
  /** Where the due queue holds this agent (due-queue.ts): the queue's own fields. */
  dueEntry: DueEntry | null;
  dueLane: number;
  meta: AgentMeta;
  /** What the pool loads the agent from (again after hibernation). */
  spec: AgentSpec;
  /** Off its worker until its next tick (hibernation.ts). */
  hibernated: boolean;
  /** Hibernated before its first tick after an interruption: the woken instance is told so. */
  wakeInterrupted: boolean;
  status: AgentStatus;
  reason: string | null;
  error: { code: string; message: string } | null;
  tick: bigint;
  budget: bigint;
  startBudget: bigint;
  spent: bigint;
  price: bigint;
  meter: TickMeter;
  state: Uint8Array;
  more: boolean;
  inFlight: boolean;
  /**
   * Unix ms when the tick in flight lost its authority (its lease's expiry + grace at dispatch; null
   * = never): a result arriving later is not committed, even if the lease was renewed meanwhile.
   */
  inFlightAuthorityUntil: number | null;
  /** Unix ms its last tick here committed (wall time: stored with the checkpoint, shown in views). */
  lastTickAt: number | null;
  /** When its next tick is due, on the scheduler's monotonic clock (clock.ts); views show it as wall time. */
  nextDueAt: number | null;
  lastTickNs: bigint;
  ticksThisRun: number;
  lastEvents: LogEntry[];
  logger: Logger;
  window: ReplayWindow;
  sinceVerify: number;
  /** Ticks left during which every tick is verified (the intensify policy). */
  intensifyLeft: number;
  verifying: boolean;
  replayVerified: number;
  divergences: number;
  /** Event logs of ticks since the last checkpoint, persisted with the next one. */
  pendingLogs: TickLog[];
  /** The observation bytes of `pendingLogs` (MAX_UNCHECKPOINTED_LOG_BYTES bounds them). */
  pendingLogBytes: number;
  lease: Lease | null;
  /** Being detached for a handoff: no new tick is scheduled. */
  detaching: boolean;
  /** Called once the tick in flight has committed (detach waits on it). */
  onIdle: (() => void) | null;
  /** Emitted messages of ticks since the last checkpoint: written to the outbox with the next one. */
  pendingOutbox: OutboxBatch[];
  /** Its igord_ticks_total tally (metrics.ts), taken at its first commit; null without metrics. */
  tickTally: TickTally | null;
}

export interface TickEvent {
  agentId: string;
  tick: bigint;
  more: boolean;
  /** Microcents charged for executing the tick. */
  cost: bigint;
  /** Microcents the tick paid away (wallet_pay), taken from the budget before `cost`. */
  paid: bigint;
  budget: bigint;
  elapsedNs: bigint;
  events: readonly LogEntry[];
  at: number;
}

export interface AgentView {
  id: string;
  did: string;
  status: AgentStatus;
  reason: string | null;
  error: { code: string; message: string } | null;
  tick: bigint;
  budget: bigint;
  spent: bigint;
  price: bigint;
  wasmHash: string;
  wasmPath: string;
  capabilities: readonly string[];
  more: boolean;
  lastTickAt: number | null;
  nextTickAt: number | null;
  /** The cadence the agent ticks at (its manifest's, else the node's). */
  tickIntervalMs: number | null;
  lastTickNs: bigint;
  ticksThisRun: number;
  /** Off its worker until its next tick (still running: it ticks when due). */
  hibernated: boolean;
  stateBytes: number;
  replayVerified: number;
  divergences: number;
  lease: Lease | null;
}

export interface ReplayOptions {
  mode: ReplayMode;
  window: number;
  verifyInterval: number;
  onDivergence: DivergencePolicy;
}

export interface DivergenceEvent {
  agentId: string;
  tick: bigint;
  code: string;
  message: string;
  policy: DivergencePolicy;
}

export interface LeaseOptions {
  timing: LeaseTiming;
  /** Compare-and-set of the stored lease (throws LEASE_STALE when another writer moved it). */
  write(agentId: string, expected: LeaseBelief, next: Lease): void;
  /**
   * Several renewals' compare-and-sets in one transaction that does not wait for another writer:
   * null, nothing written, when the store is busy; else per renewal null once written, or the error
   * that refused it. Present: the lease sweep renews together every agent that came due since the
   * sweep before (LeaseFence.renewGathered), and a tick's check leaves a due renewal to it until it
   * runs short. Absent: every renewal is written when due, waiting for the store (write).
   */
  tryRenewAll?(renewals: readonly LeaseRenewal[]): (IgordError | null)[] | null;
}

/** Maps an error code to the reason an agent stopped. */
export function reasonFor(e: IgordError): string {
  return e.code.toLowerCase();
}

export interface CheckpointEvent {
  agentId: string;
  tick: bigint;
  reason: string;
  outcome: "written" | "unchanged" | "failed";
  /** Why it failed (outcome "failed"). */
  code?: string;
}

export const NO_REPLAY: ReplayOptions = { mode: "off", window: 0, verifyInterval: 0, onDivergence: "log" };

/** What the scheduler shows of an agent (control API, events). */
export function viewOf(a: AgentRuntime): AgentView {
  return {
    id: a.id,
    did: a.meta.did,
    status: a.status,
    reason: a.reason,
    error: a.error,
    tick: a.tick,
    budget: a.budget,
    spent: a.spent,
    price: a.price,
    wasmHash: a.meta.wasmHash,
    wasmPath: a.meta.wasmPath,
    capabilities: a.meta.capabilities,
    more: a.more,
    lastTickAt: a.lastTickAt,
    nextTickAt: a.nextDueAt === null ? null : wallTimeOf(a.nextDueAt),
    tickIntervalMs: a.meta.tickIntervalMs ?? null,
    lastTickNs: a.lastTickNs,
    ticksThisRun: a.ticksThisRun,
    hibernated: a.hibernated,
    stateBytes: a.state.length,
    replayVerified: a.replayVerified,
    divergences: a.divergences,
    lease: a.lease,
  };
}
