// The lease state machine (pure; igor §6 and §12.2, made strict). An agent's authority on a node is
// a state and an epoch (major, generation), ordered major first. Only ACTIVE_OWNER may tick, write
// a checkpoint, start a handoff or run a side-effect hostcall. Every transition not listed here is
// refused with LEASE_TRANSITION; nothing ever moves backwards except through recovery (major + 1).
import { ErrorCode, IgordError } from "../errors.js";

export type LeaseState = "ACTIVE_OWNER" | "HANDOFF_INITIATED" | "HANDOFF_PENDING" | "RETIRED" | "RECOVERY_REQUIRED";
export const LEASE_STATES: readonly LeaseState[] = ["ACTIVE_OWNER", "HANDOFF_INITIATED", "HANDOFF_PENDING", "RETIRED", "RECOVERY_REQUIRED"];

export interface Epoch {
  major: bigint;
  generation: bigint;
}

export function compareEpochs(a: Epoch, b: Epoch): -1 | 0 | 1 {
  if (a.major !== b.major) return a.major < b.major ? -1 : 1;
  if (a.generation !== b.generation) return a.generation < b.generation ? -1 : 1;
  return 0;
}

export const formatEpoch = (e: Epoch): string => `(${e.major},${e.generation})`;

/**
 * Largest epoch part a node holds: epochs are stored as SQLite INTEGER (signed 64-bit), so a value
 * at or above 2^63 can never be held.
 */
export const MAX_EPOCH_PART = 2n ** 63n - 1n;

/** The major epoch after `major`; LEASE_TRANSITION when there is none a node can store. */
export function nextMajor(major: bigint): bigint {
  if (major >= MAX_EPOCH_PART) {
    throw new IgordError(ErrorCode.LeaseTransition, `there is no major epoch after ${major} (epochs are stored as signed 64-bit integers): the agent cannot be owned at a newer one`, {
      details: { epochMajor: String(major) },
    });
  }
  return major + 1n;
}

export interface Handoff {
  target: string;
  /** Hex SHA-256 of the checkpoint being handed off. */
  checkpointHash: string;
}

export interface Lease {
  state: LeaseState;
  epoch: Epoch;
  /** Unix ms; null when leases are disabled (--lease-duration 0). */
  expiresAtMs: number | null;
  /** The handoff in flight (HANDOFF_INITIATED) or left unresolved (RECOVERY_REQUIRED after one). */
  handoff: Handoff | null;
}

export interface LeaseTiming {
  durationMs: number;
  graceMs: number;
  /** Renew when the remaining time is at most this fraction of the duration. */
  renewalWindow: number;
}

export type RecoveryCause = "expiry" | "operator" | "target_denied";

export type LeaseEvent =
  | { type: "renew"; nowMs: number }
  | { type: "expire"; nowMs: number }
  | { type: "start_handoff"; handoff: Handoff }
  | { type: "revert_handoff" }
  | { type: "confirm_handoff" }
  | { type: "ambiguous_handoff" }
  | { type: "target_confirmed" }
  | { type: "receive"; sourceEpoch: Epoch }
  | { type: "assume"; nowMs: number }
  | { type: "abort_receive" }
  | { type: "recover"; cause: RecoveryCause; nowMs: number };

/** The lease of an agent created on this node. */
export function genesisLease(timing: LeaseTiming, nowMs: number): Lease {
  return { state: "ACTIVE_OWNER", epoch: { major: 0n, generation: 0n }, expiresAtMs: expiry(timing, nowMs), handoff: null };
}

function expiry(timing: LeaseTiming, nowMs: number): number | null {
  return timing.durationMs > 0 ? nowMs + timing.durationMs : null;
}

export function canTick(l: Lease): boolean {
  return l.state === "ACTIVE_OWNER";
}

/** Past expiry + grace: the lease fences nothing any more and must go to RECOVERY_REQUIRED. */
export function isExpired(l: Lease, timing: LeaseTiming, nowMs: number): boolean {
  return l.expiresAtMs !== null && nowMs > l.expiresAtMs + timing.graceMs;
}

export function needsRenewal(l: Lease, timing: LeaseTiming, nowMs: number): boolean {
  return l.state === "ACTIVE_OWNER" && l.expiresAtMs !== null && l.expiresAtMs - nowMs <= timing.durationMs * timing.renewalWindow;
}

/**
 * The share of the renewal window a due renewal may be put off for while the store's write lock is
 * held by another writer: past it, the renewal waits for the lock (renewalOverdue).
 */
export const RENEWAL_DEFERRABLE_SHARE = 0.5;

