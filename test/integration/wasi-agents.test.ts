// Agents from other toolchains, end to end on real nodes: the committed C agents (freestanding and
// wasi-libc with printf/time()) and a TinyGo-shaped WASI module load from agents/, tick, verify by
// replay, survive a restart, migrate with admission replay and audit VALID; proc_exit stops or fails
// an agent at its last committed tick.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentView, DivergenceEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, ROOT, startTestNode, stopAllNodes, storedHead, type TestNode, tempDir } from "../helpers/node.js";
import { igord, killAll, startDaemon } from "../helpers/process.js";
import { CAPS, wat2wasm, watAgent, writeWat } from "../helpers/wat.js";

afterEach(async () => {
  killAll();
  await stopAllNodes();
});

const TINYGO = readFileSync(join(ROOT, "test", "fixtures", "wasi", "tinygo-shaped.wat"), "utf8");
const AGENTS = ["c-ticker", "c-wasi-clock", "tinygo-shaped"] as const;
const FAST = { "tick-interval": "10ms", "checkpoint-interval": "40ms", "verify-interval": "3" };
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };

/** The three agents, as a user drops them into agents/ (each with its manifest: clock and log). */
async function fillAgentsDir(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const name of ["c-ticker", "c-wasi-clock"]) {
    copyFileSync(join(EXAMPLES, `${name}.wasm`), join(dir, `${name}.wasm`));
    copyFileSync(join(EXAMPLES, `${name}.manifest.json`), join(dir, `${name}.manifest.json`));
  }
  writeFileSync(join(dir, "tinygo-shaped.wasm"), await wat2wasm(TINYGO));
  writeFileSync(join(dir, "tinygo-shaped.manifest.json"), JSON.stringify(CAPS("clock", "log")));
}

/** Waits until every agent has had at least `n` ticks verified by replay on this node. */
async function verifiedTicks(t: TestNode, n: number): Promise<void> {
  for (const id of AGENTS) {
    let seen = 0;
    await t.waitFor<{ agentId: string; ticks: bigint[] }>("verified", (e) => e.agentId === id && (seen += e.ticks.length) >= n, 15_000);
  }
}

/** Ticks counted in the agent's own state (every one keeps a u64 tick counter first). */
const counter = (state: Uint8Array): bigint => new DataView(state.buffer, state.byteOffset).getBigUint64(0, true);

function agentLines(t: TestNode, id: string): string[] {
  return t.logs.events("agent_log", id).map((l) => String(l.msg));
}

describe("agents from other toolchains", () => {
  // Acceptance 39: clang wasm32, wasm32-wasi reactor (printf, time()), TinyGo-shaped: load, tick, verify, print, restart, audit VALID.
  it("the C agents and a TinyGo-shaped module load from agents/, tick, verify by replay, survive a restart, and audit VALID", async () => {
    const t = await startTestNode(FAST, { watch: true, start: false });
    await fillAgentsDir(t.config.agentsDir);
    await t.node.start();
    await t.node.whenLoaded();
    expect(t.logs.events("agent_load_failed")).toEqual([]);
    await verifiedTicks(t, 6);
    const divergences: DivergenceEvent[] = t.logs.events("replay_divergence") as unknown as DivergenceEvent[];
    expect(divergences).toEqual([]);
    // printf and time() became the agent's log, from the recorded clock; the runtime's init line too.
    expect(agentLines(t, "c-wasi-clock")[0]).toMatch(/^c-wasi-clock: tick 1 at \d{10} \(0 s since the first\)$/);
    expect(agentLines(t, "c-ticker")[0]).toMatch(/^c-ticker: tick 1, 0 ms since the first$/);
    expect(agentLines(t, "tinygo-shaped").slice(0, 3)).toEqual(["runtime initialised", "tinygo-shaped: tick 1", "tinygo-shaped: tick 2"]);
    await t.stop();
    const before = Object.fromEntries(AGENTS.map((id) => [id, storedHead(t.config.dataDir, id)!]));
    for (const id of AGENTS) expect(counter(before[id]!.state), id).toBe(before[id]!.tick);

    const t2 = await startTestNode(FAST, { dir: t.dir, resumeStored: true });
    for (const id of AGENTS) {
      const next = await t2.waitFor<TickEvent>("tick", (e) => e.agentId === id);
      expect(next.tick, id).toBe(before[id]!.tick + 1n);
    }
    await verifiedTicks(t2, 3);
    expect(t2.logs.events("replay_divergence")).toEqual([]);
    await t2.stop();
    for (const id of AGENTS) {
      const head = storedHead(t2.config.dataDir, id)!;
      expect(counter(head.state), id).toBe(head.tick);
      const audit = igord(["verify", "--replay", "--agent", id, "--data-dir", t2.config.dataDir]);
      expect(audit.stdout, `${id}: ${audit.stdout}${audit.stderr}`).toMatch(/replay: VALID/);
      expect(audit.stdout).toMatch(/replayed \d+ ticks \(1\.\.\d+\) from the checkpoint at tick 0/);
      expect(audit.status).toBe(0);
    }
  });

  it("each migrates between two nodes with admission replay and keeps ticking from its state", async () => {
    const a = await startTestNode({ ...FAST, ...P2P }, { watch: true, start: false });
    const b = await startTestNode({ ...FAST, ...P2P, "checkpoint-interval": "0" });
    await fillAgentsDir(a.config.agentsDir);
    await a.node.start();
    await a.node.whenLoaded();
    const addr = b.node.migration!.addresses()[0]!;
    for (const id of AGENTS) {
      await a.waitFor<TickEvent>("tick", (e) => e.agentId === id && e.tick >= 5n);
      const r = await a.node.migrate(id, [addr]);
      expect(r.outcome, `${id}: ${JSON.stringify(r.error)}`).toBe("done");
      const received = b.logs.events("migration_received").find((l) => l.agent === id);
      expect(Number(received?.replayed), id).toBeGreaterThan(0);
      const moved = await b.waitFor<TickEvent>("tick", (e) => e.agentId === id);
      expect(moved.tick).toBe(storedHead(b.config.dataDir, id)!.tick + 1n);
    }
    await verifiedTicks(b, 3);
    expect(b.logs.events("replay_divergence")).toEqual([]);
    await b.stop();
    for (const id of AGENTS) {
      const audit = igord(["verify", "--replay", "--agent", id, "--data-dir", b.config.dataDir]);
      expect(audit.stdout, `${id}: ${audit.stdout}${audit.stderr}`).toMatch(/replay: VALID/);
      expect(audit.status).toBe(0);
    }
  });
});

