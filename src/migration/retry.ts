// Retry policy of an outgoing migration (pure): exponential backoff, and the classification of a
// failed attempt by its error code and by whether the package had been sent in full.
import { ErrorCode } from "../errors.js";

export interface RetryPolicy {
  /** Attempts per target (--migration-retries). */
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
}

export const BACKOFF_FACTOR = 2;

/**
 * The shortest wait between two rounds of a loop that asks a peer until it answers: the status
 * query of an unconfirmed handoff (resolution.ts) and a pending reception's question to its source
 * (pending-reception.ts). Those loops have no attempt bound, so a delay of 0 (--migration-retry-delay
 * or --migration-max-delay 0, fine for a hop's attempts, which --migration-retries bounds) made them
 * ask a peer whose port refused connections as fast as it refused: ~125 rounds, dials and warnings
 * a second, half a core, for as long as the peer was down.
 */
export const MIN_ASK_AGAIN_DELAY_MS = 250;

/** Exponents past this give the cap anyway (2^62 ms); beyond 1,023, factor^n is Infinity and 0 × Infinity NaN. */
const MAX_BACKOFF_EXPONENT = 62;

/** Wait after failed attempt n (1-based): initial × factor^(n-1), capped. */
export function backoffDelay(p: RetryPolicy, attempt: number): number {
  const exponent = Math.min(MAX_BACKOFF_EXPONENT, Math.max(0, attempt - 1));
  return Math.min(p.maxDelayMs, Math.round(p.initialDelayMs * p.factor ** exponent));
}

/** Wait after round n (1-based) of a loop that asks a peer until it answers: the backoff, never below MIN_ASK_AGAIN_DELAY_MS. */
export function askAgainDelay(p: RetryPolicy, round: number): number {
  return Math.max(MIN_ASK_AGAIN_DELAY_MS, backoffDelay(p, round));
}

/**
 * retriable: try this target again after a backoff. fatal: the target refused (nothing stored
 * there); go to the next candidate at once. ambiguous: the package went out and no answer came
 * back; the target may own the agent now, so no other target may be tried.
 */
export type FailureClass = "retriable" | "fatal" | "ambiguous";

/** Failures of the connection itself, before the target could have accepted anything. */
const TRANSIENT = new Set<string>([
  ErrorCode.MigrationDialFailed,
  ErrorCode.MigrationTimeout,
  ErrorCode.MigrationStreamClosed,
  ErrorCode.MigrationBusy,
  ErrorCode.NodeStopping,
]);

export function classifyFailure(code: string, packageSent: boolean, refusedByTarget: boolean): FailureClass {
  if (refusedByTarget) return code === ErrorCode.MigrationBusy || code === ErrorCode.NodeStopping ? "retriable" : "fatal";
  if (packageSent) return "ambiguous";
  return TRANSIENT.has(code) ? "retriable" : "fatal";
}