/** A due renewal that may no longer be put off: less than RENEWAL_DEFERRABLE_SHARE of the renewal window remains. */
export function renewalOverdue(l: Lease, timing: LeaseTiming, nowMs: number): boolean {
  return l.expiresAtMs !== null && l.expiresAtMs - nowMs <= timing.durationMs * timing.renewalWindow * (1 - RENEWAL_DEFERRABLE_SHARE);
}

function refuse(l: Lease, e: LeaseEvent, why: string): never {
  throw new IgordError(ErrorCode.LeaseTransition, `lease ${l.state} ${formatEpoch(l.epoch)} cannot ${e.type.replaceAll("_", " ")}: ${why}`, {
    details: { state: l.state, event: e.type },
  });
}

/** Applies an event; returns the new lease or throws LEASE_TRANSITION. */
export function transition(l: Lease, e: LeaseEvent, timing: LeaseTiming): Lease {
  const only = (...states: LeaseState[]): void => {
    if (!states.includes(l.state)) refuse(l, e, `allowed only from ${states.join(" or ")}`);
  };
  switch (e.type) {
    case "renew":
      only("ACTIVE_OWNER");
      if (isExpired(l, timing, e.nowMs)) refuse(l, e, "the lease is past expiry and grace");
      return { ...l, epoch: { major: l.epoch.major, generation: l.epoch.generation + 1n }, expiresAtMs: expiry(timing, e.nowMs) };
    case "expire":
      only("ACTIVE_OWNER", "HANDOFF_INITIATED");
      if (!isExpired(l, timing, e.nowMs)) refuse(l, e, "the lease has not expired");
      return { ...l, state: "RECOVERY_REQUIRED" };
    case "start_handoff":
      only("ACTIVE_OWNER");
      return { ...l, state: "HANDOFF_INITIATED", handoff: e.handoff };
    case "revert_handoff":
      // Justified only because nothing was sent (FS-1); the caller guarantees it.
      only("HANDOFF_INITIATED");
      return { ...l, state: "ACTIVE_OWNER", handoff: null };
    case "confirm_handoff":
      only("HANDOFF_INITIATED");
      return { ...l, state: "RETIRED", expiresAtMs: null };
    case "ambiguous_handoff":
      only("HANDOFF_INITIATED");
      return { ...l, state: "RECOVERY_REQUIRED" };
    case "target_confirmed":
      // The migration target answered that it owns the agent (after a lost confirmation or a restart).
      only("HANDOFF_INITIATED", "RECOVERY_REQUIRED");
      if (l.handoff === null) refuse(l, e, "no handoff is recorded");
      return { ...l, state: "RETIRED", expiresAtMs: null };
    case "receive":
      // The agent arrives (again) from another node, with a newer epoch than anything seen here.
      only("RETIRED");
      if (compareEpochs(e.sourceEpoch, l.epoch) < 0) refuse(l, e, `the incoming epoch ${formatEpoch(e.sourceEpoch)} is older than ${formatEpoch(l.epoch)}`);
      return { ...l, state: "HANDOFF_PENDING", epoch: e.sourceEpoch, handoff: null };
    case "assume":
      only("HANDOFF_PENDING");
      return { state: "ACTIVE_OWNER", epoch: { major: nextMajor(l.epoch.major), generation: 0n }, expiresAtMs: expiry(timing, e.nowMs), handoff: null };
    case "abort_receive":
      only("HANDOFF_PENDING");
      return { ...l, state: "RETIRED" };
    case "recover":
      only("RECOVERY_REQUIRED");
      // An unresolved handoff is never self-promoted: it needs the target's word or an operator.
      if (e.cause === "expiry" && l.handoff !== null) {
        refuse(l, e, `a handoff to ${l.handoff.target} is unresolved; ask the target or run igord recover`);
      }
      return { state: "ACTIVE_OWNER", epoch: { major: nextMajor(l.epoch.major), generation: 0n }, expiresAtMs: expiry(timing, e.nowMs), handoff: null };
  }
}

/**
 * The lease of an agent brought in from files (igord import, resume --checkpoint): ACTIVE_OWNER at a
 * major above the newest epoch its history reached, so its next checkpoints never go back in epoch.
 * Nothing fences the copy the files came from; the expiry is set when the agent starts.
 */
export function importedLease(seen: Epoch): Lease {
  return { state: "ACTIVE_OWNER", epoch: { major: nextMajor(seen.major), generation: 0n }, expiresAtMs: null, handoff: null };
}

/** The lease of an agent arriving on a node that never held it: pending at the source's epoch. */
export function incomingLease(sourceEpoch: Epoch): Lease {
  return { state: "HANDOFF_PENDING", epoch: sourceEpoch, expiresAtMs: null, handoff: null };
}
