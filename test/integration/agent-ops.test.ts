// igord stop / start / remove against a real daemon process: a stopped agent leaves its worker and
// stays stopped across a restart (its file in the agents dir included), start resumes it where it
// stopped, remove retires it with its history kept and verifiable, and its file is not re-created.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OPERATOR_STOP_INTERRUPTED, startAgent, stopAgent } from "../../src/node/agent-lifecycle.js";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { upgradeAgent } from "../../src/node/code-upgrade.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { agentsDirWith, AS_FIXTURES, startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { CAPS, writeWat } from "../helpers/wat.js";
import { httpManifest, LOOPBACK_HTTP, payAgent, startServer, type TestServer } from "../helpers/http-agent.js";
import { waitUntil } from "../helpers/wait.js";
import { type Daemon, igord, killAll, startDaemon } from "../helpers/process.js";

afterEach(killAll);

async function daemon(agents: string, data: string): Promise<{ d: Daemon; ctl: string[] }> {
  const d = startDaemon(["--agents-dir", agents, "--data-dir", data, "--control", "127.0.0.1:0", "--tick-interval", "30ms", "--checkpoint-interval", "200ms"]);
  const port = (await d.waitFor((l) => l.event === "control_listening")).port;
  await d.waitFor((l) => l.event === "agents_loaded");
  return { d, ctl: ["--control", `127.0.0.1:${String(port)}`, "--data-dir", data] };
}

const tickOf = (l: Record<string, unknown>): number => Number(/tick (\d+)/.exec(String(l.msg))?.[1] ?? -1);
const heartbeatTicks = (d: Daemon): number[] => d.lines.filter((l) => l.event === "agent_log" && l.agent === "heartbeat" && /tick \d+/.test(String(l.msg))).map(tickOf);

describe("igord stop / start / remove on a live daemon", () => {
  it("stop leaves the worker and holds across a restart; start resumes where it stopped; remove keeps a verifiable history and the file is not re-created", async () => {
    const { agents, data } = agentsDirWith(["heartbeat", "survivor"]);
    let { d, ctl } = await daemon(agents, data);
    await d.waitFor((l) => l.event === "agent_log" && l.agent === "heartbeat" && tickOf(l) >= 3);

    const stop = igord(["stop", "heartbeat", ...ctl]);
    expect(stop.stderr).toBe("");
    expect(stop.status).toBe(0);
    const stoppedAt = Number(/at tick (\d+)/.exec(stop.stdout)?.[1]);
    expect(stop.stdout).toMatch(/^heartbeat: stopped at tick \d+$/m);
    // Out of its worker: survivor keeps ticking, heartbeat never passes the tick it stopped at.
    const survivorNow = d.lines.filter((l) => l.event === "agent_log" && l.agent === "survivor").length;
    await d.waitFor(() => d.lines.filter((l) => l.event === "agent_log" && l.agent === "survivor").length >= survivorNow + 5);
    expect(Math.max(...heartbeatTicks(d))).toBe(stoppedAt);
    // operator_stop_interrupted when the stop threw away a tick in flight (whether one was is timing).
    expect(igord(["agents", ...ctl]).stdout).toMatch(/^heartbeat\s+stopped\s+\d+\s+\S+\s+\S+\s+operator_stop(_interrupted)?$/m);

    // A restart: the stored agent and its file in the agents dir both stay stopped.
    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
    ({ d, ctl } = await daemon(agents, data));
    const held = await d.waitFor((l) => l.event === "agent_file_held" && l.agent === "heartbeat");
    expect(held.code).toBe("AGENT_STOPPED");
    expect(d.lines.filter((l) => l.event === "agent_load_failed")).toEqual([]);
    await d.waitFor((l) => l.event === "agent_log" && l.agent === "survivor");
    expect(heartbeatTicks(d)).toEqual([]);
    expect(igord(["agents", ...ctl]).stdout).toMatch(new RegExp(`^heartbeat\\s+stopped\\s+${stoppedAt}\\s+.*operator_stop(_interrupted)?$`, "m"));

    const start = igord(["start", "heartbeat", ...ctl]);
    expect(start.status).toBe(0);
    expect(start.stdout).toMatch(/^heartbeat: running at tick \d+$/m);
    const next = await d.waitFor((l) => l.event === "agent_log" && l.agent === "heartbeat" && /tick \d+/.test(String(l.msg)));
    expect(tickOf(next)).toBe(stoppedAt + 1);
    expect(igord(["agents", ...ctl]).stdout).toMatch(/^heartbeat\s+running/m);

    await d.waitFor((l) => l.event === "agent_log" && l.agent === "heartbeat" && tickOf(l) >= stoppedAt + 3);
    const remove = igord(["remove", "heartbeat", ...ctl]);
    expect(remove.status).toBe(0);
    expect(remove.stdout).toMatch(/^heartbeat: removed at tick \d+$/m);
    expect(igord(["agents", ...ctl]).stdout).not.toMatch(/^heartbeat/m);
    expect(igord(["agents", "--all", ...ctl]).stdout).toMatch(/^heartbeat\s+removed\s+\d+\s+.*operator_remove$/m);
    const again = igord(["start", "heartbeat", ...ctl]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/AGENT_REMOVED/);

    // Another restart: the file left in the agents dir does not bring it back.
    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
    ({ d, ctl } = await daemon(agents, data));
    expect((await d.waitFor((l) => l.event === "agent_file_held" && l.agent === "heartbeat")).code).toBe("AGENT_REMOVED");
    await d.waitFor((l) => l.event === "agent_log" && l.agent === "survivor");
    expect(heartbeatTicks(d)).toEqual([]);
    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);

    // Its history is intact: the chain and the audit replay of every stored window.
    const verify = igord(["verify", "--agent", "heartbeat", "--replay", "--data-dir", data]);
    expect(verify.stdout).toMatch(/VALID/);
    expect(verify.stdout).not.toMatch(/INVALID/);
    expect(verify.status).toBe(0);
  });
});

