// Code upgrades: `igord upgrade <agent> --wasm new.wasm` on a live daemon continues from the old
// code's state, is a signed lineage event, and verify --replay runs each range with the code that
// ran it; a refused upgrade leaves the old code running and nothing stored changed.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { parseCheckpoint } from "../../src/checkpoint/codec.js";
import { startTestNode, stopAllNodes, storedHead, tempDir } from "../helpers/node.js";
import { upgradeAgent } from "../../src/node/code-upgrade.js";
import { startAgent, stopAgent } from "../../src/node/agent-lifecycle.js";
import type { CheckpointEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { type Daemon, igord, killAll, startDaemon } from "../helpers/process.js";
import { CAPS, wat2wasm, watAgent, writeWat } from "../helpers/wat.js";
import { waitUntil } from "../helpers/wait.js";
import { CLOCK, COUNTER_EXTENDS_LAYOUT, COUNTER_V1, COUNTER_V2 } from "../helpers/upgrade-agents.js";

afterEach(killAll);

const V1 = COUNTER_V1;
const V2 = COUNTER_V2;
/** Resumes with a bump: refused by the replay-rule check. */
const V_BUMPS = watAgent({
  imports: CLOCK,
  omit: ["agent_resume"],
  extra: `(func (export "agent_resume") (param $p i32) (param $n i32)
    (if (i32.eq (local.get $n) (i32.const 4)) (then (global.set $ticks (i32.add (i32.load (local.get $p)) (i32.const 1))))))`,
});

function stateValue(state: Uint8Array): number {
  return new DataView(state.buffer, state.byteOffset, 4).getInt32(0, true);
}

function readStore<T>(data: string, fn: (s: SqliteStore) => T): T {
  const store = SqliteStore.open(join(data, DB_FILE), { readonly: true });
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

const savedAt = (d: Daemon, min: number) => d.waitFor((l) => l.event === "checkpoint_saved" && l.agent === "counter" && Number(l.tick) >= min);

/** An in-process node whose counter (v1) ticked to 3 and was stopped (igord stop): at tick `n`. */
async function stoppedCounter(): Promise<{ t: Awaited<ReturnType<typeof startTestNode>>; n: bigint }> {
  const t = await startTestNode({ "tick-interval": "10ms", "checkpoint-interval": "0" });
  await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "v1"), "counter", V1, CAPS("clock")) });
  await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick >= 3n);
  return { t, n: BigInt((await stopAgent(t.node, "counter")).tick as string) };
}

/** An in-process node whose counter (v1) has ticked to 3 and runs on: with v1's module hash. */
async function runningCounter(flags: Record<string, string>): Promise<{ t: Awaited<ReturnType<typeof startTestNode>>; v1: string | undefined }> {
  const t = await startTestNode({ "tick-interval": "10ms", ...flags });
  await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "v1"), "counter", V1, CAPS("clock")) });
  await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick >= 3n);
  return { t, v1: t.node.store.agent("counter")?.wasmHash };
}

/** New code whose agent_resume never returns: the upgrade's trial of it runs into the tick timeout. */
const HANGS_IN_RESUME = watAgent({ imports: CLOCK, omit: ["agent_resume"], extra: '(func (export "agent_resume") (param i32 i32) (loop $l (br $l)))' });

