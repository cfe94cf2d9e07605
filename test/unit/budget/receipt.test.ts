// The node signs no receipt whose cost is negative: ticks only cost, so one would be an accounting
// error of the node's (a lost payment counted twice), put under its key.
import { describe, expect, it } from "vitest";
import { receiptFields } from "../../../src/budget/receipt.js";
import { ErrorCode, isIgordError } from "../../../src/errors.js";

const fields = { agentId: "payer", nodeId: "12D3KooWnode", tickStart: 3n, tickEnd: 5n, budgetAfter: 999_000n, timestampNs: 1n };

describe("receipt fields", () => {
  it("a cost of 0 or more is signed as given", () => {
    expect(receiptFields({ ...fields, cost: 0n })).toEqual({ ...fields, cost: 0n });
    expect(receiptFields({ ...fields, cost: 1_000n }).cost).toBe(1_000n);
  });

  it("a negative cost is refused RECEIPT_INVALID, naming the agent and its ticks", () => {
    let caught: unknown;
    try {
      receiptFields({ ...fields, cost: -1_000n });
    } catch (e) {
      caught = e;
    }
    expect(isIgordError(caught, ErrorCode.ReceiptInvalid)).toBe(true);
    expect((caught as Error).message).toMatch(/"payer" for ticks 3\.\.5 with a negative cost \(-1000/);
  });
});
