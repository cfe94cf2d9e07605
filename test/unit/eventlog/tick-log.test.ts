import { describe, expect, it } from "vitest";
import { decodeSegment, decodeTickLog, encodeSegment, encodeTickLog } from "../../../src/eventlog/tick-log.js";

describe("tick log encoding", () => {
  const log = {
    tick: 2n ** 60n + 5n,
    entries: [
      { id: 1, result: 0, payload: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) },
      { id: 2, result: -4, payload: new Uint8Array(0) },
      { id: 3, result: 0, payload: new TextEncoder().encode("hello") },
    ],
  };

  it("round-trips ids, result codes and payloads", () => {
    expect(decodeTickLog(encodeTickLog(log))).toEqual(log);
  });

  it("refuses truncated and padded logs", () => {
    const bytes = encodeTickLog(log);
    expect(() => decodeTickLog(bytes.subarray(0, 8))).toThrow(/shorter than its 12-byte header/);
    expect(() => decodeTickLog(bytes.subarray(0, bytes.length - 1))).toThrow(/truncated in entry 2 payload/);
    const padded = new Uint8Array(bytes.length + 1);
    padded.set(bytes);
    expect(() => decodeTickLog(padded)).toThrow(/trailing bytes/);
  });

  it("a segment is its logs' encodings back to back (the bytes its signature covers), and decodes to them", () => {
    const logs = [log, { tick: 7n, entries: [] }, { ...log, tick: 8n }];
    const segment = encodeSegment(logs);
    expect(Buffer.from(segment).equals(Buffer.concat(logs.map(encodeTickLog)))).toBe(true);
    expect(decodeSegment(segment)).toEqual(logs);
    expect(encodeSegment([]).byteLength).toBe(0);
  });
});