describe("igord upgrade on a live daemon", () => {
  // Acceptance 41: igord upgrade on a live daemon: same DID, new code continues the state, verify --replay VALID.
  it("the new code continues from the old state under the same DID; the switch is a signed lineage event; verify --replay is VALID across it; refused upgrades change nothing", async () => {
    const dir = tempDir();
    const agents = join(dir, "agents");
    const data = join(dir, "data");
    const wasm = join(dir, "wasm");
    mkdirSync(agents);
    mkdirSync(wasm);
    writeFileSync(join(agents, "counter.wasm"), await wat2wasm(V1));
    writeFileSync(join(agents, "counter.manifest.json"), JSON.stringify(CAPS("clock")));
    writeFileSync(join(wasm, "v2.wasm"), await wat2wasm(V2));
    writeFileSync(join(wasm, "bumps.wasm"), await wat2wasm(V_BUMPS));
    writeFileSync(join(wasm, "noexports.wasm"), await wat2wasm(watAgent({ omit: ["agent_tick"] })));
    const d = startDaemon(["--agents-dir", agents, "--data-dir", data, "--control", "127.0.0.1:0", "--tick-interval", "20ms", "--checkpoint-interval", "100ms"]);
    const port = (await d.waitFor((l) => l.event === "control_listening")).port;
    const ctl = ["--control", `127.0.0.1:${String(port)}`, "--data-dir", data];
    const born = await d.waitFor((l) => l.event === "agent_started" && l.agent === "counter");
    expect(String(born.did)).toMatch(/^did:key:z6Mk/);
    await savedAt(d, 3);

    const up = igord(["upgrade", "counter", "--wasm", join(wasm, "v2.wasm"), ...ctl]);
    expect(up.stderr).toBe("");
    expect(up.status).toBe(0);
    const n = Number(/upgraded at tick (\d+)/.exec(up.stdout)?.[1]);
    expect(n).toBeGreaterThanOrEqual(3);
    const upgraded = await d.waitFor((l) => l.event === "code_upgraded" && l.agent === "counter");
    await savedAt(d, n + 3);

    // Refused: a module that bumps a counter on resume, and one without agent_tick. v2 keeps running.
    const before = readStore(data, (s) => ({ events: s.lineageEvents("counter").length, wasm: s.agent("counter")?.wasmHash }));
    const bumps = igord(["upgrade", "counter", "--wasm", join(wasm, "bumps.wasm"), ...ctl]);
    expect(bumps.status).toBe(1);
    expect(bumps.stderr).toMatch(/UPGRADE_REFUSED/);
    expect(bumps.stderr).toMatch(/AGENT_RESUME_NOT_INVERSE.*agent_resume must be the exact inverse of agent_checkpoint.*the old code keeps running/);
    const noTick = igord(["upgrade", "counter", "--wasm", join(wasm, "noexports.wasm"), ...ctl]);
    expect(noTick.status).toBe(1);
    expect(noTick.stderr).toMatch(/\[WASM_MISSING_EXPORT\] .*agent_tick; the old code keeps running \[UPGRADE_REFUSED\]/);
    expect(readStore(data, (s) => ({ events: s.lineageEvents("counter").length, wasm: s.agent("counter")?.wasmHash }))).toEqual(before);
    const lastTick = Math.max(...d.lines.filter((l) => l.event === "checkpoint_saved" && l.agent === "counter").map((l) => Number(l.tick)));
    await savedAt(d, lastTick + 2);
    expect(igord(["agents", ...ctl]).stdout).toMatch(/^counter\s+running/m);

    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
    // The same DID before and after the switch: every line the daemon logged for the agent names it.
    const dids = new Set(d.lines.filter((l) => l.agent === "counter" && l.did !== undefined).map((l) => l.did));
    expect(dids).toEqual(new Set([born.did]));
    const savedByV2 = d.lines.filter((l) => l.agent === "counter" && l.event === "checkpoint_saved" && Number(l.tick) > n);
    expect(savedByV2.length).toBeGreaterThan(0);
    expect(savedByV2.map((l) => l.did)).toEqual(savedByV2.map(() => born.did));
    // Continued from the old state: n ticks of +1, then +100 per tick.
    const head = readStore(data, (s) => parseCheckpoint(s.head("counter")!.blob));
    expect(stateValue(head.state)).toBe(n + 100 * (Number(head.tick) - n));
    expect(upgraded.from).not.toBe(upgraded.to);

    const verify = igord(["verify", "--agent", "counter", "--replay", "--data-dir", data]);
    expect(verify.stdout).toMatch(/^VALID$/m);
    expect(verify.stdout).toContain(`\ndid: ${String(born.did)}\n`);
    expect(verify.stdout).toMatch(new RegExp(`^upgrade: tick ${n}: wasm ${String(upgraded.from).slice(0, 16)}… -> ${String(upgraded.to).slice(0, 16)}… .*signed$`, "m"));
    expect(verify.stdout).toMatch(/^replay: VALID$/m);
    expect(verify.stdout).toMatch(new RegExp(`^modules: ${String(upgraded.from).slice(0, 16)}… ticks \\d+\\.\\.${n}, ${String(upgraded.to).slice(0, 16)}… ticks ${n + 1}\\.\\.`, "m"));
    expect(verify.status).toBe(0);

    const shown = igord(["lineage", "counter", "--data-dir", data]);
    expect(shown.status).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^#1 code_upgrade tick ${n}: wasm ${String(upgraded.from).slice(0, 16)}… -> ${String(upgraded.to).slice(0, 16)}… \\(after checkpoint [0-9a-f]{16}…\\), signed$`, "m"));

    // An export keeps the upgrade (its kind travels in overrides.json): it verifies and imports.
    const exported = join(dir, "export");
    expect(igord(["export", "counter", "--out", exported, "--data-dir", data]).status).toBe(0);
    const vx = igord(["verify", exported]);
    expect(vx.stdout).toMatch(/^VALID$/m);
    expect(vx.stdout).toMatch(new RegExp(`^upgrade: tick ${n}: `, "m"));
    const imported = igord(["import", exported, "--data-dir", join(dir, "other"), "--control", "off"]);
    expect(imported.stderr).toBe("");
    expect(imported.status).toBe(0);

    // Without its signed lineage event, the change of module is a break in the history.
    const db = new Database(join(data, DB_FILE));
    db.prepare("DELETE FROM lineage_events WHERE kind = 'code_upgrade'").run();
    db.close();
    const tampered = igord(["verify", "--agent", "counter", "--data-dir", data]);
    expect(tampered.status).toBe(1);
    expect(tampered.stdout).toMatch(/^INVALID$/m);
    expect(tampered.stdout).toMatch(new RegExp(`reason: .*WASM changed from ${String(upgraded.from).slice(0, 16)}… to ${String(upgraded.to).slice(0, 16)}… without a signed code upgrade`));
  });
});

