import { describe, expect, it } from "vitest";
import { decodeSegment, decodeTickLog, encodeSegment, encodeSegmentWithBody, encodeTickLog } from "../../../src/eventlog/tick-log.js";
import { encodeSegmentBody } from "../../../src/replay/audit-plan.js";

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

  it("a segment encoded with its body is the same segment: its logs, its post hashes (zeros for a log without one), and the body its seal hashes", () => {
    const postHash = new Uint8Array(32).fill(9);
    const logs = [{ ...log, postHash }, { tick: 7n, entries: [] }, { ...log, tick: 8n, postHash: new Uint8Array(31) }];
    const head = { fromTick: 5n, toTick: 9n, abiVersion: 3, engineVersion: 2 };
    const s = encodeSegmentWithBody(logs, head);
    expect(Buffer.from(s.blob).equals(Buffer.from(encodeSegment(logs)))).toBe(true);
    expect(Buffer.from(s.postHashes).equals(Buffer.concat([postHash, new Uint8Array(64)]))).toBe(true);
    expect(Buffer.from(s.body).equals(Buffer.from(encodeSegmentBody({ ...head, blob: s.blob, postHashes: s.postHashes })))).toBe(true);
    expect(decodeSegment(s.blob).map((l) => l.tick)).toEqual([logs[0]!.tick, 7n, 8n]);
    const none = encodeSegmentWithBody([], head);
    expect([none.blob.byteLength, none.postHashes.byteLength, none.body.byteLength]).toEqual([0, 0, 28]);
  });

  it("a segment encoded into arrays carved from a shared buffer (each at an offset, the buffer's other bytes not zero) is byte for byte the one encoded alone, and decodes the same", () => {
    const postHash = new Uint8Array(32).fill(9);
    const logs = [{ ...log, postHash }, { tick: 7n, entries: [] }, { ...log, tick: 8n, postHash }];
    const head = { fromTick: 5n, toTick: 9n, abiVersion: 3, engineVersion: 2 };
    const shared = new Uint8Array(4096).fill(0xee);
    let at = 24;
    const carve = (n: number): Uint8Array => {
      const out = shared.subarray(at, at + n);
      at += n + 40;
      return out;
    };
    const alone = encodeSegmentWithBody(logs, head);
    const carved = encodeSegmentWithBody(logs, head, carve);
    expect(carved.body.buffer).toBe(shared.buffer);
    expect(carved.body.byteOffset).toBe(24);
    expect(Buffer.from(carved.body).equals(Buffer.from(alone.body))).toBe(true);
    expect(Buffer.from(carved.postHashes).equals(Buffer.from(alone.postHashes))).toBe(true);
    expect(decodeSegment(carved.blob)).toEqual(decodeSegment(alone.blob));
    // Nothing outside the array was written.
    expect(shared[23]).toBe(0xee);
    expect(shared[24 + alone.body.byteLength]).toBe(0xee);
  });
});
