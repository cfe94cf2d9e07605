// igor.http_request against real loopback HTTP servers: every return code, the allowlist, timeouts
// inside the tick timeout, the -5 size hint, 402 as a result, side effects fenced by the lease, a slow
// server never delaying other agents, and replay of all of it (self-verification, igord verify
// --replay, admission replay on migration) with the servers gone.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HostcallId } from "../../src/hostcalls/registry.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { startTestNode, stopAllNodes, storedHead, type TestNode } from "../helpers/node.js";
import { igord, killAll } from "../helpers/process.js";
import { waitUntil } from "../helpers/wait.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";
import { httpAgent, httpManifest, LOOPBACK_HTTP, MEMORY_PAGES, respOffset, resultOffset, startServer, type TestServer } from "../helpers/http-agent.js";

const servers: TestServer[] = [];
afterEach(async () => {
  killAll();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await stopAllNodes();
});

async function server(handle: Parameters<typeof startServer>[0]): Promise<TestServer> {
  const s = await startServer(handle);
  servers.push(s);
  return s;
}

/** A port nothing listens on (a server bound, then closed). */
async function closedPort(): Promise<number> {
  const s = await startServer(() => undefined);
  await s.close();
  return s.port;
}

function i32At(state: Uint8Array, off: number): number {
  return new DataView(state.buffer, state.byteOffset).getInt32(off, true);
}

function bodyAt(state: Uint8Array, i: number): string {
  const len = new DataView(state.buffer, state.byteOffset).getUint32(respOffset(i), true);
  return new TextDecoder().decode(state.subarray(respOffset(i) + 4, respOffset(i) + 4 + len));
}

const TERMS = "402 terms: pay 100000 to paywall-provider";

