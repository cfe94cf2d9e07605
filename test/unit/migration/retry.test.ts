import { describe, expect, it } from "vitest";
import { askAgainDelay, backoffDelay, classifyFailure, MIN_ASK_AGAIN_DELAY_MS } from "../../../src/migration/retry.js";

describe("migration retry policy", () => {
  // Acceptance 24: the retry delay doubles with each attempt (what the retries of an unreachable target wait).
  it("backs off exponentially from the initial delay, capped at the maximum", () => {
    const p = { attempts: 5, initialDelayMs: 1000, maxDelayMs: 30_000, factor: 2 };
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(p, n))).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  it("a loop that asks a peer until it answers waits at least MIN_ASK_AGAIN_DELAY_MS a round, whatever the delays, and no round's wait is NaN", () => {
    const zero = { attempts: 3, initialDelayMs: 0, maxDelayMs: 0, factor: 2 };
    expect([1, 2, 1025, 5000].map((n) => askAgainDelay(zero, n))).toEqual([MIN_ASK_AGAIN_DELAY_MS, MIN_ASK_AGAIN_DELAY_MS, MIN_ASK_AGAIN_DELAY_MS, MIN_ASK_AGAIN_DELAY_MS]);
    // 0 × 2^1024 was NaN (a timer of NaN fires at once); the cap is reached long before.
    expect(backoffDelay({ ...zero, maxDelayMs: 30_000 }, 5000)).toBe(0);
    const p = { attempts: 3, initialDelayMs: 1000, maxDelayMs: 30_000, factor: 2 };
    expect([1, 2, 6, 5000].map((n) => askAgainDelay(p, n))).toEqual([1000, 2000, 30_000, 30_000]);
  });

  it("classifies by code and by whether the package went out, never by message", () => {
    expect(classifyFailure("MIGRATION_DIAL_FAILED", false, false)).toBe("retriable");
    expect(classifyFailure("MIGRATION_TIMEOUT", false, false)).toBe("retriable");
    expect(classifyFailure("MIGRATION_STREAM_CLOSED", true, false)).toBe("ambiguous");
    expect(classifyFailure("MIGRATION_TIMEOUT", true, false)).toBe("ambiguous");
    expect(classifyFailure("CAPABILITY_NOT_OFFERED", false, true)).toBe("fatal");
    expect(classifyFailure("REPLAY_STATE_MISMATCH", true, true)).toBe("fatal");
    expect(classifyFailure("MIGRATION_NODE_FULL", false, true)).toBe("fatal");
    expect(classifyFailure("MIGRATION_BUSY", false, true)).toBe("retriable");
    // A local error that is not about the connection (e.g. the package is too large) is not retried.
    expect(classifyFailure("MIGRATION_PACKAGE_TOO_LARGE", false, false)).toBe("fatal");
  });
});