describe("migration after a code upgrade", () => {
  afterEach(stopAllNodes);
  const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "50ms", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };

  it("ships both modules; the target's admission replay runs each window with the module that recorded it, and the agent continues there", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode({ ...P2P, "replay-mode": "full" });
    const v1 = await writeWat(join(a.dir, "wasm"), "counter", V1, CAPS("clock"));
    const v2 = await writeWat(join(a.dir, "v2"), "counter", V2, CAPS("clock"));
    await a.node.addAgent({ wasmPath: v1 });
    await a.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "counter" && e.reason === "periodic" && e.outcome === "written" && e.tick >= 3n);
    const up = await upgradeAgent(a.node, "counter", v2);
    const n = BigInt(up.tick as string);
    await a.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "counter" && e.reason === "periodic" && e.outcome === "written" && e.tick >= n + 3n);

    const r = await a.node.migrate("counter", [b.node.migration!.addresses()[0]!]);
    expect(r.outcome).toBe("done");
    const received = b.logs.events("migration_received", "counter")[0]!;
    const head = parseCheckpoint(b.node.store.head("counter")!.blob);
    // Full admission replay: every tick from genesis, across both modules.
    expect(Number(received.replayed)).toBe(Number(head.tick));
    expect(head.tick).toBeGreaterThan(n + 2n);
    expect(b.node.store.wasm(up.fromWasm as string)).toBeDefined();
    expect(b.node.store.agent("counter")?.wasmHash).toBe(up.toWasm);
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick === head.tick + 2n);
    await b.stop();
    const there = storedHead(b.config.dataDir, "counter")!;
    expect(stateValue(there.state)).toBe(Number(n) + 100 * (Number(there.tick) - Number(n)));
  });
});