describe("http_request", () => {
  // Acceptance 37: a host outside allowed_hosts is refused with a recorded -3 and no traffic; replay verifies.
  it("returns igor's codes for every path, records each call once, and replays them all with the server stopped", async () => {
    let hold: (() => void)[] = [];
    const s = await server((req, res, body) => {
      if (req.url === "/ok") res.end("hello");
      else if (req.url === "/pay") {
        res.statusCode = 402;
        res.end(TERMS);
      } else if (req.url === "/big") res.end("x".repeat(100));
      else if (req.url === "/huge") res.end("y".repeat(2000));
      else if (req.url === "/slow") hold.push(() => res.end("late"));
      else if (req.url === "/write") res.end(`wrote ${body} with ${String(req.headers["x-test"])}`);
      else {
        res.statusCode = 404;
        res.end();
      }
    });
    const dead = await closedPort();
    const calls = [
      { url: `${s.url}/ok` }, // 0: 200
      { url: `${s.url}/pay` }, // 1: 402 is a result
      { url: `${s.url}/ok`, methodLen: 17 }, // 2: method over 16 bytes: -2
      { url: `${s.url}/ok`, urlLen: 8193 }, // 3: URL over 8 KiB: -2
      { url: `http://localhost:${s.port}/ok` }, // 4: host not in allowed_hosts: -3
      { url: `${s.url}/big`, cap: 50 }, // 5: buffer too small: -5, hint 100
      { url: `${s.url}/slow` }, // 6: timeout_ms: -4
      { url: `http://127.0.0.1:${dead}/` }, // 7: connection refused: -1
      { method: "POST", url: `${s.url}/write`, headers: "X-Test: yes\nmalformed line\n", body: "data" }, // 8: side effect with authority
      { url: `${s.url}/ok`, respPtr: MEMORY_PAGES * 65536 - 2 }, // 9: response buffer outside memory: -1
      { url: `${s.url}/huge` }, // 10: over max_response_bytes: -5, hint max + 1
      { url: `${s.url}/missing` }, // 11: 404 is a result too
      { url: "ftp://127.0.0.1/file" }, // 12: not http(s): -1
    ];
    const t = await startTestNode({ ...LOOPBACK_HTTP, "tick-interval": "20ms", "verify-interval": "1", "checkpoint-interval": "30ms", "tick-timeout": "5s" });
    const path = await writeWat(join(t.dir, "wasm"), "fetcher", httpAgent(calls, { upToTick: 1 }), httpManifest({ allowed_hosts: ["127.0.0.1"], timeout_ms: 300, max_response_bytes: 1000 }));
    await t.node.addAgent({ wasmPath: path });
    const first = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "fetcher" && e.tick === 1n);
    const expected = [200, 402, -2, -2, -3, -5, -4, -1, 200, -1, -5, 404, -1];
    expect(first.events.map((e) => [e.id, e.result])).toEqual(expected.map((r) => [HostcallId.http_request, r]));
    // Self-verification replayed tick 1: from the recorded log, without a single request more.
    await t.waitFor<{ agentId: string; ticks: bigint[] }>("verified", (e) => e.agentId === "fetcher" && e.ticks.includes(1n));
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "fetcher" && e.tick >= 3n);
    await t.stop();
    for (const release of hold) release();
    hold = [];
    const live = s.requests.map((r) => `${r.method} ${r.url}`);
    expect(live).toEqual(["GET /ok", "GET /pay", "GET /big", "GET /slow", "POST /write", "GET /ok", "GET /huge", "GET /missing"]);
    expect(s.requests[4]?.body).toBe("data");
    expect(s.requests[4]?.headers["x-test"]).toBe("yes");
    await s.close();

    const state = storedHead(t.config.dataDir, "fetcher")!.state;
    expect(expected.map((_, i) => i32At(state, resultOffset(i)))).toEqual(expected);
    expect(bodyAt(state, 0)).toBe("hello");
    expect(bodyAt(state, 1)).toBe(TERMS);
    expect(i32At(state, respOffset(5))).toBe(100);
    expect(i32At(state, respOffset(10))).toBe(1001);
    expect(bodyAt(state, 8)).toBe("wrote data with yes");
    expect(t.logs.events("replay_divergence")).toEqual([]);

    // The whole stored history re-executes with the server gone.
    const r = igord(["verify", "--agent", "fetcher", "--replay", "--data-dir", t.config.dataDir]);
    expect(r.stdout).toMatch(/^VALID/);
    expect(r.stdout).toMatch(/replay: VALID/);
    expect(r.status).toBe(0);
    expect(s.requests).toHaveLength(8);
  });

  it("a restarted node verifies its stored HTTP ticks from their recorded responses with the server gone", async () => {
    const s = await server((_req, res) => res.end("quote=7"));
    const t = await startTestNode({ ...LOOPBACK_HTTP, "tick-interval": "10ms", "checkpoint-interval": "30ms", "verify-interval": "0" });
    const path = await writeWat(join(t.dir, "wasm"), "quoter", httpAgent([{ url: `${s.url}/quote` }]), httpManifest());
    await t.node.addAgent({ wasmPath: path });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "quoter" && e.tick >= 10n);
    await t.stop();
    await s.close();
    const served = s.requests.length;
    // verify-interval 0 above: nothing was verified live. The restarted node replays the stored logs.
    const t2 = await startTestNode({ "tick-interval": "1h", "lease-duration": "2h", "verify-interval": "5" }, { dir: t.dir, resumeStored: true });
    const v = await t2.waitFor<{ agentId: string; ticks: bigint[] }>("verified", (e) => e.agentId === "quoter");
    expect(v.ticks.length).toBeGreaterThan(0);
    expect(t2.logs.events("replay_divergence")).toEqual([]);
    expect(s.requests).toHaveLength(served);
  });

  it("a request that would outlast the tick timeout returns -4 inside it, and the agent keeps ticking", async () => {
    const s = await server(() => undefined); // never answers
    const t = await startTestNode({ ...LOOPBACK_HTTP, "tick-interval": "20ms", "tick-timeout": "800ms", "verify-interval": "0" });
    const path = await writeWat(join(t.dir, "wasm"), "patient", httpAgent([{ url: `${s.url}/never` }], { upToTick: 1 }), httpManifest({ timeout_ms: 60_000 }));
    await t.node.addAgent({ wasmPath: path });
    const first = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "patient" && e.tick === 1n, 5000);
    expect(first.events.map((e) => e.result)).toEqual([-4]);
    expect(first.elapsedNs).toBeLessThan(800_000_000n);
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "patient" && e.tick === 3n);
    expect(t.logs.events("agent_failed")).toEqual([]);
  });

  it("a POST is a side effect: once the lease lapses mid-tick it is refused with -3, recorded, and never sent", async () => {
    // GET a slow page (an observation, allowed), then POST: with a 100 ms lease and no grace, the lease
    // is gone by the time of the POST.
    let releases = 0;
    const s = await server((req, res) => {
      if (req.url !== "/slow") return res.end("posted");
      releases++;
      setTimeout(() => res.end("slow"), 300);
    });
    const t = await startTestNode({ ...LOOPBACK_HTTP, "tick-interval": "10ms", "lease-duration": "100ms", "lease-grace": "0", "lease-renewal-window": "0.5", "verify-interval": "0", "tick-timeout": "5s" });
    const calls = [{ url: `${s.url}/slow` }, { method: "POST", url: `${s.url}/write`, body: "x" }];
    const path = await writeWat(join(t.dir, "wasm"), "poster", httpAgent(calls), httpManifest());
    await t.node.addAgent({ wasmPath: path });
    await waitUntil(() => t.logs.events("tick_discarded", "poster").length >= 2, { timeoutMs: 8000, what: "two discarded runs of tick 1" });
    expect(releases).toBeGreaterThanOrEqual(2);
    expect(s.requests.filter((r) => r.method === "POST")).toEqual([]);
  });

  it("a slow server does not delay the ticks of agents without http, even on a single shared worker", async () => {
    const t = await startTestNode({ ...LOOPBACK_HTTP, workers: "1", "tick-interval": "10ms", "tick-timeout": "20s", "verify-interval": "0" });
    let heartbeatTicks = 0;
    t.node.scheduler.on("tick", (e: TickEvent) => {
      if (e.agentId === "beat") heartbeatTicks++;
    });
    // The server answers only once the other agent has ticked 20 times while this request waited.
    let waitingSince = -1;
    const s = await server((_req, res) => {
      waitingSince = heartbeatTicks;
      void waitUntil(() => heartbeatTicks >= waitingSince + 20, { emitter: t.node.scheduler, event: "tick", timeoutMs: 15_000, what: "20 heartbeat ticks" })
        .then(() => res.end("finally"))
        .catch(() => res.end("gave up"));
    });
    const beat = await writeWat(join(t.dir, "wasm"), "beat", watAgent({ imports: '(import "igor" "clock_now" (func $clock (result i64)))', onTick: "(drop (call $clock))" }), CAPS("clock"));
    await t.node.addAgent({ wasmPath: beat });
    const path = await writeWat(join(t.dir, "wasm"), "slowfetch", httpAgent([{ url: `${s.url}/slow` }], { upToTick: 1 }), httpManifest({ timeout_ms: 15_000 }));
    await t.node.addAgent({ wasmPath: path });
    const first = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "slowfetch" && e.tick === 1n, 20_000);
    expect(first.events.map((e) => e.result)).toEqual([200]);
    // Nothing was moved or stopped to get there: the agent on the shared worker simply kept ticking.
    expect(t.logs.events("worker_stalled")).toEqual([]);
    expect(t.logs.events("agent_evacuated")).toEqual([]);
    expect(t.node.pool.stats().workers).toBe(2);
  });

  it("an HTTP agent migrates with its server stopped: the target replays its recorded responses at admission, and igord verify --replay of the target's data dir is VALID", async () => {
    const s = await server((_req, res) => res.end("price=42"));
    const p2p = { ...LOOPBACK_HTTP, listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "0", "migration-timeout": "5s", "peer-refresh": "0" };
    const a = await startTestNode(p2p);
    const b = await startTestNode({ ...p2p, "replay-mode": "full" });
    const path = await writeWat(join(a.dir, "wasm"), "watcher", httpAgent([{ url: `${s.url}/price` }], { upToTick: 2 }), httpManifest());
    await a.node.addAgent({ wasmPath: path });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "watcher" && e.tick >= 4n);
    await s.close();
    const r = await a.node.migrate("watcher", [target(b)]);
    expect(r.outcome).toBe("done");
    const received = b.logs.events("migration_received")[0]!;
    expect(received.replayed).toBeGreaterThanOrEqual(2);
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "watcher");
    const state = storedHead(b.config.dataDir, "watcher")!.state;
    expect(bodyAt(state, 0)).toBe("price=42");
    expect(s.requests).toHaveLength(2);
    // The audit on the target alone re-executes the whole history, A's HTTP ticks and B's own
    // included, from the recorded responses: the server is still gone.
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "watcher" && e.tick >= 6n);
    await b.stop();
    const audit = igord(["verify", "--replay", "--agent", "watcher", "--data-dir", b.config.dataDir]);
    expect(audit.stderr).toBe("");
    expect(audit.stdout).toMatch(/^VALID/);
    expect(audit.stdout).toMatch(/replay: VALID/);
    expect(audit.stdout).toMatch(/replayed \d+ ticks \(1\.\.\d+\) from the checkpoint at tick 0/);
    expect(audit.status).toBe(0);
    expect(s.requests).toHaveLength(2);
  });
});

