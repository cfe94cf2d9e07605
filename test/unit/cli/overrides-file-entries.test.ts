// overrides.json (an export's or history folder's lineage events): a kind that is not the one its
// signed reason records is named as the entry's problem (checkpoint/lineage-kind.ts); a tick or budget past a signed
// 64-bit integer cannot be what the agent signed (its signed bytes hold each as one) nor stored
// (SQLite's INTEGER); igord import failed on SQLite's "too big" with no code. Named as the entry's
// problem instead, which verify reports INVALID and import refuses before anything is stored.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OVERRIDES_FILE, readOverridesFile } from "../../../src/cli/history-files.js";
import { MAX_EVENT_INTEGER } from "../../../src/checkpoint/overrides.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function withEvent(newBudget: string, fields: { kind?: string; reason?: string } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "igord-overrides-"));
  dirs.push(dir);
  const event = { afterHash: "ab".repeat(32), tick: "3", oldBudget: "1000", newBudget, reason: "top-up", signature: "cd".repeat(64), ...fields };
  writeFileSync(join(dir, OVERRIDES_FILE), JSON.stringify([event]));
  return dir;
}

describe("overrides.json amounts", () => {
  it("takes a budget of exactly 2^63 - 1 µ¢ and names one of 2^63 as the entry's problem", () => {
    expect(readOverridesFile(withEvent(MAX_EVENT_INTEGER.toString()))).toMatchObject({ problems: [], events: [{ newBudget: MAX_EVENT_INTEGER }] });
    const past = readOverridesFile(withEvent((MAX_EVENT_INTEGER + 1n).toString()));
    expect(past.events).toEqual([]);
    expect(past.problems).toEqual([`${OVERRIDES_FILE}: entry 0: newBudget must be a decimal string of a count up to ${MAX_EVENT_INTEGER}`]);
  });
});

describe("overrides.json kinds", () => {
  // The kind is not signed, the reason is: a lost payment relabelled a top-up after it was signed
  // would no longer tell the imported agent that its run paid and was lost, and it could pay again.
  it("names an event whose kind is not the one its signed reason records as the entry's problem", () => {
    const lost = `lost payment at tick 3: 10 µ¢ to "pay-to", receipt ${"cd".repeat(40)}`;
    expect(readOverridesFile(withEvent("990", { kind: "lost_payment", reason: lost })).problems).toEqual([]);
    expect(readOverridesFile(withEvent("990", { reason: lost })).problems).toEqual([`${OVERRIDES_FILE}: entry 0: a lineage event of kind budget_override whose signed reason records a lost payment`]);
    expect(readOverridesFile(withEvent("990", { kind: "lost_payment" })).problems).toEqual([`${OVERRIDES_FILE}: entry 0: a lost_payment lineage event whose signed reason records no lost payment`]);
  });
});
