// The store's vocabulary: the rows it returns, the commits it takes, and its named limits. Kept apart
// from the classes that run the SQL so that callers (and the store's own layers) share one set of
// shapes without importing any of the database code; sqlite-store.ts re-exports all of it.
import type { Epoch, Lease, LeaseState } from "../authority/lease.js";
import type { HistoryBase } from "../checkpoint/history-base.js";
import type { BudgetOverride } from "../checkpoint/overrides.js";
import type { EventLogSegment } from "../eventlog/tick-log.js";
import type { Ed25519Key } from "../identity/keys.js";
import type { SealedRun } from "../replay/run-seal.js";

export type SyncMode = "full" | "normal";
// Every write transaction is BEGIN IMMEDIATE: a compare-and-set reads then writes, and a deferred
// transaction that must upgrade its lock fails at once (SQLITE_BUSY) when another process (igord
// import, igord recover) writes meanwhile; IMMEDIATE takes the lock up front, under busy_timeout.
/** How long a writer waits for a lock held by another process (e.g. `igord import` beside a daemon). */
export const BUSY_TIMEOUT_MS = 5000;
export const DB_FILE = "igord.db";
/** Fences, and unsettled incoming handoff records, kept per peer (the oldest beyond go first). */
export const MAX_FENCES_PER_PEER = 1024;

export type { EventLogSegment };

/** removed: retired by the operator (igord remove), history kept. */
export type AgentStatus = "active" | "stopped" | "failed" | "removed";

export interface AgentRow {
  agentId: string;
  did: string;
  wasmHash: string;
  manifest: string;
  status: AgentStatus;
  reason: string | null;
}

export interface CheckpointRow {
  agentId: string;
  seq: bigint;
  tick: bigint;
  hash: Uint8Array;
  prevHash: Uint8Array;
  budget: bigint;
  reason: string;
  blob: Uint8Array;
  createdAt: number;
}

export interface ReceiptRow {
  tickStart: bigint;
  tickEnd: bigint;
  cost: bigint;
  budgetAfter: bigint;
  nodeId: string;
  blob: Uint8Array;
}

/** Every lineage event kind the store can hold; codecs that carry lineage must accept each one. */
export const LINEAGE_KINDS = ["budget_override", "recovery", "import", "code_upgrade", "lost_payment"] as const;
export type LineageKind = (typeof LINEAGE_KINDS)[number];

export interface LineageEvent extends BudgetOverride {
  /**
   * budget_override: a top-up or explicit budget; recovery: an operator's `igord recover`; import:
   * the agent continues here from files at a new major epoch (the last two leave the budget unchanged);
   * code_upgrade: another module continues from the checkpoint (checkpoint/upgrades.ts);
   * lost_payment: a payment of a run that never committed (lost in a crash, or thrown away), debited once (budget/lost-payment.ts).
   */
  kind: LineageKind;
}

/** A signed wallet_pay receipt whose tick has not committed yet (store/schema.ts, version 7). */
export interface JournalledPayment {
  agentId: string;
  tick: bigint;
  receiptHash: Uint8Array;
  amount: bigint;
  recipient: string;
  memo: string;
  receipt: Uint8Array;
}

/** The messages one tick emitted (the emit side effect), in order, under the owner's epoch. */
export interface OutboxBatch {
  tick: bigint;
  epochMajor: bigint;
  messages: readonly Uint8Array[];
}

export interface StoredSegment extends EventLogSegment {
  checkpointHash: Uint8Array;
}

/** One peer's handoff of one agent (by id and DID) at one source epoch. */
export interface HandoffKey {
  agentId: string;
  did: string;
  peer: string;
  epoch: Epoch;
}

/**
 * A package that arrived matching its offer, held until admitted and its source's handoff is durable
 * (migration/pending-reception.ts): never ownership, at most one per agent.
 */
export interface PendingReception extends HandoffKey {
  checkpointHash: string;
  /** The package as it arrived (at most --max-package-size): what a restart admits again to flip it. */
  package: Uint8Array;
  /** Where the source listens, as its offer said (each names its own peer id): the resolution asks it there. */
  sourceAddrs: string[];
}

/** What a writer believes its lease is: a write is refused (LEASE_STALE) when the store says otherwise. */
export interface LeaseBelief {
  state: LeaseState;
  epoch: Epoch;
}

/** A lease renewal's compare-and-set: the agent's lease from `expected` to `next`. */
export interface LeaseRenewal {
  agentId: string;
  expected: LeaseBelief;
  next: Lease;
}