describe("where an agent's requests may go", () => {
  // By name, by literal, by the forms URL parsing folds into a loopback address, and the cloud
  // metadata and private ranges: none is reached from a node whose operator has not named it.
  const targets = (port: number) => [
    { url: `http://127.0.0.1:${port}/ok` }, // 0
    { url: `http://localhost:${port}/ok` }, // 1: a name that resolves to loopback
    { url: `http://2130706433:${port}/ok` }, // 2: 127.0.0.1 written as one number
    { url: `http://[::ffff:127.0.0.1]:${port}/ok` }, // 3: IPv4-mapped IPv6
    { url: `http://[::1]:${port}/ok` }, // 4
    { url: "http://169.254.169.254/latest/meta-data/" }, // 5: link-local (cloud metadata)
    { url: "http://10.0.0.1/" }, // 6: private
    { url: `http://0.0.0.0:${port}/ok` }, // 7: "this host"
  ];

  it("a fresh node refuses every loopback, private and link-local destination with -3, even with allowed_hosts naming it, and sends nothing", async () => {
    const s = await server((_req, res) => res.end("inside"));
    const t = await startTestNode({ "tick-interval": "20ms", "verify-interval": "1", "tick-timeout": "5s" });
    for (const [name, allowed] of [["anyhost", []], ["namedhost", ["127.0.0.1", "localhost", "[::ffff:7f00:1]", "[::1]", "169.254.169.254", "10.0.0.1", "0.0.0.0"]]] as const) {
      const path = await writeWat(join(t.dir, "wasm"), name, httpAgent(targets(s.port), { upToTick: 1 }), httpManifest({ allowed_hosts: allowed, timeout_ms: 2000 }));
      await t.node.addAgent({ wasmPath: path });
      const first = await t.waitFor<TickEvent>("tick", (e) => e.agentId === name && e.tick === 1n);
      expect(first.events.map((e) => e.result), name).toEqual(targets(s.port).map(() => -3));
      await t.waitFor<{ agentId: string; ticks: bigint[] }>("verified", (e) => e.agentId === name && e.ticks.includes(1n));
    }
    expect(s.requests).toEqual([]);
    expect(t.logs.events("replay_divergence")).toEqual([]);
  });

  it("--http-private-networks opens the networks it names and no other", async () => {
    const s = await server((_req, res) => res.end("inside"));
    const t = await startTestNode({ "tick-interval": "20ms", "verify-interval": "1", "tick-timeout": "5s", "http-private-networks": "127.0.0.0/8" });
    const path = await writeWat(join(t.dir, "wasm"), "insider", httpAgent(targets(s.port), { upToTick: 1 }), httpManifest({ timeout_ms: 2000 }));
    await t.node.addAgent({ wasmPath: path });
    const first = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "insider" && e.tick === 1n);
    // ::1 is loopback too, but not in 127.0.0.0/8: still refused, as are the other networks.
    expect(first.events.map((e) => e.result)).toEqual([200, 200, 200, 200, -3, -3, -3, -3]);
    expect(s.requests.map((r) => r.url)).toEqual(["/ok", "/ok", "/ok", "/ok"]);
    await t.waitFor<{ agentId: string; ticks: bigint[] }>("verified", (e) => e.agentId === "insider" && e.ticks.includes(1n));
    expect(t.logs.events("replay_divergence")).toEqual([]);
  });
});