describe("foreign agents on the real daemon (acceptance 39)", () => {
  // Acceptance 39: the same on the real daemon.
  it("the igord binary runs them from its agents dir, prints their lines, resumes them after SIGTERM, and audits them VALID", async () => {
    const dir = tempDir();
    const agentsDir = join(dir, "agents");
    await fillAgentsDir(agentsDir);
    const args = ["--agents-dir", agentsDir, "--data-dir", join(dir, "data"), "--control", "off", "--tick-interval", "10ms", "--checkpoint-interval", "30ms", "--verify-interval", "3", "--log-level", "debug"];
    const first = startDaemon(args);
    for (const id of AGENTS) await first.waitFor((l) => l.event === "replay_verified" && l.agent === id);
    const printed = await first.waitFor((l) => l.event === "agent_log" && l.agent === "c-wasi-clock");
    expect(printed.msg).toMatch(/^c-wasi-clock: tick 1 at \d{10} \(0 s since the first\)$/);
    first.child.kill("SIGTERM");
    expect(await first.exit).toBe(0);
    const stoppedAt = Object.fromEntries(AGENTS.map((id) => [id, storedHead(join(dir, "data"), id)!.tick]));
    const second = startDaemon(args);
    for (const id of AGENTS) {
      await second.waitFor((l) => l.event === "agent_started" && l.agent === id && l.tick === String(stoppedAt[id]));
      await second.waitFor((l) => l.event === "replay_verified" && l.agent === id);
    }
    second.child.kill("SIGTERM");
    expect(await second.exit).toBe(0);
    expect([...first.lines, ...second.lines].filter((l) => l.event === "replay_divergence" || l.event === "agent_failed")).toEqual([]);
    for (const id of AGENTS) {
      const audit = igord(["verify", "--replay", "--agent", id, "--data-dir", join(dir, "data")]);
      expect(audit.stdout, id).toMatch(/replay: VALID/);
      expect(audit.status).toBe(0);
    }
  });
});

describe("proc_exit", () => {
  const exitAt = (code: number) =>
    watAgent({
      imports: '(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))',
      onTick: `(if (i32.eq (global.get $ticks) (i32.const 4)) (then (call $exit (i32.const ${code})) unreachable))`,
    });

  it("proc_exit(0) stops the agent cleanly at its last committed tick; its budget paid for exactly those ticks", async () => {
    const t = await startTestNode(FAST, { start: false });
    const path = await writeWat(t.dir, "quitter", exitAt(0), CAPS());
    await t.node.start();
    await t.node.addAgent({ wasmPath: path, budget: 1_000_000n });
    const stopped = await t.waitFor<AgentView>("stopped", (v) => v.id === "quitter");
    expect([stopped.status, stopped.reason, stopped.tick]).toEqual(["stopped", "agent_exit", 3n]);
    expect(stopped.error).toBeNull();
    await t.node.scheduler.settled();
    const head = storedHead(t.config.dataDir, "quitter")!;
    expect([head.tick, head.status, head.statusReason]).toEqual([3n, "stopped", "agent_exit"]);
    expect(new DataView(head.state.buffer, head.state.byteOffset).getUint32(0, true)).toBe(3);
    expect(head.budget).toBe(stopped.budget);
    const ticks = t.logs.events("tick", "quitter");
    expect(ticks.map((l) => l.tick)).toEqual(["1", "2", "3"]);
    expect(1_000_000n - head.budget).toBe(ticks.reduce((s, l) => s + BigInt(String(l.cost)), 0n));
    await t.stop();
    const v = igord(["verify", "--agent", "quitter", "--data-dir", t.config.dataDir]);
    expect(v.stdout).toMatch(/^VALID/);
  });

  it("proc_exit with another code fails the agent with that code; its state is the last committed tick", async () => {
    const t = await startTestNode(FAST, { start: false });
    const path = await writeWat(t.dir, "crasher", exitAt(3), CAPS());
    await t.node.start();
    await t.node.addAgent({ wasmPath: path });
    const failed = await t.waitFor<AgentView>("stopped", (v) => v.id === "crasher");
    expect([failed.status, failed.reason, failed.error?.code]).toEqual(["failed", "agent_exit", "AGENT_EXIT"]);
    expect(failed.error?.message).toMatch(/proc_exit\(3\) during agent_tick/);
    await t.node.scheduler.settled();
    const head = storedHead(t.config.dataDir, "crasher")!;
    expect([head.tick, head.status]).toEqual([3n, "failed"]);
    expect(t.logs.events("agent_failed", "crasher")[0]?.details).toMatchObject({ exitCode: 3 });
  });
});