export interface CheckpointCommit {
  agentId: string;
  tick: bigint;
  budget: bigint;
  hash: Uint8Array;
  prevHash: Uint8Array;
  blob: Uint8Array;
  reason: string;
  receipt: ReceiptRow | null;
  status: AgentStatus;
  statusReason: string | null;
  /** Event logs of the ticks since the previous checkpoint. */
  events?: EventLogSegment;
  /** The run of segments this checkpoint's segment closes, sealed (replay/run-seal.ts). */
  runSeal?: SealedRun;
  /** Messages the ticks since the previous checkpoint emitted: published with it, or not at all. */
  outbox?: readonly OutboxBatch[];
  /** The manifest's max_storage_bytes: refused (STORAGE_LIMIT) when the agent's stored bytes (history, event logs, outbox) would pass it. */
  maxStorageBytes?: bigint;
  /** History retention: checkpoints before `baseSeq` (and their event logs) go, behind this signed base. */
  prune?: { baseSeq: bigint; base: HistoryBase };
  /** The writer's lease: the checkpoint is written only if the stored lease still matches. */
  lease?: LeaseBelief;
  /**
   * SHA-256 of the payment receipts in the event logs of the ticks it commits: only those journalled
   * payments are settled (absent: every journalled payment up to `tick`, when no logs are kept). A
   * receipt signed by a run of one of these ticks that was thrown away (a tick re-run under the same
   * number) stays journalled: settled by `lostPayments`, or debited as lost at the next start.
   */
  settledPayments?: readonly Uint8Array[];
  /**
   * Payments of runs of these ticks that were thrown away while the node kept running (debited from
   * the budget it stores): their signed lost_payment lineage events, written with it, and the journal
   * rows they settle (by receipt hash).
   */
  lostPayments?: readonly { event: LineageEvent; receiptHash: Uint8Array }[];
  /**
   * Wall time (Unix ms) its tick committed on the node that ran it (the scheduler's lastTickAt):
   * where a resumed or arriving agent's next tick is due from. Absent: unknown.
   */
  tickAt?: number;
  /**
   * Ownership writes that go in this checkpoint's transaction once it is stored (a handoff recorded
   * with the checkpoint it hands off: one fsync, not two); a throw refuses the checkpoint too. A
   * batch carrying one commits durably whatever --sync says.
   */
  alsoWrite?: (head: { hash: Uint8Array; tick: bigint; budget: bigint }) => void;
}

export type MigrationDirection = "out" | "in";
export type MigrationState = "requested" | "transferring" | "awaiting_confirmation" | "done" | "failed" | "recovery";
export const MIGRATION_TERMINAL: readonly MigrationState[] = ["done", "failed"];

export interface MigrationRow {
  id: number;
  agentId: string;
  direction: MigrationDirection;
  /** The target (out: multiaddr or peer id being tried) or the source peer id (in). */
  peer: string | null;
  state: MigrationState;
  checkpointHash: string | null;
  epoch: Epoch | null;
  attempts: number;
  fallbacks: number;
  bytes: number;
  error: { code: string; message: string } | null;
  /** Unix ms of each state reached (absent = not reached). */
  at: Partial<Record<MigrationState, number>>;
  updatedAt: number;
}

export interface MigrationUpdate {
  state?: MigrationState;
  peer?: string;
  attempts?: number;
  fallbacks?: number;
  bytes?: number;
  checkpointHash?: string;
  epoch?: Epoch;
  error?: { code: string; message: string } | null;
}

/** An agent arriving by migration, already checked; stored in one transaction with its new lease. */
export interface IncomingAgent {
  agent: NewAgent;
  /** Checkpoints to append (the whole history for a new agent, the part after the stored head otherwise). */
  history: readonly CheckpointCommit[];
  overrides: readonly LineageEvent[];
  segments: readonly StoredSegment[];
  receipts: readonly ReceiptRow[];
  /** Earlier modules its stored history ran (a code upgrade), kept by hash for audits. */
  modules?: readonly { hash: string; bytes: Uint8Array }[];
  /** The agent-signed base a pruned history starts at (a first hop from a node with retention). */
  historyBase?: HistoryBase;
  /** The lease the agent had on this node (RETIRED) when it comes back; undefined when new here. */
  previous?: LeaseBelief;
  /**
   * The history arrives from its owner's signed base, past the head this node retired (the owner's
   * --history-retention pruned that head): the retired copy's checkpoints, event logs, runs, base and
   * lineage events are replaced by it. Receipts and payments recorded here stay.
   */
  replacesHistory?: boolean;
  lease: Lease;
  migration: { peer: string; checkpointHash: string; sourceEpoch: Epoch; bytes: number };
}

export interface NewAgent {
  /** The agent's lease on this node; default ACTIVE_OWNER at (0,0) with no expiry. */
  lease?: Lease;
  agentId: string;
  did: string;
  wasmHash: string;
  wasmBytes: Uint8Array;
  manifest: string;
  identity: Ed25519Key;
}

/** Problems PRAGMA quick_check lists at most before the message stops naming them. */
export const QUICK_CHECK_MAX_ERRORS = 10;

/** How an agent's event-log segments are kept: by ticks (and bytes, if `maxBytes`), or by bytes. */
export type EventLogKeep = { ticks: bigint; maxBytes?: number } | { bytes: number };