describe("requests outside a tick", () => {
  it("agent_init and agent_resume get -3 and send nothing: a load (a restart, a reception not yet durable) never reaches the network, and the agent ticks on", async () => {
    const s = await server((_req, res) => res.end("inside"));
    const t = await startTestNode({ ...LOOPBACK_HTTP, "tick-interval": "20ms", "verify-interval": "1", "tick-timeout": "5s" });
    const path = await writeWat(join(t.dir, "wasm"), "loader", httpAgent([{ url: `${s.url}/ok` }], { phase: "load" }), httpManifest({ timeout_ms: 2000 }));
    await t.node.addAgent({ wasmPath: path });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "loader" && e.tick >= 3n);
    await t.stop();
    expect(i32At(storedHead(t.config.dataDir, "loader")!.state, resultOffset(0))).toBe(-3);
    // Restarted: agent_resume runs the request again, and again it goes nowhere.
    const again = await startTestNode({ ...LOOPBACK_HTTP, "tick-interval": "20ms", "tick-timeout": "5s" }, { dir: t.dir, resumeStored: true });
    const at = storedHead(t.config.dataDir, "loader")!.tick;
    await again.waitFor<TickEvent>("tick", (e) => e.agentId === "loader" && e.tick >= at + 3n);
    expect(s.requests).toEqual([]);
    expect(t.logs.events("replay_divergence")).toEqual([]);
  });
});