describe("operator stops are clean ends", () => {
  afterEach(stopAllNodes);

  it("after igord stop + start, and after an upgrade, resume_interrupted answers 0: an InFlight intent stays InFlight", async () => {
    const t = await startTestNode({ "tick-interval": "5ms", "checkpoint-interval": "0" });
    const dir = join(t.dir, "wasm");
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(AS_FIXTURES, "effects.wasm"), join(dir, "effects.wasm"));
    writeFileSync(join(dir, "effects.manifest.json"), JSON.stringify(CAPS("log")));
    const logs = (): string[] => t.logs.events("agent_log", "effects").map((l) => String(l.msg));
    await t.node.addAgent({ wasmPath: join(dir, "effects.wasm") });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "effects" && e.tick === 2n);
    const stopped = await stopAgent(t.node, "effects");
    await startAgent(t.node, "effects");
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "effects" && e.tick === BigInt(stopped.tick as string) + 1n);
    // IntentState.InFlight = 2 (Unresolved = 4 would mean the host said the stop was an interruption).
    expect(logs().at(-1)).toBe("state 2 unresolved 0");

    // The same code under another hash (a custom section appended): an upgrade is a clean end too.
    const bytes = readFileSync(join(dir, "effects.wasm"));
    const v2 = join(t.dir, "effects-v2.wasm");
    writeFileSync(v2, Buffer.concat([bytes, Buffer.from([0, 3, 2, 0x76, 0x32])]));
    const up = await upgradeAgent(t.node, "effects", v2);
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "effects" && e.tick === BigInt(up.tick as string) + 1n);
    expect(logs().at(-1)).toBe("state 2 unresolved 0");
  });
});

describe("a stop while a tick is in flight", () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((x) => x.close()));
    await stopAllNodes();
  });

  /**
   * A node running "getter", whose tick 1 asks resume_interrupted (kept in its state), then GETs a
   * server that holds each answer until `answer()`: tick 1 is in flight once `requested` resolves.
   */
  async function getterInFlight(): Promise<{ t: TestNode; s: TestServer; wasmPath: string; answer: () => void; requested: (n: number) => Promise<void> }> {
    const held: (() => void)[] = [];
    const s = await startServer((_req, res) => void held.push(() => res.end("ok")));
    servers.push(s);
    const t = await startTestNode({ ...LOOPBACK_HTTP, "tick-interval": "10ms", "checkpoint-interval": "0", "tick-timeout": "10s" });
    const wasmPath = await writeWat(join(t.dir, "v1"), "getter", payAgent([], { interrupted: true, httpFirst: `${s.url}/once`, upToTick: 1 }), httpManifest({}, ["x402", "wallet"]));
    await t.node.addAgent({ wasmPath });
    const requested = (n: number) => waitUntil(() => s.requests.length >= n, { what: `request ${n} at the server` });
    await requested(1);
    return { t, s, wasmPath, answer: () => held.shift()?.(), requested };
  }

  const reRunHears = async (t: TestNode): Promise<number | undefined> =>
    (await t.waitFor<TickEvent>("tick", (e) => e.agentId === "getter" && e.tick === 1n)).events.find((e) => e.id === HostcallId.resume_interrupted)?.result;

  it("throws that tick away and is no clean end: stored operator_stop_interrupted, and after a start the re-run hears resume_interrupted 1 (its first run's request already went)", async () => {
    const { t, answer, requested } = await getterInFlight();
    const stopped = await stopAgent(t.node, "getter");
    expect(stopped.tick).toBe("0");
    expect(t.node.store.agent("getter")).toMatchObject({ status: "stopped", reason: OPERATOR_STOP_INTERRUPTED });
    answer();
    await startAgent(t.node, "getter");
    await requested(2);
    answer();
    expect(await reRunHears(t)).toBe(1);
  });

  it("so is a code upgrade's pause: the new code's re-run of the thrown-away tick hears resume_interrupted 1", async () => {
    const { t, wasmPath, answer, requested } = await getterInFlight();
    // The same code under another hash (a custom section appended).
    const v2 = join(t.dir, "getter-v2.wasm");
    writeFileSync(v2, Buffer.concat([readFileSync(wasmPath), Buffer.from([0, 3, 2, 0x76, 0x32])]));
    expect((await upgradeAgent(t.node, "getter", v2)).tick).toBe("0");
    answer();
    await requested(2);
    answer();
    expect(await reRunHears(t)).toBe(1);
  });
});
