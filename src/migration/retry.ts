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

/** Wait after failed attempt n (1-based): initial × factor^(n-1), capped. */
export function backoffDelay(p: RetryPolicy, attempt: number): number {
  return Math.min(p.maxDelayMs, Math.round(p.initialDelayMs * p.factor ** Math.max(0, attempt - 1)));
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
