// The control API: bearer token in a 0600 file, status/agents/metrics, capability changes.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";

afterEach(stopAllNodes);

async function api(t: TestNode, path: string, init: RequestInit & { token?: string | null } = {}) {
  const addr = t.node.controlAddress!;
  const token =
    init.token === undefined
      ? readFileSync(join(t.config.dataDir, "control.token"), "utf8").trim()
      : init.token;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return fetch(`http://${addr.host}:${addr.port}${path}`, { ...init, headers });
}

describe("control API", () => {
  it("keeps its token in <data-dir>/control.token with mode 0600 and refuses requests without it", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0" });
    expect(statSync(join(t.config.dataDir, "control.token")).mode & 0o777).toBe(0o600);
    expect((await api(t, "/v1/status", { token: null })).status).toBe(401);
    const wrong = await api(t, "/v1/status", { token: "nope" });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe("CONTROL_UNAUTHORIZED");
    expect((await api(t, "/metrics", { token: null })).status).toBe(401);
  });

  it("reports status, agents, one agent and Prometheus metrics", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "20ms" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 3n);

    const status = (await (await api(t, "/v1/status")).json()) as Record<string, unknown>;
    expect(status.agents).toEqual({ running: 1, stopped: 0, failed: 0, quarantined: 0 });
    expect(String(status.nodeId)).toMatch(/^12D3KooW/);
    expect(status.capabilities).toEqual(["clock", "emit", "log", "pricing", "rand", "wallet"]);

    const agents = (await (await api(t, "/v1/agents")).json()) as {
      agents: { id: string; status: string }[];
    };
    expect(agents.agents.map((a) => [a.id, a.status])).toEqual([["heartbeat", "running"]]);

    const one = (await (await api(t, "/v1/agents/heartbeat")).json()) as Record<string, string>;
    expect(BigInt(one.tick as string)).toBeGreaterThanOrEqual(3n);
    expect(one.capabilities).toEqual(["clock", "log"]);
    expect(one.did).toMatch(/^did:key:z6Mk/);
    expect(BigInt(one.budgetMicrocents as string)).toBeLessThanOrEqual(1_000_000n);
    expect((await api(t, "/v1/agents/nobody")).status).toBe(404);

    const metrics = await (await api(t, "/metrics")).text();
    expect(metrics).toMatch(/igord_ticks_total\{agent="heartbeat"\} \d+/);
    expect(metrics).toMatch(/igord_tick_duration_seconds_bucket/);
    expect(metrics).toMatch(/igord_agents\{state="running"\} 1/);
    expect(metrics).toMatch(/igord_agent_budget_remaining_microcents\{agent="heartbeat"\} \d+/);
  });

  it("changes the node's capability set at run time, refusing unknown capabilities", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0" });
    const ok = await api(t, "/v1/capabilities", {
      method: "PUT",
      body: JSON.stringify({ capabilities: ["clock", "log"] }),
    });
    expect(((await ok.json()) as { capabilities: string[] }).capabilities).toEqual(["clock", "log"]);
    expect(t.node.capabilities.list()).toEqual(["clock", "log"]);
    const bad = await api(t, "/v1/capabilities", {
      method: "PUT",
      body: JSON.stringify({ capabilities: ["teleport"] }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("CAPABILITY_UNKNOWN");
    expect(t.node.capabilities.list()).toEqual(["clock", "log"]);
  });
});