describe("an agent that reads its server every tick", () => {
  // Acceptance 37: GET every tick, server stopped → still migrates and audits VALID.
  it("keeps ticking when the server goes (each failed call recorded), migrates, and its whole history on the target audits VALID with no request sent by replay", async () => {
    const s = await server((_req, res) => res.end("price=42"));
    const p2p = { ...LOOPBACK_HTTP, listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "50ms", "migration-timeout": "5s", "peer-refresh": "0", "tick-timeout": "5s" };
    const a = await startTestNode({ ...p2p, "verify-interval": "1" });
    const b = await startTestNode({ ...p2p, "replay-mode": "full", "verify-interval": "1" });
    const path = await writeWat(join(a.dir, "wasm"), "poller", httpAgent([{ url: `${s.url}/price` }]), httpManifest({ allowed_hosts: ["127.0.0.1"], timeout_ms: 1000 }));
    await a.node.addAgent({ wasmPath: path });
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "poller" && e.tick >= 3n);
    await s.close();
    const served = s.requests.length;
    expect(served).toBeGreaterThanOrEqual(3);
    const closedAt = a.node.scheduler.view("poller")!.tick;
    // It still calls every tick; the server is gone, so each call returns -1 and that is what is recorded.
    await a.waitFor<TickEvent>("tick", (e) => e.agentId === "poller" && e.tick >= closedAt + 3n);
    const r = await a.node.migrate("poller", [target(b)]);
    expect(r.outcome).toBe("done");
    const head = b.node.store.head("poller")!.tick;
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "poller" && e.tick >= head + 3n);
    expect(b.logs.events("replay_divergence")).toEqual([]);
    expect(a.logs.events("replay_divergence")).toEqual([]);
    await b.stop();
    expect(i32At(storedHead(b.config.dataDir, "poller")!.state, resultOffset(0))).toBe(-1);
    const audit = igord(["verify", "--replay", "--agent", "poller", "--data-dir", b.config.dataDir]);
    expect(audit.stderr).toBe("");
    expect(audit.stdout).toMatch(/^VALID/);
    expect(audit.stdout).toMatch(/replay: VALID/);
    expect(audit.status).toBe(0);
    // Replays (live, at admission, the audit) served the recorded responses: no request since the server went.
    expect(s.requests).toHaveLength(served);
  });
});

