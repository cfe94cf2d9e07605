import { describe, expect, it } from "vitest";
import { isIgordError } from "../../../src/errors.js";
import { decodePackage, encodePackage, type MigrationPackage } from "../../../src/migration/package.js";
import { LINEAGE_KINDS, type LineageKind } from "../../../src/store/types.js";

const pkg: MigrationPackage = {
  agentId: "a1",
  did: "did:key:z6Mk",
  manifest: '{"capabilities":{}}',
  wasmHash: "ab".repeat(32),
  wasm: new Uint8Array([0, 97, 115, 109]),
  identity: new Uint8Array(68).fill(7),
  epoch: { major: 2n ** 60n, generation: 3n },
  checkpointHash: "cd".repeat(32),
  baseHash: null,
  history: [new Uint8Array([1, 2, 3]), new Uint8Array([4])],
  overrides: [{ kind: "budget_override", afterHash: new Uint8Array(32).fill(1), tick: 5n, oldBudget: 10n, newBudget: 2n ** 62n, reason: "top-up", signature: new Uint8Array(64).fill(9) }],
  receipts: [new Uint8Array([5, 5])],
  segments: [{ fromTick: 1n, toTick: 2n, abiVersion: 1, engineVersion: 1, blob: new Uint8Array([8]), postHashes: new Uint8Array(32), checkpointHash: new Uint8Array(32).fill(4) }],
  historyBase: { originHash: new Uint8Array(32).fill(2), baseHash: new Uint8Array(32).fill(3), baseTick: 2n ** 55n, pruned: 7n, signature: new Uint8Array(64).fill(6) },
};

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isIgordError(e) ? e.code : "untyped";
  }
  return undefined;
}

