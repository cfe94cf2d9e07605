// A hung, trapping or memory-bombing agent must not stall the node: the others keep their cadence,
// the control API keeps answering, and the faulty agent is stopped within tick timeout + 1 s.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes, storedHead } from "../helpers/node.js";
import { controlGet } from "../../src/control/client.js";
import { waitUntil } from "../helpers/wait.js";
import { watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

const HANG_FROM_TICK_4 = watAgent({
  onTick: "(if (i32.ge_u (global.get $ticks) (i32.const 4)) (then (loop $spin (br $spin))))",
});
const TRAP_AT_TICK_2 = watAgent({
  onTick: "(if (i32.eq (global.get $ticks) (i32.const 2)) (then unreachable))",
});
// Grows memory one page at a time until the cap refuses, then traps.
const MEMORY_BOMB = watAgent({
  onTick: "(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) unreachable",
});
const HEALTHY = watAgent();

function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - (times[i] as number));
}

describe("isolation", () => {
  // Acceptance 8: hang from tick 4 stopped within timeout + 1 s, mates keep cadence, control answers, head is tick 3.
  it("a hung agent_tick is stopped within the tick timeout + 1 s while its worker-mates keep their cadence through the hang", async () => {
    // Long enough that a mate left waiting for the kill (a gap of the whole hang) is told apart
    // from a mate moved off the stalled worker on a loaded machine, where spawning the new worker
    // and loading the mates there took up to 1.6 s at load 12–14. The cadence itself, 100 agents'
    // longest gap on a quiet machine, is the bench's "Longest gap … while one agent hangs" row.
    const TIMEOUT = 4000;
    const INTERVAL = 100;
    // One worker: the healthy agents share the hung agent's thread and must be moved off it.
    const t = await startTestNode({
      workers: "1",
      "tick-timeout": `${TIMEOUT}ms`,
      "tick-interval": `${INTERVAL}ms`,
      control: "127.0.0.1:0",
    });
    const dir = join(t.dir, "wasm");
    await t.node.addAgent({ wasmPath: await writeWat(dir, "hung", HANG_FROM_TICK_4) });
    for (const n of ["h1", "h2", "h3"]) await t.node.addAgent({ wasmPath: await writeWat(dir, n, HEALTHY) });

    const tickTimes = new Map<string, number[]>();
    t.node.scheduler.on("tick", (e: TickEvent) => {
      const list = tickTimes.get(e.agentId) ?? [];
      list.push(e.at);
      tickTimes.set(e.agentId, list);
    });
    const hungStarted = await t.waitFor<TickEvent>("tick",
      (e) => e.agentId === "hung" && e.tick === 3n,
    );
    // During the hang the control API answers.
    const failed = t.waitFor<{ id: string; error: { code: string } | null }>("stopped",
      (v) => v.id === "hung",
    );
    const addr = t.node.controlAddress!;
    const token = (await import("node:fs"))
      .readFileSync(join(t.config.dataDir, "control.token"), "utf8")
      .trim();
    const res = await fetch(`http://${addr.host}:${addr.port}/v1/status`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);

    const stopped = await failed;
    const stoppedAt = Date.now();
    expect(stopped.error?.code).toBe("TICK_TIMEOUT");
    // Tick 4 was dispatched about one interval after tick 3 committed.
    expect(stoppedAt - hungStarted.at).toBeLessThan(INTERVAL + TIMEOUT + 1000);

    // Healthy agents kept ticking through the hang: no gap anywhere near the hang's length.
    for (const n of ["h1", "h2", "h3"]) {
      // Wait for the ticks (a loaded machine slips the cadence), then judge the gaps between them:
      // the recorded ticks span the whole hang, so no gap near the hang's length means no stop.
      await t.waitFor<TickEvent>("tick",
        (e) => e.agentId === n && e.at > stoppedAt + 2 * INTERVAL && (tickTimes.get(n)?.length ?? 0) > TIMEOUT / INTERVAL + 1,
      );
      const g = gaps(tickTimes.get(n) ?? []);
      expect(g.length).toBeGreaterThan(TIMEOUT / INTERVAL);
      expect(Math.max(...g)).toBeLessThan(TIMEOUT / 2);
      // And their cadence held through it: the typical gap is the interval, not a slowed one.
      const sorted = [...g].sort((x, y) => x - y);
      expect(sorted[Math.floor(sorted.length / 2)]).toBeLessThan(2 * INTERVAL);
    }
    // The hung agent's last committed state is tick 3, checkpointed when it was stopped.
    await t.node.scheduler.settled();
    const cp = storedHead(t.config.dataDir, "hung");
    expect(cp?.tick).toBe(3n);
    expect(cp?.status).toBe("failed");
    expect(cp?.statusReason).toBe("tick_timeout");
    expect(new DataView(cp!.state.buffer).getUint32(0, true)).toBe(3);
    expect(t.logs.events("worker_stalled").length).toBeGreaterThan(0);
  });

  it("a trap stops only the trapping agent, keeping its last good state", async () => {
    const t = await startTestNode({ "tick-interval": "20ms" });
    const dir = join(t.dir, "wasm");
    await t.node.addAgent({ wasmPath: await writeWat(dir, "trapper", TRAP_AT_TICK_2) });
    await t.node.addAgent({ wasmPath: await writeWat(dir, "fine", HEALTHY) });
    const stopped = await t.waitFor<{ id: string; error: { code: string; message: string } | null }>("stopped",
      (v) => v.id === "trapper",
    );
    expect(stopped.error?.code).toBe("AGENT_TRAP");
    expect(stopped.error?.message).toMatch(/unreachable/);
    await t.node.scheduler.settled();
    expect(storedHead(t.config.dataDir, "trapper")?.tick).toBe(1n);
    const before = t.node.scheduler.view("fine")!.tick;
    await t.waitFor<TickEvent>("tick",
      (e) => e.agentId === "fine" && e.tick >= before + 3n,
    );
  });

  it("a memory bomb hits its manifest cap and fails cleanly", async () => {
    const t = await startTestNode({ "tick-interval": "20ms" });
    const dir = join(t.dir, "wasm");
    const path = await writeWat(dir, "bomb", MEMORY_BOMB, {
      resource_limits: { max_memory_bytes: 4 * 1024 * 1024 },
    });
    await t.node.addAgent({ wasmPath: path });
    await t.node.addAgent({ wasmPath: await writeWat(dir, "fine", HEALTHY) });
    const stopped = await t.waitFor<{ id: string; error: { code: string } | null }>("stopped",
      (v) => v.id === "bomb",
    );
    expect(stopped.error?.code).toBe("AGENT_TRAP");
    expect(t.node.scheduler.view("fine")?.status).toBe("running");
  });

  it("an AssemblyScript abort becomes an agent error with its message, file and line", async () => {
    const { AS_FIXTURES } = await import("../helpers/node.js");
    const t = await startTestNode({ "tick-interval": "20ms" });
    await t.node.addAgent({ wasmPath: join(AS_FIXTURES, "aborter.wasm") });
    const stopped = await t.waitFor<{ id: string; error: { code: string; message: string } | null }>("stopped",
      (v) => v.id === "aborter",
    );
    expect(stopped.error?.code).toBe("AGENT_ABORT");
    expect(stopped.error?.message).toMatch(/boom at tick 2 \(.*aborter\.ts:\d+:\d+\)/);
    const failure = t.logs.events("agent_failed", "aborter")[0] as {
      details: { line: number; file: string };
    };
    expect(failure.details.line).toBeGreaterThan(0);
    expect(failure.details.file).toMatch(/aborter\.ts$/);
  });

  // Acceptance 8: the control API answers while the tick hangs.
  it("the control API answers during a hang: after worker_stalled is logged and before the hung agent is stopped", async () => {
    const t = await startTestNode({ workers: "1", "tick-timeout": "2000ms", "tick-interval": "50ms", control: "127.0.0.1:0" });
    const dir = join(t.dir, "wasm");
    await t.node.addAgent({ wasmPath: await writeWat(dir, "hung", HANG_FROM_TICK_4) });
    await t.node.addAgent({ wasmPath: await writeWat(dir, "mate", HEALTHY) });
    let stoppedAt: number | null = null;
    t.node.scheduler.on("stopped", (v: { id: string }) => {
      if (v.id === "hung") stoppedAt ??= Date.now();
    });
    await waitUntil(() => t.logs.events("worker_stalled").some((l) => l.agent === "hung"), { what: "worker_stalled for the hung tick" });
    const control = t.node.controlAddress!;
    const status = (await controlGet(control, t.config.dataDir, "/v1/status")) as { workers: { stalled: number } };
    const listing = (await controlGet(control, t.config.dataDir, "/v1/agents")) as { agents: { id: string; status: string }[] };
    const answeredAt = Date.now();
    // Both answers came while tick 4 still spun: the stall shows, the agent is not stopped yet.
    expect(stoppedAt).toBeNull();
    expect(status.workers.stalled).toBeGreaterThanOrEqual(1);
    expect(listing.agents.find((a) => a.id === "hung")?.status).toBe("running");
    expect(listing.agents.find((a) => a.id === "mate")?.status).toBe("running");
    const stopped = await t.waitFor<{ id: string; error: { code: string } | null }>("stopped", (v) => v.id === "hung");
    expect(stopped.error?.code).toBe("TICK_TIMEOUT");
    expect(stoppedAt!).toBeGreaterThanOrEqual(answeredAt);
    const after = (await controlGet(control, t.config.dataDir, "/v1/agents?all=1")) as { agents: { id: string; status: string }[] };
    expect(after.agents.find((a) => a.id === "hung")?.status).toBe("failed");
    await t.node.scheduler.settled();
    expect(storedHead(t.config.dataDir, "hung")?.tick).toBe(3n);
  });
});
