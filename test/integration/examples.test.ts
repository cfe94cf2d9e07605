// igor's demo agents ported to AssemblyScript (examples/<name>/), each run by a real igord process
// with its own manifest: the agents that need no server here; those that talk to the mock servers in
// demos-e2e.test.ts.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { agentLogs, EXAMPLES_DIR, exampleArgs } from "../helpers/examples.js";
import { tempDir } from "../helpers/node.js";
import { killAll, startDaemon } from "../helpers/process.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(killAll);

describe("sentinel (treasury with refill intents)", () => {
  it("spends until below $3,000, records a refill intent, and executes and confirms it in a later tick", async () => {
    const d = startDaemon(exampleArgs(join(EXAMPLES_DIR, "sentinel"), join(tempDir(), "data"), ["--tick-interval", "20ms"]));
    const recorded = await d.waitFor((l) => l.event === "agent_log" && String(l.msg).startsWith("[sentinel] Refill intent RECORDED"), 20_000);
    const confirmed = await d.waitFor((l) => l.event === "agent_log" && String(l.msg).startsWith("[sentinel] Refill CONFIRMED"), 20_000);
    // The act runs in a tick after the one that recorded it.
    expect(BigInt(String(confirmed.tick))).toBeGreaterThan(BigInt(String(recorded.tick)));
    const logs = agentLogs(d.lines);
    expect(logs[0]).toBe("[sentinel] Treasury initialized: $10000.00");
    const balance = /balance now \$(\d+)\.(\d\d)/.exec(String(confirmed.msg));
    expect(Number(balance?.[1])).toBeGreaterThanOrEqual(5000);
    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
  });
});

describe("liquidation (gap-aware watcher)", () => {
  it("after downtime detects the gap, replays the missed slots and then goes on live", { timeout: 60_000 }, async () => {
    const dataDir = join(tempDir(), "data");
    const args = exampleArgs(join(EXAMPLES_DIR, "liquidation"), dataDir, ["--tick-interval", "200ms", "--lease-duration", "1s"]);
    const first = startDaemon(args);
    await first.waitFor((l) => l.event === "agent_log" && String(l.msg).startsWith("[live] slot 1:"), 20_000);
    first.child.kill("SIGINT");
    expect(await first.exit).toBe(0);
    const lastLive = agentLogs(first.lines).filter((m) => m.startsWith("[live] slot ")).at(-1) ?? "";
    const lastSlot = Number(/slot (\d+)/.exec(lastLive)?.[1]);
    // The world moves on while the agent is down: its slots are seconds since its birth.
    const downSince = Date.now();
    await waitUntil(() => Date.now() - downSince >= 3000, { timeoutMs: 10_000, pollMs: 100, what: "3 s of downtime" });

    const second = startDaemon(args);
    await second.waitFor((l) => l.event === "agent_log" && String(l.msg) === "  GAP DETECTED", 20_000);
    const live = await second.waitFor((l) => l.event === "agent_log" && String(l.msg).startsWith("[live] slot "), 20_000);
    const logs = agentLogs(second.lines);
    expect(logs).toContain(`  Last processed:  slot ${lastSlot}`);
    const catchUp = logs.filter((m) => m.startsWith("[catch-up] slot "));
    const liveSlot = Number(/slot (\d+)/.exec(String(live.msg))?.[1]);
    // Every slot between the last one processed and the live one is replayed once, in order.
    expect(catchUp.map((m) => Number(/slot (\d+)/.exec(m)?.[1]))).toEqual(
      Array.from({ length: liveSlot - lastSlot - 1 }, (_, i) => lastSlot + 1 + i),
    );
    expect(catchUp.length).toBeGreaterThanOrEqual(2);
    second.child.kill("SIGINT");
    expect(await second.exit).toBe(0);
  });
});

describe("examples/ as an agents dir", () => {
  it("loads all five demos, each manifest granting exactly what its module imports", { timeout: 60_000 }, async () => {
    // igor's hostcall → capability (resume_interrupted needs none).
    const CAP: Record<string, string | null> = {
      clock_now: "clock", rand_bytes: "rand", log_emit: "log", wallet_balance: "wallet", wallet_receipt_count: "wallet",
      wallet_receipt: "wallet", node_price: "pricing", http_request: "http", wallet_pay: "x402", emit: "emit", resume_interrupted: null,
    };
    for (const name of ["deployer", "liquidation", "pricewatcher", "sentinel", "x402buyer"]) {
      const mod = new WebAssembly.Module(readFileSync(join(EXAMPLES_DIR, name, "agent.wasm")));
      const needed = new Set(
        WebAssembly.Module.imports(mod).filter((i) => i.module === "igor").map((i) => CAP[i.name]).filter((c): c is string => typeof c === "string"),
      );
      const manifest = JSON.parse(readFileSync(join(EXAMPLES_DIR, name, "agent.manifest.json"), "utf8")) as { capabilities: Record<string, unknown> };
      expect([...needed].sort(), name).toEqual(Object.keys(manifest.capabilities).sort());
    }
    const d = startDaemon(exampleArgs(EXAMPLES_DIR, join(tempDir(), "data")));
    const names = ["deployer", "liquidation", "pricewatcher", "sentinel", "x402buyer"];
    for (const name of names) await d.waitFor((l) => l.event === "agent_started" && l.agent === name, 30_000);
    expect(d.lines.filter((l) => l.event === "agent_load_failed")).toEqual([]);
    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
  });
});
