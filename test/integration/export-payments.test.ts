// A payment journalled for a tick that never committed (the node died between wallet_pay and the
// tick's checkpoint) is money spent. The node that holds the journal debits it at its next start;
// an export taken from that data dir meanwhile must carry it too, or the imported copy re-runs the
// tick with the money still in its budget and no receipt to find: it pays again.
// Real node, real SQLite files, the real igord binary for export and import.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseLostPayment } from "../../src/budget/lost-payment.js";
import { parseCheckpoint } from "../../src/checkpoint/codec.js";
import { sha256 } from "../../src/hash/bytes.js";
import { paymentSigningBytes } from "../../src/hostcalls/wallet-pay.js";
import { signBytes } from "../../src/identity/keys.js";
import { nodeReceipts, paidAfterHead } from "../../src/node/lost-payments.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, startTestNode, stopAllNodes } from "../helpers/node.js";
import { igord, killAll } from "../helpers/process.js";

afterEach(async () => {
  await stopAllNodes();
  await killAll();
});

describe("an export of an agent with a payment its ticks never committed", () => {
  it("carries the payment as a signed lost_payment event: the imported copy resumes debited, interrupted, with the receipt listed first", async () => {
    const t = await startTestNode({ "tick-interval": "20ms", "checkpoint-interval": "40ms" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 3n);
    await t.stop();
    // What a crash right after wallet_pay leaves: the journal row of a tick past the stored head.
    const db = join(t.config.dataDir, DB_FILE);
    const store = SqliteStore.open(db);
    const head = store.head("heartbeat")!;
    const budget = parseCheckpoint(head.blob).budget;
    const identity = store.identity("heartbeat");
    const signing = paymentSigningBytes(1234n, 1n, new TextEncoder().encode("provider"), new TextEncoder().encode("data"), identity.publicKey);
    const receipt = new Uint8Array([...signing, ...signBytes(identity, signing)]);
    await store.journalPayment({ agentId: "heartbeat", tick: head.tick + 1n, receiptHash: sha256(receipt), amount: 1234n, recipient: "provider", memo: "data", receipt });
    store.close();

    const ex = join(t.dir, "ex");
    expect(igord(["export", "heartbeat", "--out", ex, "--data-dir", t.config.dataDir]).status).toBe(0);
    // The export verifies, the lost payment counted with the history's payments.
    const verified = igord(["verify", join(ex, "history", "heartbeat")]);
    expect(verified.stdout).toMatch(/^VALID$/m);
    expect(verified.status).toBe(0);
    const C = join(t.dir, "C");
    const imp = igord(["import", ex, "--data-dir", C]);
    expect(imp.stderr).toBe("");
    expect(imp.status).toBe(0);

    const copy = SqliteStore.open(join(C, DB_FILE), { readonly: true });
    try {
      const lost = copy.lineageEvents("heartbeat").map(parseLostPayment).filter((p) => p !== null);
      expect(lost.map((p) => [p.tick, p.payment.amount, p.signed])).toEqual([[head.tick + 1n, 1234n, true]]);
      // The budget the copy resumes with (the last event after its head): the payment left it.
      const after = copy.lineageEvents("heartbeat").filter((e) => Buffer.from(e.afterHash).equals(Buffer.from(head.hash)));
      expect(after.at(-1)?.newBudget).toBe(budget - 1234n);
      // It resumes told its run was interrupted after paying (resume_interrupted).
      expect(paidAfterHead(copy.lineageEvents("heartbeat"), head.hash)).toBe(true);
      // wallet_receipt lists it first, for the agent reconciling its payment.
      expect(Buffer.from(nodeReceipts(copy, "heartbeat").at(0)!)).toEqual(Buffer.from(receipt));
    } finally {
      copy.close();
    }
  });
});