describe("upgrading a stopped agent", () => {
  afterEach(stopAllNodes);

  it("keeps it stopped; igord start then resumes the old code's head with the new code", async () => {
    const { t, n } = await stoppedCounter();
    const v2again = await writeWat(join(t.dir, "v2"), "counter", V2, CAPS("clock"));
    const up = await upgradeAgent(t.node, "counter", v2again);
    expect(up).toMatchObject({ tick: String(n), status: "stopped" });
    // One upgrade at a time per agent.
    const v3 = await writeWat(join(t.dir, "v3"), "counter", watAgent({ imports: CLOCK, onTick: "(drop (call $clock)) (nop)" }), CAPS("clock"));
    const [first, second] = await Promise.allSettled([upgradeAgent(t.node, "counter", v2again), upgradeAgent(t.node, "counter", v3)]);
    expect(first.status === "rejected" ? (first.reason as Error).message : "").toMatch(/already runs/);
    expect(second.status === "rejected" ? (second.reason as Error).message : "").toMatch(/already under way/);
    expect(t.node.scheduler.view("counter")?.status).toBe("stopped");
    await startAgent(t.node, "counter");
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick === n + 2n);
    await t.stop();
    expect(stateValue(storedHead(t.config.dataDir, "counter")!.state)).toBe(Number(n) + 200);
  });
});

describe("two upgrades before the new code checkpoints", () => {
  afterEach(stopAllNodes);

  it("a stopped agent upgraded twice starts with the newest code, and its lineage verifies with replay", async () => {
    const { t, n } = await stoppedCounter();
    // v3 counts +1 per tick as v1 does; v2 (+100) never runs a tick.
    const v3 = watAgent({ imports: CLOCK, onTick: "(drop (call $clock)) (nop)" });
    await upgradeAgent(t.node, "counter", await writeWat(join(t.dir, "v2"), "counter", V2, CAPS("clock")));
    await upgradeAgent(t.node, "counter", await writeWat(join(t.dir, "v3"), "counter", v3, CAPS("clock")));
    // It failed CHECKPOINT_WASM_MISMATCH: the second upgrade was recorded from v2, which made no checkpoint.
    await startAgent(t.node, "counter");
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick === n + 2n);
    // Its shutdown checkpoint is the new code's first.
    await t.stop();
    expect(stateValue(storedHead(t.config.dataDir, "counter")!.state)).toBeGreaterThanOrEqual(Number(n) + 2);
    expect(stateValue(storedHead(t.config.dataDir, "counter")!.state)).toBeLessThan(Number(n) + 100);
    const verify = igord(["verify", "--agent", "counter", "--replay", "--data-dir", t.config.dataDir]);
    expect(verify.stdout).toMatch(/^VALID$/m);
    expect(verify.stdout).toMatch(/^replay: VALID$/m);
    expect(verify.status).toBe(0);
  });
});

describe("an upgrade that extends the state's layout (docs/SDK.md: new fields at the end, read only when present)", () => {
  afterEach(stopAllNodes);

  const V_EXTENDED = COUNTER_EXTENDS_LAYOUT;

  it("is taken live and at a start from the old code's head, and verifies with replay (it was refused AGENT_RESUME_NOT_INVERSE)", async () => {
    // Stopped, upgraded, started: the new code starts from the old code's head (its 4-byte state).
    const { t, n } = await stoppedCounter();
    await upgradeAgent(t.node, "counter", await writeWat(join(t.dir, "ext"), "counter", V_EXTENDED, CAPS("clock")));
    await startAgent(t.node, "counter");
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick === n + 3n);
    await t.stop();
    const state = storedHead(t.config.dataDir, "counter")!.state;
    expect(state.length).toBe(8);
    expect(new DataView(state.buffer, state.byteOffset, 8).getInt32(4, true)).toBeGreaterThanOrEqual(1003);
    const verify = igord(["verify", "--agent", "counter", "--replay", "--data-dir", t.config.dataDir]);
    expect(verify.stdout).toMatch(/^replay: VALID$/m);
    expect(verify.status).toBe(0);
  });
});

