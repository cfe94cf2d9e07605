// igord stop / start / remove sent for one agent at the same time (two operators, a script retrying
// after a timeout): each command awaits a pause or a resume between its checks and its writes, so
// they run one after the other. Before, a start and a remove left a removed agent running here, and
// start, stop, start resumed it from a checkpoint older than the one the stop had just saved (ticks
// that had committed ran again, and its next checkpoint failed CHECKPOINT_CHAIN_BROKEN).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { waitUntil } from "../../src/testing/wait.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";

afterEach(stopAllNodes);

async function post(t: TestNode, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const a = t.node.controlAddress;
  if (!a) throw new Error("no control address");
  const token = readFileSync(join(t.config.dataDir, "control.token"), "utf8").trim();
  const r = await fetch(`http://${a.host}:${a.port}${path}`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

const heartbeat = (agentId: string) => ({ wasmPath: join(EXAMPLES, "heartbeat.wasm"), manifestPath: join(EXAMPLES, "heartbeat.manifest.json"), agentId });

describe("operator commands on one agent at the same time", () => {
  it("a start and a remove sent together: once remove answered, the agent does not run here, stored removed with its lease retired", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "20ms" });
    await t.node.addAgent(heartbeat("witness"));
    for (let i = 0; i < 6; i++) {
      const id = `hb${i}`;
      await t.node.addAgent(heartbeat(id));
      await t.waitFor<TickEvent>("tick", (e) => e.agentId === id && e.tick >= 2n);
      expect((await post(t, `/v1/agents/${id}/stop`)).status).toBe(200);
      const [start, remove] = await Promise.all([post(t, `/v1/agents/${id}/start`), post(t, `/v1/agents/${id}/remove`)]);
      expect(start.status).toBe(200);
      expect(remove.status).toBe(200);
      // Whichever ran first, the remove has the last word; a few ticks of its neighbour later it has not ticked.
      const at = t.node.scheduler.view("witness")?.tick ?? 0n;
      await t.waitFor<TickEvent>("tick", (e) => e.agentId === "witness" && e.tick >= at + 3n);
      expect({ id, runningHere: t.node.scheduler.view(id)?.status ?? null, stored: t.node.store.agent(id)?.status, lease: t.node.store.lease(id)?.state }).toEqual({
        id,
        runningHere: null,
        stored: "removed",
        lease: "RETIRED",
      });
    }
  }, 60_000);

  it("start, stop and start sent together never resume the agent from a checkpoint older than its stored head, and its chain stays whole", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "20ms", "checkpoint-interval": "100ms" });
    await t.node.addAgent(heartbeat("heartbeat"));
    await t.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    for (let i = 0; i < 8; i++) {
      await Promise.all([post(t, "/v1/agents/heartbeat/start"), post(t, "/v1/agents/heartbeat/stop"), post(t, "/v1/agents/heartbeat/start")]);
      // Running again (the last command a start) or stopped: if running, a checkpoint of its new run
      // must extend the stored head.
      if (t.node.scheduler.view("heartbeat")?.status === "running") {
        const seen = t.logs.lines.length;
        await waitUntil(() => t.logs.lines.slice(seen).some((l) => l.agent === "heartbeat" && (l.event === "checkpoint_saved" || l.event === "checkpoint_failed")));
      }
    }
    let head = -1n;
    const stale: string[] = [];
    for (const l of t.logs.lines.filter((x) => x.agent === "heartbeat")) {
      if (l.event === "checkpoint_saved" && BigInt(String(l.tick)) > head) head = BigInt(String(l.tick));
      if (l.event === "agent_started" && BigInt(String(l.tick)) < head) stale.push(`resumed at tick ${String(l.tick)} after a checkpoint at tick ${head}`);
      if (l.event === "checkpoint_failed") stale.push(`checkpoint_failed ${String(l.code)}: ${String(l.msg)}`);
    }
    expect(stale).toEqual([]);
  }, 60_000);
});
