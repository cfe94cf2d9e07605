// A payment is made only from a state a restart resumes. The SDK's pattern records and begins a
// payment intent in one tick and pays in a later one, once "a checkpoint has covered" the intent; but
// an agent cannot see checkpoints, so it guesses (the demos wait 6 ticks, tuned to the default 1 s
// ticks and 5 s checkpoints). When it guessed short (another --checkpoint-interval, a faster cadence),
// the payment came before any checkpoint held the intent, and after a crash the agent resumed without
// it: the node had debited the payment and listed its receipt, but the agent had nothing to reconcile,
// bought again and paid twice. The node now checkpoints the agent's committed state before it signs
// a payment, so the intent begun in an earlier tick is always there to reconcile.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HostcallId } from "../../src/hostcalls/registry.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { AS_FIXTURES, startTestNode, stopAllNodes, storedHead, tempDir } from "../helpers/node.js";
import { killAll, startDaemon } from "../helpers/process.js";
import { logLines } from "../helpers/tick-logs.js";

afterEach(async () => {
  await killAll();
  await stopAllNodes();
});

describe("a payment and the checkpoint before it", () => {
  it("an agent that pays before any periodic checkpoint covered its intent and is SIGKILLed resumes with the intent, finds the lost payment and does not pay again", { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const agents = join(dir, "agents");
    mkdirSync(agents, { recursive: true });
    // reconciling_payer records and begins its intent in tick 1 and pays in tick 3.
    copyFileSync(join(AS_FIXTURES, "reconciling_payer.wasm"), join(agents, "payer.wasm"));
    writeFileSync(join(agents, "payer.manifest.json"), JSON.stringify({
      capabilities: { clock: { version: 1 }, log: { version: 1 }, wallet: { version: 1 }, x402: { version: 1 } },
    }));
    // No periodic checkpoint in the run: only what the node takes of its own accord.
    const d = startDaemon(["--agents-dir", agents, "--data-dir", join(dir, "data"), "--control", "off", "--tick-interval", "50ms", "--checkpoint-interval", "1h"]);
    await d.waitFor((l) => l.event === "agent_log" && l.msg === "paid pay-0");
    d.child.kill("SIGKILL");
    await d.exit;
    // The state the payment was made from (tick 2, the intent in flight) is stored.
    expect(storedHead(join(dir, "data"), "payer")?.tick).toBe(2n);

    const again = await startTestNode({ "tick-interval": "50ms" }, { dir, resumeStored: true });
    const settled = await again.waitFor<TickEvent>("tick", (e) => e.agentId === "payer" && logLines(e).some((l) => l.startsWith("reconciled") || l.startsWith("intent")));
    expect(logLines(settled)).toEqual(["reconciled pay-0: paid in a lost tick"]);
    for (let tick = settled.tick; tick <= settled.tick + 4n; tick++) {
      const e = await again.waitFor<TickEvent>("tick", (x) => x.agentId === "payer" && x.tick === tick);
      expect(e.events.filter((x) => x.id === HostcallId.wallet_pay), `tick ${tick}`).toEqual([]);
    }
  });
});
