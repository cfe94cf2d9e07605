// An audit holds V8's JS optimisation back only for a history too short to repay TurboFan's
// background compilation (cli/audit.ts); a longer one runs with V8's defaults.
import { describe, expect, it } from "vitest";
import { AUDIT_SHORT_HISTORY_TICKS, auditV8Flags } from "../../../src/cli/audit.js";

describe("audit replay's V8 flags", () => {
  it("a history under the short-history bound raises the interrupt budget; one at or over it sets nothing", () => {
    expect(AUDIT_SHORT_HISTORY_TICKS).toBe(10_000);
    expect(auditV8Flags(1)).toEqual(["--interrupt-budget=540672"]);
    expect(auditV8Flags(AUDIT_SHORT_HISTORY_TICKS - 1)).toEqual(["--interrupt-budget=540672"]);
    expect(auditV8Flags(AUDIT_SHORT_HISTORY_TICKS)).toEqual([]);
    expect(auditV8Flags(100_000)).toEqual([]);
  });
});
