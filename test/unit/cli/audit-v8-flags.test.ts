// An audit holds V8's JS optimisation back only for a history too short to repay TurboFan's
// background compilation (cli/audit.ts); a longer one runs with V8's defaults.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { AUDIT_SHORT_HISTORY_TICKS, AUDIT_SHORT_HISTORY_V8_FLAGS, auditV8Flags } from "../../../src/cli/audit.js";

describe("audit replay's V8 flags", () => {
  it("a history under the short-history bound holds TurboFan back; one at or over it sets nothing", () => {
    expect(AUDIT_SHORT_HISTORY_TICKS).toBe(10_000);
    expect(AUDIT_SHORT_HISTORY_V8_FLAGS).toHaveLength(1);
    expect(auditV8Flags(1)).toEqual(AUDIT_SHORT_HISTORY_V8_FLAGS);
    expect(auditV8Flags(AUDIT_SHORT_HISTORY_TICKS - 1)).toEqual(AUDIT_SHORT_HISTORY_V8_FLAGS);
    expect(auditV8Flags(AUDIT_SHORT_HISTORY_TICKS)).toEqual([]);
    expect(auditV8Flags(100_000)).toEqual([]);
  });

  it("names a flag the running V8 has: --interrupt-budget on V8 11 (Node 20), --invocation-count-for-turbofan from V8 12 (Node 22, 24), which print 'unrecognized flag' to an audit's stderr for the other", () => {
    const options = spawnSync(process.execPath, ["--v8-options"], { encoding: "utf8" }).stdout;
    for (const flag of AUDIT_SHORT_HISTORY_V8_FLAGS) {
      const name = flag.slice(0, flag.indexOf("="));
      expect(options).toMatch(new RegExp(`\\n\\s+${name} \\(`));
    }
  });
});