describe("an upgrade whose new code overruns the tick timeout", () => {
  afterEach(stopAllNodes);

  it("is refused as a timeout of the new code, says the old code keeps running (not that the agent was stopped: the watchdog names what it did, terminate the worker), and the old code ticks on", async () => {
    const { t, v1 } = await runningCounter({ "tick-timeout": "300ms" });
    const failure = await upgradeAgent(t.node, "counter", await writeWat(join(t.dir, "v2"), "counter", HANGS_IN_RESUME, CAPS("clock"))).then(
      () => null,
      (e: unknown) => e as { code: string; message: string; details?: Record<string, unknown> },
    );
    expect(failure?.code).toBe("UPGRADE_REFUSED");
    expect(failure?.details?.cause).toBe("TICK_TIMEOUT");
    expect(failure?.message).toMatch(/\[TICK_TIMEOUT\] agent "counter" ran \d+ms in agent_resume, past the 300ms tick timeout; its worker was terminated; the old code keeps running$/);
    expect(failure?.message).not.toMatch(/the agent was stopped/);
    const at = t.node.scheduler.view("counter")?.tick ?? 0n;
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick > at);
    expect(t.node.store.agent("counter")?.wasmHash).toBe(v1);
  });
});

describe("a node stopped during an upgrade", () => {
  afterEach(stopAllNodes);

  it("resumes the agent the upgrade had paused at its next start, with the old code when the upgrade never finished", async () => {
    const { t, v1 } = await runningCounter({ "tick-timeout": "3s" });
    // The new code's agent_resume never returns: the upgrade holds the agent paused for the tick timeout.
    const upgrading = upgradeAgent(t.node, "counter", await writeWat(join(t.dir, "v2"), "counter", HANGS_IN_RESUME, CAPS("clock"))).then(
      () => null,
      (e: unknown) => e,
    );
    await waitUntil(() => t.node.store.agent("counter")?.reason === "code_upgrade");
    await t.stop();
    expect(await upgrading).not.toBeNull();
    // Stored stopped, reason code_upgrade: it stayed stopped at every later start, its file held as a stale binary.
    const again = await startTestNode({ "tick-interval": "10ms" }, { dir: t.dir, resumeStored: true });
    await again.waitFor<TickEvent>("tick", (e) => e.agentId === "counter");
    expect(again.node.store.agent("counter")?.status).toBe("active");
    expect(again.node.store.agent("counter")?.wasmHash).toBe(v1);
  });
});

describe("migration right after a code upgrade", () => {
  afterEach(stopAllNodes);

  it("a head still written by the old code moves with the signed upgrade after it, and the new code runs on the target", async () => {
    const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "checkpoint-interval": "0", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };
    // The source never ticks it: its only checkpoint is v1's genesis, followed by the upgrade.
    const a = await startTestNode({ ...P2P, "tick-interval": "1h", "lease-duration": "2h" });
    const b = await startTestNode({ ...P2P, "tick-interval": "10ms" });
    await a.node.addAgent({ wasmPath: await writeWat(join(a.dir, "wasm"), "counter", V1, CAPS("clock")) });
    const up = await upgradeAgent(a.node, "counter", await writeWat(join(a.dir, "v2"), "counter", V2, CAPS("clock")));
    expect(up.tick).toBe("0");
    const r = await a.node.migrate("counter", [b.node.migration!.addresses()[0]!]);
    expect(r.error ?? null).toBeNull();
    expect(r.outcome).toBe("done");
    await b.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick === 2n);
    await b.stop();
    expect(stateValue(storedHead(b.config.dataDir, "counter")!.state)).toBe(200);
  });
});

