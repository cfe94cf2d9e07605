// The control API: bearer token in a 0600 file, status/agents/metrics, capability changes.
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { controlGet } from "../../src/control/client.js";
import { MAX_CONTROL_BODY_BYTES } from "../../src/control/server.js";
import { ensureControlToken } from "../../src/control/token.js";
import { isIgordError } from "../../src/errors.js";
import { DB_FILE } from "../../src/store/sqlite-store.js";
import Database from "better-sqlite3";
import { EXAMPLES, startTestNode, stopAllNodes, tempDir, type TestNode } from "../helpers/node.js";
import type { CheckpointEvent, DivergenceEvent } from "../../src/scheduler/scheduler.js";
import { HIDDEN_INPUT_AGENT } from "../helpers/replay-agents.js";
import { CAPS, writeWat } from "../helpers/wat.js";

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

/** A GET with the Host header a browser would send for `host` (fetch does not let a caller set it). */
function getWithHost(t: TestNode, path: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const addr = t.node.controlAddress!;
  return new Promise((resolve, reject) => {
    const req = request({ host: addr.host, port: addr.port, path, headers: { ...headers, host } }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
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

  it("answers only a Host that names this endpoint (loopback names and addresses, or its listen host): a DNS-rebinding page's Host is refused 403 CONTROL_HOST_REFUSED even with the token, and the CLI and the dashboard keep working", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0" });
    const { port } = t.node.controlAddress!;
    const bearer = { authorization: `Bearer ${readFileSync(join(t.config.dataDir, "control.token"), "utf8").trim()}` };
    for (const host of [`rebind.attacker.example:${port}`, "rebind.attacker.example", `127.0.0.1.attacker.example:${port}`, `localhost.attacker.example:${port}`]) {
      const r = await getWithHost(t, "/v1/status", host, bearer);
      expect([host, r.status]).toEqual([host, 403]);
      expect((JSON.parse(r.body) as { error: { code: string } }).error.code).toBe("CONTROL_HOST_REFUSED");
      // Nor the routes that need no token.
      expect((await getWithHost(t, `/v1/proof?nonce=${"ab".repeat(32)}`, host)).status).toBe(403);
      expect((await getWithHost(t, "/", host)).status).toBe(403);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, "localhost", `[::1]:${port}`, `LOCALHOST:${port}`]) {
      expect([host, (await getWithHost(t, "/v1/status", host, bearer)).status]).toEqual([host, 200]);
    }
    // The CLI's client, and the dashboard's login link and page, as they are used.
    expect(await controlGet({ host: "127.0.0.1", port }, t.config.dataDir, "/v1/status")).toMatchObject({ nodeId: expect.stringMatching(/^12D3KooW/) });
    const login = (await (await api(t, "/v1/dashboard/login", { method: "POST" })).json()) as { url: string };
    const redeemed = await fetch(login.url, { redirect: "manual" });
    expect(redeemed.status).toBe(200);
    const session = /<meta name="igord-session" content="([\w-]+)">/.exec(await redeemed.text())?.[1];
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/v1/agents`, { headers: { authorization: `Session ${session}` } })).status).toBe(200);
  });

  it("reports status, agents, one agent and Prometheus metrics", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "20ms" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 3n);

    const status = (await (await api(t, "/v1/status")).json()) as Record<string, unknown>;
    expect(status.agents).toEqual({ running: 1, stopped: 0, failed: 0, quarantined: 0, loadFailed: 0, hibernated: 0 });
    expect(String(status.nodeId)).toMatch(/^12D3KooW/);
    expect(status.capabilities).toEqual(["clock", "emit", "http", "log", "pricing", "rand", "wallet", "x402"]);

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

  it("answers GET /v1/agents/:id for an agent the list shows that does not run here (stopped before a restart): it answered 404", async () => {
    const first = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "20ms" });
    await first.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    await first.waitFor<TickEvent>("tick", (e) => e.tick >= 2n);
    expect((await api(first, "/v1/agents/heartbeat/stop", { method: "POST" })).status).toBe(200);
    await first.stop();
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "20ms" }, { dir: first.dir, resumeStored: true });
    const listed = ((await (await api(t, "/v1/agents")).json()) as { agents: { id: string; status: string }[] }).agents.find((a) => a.id === "heartbeat");
    expect(listed?.status).toBe("stopped");
    const one = await api(t, "/v1/agents/heartbeat");
    expect(one.status).toBe(200);
    expect(((await one.json()) as { status: string }).status).toBe("stopped");
    expect((await api(t, "/v1/agents/nobody")).status).toBe(404);
  });

  it("a control.token that is a directory stops the start with an error naming it, not one about a running daemon", () => {
    const dataDir = tempDir();
    mkdirSync(join(dataDir, "control.token"));
    const err = (() => {
      try {
        ensureControlToken(dataDir);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(isIgordError(err) ? err.code : err).toBe("CONFIG_INVALID");
    expect((err as Error).message).toContain(`${join(dataDir, "control.token")} is not a file`);
    expect((err as Error).message).not.toContain("is the daemon running");
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

  it("answers bad requests with 400, never 500: a null or non-object body, bad % escapes, out-of-range numbers", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "20ms" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    const code = async (r: Response) => ((await r.json()) as { error: { code: string; message: string } }).error;
    for (const body of ["null", "[]", '"clock"', "7"]) {
      const r = await api(t, "/v1/capabilities", { method: "PUT", body });
      expect(r.status, `PUT /v1/capabilities ${body}`).toBe(400);
      expect((await code(r)).code).toBe("CONTROL_BAD_REQUEST");
      const m = await api(t, "/v1/agents/heartbeat/migrate", { method: "POST", body });
      expect(m.status, `POST migrate ${body}`).toBe(400);
    }
    const notJson = await api(t, "/v1/capabilities", { method: "PUT", body: "{oops" });
    expect(notJson.status).toBe(400);
    expect((await code(notJson)).message).toMatch(/not valid JSON/);
    for (const path of ["/v1/agents/%E0%A4%A", "/v1/agents/%zz/outbox", "/v1/agents/%/resume"]) {
      const r = await api(t, path, { method: path.endsWith("resume") ? "POST" : "GET" });
      expect(r.status, path).toBe(400);
      expect((await code(r)).message).toMatch(/percent-encoding/);
    }
    for (const after of ["99999999999999999999999", "-1", "1e3"]) {
      const r = await api(t, `/v1/agents/heartbeat/outbox?after=${after}`);
      expect(r.status, `after=${after}`).toBe(400);
      expect((await code(r)).message).toMatch(/"after"/);
    }
    expect(t.logs.events("control_error")).toEqual([]);
  });

  it("answers an unknown method with 405 and an Allow header, an unknown path with 404", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0" });
    const del = await api(t, "/v1/status", { method: "DELETE" });
    expect(del.status).toBe(405);
    expect(del.headers.get("allow")).toBe("GET");
    expect(((await del.json()) as { error: { code: string } }).error.code).toBe("CONTROL_METHOD_NOT_ALLOWED");
    const caps = await api(t, "/v1/capabilities", { method: "POST", body: "{}" });
    expect(caps.status).toBe(405);
    expect(caps.headers.get("allow")).toBe("PUT");
    const resume = await api(t, "/v1/agents/x/resume");
    expect(resume.status).toBe(405);
    expect(resume.headers.get("allow")).toBe("POST");
    expect((await api(t, "/v1/nothing")).status).toBe(404);
    expect((await api(t, "/v1/agents/x/y/z")).status).toBe(404);
  });

  it("refuses a body above the limit with 413, whether its length is declared or streamed", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0" });
    const big = JSON.stringify({ capabilities: ["clock"], pad: "x".repeat(MAX_CONTROL_BODY_BYTES) });
    const declared = await api(t, "/v1/capabilities", { method: "PUT", body: big });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: { code: string } }).error.code).toBe("CONTROL_BODY_TOO_LARGE");
    const chunks = [big.slice(0, 1000), big.slice(1000)];
    const streamed = await api(t, "/v1/capabilities", {
      method: "PUT",
      body: new ReadableStream({
        pull(c) {
          const next = chunks.shift();
          if (next === undefined) c.close();
          else c.enqueue(new TextEncoder().encode(next));
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(t.node.capabilities.list()).toEqual(["clock", "emit", "http", "log", "pricing", "rand", "wallet", "x402"]);
  });

  it("answers the daemon's own failure (its store lost an agent's module) with 500, not a 400 blaming the request", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0", "tick-interval": "20ms" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    await t.node.scheduler.pause("heartbeat", "test");
    const db = new Database(join(t.config.dataDir, DB_FILE));
    db.pragma("foreign_keys = OFF");
    db.prepare("DELETE FROM wasm_modules").run();
    db.close();
    const r = await api(t, "/v1/agents/heartbeat/resume", { method: "POST" });
    expect(r.status).toBe(500);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("STORE_CORRUPT");
    expect(t.logs.events("control_error")).toHaveLength(1);
  });

  it("the client reports a non-JSON answer (another server on the port) as CONTROL_UNAVAILABLE, naming the status", async () => {
    const other = createServer((_req, res) => {
      res.writeHead(404, { "content-type": "text/html" });
      res.end("<html>not igord</html>");
    });
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    const dataDir = tempDir();
    try {
      ensureControlToken(dataDir);
      const port = (other.address() as AddressInfo).port;
      const e = await controlGet({ host: "127.0.0.1", port }, dataDir, "/v1/status").catch((x: unknown) => x);
      expect(isIgordError(e, "CONTROL_UNAVAILABLE")).toBe(true);
      expect((e as Error).message).toMatch(/HTTP 404 with a non-JSON answer: <html>not igord/);
    } finally {
      other.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/** The value of one series of a Prometheus text exposition: `name` with (at least) these labels. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split("\n").find((l) => {
    const [series = ""] = l.split(" ");
    const bare = series === name;
    const labelled = series.startsWith(`${name}{`) && pairs.every((p) => series.slice(name.length + 1, -1).split(",").includes(p));
    return (bare && pairs.length === 0) || labelled;
  });
  if (line === undefined) throw new Error(`no ${name}{${pairs.join(",")}} in the metrics`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("/metrics after the node's work", () => {
  // Acceptance 32: /metrics: ticks, tick duration, checkpoints, verifications, divergences, migrations by outcome and duration, lease states, budget.
  it("after checkpoints, replay verifications, a divergence and a migration, every series the operator watches counts it", async () => {
    const p2p = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "peer-refresh": "0", "tick-interval": "20ms" };
    const a = await startTestNode({ ...p2p, control: "127.0.0.1:0", "checkpoint-interval": "50ms", "verify-interval": "1" });
    const b = await startTestNode(p2p);
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    // Its hidden input makes every replay of it diverge (the default policy, log, keeps it ticking).
    await a.node.addAgent({ wasmPath: await writeWat(join(a.dir, "wasm"), "hidden", HIDDEN_INPUT_AGENT, CAPS("clock", "rand", "log")) });
    await a.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "heartbeat" && e.reason === "periodic" && e.outcome === "written");
    await a.waitFor("verified", (e: { agentId: string }) => e.agentId === "heartbeat");
    await a.waitFor<DivergenceEvent>("divergence", (e) => e.agentId === "hidden");
    const moved = await a.node.migrate("heartbeat", [b.node.migration!.addresses()[0]!]);
    expect(moved.outcome).toBe("done");
    const text = await (await api(a, "/metrics")).text();
    expect(sample(text, "igord_ticks_total", { agent: "hidden" })).toBeGreaterThan(0);
    // An agent that left is no series of this node's any more (its ticks go on counting where it runs).
    expect(text).not.toMatch(/^igord_ticks_total\{agent="heartbeat"\}/m);
    expect(sample(text, "igord_tick_duration_seconds_count")).toBeGreaterThan(0);
    expect(sample(text, "igord_checkpoints_total", { reason: "periodic" })).toBeGreaterThan(0);
    expect(sample(text, "igord_replay_verifications_total", { result: "verified" })).toBeGreaterThan(0);
    expect(sample(text, "igord_replay_verifications_total", { result: "diverged" })).toBeGreaterThan(0);
    expect(sample(text, "igord_replay_divergences_total", { code: "REPLAY_STATE_MISMATCH" })).toBeGreaterThan(0);
    expect(sample(text, "igord_migrations_total", { direction: "out", outcome: "done" })).toBe(1);
    expect(sample(text, "igord_migration_duration_seconds_count", { direction: "out" })).toBe(1);
    expect(sample(text, "igord_migration_duration_seconds_bucket", { direction: "out", le: "+Inf" })).toBe(1);
    expect(sample(text, "igord_migration_duration_seconds_sum", { direction: "out" })).toBeCloseTo(moved.durationMs / 1000, 1);
    expect(sample(text, "igord_agent_leases", { state: "ACTIVE_OWNER" })).toBe(1); // hidden; heartbeat left
    expect(sample(text, "igord_agent_budget_remaining_microcents", { agent: "hidden" })).toBeGreaterThan(0);
    // The target counts its side of the same migration.
    const received = await b.node.metrics.render();
    expect(sample(received, "igord_migrations_total", { direction: "in", outcome: "done" })).toBe(1);
  });
});
