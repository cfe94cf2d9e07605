// The SDK's findReceipt tells the payment an Unresolved intent made in a lost tick from earlier
// purchases on the same terms whatever the clocks say: the receipt carries the clock of the node that
// paid, which may read behind the clock that recorded the intent (the agent moved to a node whose
// clock is behind, or the clock was stepped back across a restart). Compared with the intent's clock
// reading, the lost payment was "not found" and the agent, as documented, paid again.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HostcallId } from "../../src/hostcalls/registry.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { AS_FIXTURES, ROOT, startTestNode, stopAllNodes } from "../helpers/node.js";
import { killAll, startDaemon } from "../helpers/process.js";
import { logLines } from "../helpers/tick-logs.js";

afterEach(async () => {
  await killAll();
  await stopAllNodes();
});

/** How far behind this machine's clock the node that pays reads. */
const BEHIND_MS = 20_000;

describe("findReceipt and clocks that disagree", () => {
  it("a payment made in a lost tick on a node whose clock reads behind the one that recorded the intent is found, and the agent does not pay again", { timeout: 30_000 }, async () => {
    // 1. The intent is recorded and begun, and a checkpoint covers it (a clean stop, a tick before
    // the agent would pay).
    const first = await startTestNode({ "tick-interval": "400ms" });
    const agents = join(first.dir, "agents");
    mkdirSync(agents, { recursive: true });
    const wasm = join(agents, "payer.wasm");
    copyFileSync(join(AS_FIXTURES, "reconciling_payer.wasm"), wasm);
    writeFileSync(join(agents, "payer.manifest.json"), JSON.stringify({
      capabilities: { clock: { version: 1 }, log: { version: 1 }, wallet: { version: 1 }, x402: { version: 1 } },
    }));
    await first.node.addAgent({ wasmPath: wasm });
    const recorded = await first.waitFor<TickEvent>("tick", (e) => e.agentId === "payer" && e.tick === 1n);
    expect(logLines(recorded)).toEqual(["intent recorded pay-0"]);
    await first.stop();

    // 2. The agent runs on where the clock reads 20 s behind: it pays, and the process dies before
    // a checkpoint covers the payment.
    const behind = startDaemon(
      ["--agents-dir", agents, "--data-dir", join(first.dir, "data"), "--control", "off", "--tick-interval", "50ms", "--checkpoint-interval", "1h"],
      { IGORD_LISTEN: "off", ...process.env, NODE_OPTIONS: `--require ${join(ROOT, "test", "fixtures", "clock", "behind.cjs")}`, IGORD_TEST_CLOCK_BEHIND_MS: String(BEHIND_MS) },
    );
    await behind.waitFor((l) => l.event === "agent_log" && l.msg === "paid pay-0");
    behind.child.kill("SIGKILL");
    await behind.exit;

    // 3. Back (here the clock is right): the intent is Unresolved, the node lists the lost payment's
    // receipt first, and findReceipt must find it.
    const again = await startTestNode({ "tick-interval": "50ms" }, { dir: first.dir, resumeStored: true });
    const settled = await again.waitFor<TickEvent>("tick", (e) => e.agentId === "payer" && logLines(e).some((l) => l.startsWith("reconciled")));
    expect(logLines(settled)).toEqual(["reconciled pay-0: paid in a lost tick"]);
    // It never pays again: no tick of this run calls wallet_pay (before: it compensated the intent,
    // recorded pay-1 and paid the provider a second time two ticks later).
    for (let tick = settled.tick; tick <= settled.tick + 4n; tick++) {
      const e = await again.waitFor<TickEvent>("tick", (x) => x.agentId === "payer" && x.tick === tick);
      expect(e.events.filter((x) => x.id === HostcallId.wallet_pay), `tick ${tick}`).toEqual([]);
    }
  });
});