describe("a changed file in the agents dir", () => {
  async function counterDaemon(extra: string[] = []): Promise<{ d: Daemon; ctl: string[]; file: string }> {
    const dir = tempDir();
    const agents = join(dir, "agents");
    const data = join(dir, "data");
    mkdirSync(agents);
    const file = join(agents, "counter.wasm");
    writeFileSync(file, await wat2wasm(V1));
    writeFileSync(join(agents, "counter.manifest.json"), JSON.stringify(CAPS("clock")));
    const d = startDaemon(["--agents-dir", agents, "--data-dir", data, "--control", "127.0.0.1:0", "--tick-interval", "20ms", "--checkpoint-interval", "100ms", ...extra]);
    const port = (await d.waitFor((l) => l.event === "control_listening")).port;
    await savedAt(d, 2);
    return { d, ctl: ["--control", `127.0.0.1:${String(port)}`, "--data-dir", data], file };
  }

  it("is shown as a stale binary with the command to run, not as an error; running that command upgrades the agent", async () => {
    const { d, ctl, file } = await counterDaemon();
    writeFileSync(file, await wat2wasm(V2));
    const stale = await d.waitFor((l) => l.event === "agent_stale_binary" && l.agent === "counter");
    expect(stale.level).toBe(40);
    expect(d.lines.filter((l) => l.event === "agent_load_failed")).toEqual([]);
    const row = igord(["agents", ...ctl]).stdout.split("\n").find((l) => l.startsWith("counter"));
    expect(row).toMatch(new RegExp(`^counter\\s+running\\s+.*stale binary: run igord upgrade counter --wasm ${file}$`));
    expect(igord(["status", ...ctl]).stdout).toMatch(/1 with a stale binary in the agents dir/);
    const command = /run (igord upgrade .*)$/.exec(row ?? "")?.[1]?.split(" ").slice(1) ?? [];
    const up = igord([...command, ...ctl]);
    expect(up.status).toBe(0);
    expect(igord(["agents", ...ctl]).stdout).not.toMatch(/stale binary/);
    expect(igord(["status", ...ctl]).stdout).not.toMatch(/stale binary/);
  });

  it("upgrades its running agent when the daemon runs with --upgrade-agents-dir true", async () => {
    const { d, ctl, file } = await counterDaemon(["--upgrade-agents-dir", "true"]);
    writeFileSync(file, await wat2wasm(V2));
    const upgraded = await d.waitFor((l) => l.event === "code_upgraded" && l.agent === "counter");
    expect(upgraded.path).toBe(file);
    await savedAt(d, Number(upgraded.tick) + 2);
    expect(d.lines.filter((l) => l.event === "agent_stale_binary")).toEqual([]);
    expect(igord(["agents", ...ctl]).stdout).toMatch(/^counter\s+running/m);
    // A change the upgrade refuses is reported as that file's failed load; v2 keeps running.
    writeFileSync(file, await wat2wasm(V_BUMPS));
    const failed = await d.waitFor((l) => l.event === "agent_load_failed" && l.path === file);
    expect(failed.code).toBe("UPGRADE_REFUSED");
    const last = Math.max(...d.lines.filter((l) => l.event === "checkpoint_saved" && l.agent === "counter").map((l) => Number(l.tick)));
    await savedAt(d, last + 2);
    const list = igord(["agents", ...ctl]).stdout;
    expect(list).toMatch(/^counter\s+running/m);
    expect(list).toMatch(/counter\.wasm {2}\[UPGRADE_REFUSED\] upgrade of "counter" refused: \[AGENT_RESUME_NOT_INVERSE\]/);
  });

  it("with --upgrade-agents-dir true, a fixed build takes an agent its previous build failed, and starts it again (npm run dev's broken save, then the fix)", async () => {
    const t = await startTestNode({ "tick-interval": "50ms", "upgrade-agents-dir": "true" }, { watch: true });
    const agents = join(t.dir, "agents");
    mkdirSync(agents, { recursive: true });
    const file = join(agents, "counter.wasm");
    writeFileSync(join(agents, "counter.manifest.json"), JSON.stringify(CAPS("clock")));
    writeFileSync(file, await wat2wasm(V1));
    await waitUntil(() => (t.node.scheduler.view("counter")?.tick ?? 0n) >= 3n, { timeoutMs: 15_000 });
    writeFileSync(file, await wat2wasm(watAgent({ imports: CLOCK, onTick: "(drop (call $clock)) unreachable" })));
    await waitUntil(() => t.node.scheduler.view("counter")?.status === "failed", { timeoutMs: 15_000 });
    const failedAt = t.node.scheduler.view("counter")?.tick ?? 0n;
    writeFileSync(file, await wat2wasm(V2));
    // It was called a stale binary, with the advice to run with --upgrade-agents-dir true.
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counter" && e.tick >= failedAt + 2n, 15_000);
    expect(t.node.scheduler.view("counter")?.status).toBe("running");
    expect(t.logs.events("agent_stale_binary")).toEqual([]);
    expect(t.logs.events("code_upgraded", "counter")).toHaveLength(2);
  });
});
