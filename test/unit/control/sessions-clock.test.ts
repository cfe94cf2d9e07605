// A dashboard login link works for LOGIN_CODE_TTL_MS after it was printed, and a session for
// SESSION_TTL_MS: whatever the wall clock does meanwhile. Stepped back (NTP correcting a fast clock, a
// VM restored from a snapshot), it kept a leaked link working for the size of the step; stepped
// forward, it ended every session at once.
import { afterEach, describe, expect, it, vi } from "vitest";
import { DashboardSessions, LOGIN_CODE_TTL_MS, SESSION_TTL_MS } from "../../../src/control/sessions.js";

afterEach(() => {
  vi.restoreAllMocks();
});

/** Time as both clocks see it: the monotonic one moves only with `advance`; the wall clock also by `step`. */
function clocks(): { advance(ms: number): void; step(ms: number): void } {
  let mono = performance.now();
  let wall = Date.now();
  vi.spyOn(performance, "now").mockImplementation(() => mono);
  vi.spyOn(Date, "now").mockImplementation(() => wall);
  return {
    advance(ms) {
      mono += ms;
      wall += ms;
    },
    step(ms) {
      wall += ms;
    },
  };
}

describe("dashboard login codes and sessions keep their lifetimes when the wall clock steps", () => {
  it("a login code printed before the wall clock went back an hour no longer works LOGIN_CODE_TTL_MS after it was printed", () => {
    const c = clocks();
    const sessions = new DashboardSessions();
    const code = sessions.issueCode();
    c.step(-3_600_000);
    c.advance(LOGIN_CODE_TTL_MS + 1);
    expect(sessions.redeem(code)).toBeNull();
  });

  it("a session goes on working when the wall clock jumps a day forward, and ends SESSION_TTL_MS after it began", () => {
    const c = clocks();
    const sessions = new DashboardSessions();
    const session = sessions.redeem(sessions.issueCode());
    expect(session).not.toBeNull();
    c.step(24 * 3_600_000);
    expect(sessions.valid(session as string)).toBe(true);
    c.advance(SESSION_TTL_MS + 1);
    expect(sessions.valid(session as string)).toBe(false);
  });
});