describe("migration package codec", () => {
  it("round-trips every section, bigints past 2^53 included", () => {
    const back = decodePackage(encodePackage(pkg));
    expect(back).toEqual(pkg);
    expect(back.epoch.major).toBe(2n ** 60n);
    expect(back.overrides[0]?.newBudget).toBe(2n ** 62n);
    expect(back.historyBase?.baseTick).toBe(2n ** 55n);
    expect(decodePackage(encodePackage({ ...pkg, historyBase: null })).historyBase).toBeNull();
    expect(back.segments[0]?.checkpointHash).toEqual(new Uint8Array(32).fill(4));
    expect(decodePackage(encodePackage({ ...pkg, wasm: null })).wasm).toBeNull();
  });

  it("carries the earlier modules of a window that spans a code upgrade, and code_upgrade lineage events", () => {
    const upgraded: MigrationPackage = {
      ...pkg,
      overrides: [...pkg.overrides, { kind: "code_upgrade", afterHash: new Uint8Array(32).fill(2), tick: 7n, oldBudget: 3n, newBudget: 3n, reason: `code upgrade ${"ee".repeat(32)} -> ${"ab".repeat(32)}`, signature: new Uint8Array(64).fill(1) }],
      modules: [{ hash: "ee".repeat(32), bytes: new Uint8Array([0, 97, 115, 109, 1]) }],
    };
    expect(decodePackage(encodePackage(upgraded))).toEqual(upgraded);
    // Without modules the header has no module section at all (what earlier nodes read).
    expect(decodePackage(encodePackage({ ...pkg, modules: [] })).modules).toBeUndefined();
    const bytes = encodePackage(upgraded);
    expect(code(() => decodePackage(bytes.subarray(0, bytes.byteLength - 1)))).toBe("MIGRATION_FRAME_INVALID");
  });

  it("round-trips a lineage event of every kind the store can hold (import included)", () => {
    expect(LINEAGE_KINDS).toContain("import");
    for (const kind of LINEAGE_KINDS) {
      const withKind: MigrationPackage = { ...pkg, overrides: [{ ...(pkg.overrides[0] as MigrationPackage["overrides"][number]), kind, reason: REASON_OF[kind] }] };
      expect(decodePackage(encodePackage(withKind)).overrides, kind).toEqual(withKind.overrides);
    }
    // A kind this node does not know (same length, so only the kind is wrong) is a format error.
    const foreign = Buffer.from(encodePackage(pkg));
    foreign.write('"kind":"budget_overridf"', foreign.indexOf('"kind":"budget_override"'));
    expect(() => decodePackage(foreign)).toThrow(/lineage event kind "budget_overridf"/);
    expect(code(() => decodePackage(foreign))).toBe("MIGRATION_FRAME_INVALID");
  });

/** A reason of the form each kind records (the lost payment's and the upgrade's are reserved to them). */
const REASON_OF: Record<LineageKind, string> = {
  budget_override: "igord resume --budget",
  recovery: "recovered at a new major epoch",
  import: "imported",
  code_upgrade: `code upgrade ${"ee".repeat(32)} -> ${"ab".repeat(32)}`,
  lost_payment: `lost payment at tick 4: 10 µ¢ to "pay-to", receipt ${"cd".repeat(40)}`,
};

  it("carries interrupted only when true (absent: an older peer's package, or a clean end); anything but a boolean is a format error", () => {
    expect(decodePackage(encodePackage({ ...pkg, interrupted: true })).interrupted).toBe(true);
    expect(decodePackage(encodePackage(pkg)).interrupted).toBeUndefined();
    expect(decodePackage(encodePackage({ ...pkg, interrupted: false })).interrupted).toBeUndefined();
    const bytes = Buffer.from(encodePackage({ ...pkg, interrupted: true }));
    bytes.write('"interrupted":"tr"', bytes.indexOf('"interrupted":true'));
    expect(() => decodePackage(bytes)).toThrow(/interrupted must be a boolean/);
    expect(code(() => decodePackage(bytes))).toBe("MIGRATION_FRAME_INVALID");
  });

  it("refuses a lineage event whose kind is not the one its signed reason records: the kind is not signed, the reason is", () => {
    const event = (kind: LineageKind, reason: string): MigrationPackage => ({ ...pkg, overrides: [{ ...(pkg.overrides[0] as MigrationPackage["overrides"][number]), kind, reason }] });
    // A lost payment relabelled a top-up: the node would no longer tell the agent its run paid and
    // was lost (resume_interrupted) nor list that receipt to it, and it could pay again.
    for (const [kind, reason] of [
      ["budget_override", REASON_OF.lost_payment],
      ["recovery", REASON_OF.lost_payment],
      ["lost_payment", REASON_OF.budget_override],
      ["budget_override", REASON_OF.code_upgrade],
      ["code_upgrade", REASON_OF.import],
    ] as const) {
      expect(code(() => decodePackage(encodePackage(event(kind, reason)))), `${kind} with the reason "${reason.slice(0, 20)}…"`).toBe("MIGRATION_FRAME_INVALID");
    }
  });

  it("refuses truncated, padded, foreign and inconsistent packages with a format error", () => {
    const bytes = encodePackage(pkg);
    expect(code(() => decodePackage(bytes.subarray(0, bytes.byteLength - 1)))).toBe("MIGRATION_FRAME_INVALID");
    expect(code(() => decodePackage(Buffer.concat([bytes, new Uint8Array(1)])))).toBe("MIGRATION_FRAME_INVALID");
    expect(code(() => decodePackage(new Uint8Array(4)))).toBe("MIGRATION_FRAME_INVALID");
    const wrongMagic = new Uint8Array(bytes);
    wrongMagic[0] = 0;
    expect(code(() => decodePackage(wrongMagic))).toBe("MIGRATION_FRAME_INVALID");
    const wrongVersion = new Uint8Array(bytes);
    wrongVersion[4] = 9;
    expect(code(() => decodePackage(wrongVersion))).toBe("MIGRATION_FRAME_INVALID");
    expect(code(() => decodePackage(encodePackage({ ...pkg, history: [] })))).toBe("MIGRATION_FRAME_INVALID");
    // No history is fine only when the agent returns to the node holding its head.
    expect(decodePackage(encodePackage({ ...pkg, history: [], baseHash: pkg.checkpointHash })).history).toEqual([]);
    // A signed history base must have its 32-byte hashes and 64-byte signature.
    const base = pkg.historyBase!;
    expect(code(() => decodePackage(encodePackage({ ...pkg, historyBase: { ...base, signature: new Uint8Array(10) } })))).toBe("MIGRATION_FRAME_INVALID");
    expect(code(() => decodePackage(encodePackage({ ...pkg, historyBase: { ...base, baseHash: new Uint8Array(31) } })))).toBe("MIGRATION_FRAME_INVALID");
  });

  it("refuses a header whose lineage events are not objects with a format error, not an untyped one the target answers MIGRATION_BUSY (retried)", () => {
    const bytes = encodePackage(pkg);
    const headerLen = new DataView(bytes.buffer, bytes.byteOffset + 5, 4).getUint32(0, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(9, 9 + headerLen))) as Record<string, unknown>;
    for (const bad of [null, 5, "x", []]) {
      const text = new TextEncoder().encode(JSON.stringify({ ...header, overrides: [bad] }));
      const out = new Uint8Array(9 + text.byteLength + bytes.byteLength - 9 - headerLen);
      out.set(bytes.subarray(0, 5));
      new DataView(out.buffer).setUint32(5, text.byteLength, true);
      out.set(text, 9);
      out.set(bytes.subarray(9 + headerLen), 9 + text.byteLength);
      expect(code(() => decodePackage(out))).toBe("MIGRATION_FRAME_INVALID");
    }
  });

  it("round-trips a history of 200,000 checkpoints (a long-lived agent without retention; sections are not passed as call arguments)", () => {
    const cp = new Uint8Array(209);
    cp[0] = 4;
    const history = Array.from({ length: 200_000 }, () => cp);
    const back = decodePackage(encodePackage({ ...pkg, history }));
    expect(back.history).toHaveLength(200_000);
    expect(back.history[199_999]).toEqual(cp);
    expect(back.receipts).toEqual(pkg.receipts);
  });

  it("carries the wall time of the head's tick when known; a package without one (an older peer's) decodes as unknown; anything but a Unix time in ms is refused", () => {
    expect(decodePackage(encodePackage({ ...pkg, lastTickAt: 1_764_000_000_123 })).lastTickAt).toBe(1_764_000_000_123);
    expect("lastTickAt" in decodePackage(encodePackage(pkg))).toBe(false);
    for (const bad of [-1, 1.5, "1764000000123", 2 ** 60]) {
      expect(code(() => decodePackage(encodePackage({ ...pkg, lastTickAt: bad as number })))).toBe("MIGRATION_FRAME_INVALID");
    }
  });

  it("refuses an epoch part at or above 2^63 (a node stores epochs as signed 64-bit integers)", () => {
    expect(decodePackage(encodePackage({ ...pkg, epoch: { major: 2n ** 63n - 1n, generation: 2n ** 63n - 1n } })).epoch.major).toBe(2n ** 63n - 1n);
    expect(code(() => decodePackage(encodePackage({ ...pkg, epoch: { major: 2n ** 63n, generation: 0n } })))).toBe("MIGRATION_FRAME_INVALID");
    expect(code(() => decodePackage(encodePackage({ ...pkg, epoch: { major: 0n, generation: 2n ** 64n - 1n } })))).toBe("MIGRATION_FRAME_INVALID");
  });
});
