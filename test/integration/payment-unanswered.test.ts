// A payment whose signature the tick stopped waiting for: the worker waits for the main thread's
// signature at most HOST_IO_LOCAL_WAIT_MS (or what is left of the tick), then the guest's
// wallet_pay returns -6, "nothing debited" (docs/AGENT_ABI.md). The main thread, slower (a slow
// fsync of the journal, a busy event loop), must then not leave that receipt journalled: no guest
// ever held it, so no money can leave with it, and a journal row would be debited as a lost payment
// at the next start — an agent told its payment failed, charged anyway, and paying twice on retry.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { HOST_IO_LOCAL_WAIT_MS } from "../../src/wasm/host-io.js";
import type { CheckpointEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { payAgent } from "../helpers/http-agent.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";
import { writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

const FLAGS = { "tick-interval": "200ms", "tick-timeout": "20s", "checkpoint-interval": "50ms", "receipt-interval": "0", "verify-interval": "0" };
const X402 = { capabilities: { x402: { version: 1, options: {} }, wallet: { version: 1 } } };

describe("a payment whose signature came after the tick stopped waiting", () => {
  it("returns -6 and debits nothing, then or at the next start: its journal row is dropped when the worker is found gone", async () => {
    const t = await startTestNode(FLAGS);
    // The journal's durable write outlasts the worker's wait, as a slow disk's fsync would.
    const store = t.node.store;
    const journal = store.journalPayment.bind(store);
    const journalled: Promise<void>[] = [];
    store.journalPayment = (p) => {
      const slow = journal(p).then(() => new Promise<void>((r) => setTimeout(r, HOST_IO_LOCAL_WAIT_MS + 500)));
      journalled.push(slow);
      return slow;
    };
    const path = await writeWat(join(t.dir, "wasm"), "payer", payAgent([{ amount: 1000n, recipient: "p", memo: "m" }], { upToTick: 1 }), X402);
    await t.node.addAgent({ wasmPath: path });
    const tick1 = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "payer" && e.tick === 1n, 20_000);
    expect(tick1.events.find((e) => e.id === HostcallId.wallet_pay)?.result).toBe(-6);
    expect(tick1.paid).toBe(0n);
    await t.waitFor<CheckpointEvent>("checkpoint", (c) => c.agentId === "payer" && c.tick >= 2n && c.outcome === "written", 20_000);
    // The main thread's answer, late: the journal write returns, and the answer finds the worker gone.
    expect(journalled).toHaveLength(1);
    await journalled[0];
    await waitUntil(() => t.node.store.unsettledPayments("payer").length === 0, { timeoutMs: 5_000 });
    const budget = t.node.scheduler.view("payer")?.budget;
    await t.stop();

    const again = await startTestNode(FLAGS, { dir: t.dir, resumeStored: true });
    await again.waitFor<TickEvent>("tick", (e) => e.agentId === "payer");
    expect(again.logs.events("lost_payment_debited", "payer")).toEqual([]);
    expect(again.node.scheduler.view("payer")?.budget).toBe(budget);
  }, 60_000);
});
