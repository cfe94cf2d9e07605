// A payment's recipient and memo are bytes: the receipt signs the bytes the agent passed, so replay and
// the allowed_recipients check compare bytes too. Decoded as UTF-8, two different invalid sequences
// (0xfe, 0xff) are the same U+FFFD, and a lone 0xff reads as an allowed name spelled "\uFFFD".
//
// The payer pays 10 µ¢ to the one-byte recipient [base + resumed] each tick: `resumed` is set by
// agent_resume, which the live instance (a fresh agent) never ran and a replay instance (resumed from
// the state before the verified tick) did. It is not in the checkpointed state, so only the recipient
// a replay passes differs from the live run's.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { PayResult } from "../../src/hostcalls/wallet-pay.js";
import type { DivergenceEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";
import { writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

function payer(base: number): string {
  return `(module
  (import "igor" "wallet_pay" (func $pay (param i64 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $ticks (mut i32) (i32.const 0))
  (global $resumed (mut i32) (i32.const 0))
  (func (export "agent_init"))
  (func (export "agent_tick") (result i32)
    (global.set $ticks (i32.add (global.get $ticks) (i32.const 1)))
    (i32.store8 (i32.const 100) (i32.add (i32.const ${base}) (global.get $resumed)))
    (drop (call $pay (i64.const 10) (i32.const 100) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 256) (i32.const 512)))
    (i32.const 0))
  (func (export "agent_checkpoint") (result i32) (i32.store (i32.const 0) (global.get $ticks)) (i32.const 4))
  (func (export "agent_checkpoint_ptr") (result i32) (i32.const 0))
  (func (export "agent_resume") (param $p i32) (param $n i32)
    (global.set $resumed (i32.const 1))
    (if (i32.eq (local.get $n) (i32.const 4)) (then (global.set $ticks (i32.load (local.get $p))))))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
)`;
}

const FLAGS = { "tick-interval": "20ms", "verify-interval": "1", "replay-on-divergence": "log", "checkpoint-interval": "50ms" };
const x402 = (options: Record<string, unknown> = {}) => ({ capabilities: { x402: { version: 1, options } } });

describe("a payment's recipient is compared as bytes", () => {
  for (const [name, base] of [["valid bytes: 'a' paid live, 'b' replayed", 0x61], ["invalid UTF-8: 0xfe paid live, 0xff replayed", 0xfe]] as const) {
    it(`a replay in which the agent pays another recipient is a divergence (${name})`, async () => {
      const t = await startTestNode(FLAGS);
      const path = await writeWat(join(t.dir, "wasm"), "payer", payer(base), x402());
      const divergences: DivergenceEvent[] = [];
      let verified = 0;
      t.node.scheduler.on("divergence", (e: DivergenceEvent) => divergences.push(e));
      t.node.scheduler.on("verified", () => verified++);
      await t.node.addAgent({ wasmPath: path });
      await waitUntil(() => divergences.length > 0 || verified >= 3, { timeoutMs: 20_000, what: "a divergence or three verified replays" });
      expect({ verified, divergence: divergences[0]?.message }).toEqual({ verified: 0, divergence: expect.stringMatching(/pays another amount, recipient or memo than the recorded receipt/) });
    });
  }

  it("a recipient of invalid UTF-8 is not an allowed recipient spelled with U+FFFD: refused -3, nothing paid", async () => {
    const t = await startTestNode(FLAGS);
    const path = await writeWat(join(t.dir, "wasm"), "payer", payer(0xff), x402({ allowed_recipients: ["\uFFFD"] }));
    await t.node.addAgent({ wasmPath: path });
    const tick = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "payer" && e.tick === 1n, 20_000);
    expect(tick.events.find((e) => e.id === HostcallId.wallet_pay)?.result).toBe(PayResult.refused);
    expect(tick.paid).toBe(0n);
  });
});