function target(t: TestNode): string {
  const addr = t.node.migration?.addresses()[0];
  if (!addr) throw new Error("node has no p2p address");
  return addr;
}

/** A server whose first answer comes after 300 ms (tick 1's first run outlives a 100-ms lease) and every later one at once. */
async function slowFirstAnswer(): ReturnType<typeof server> {
  let requests = 0;
  return server((_req, res) => {
    if (++requests === 1) setTimeout(() => res.end("slow"), 300);
    else res.end("fast");
  });
}

describe("resume_interrupted", () => {
  it("a discarded tick of an HTTP agent runs again on the agent's own worker: no worker thread is started for the re-run", async () => {
    const s = await slowFirstAnswer();
    const t = await startTestNode({ ...LOOPBACK_HTTP, "tick-interval": "10ms", "lease-duration": "100ms", "lease-grace": "0", "lease-renewal-window": "0.5", "tick-timeout": "5s", "log-level": "debug" });
    const path = await writeWat(join(t.dir, "wasm"), "rerun", httpAgent([{ url: `${s.url}/page` }], { upToTick: 1 }), httpManifest());
    await t.node.addAgent({ wasmPath: path });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "rerun" && e.tick === 1n, 8000);
    expect(t.logs.events("tick_discarded", "rerun").length).toBeGreaterThanOrEqual(1);
    // Started once, when the agent was placed. Before, each discard started a new one, and a re-run
    // that waited out its start-up under load outlived the 100-ms lease again, and again.
    expect(t.logs.events("worker_started").filter((l) => l.dedicated === true)).toHaveLength(1);
  });

  it("answers 1 in the first tick after a tick was discarded (lease lapsed after its request), 0 when nothing was lost", async () => {
    const s = await slowFirstAnswer();
    const t = await startTestNode({ ...LOOPBACK_HTTP, "tick-interval": "10ms", "lease-duration": "100ms", "lease-grace": "0", "lease-renewal-window": "0.5", "verify-interval": "1", "tick-timeout": "5s" });
    const ask = '(import "igor" "resume_interrupted" (func $interrupted (result i32)))';
    // The answer lands in the state (at byte 8) before the request, so replay checks it too.
    const agent = httpAgent([{ url: `${s.url}/page` }], { upToTick: 1, imports: ask }).replace("(if (i32.le_u", "(i32.store (i32.const 8) (call $interrupted)) (if (i32.le_u");
    const path = await writeWat(join(t.dir, "wasm"), "asker", agent, httpManifest());
    await t.node.addAgent({ wasmPath: path });
    const first = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "asker" && e.tick === 1n, 8000);
    expect(t.logs.events("tick_discarded", "asker").length).toBeGreaterThanOrEqual(1);
    expect(first.events.map((e) => [e.id, e.result])).toEqual([[HostcallId.resume_interrupted, 1], [HostcallId.http_request, 200]]);
    const second = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "asker" && e.tick === 2n);
    // 0 when nothing was lost before it; a loaded machine can let the 100 ms lease lapse under tick 2
    // too, and then its committed run answers 1, as tick 1's did.
    const lostBefore2 = t.logs.events("tick_discarded", "asker").some((l) => l.tick === "2");
    expect(second.events.map((e) => [e.id, e.result])).toEqual([[HostcallId.resume_interrupted, lostBefore2 ? 1 : 0]]);
    await t.waitFor<{ agentId: string; ticks: bigint[] }>("verified", (e) => e.agentId === "asker" && e.ticks.includes(1n));
    expect(t.logs.events("replay_divergence")).toEqual([]);
  });
});
