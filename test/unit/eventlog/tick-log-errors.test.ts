// Unreadable tick logs and segments are IgordErrors with a stable code, like every other refusal.
import { describe, expect, it } from "vitest";
import { ErrorCode, isIgordError } from "../../../src/errors.js";
import { decodeSegment, decodeTickLog, encodeSegment, encodeTickLog, type TickLog } from "../../../src/eventlog/tick-log.js";

function caught(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("did not throw");
}

describe("tick log format errors", () => {
  const log: TickLog = { tick: 7n, entries: [{ id: 1, result: 0, payload: new Uint8Array([1, 2, 3]) }] };

  it("a tick log cut short is EVENT_LOG_INVALID", () => {
    const bytes = encodeTickLog(log);
    const e = caught(() => decodeTickLog(bytes.subarray(0, bytes.length - 1)));
    expect(isIgordError(e, ErrorCode.EventLogInvalid)).toBe(true);
  });

  it("a segment cut short is EVENT_LOG_INVALID", () => {
    const bytes = encodeSegment([log, { ...log, tick: 8n }]);
    const e = caught(() => decodeSegment(bytes.subarray(0, bytes.length - 2)));
    expect(isIgordError(e, ErrorCode.EventLogInvalid)).toBe(true);
  });
});
