// Continuous self-verification: deterministic agents verify under every mode, a nondeterministic
// agent diverges and each policy does what it says, and a replay that hangs cannot stall the node.
import { join } from "node:path";
import { DB_FILE } from "../../src/store/sqlite-store.js";
import { startAgent } from "../../src/node/agent-lifecycle.js";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentView, DivergenceEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, storedHead, type TestNode } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";
import type { ReplayWindow } from "../../src/replay/window.js";
import { segmentsDb } from "../helpers/checkpoint-store.js";
import { MASKED_BY_NEXT_TICK_AGENT } from "../helpers/replay-agents.js";

afterEach(stopAllNodes);

const CLOCK = '(import "igor" "clock_now" (func $clock (result i64)))';
// A hidden input: $hidden is not in the checkpoint, so a replay from the pre-state computes another state.
const NONDETERMINISTIC = watAgent({
  imports: CLOCK,
  onTick: `(global.set $hidden (i32.add (global.get $hidden) (i32.const 7)))
    (global.set $ticks (i32.add (global.get $ticks) (global.get $hidden)))
    (drop (call $clock))`,
  extra: "(global $hidden (mut i32) (i32.const 0))",
});
// Ticks normally live; but an instance that was resumed (as every replay instance is) spins forever.
const HANGS_IN_REPLAY = watAgent({
  imports: CLOCK,
  omit: ["agent_resume"],
  onTick: "(drop (call $clock)) (if (global.get $resumed) (then (loop $spin (br $spin))))",
  extra: `(global $resumed (mut i32) (i32.const 0))
    (func (export "agent_resume") (param i32 i32) (global.set $resumed (i32.const 1)))`,
});

async function nondeterministic(t: TestNode): Promise<string> {
  return writeWat(join(t.dir, "wasm"), "nondet", NONDETERMINISTIC, CAPS("clock"));
}

describe("self-verification", () => {
  for (const [mode, interval] of [
    ["full", "1"],
    ["periodic", "5"],
  ] as const) {
    it(`deterministic AssemblyScript agents verify for hundreds of ticks (--replay-mode ${mode}, --verify-interval ${interval})`, async () => {
      const t = await startTestNode({ "tick-interval": "2ms", "replay-mode": mode, "verify-interval": interval });
      await t.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
      await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
      await waitUntil(
        () => ["survivor", "heartbeat"].every((id) => (t.node.scheduler.view(id)?.replayVerified ?? 0) >= 200),
        { emitter: t.node.scheduler, event: "verified", timeoutMs: 20_000, what: "200 verified ticks per agent" },
      );
      expect(t.logs.events("replay_divergence")).toEqual([]);
    });
  }

  // Acceptance 17: off: no replay work at all.
  it("--replay-mode off does no replay work at all; on-migrate keeps a window but does not self-verify", async () => {
    for (const mode of ["off", "on-migrate"]) {
      const t = await startTestNode({ "tick-interval": "2ms", "replay-mode": mode, "verify-interval": "1" });
      await t.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
      await t.waitFor<TickEvent>("tick", (e) => e.tick >= 50n);
      expect(t.node.scheduler.view("survivor")?.replayVerified).toBe(0);
      await t.stop();
    }
  });
});

// Reads the clock on odd ticks only: even ticks record no observation.
const OBSERVES_ON_ODD_TICKS = watAgent({ imports: CLOCK, onTick: "(if (i32.and (global.get $ticks) (i32.const 1)) (then (drop (call $clock))))" });

/** The agent's replay window, as the scheduler holds it (no public view exposes it). */
function replayWindow(t: TestNode, agentId: string): ReplayWindow {
  const agents = (t.node.scheduler as unknown as { agents: Map<string, { window: ReplayWindow }> }).agents;
  return agents.get(agentId)!.window;
}

// A 20 MiB state: the window's 64 MiB byte bound holds fewer of its ticks than the default
// --verify-interval (5). Every tick observes the clock.
const BIG = 20 * 1024 * 1024;
const BIG_STATE = watAgent({
  imports: CLOCK,
  memory: '(memory (export "memory") 321)',
  onTick: "(drop (call $clock))",
  omit: ["agent_checkpoint", "agent_resume"],
  extra: `(func (export "agent_checkpoint") (result i32) (i32.store (i32.const 0) (global.get $ticks)) (i32.const ${BIG}))
    (func (export "agent_resume") (param $p i32) (param $n i32)
      (memory.copy (i32.const 0) (local.get $p) (local.get $n))
      (if (i32.ge_u (local.get $n) (i32.const 4)) (then (global.set $ticks (i32.load (i32.const 0))))))`,
});

function verificationsTotal(metrics: string): number {
  return [...metrics.matchAll(/^igord_replay_verifications_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

describe("which ticks are verified", () => {
  const LAST = 40n;

  // Acceptance 17: full, interval 1: every tick with observations verified, no divergence.
  it("--replay-mode full --verify-interval 1: the verified ticks are exactly the ticks that recorded observations, with no divergence", async () => {
    const t = await startTestNode({ "tick-interval": "5ms", "replay-mode": "full", "verify-interval": "1" });
    const observed = new Set<bigint>();
    const verified = new Set<bigint>();
    t.node.scheduler.on("tick", (e: TickEvent) => {
      if (e.agentId === "oddobs" && e.events.length > 0) observed.add(e.tick);
    });
    t.node.scheduler.on("verified", (e: { agentId: string; ticks: bigint[] }) => {
      if (e.agentId === "oddobs") for (const tick of e.ticks) verified.add(tick);
    });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "oddobs", OBSERVES_ON_ODD_TICKS, CAPS("clock")) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "oddobs" && e.tick >= LAST);
    const upTo = (s: Set<bigint>) => [...s].filter((x) => x <= LAST).sort((x, y) => (x < y ? -1 : 1));
    await waitUntil(() => upTo(observed).every((x) => verified.has(x)), { emitter: t.node.scheduler, event: "verified", what: `every observed tick up to ${LAST} verified` });
    expect(upTo(observed)).toEqual(Array.from({ length: Number(LAST) / 2 }, (_, i) => BigInt(2 * i + 1)));
    expect(upTo(verified)).toEqual(upTo(observed));
    expect(replayWindow(t, "oddobs").capacity).toBeGreaterThan(0);
    expect(verificationsTotal(await t.node.metrics.render())).toBeGreaterThanOrEqual(upTo(observed).length);
    expect(t.logs.events("replay_divergence")).toEqual([]);
    expect(t.node.scheduler.view("oddobs")?.divergences).toBe(0);
  });

  it("a tick whose state diverged is never reported verified, though the next tick of its window overwrites the difference", async () => {
    // Odd ticks put the hidden count ($hidden, outside the checkpoint) in the state's high half, even
    // ticks clear it: no replay that starts after tick 1 reproduces an odd tick's state, every even
    // tick's it does. Windows of two ticks: each one's last state matched.
    const t = await startTestNode({ "tick-interval": "5ms", "replay-mode": "full", "verify-interval": "2", "replay-on-divergence": "log" });
    const verified = new Set<bigint>();
    t.node.scheduler.on("verified", (e: { agentId: string; ticks: bigint[] }) => {
      if (e.agentId === "masked") for (const x of e.ticks) verified.add(x);
    });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "masked", MASKED_BY_NEXT_TICK_AGENT, CAPS("clock")) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "masked" && e.tick >= LAST);
    await waitUntil(() => t.node.divergences.of("masked").length >= 3, { emitter: t.node.scheduler, event: "divergence", what: "three divergences" });
    expect([...verified].filter((x) => x >= 3n && x % 2n === 1n).map(String)).toEqual([]);
    expect(t.node.divergences.of("masked").every((d) => d.tick % 2n === 1n)).toBe(true);
  });

  it("with the default --replay-window and --verify-interval, every tick of an agent whose 20 MiB state fills the window's byte bound sooner is verified, and none is let go of unverified", async () => {
    const t = await startTestNode({ "tick-interval": "40ms", "replay-mode": "full", "checkpoint-interval": "1s" });
    const verified = new Set<bigint>();
    t.node.scheduler.on("verified", (e: { agentId: string; ticks: bigint[] }) => {
      if (e.agentId === "big") for (const x of e.ticks) verified.add(x);
    });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "big", BIG_STATE, CAPS("clock")) });
    const UP_TO = 15n;
    await waitUntil(() => [...verified].some((x) => x >= UP_TO), { emitter: t.node.scheduler, event: "verified", timeoutMs: 30_000, what: `a pass past tick ${UP_TO}` });
    const never = Array.from({ length: Number(UP_TO) }, (_, i) => BigInt(i + 1)).filter((x) => !verified.has(x));
    expect({ neverVerified: never.map(String), divergences: t.logs.events("replay_divergence").length, unverified: t.logs.events("replay_ticks_unverified").length }).toEqual({
      neverVerified: [],
      divergences: 0,
      unverified: 0,
    });
  }, 60_000);

  // Acceptance 17: off: no replay work at all.
  it("--replay-mode off: igord_replay_verifications_total stays 0 and the agent keeps no replay window", async () => {
    const t = await startTestNode({ "tick-interval": "5ms", "replay-mode": "off", "verify-interval": "1" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "oddobs", OBSERVES_ON_ODD_TICKS, CAPS("clock")) });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "oddobs" && e.tick >= LAST);
    const w = replayWindow(t, "oddobs");
    expect([w.capacity, w.bytes, w.pending().length]).toEqual([0, 0, 0]);
    expect(verificationsTotal(await t.node.metrics.render())).toBe(0);
    expect(t.node.scheduler.view("oddobs")?.replayVerified).toBe(0);
  });
});

describe("verification across restarts", () => {
  it("after a restart, the ticks logged before it are verified from the stored event logs", async () => {
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "20ms", "verify-interval": "0" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
    await t.waitFor<TickEvent>("tick", (e) => e.tick >= 40n);
    await t.stop();
    // verify-interval 0 above: nothing was verified live. The restarted node verifies the stored logs.
    const t2 = await startTestNode({ "tick-interval": "1h", "lease-duration": "2h", "verify-interval": "5" }, { dir: t.dir, resumeStored: true });
    const v = await t2.waitFor<{ agentId: string; ticks: bigint[] }>("verified", (e) => e.agentId === "survivor");
    expect(v.ticks.length).toBeGreaterThan(0);
    expect(t2.logs.events("replay_divergence")).toEqual([]);
  });

  it("a stored tick whose recorded state hash was altered diverges when the restarted node verifies it", async () => {
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "20ms", "verify-interval": "0" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
    await t.waitFor<TickEvent>("tick", (e) => e.tick >= 40n);
    await t.stop();
    const db = segmentsDb(join(t.config.dataDir, DB_FILE));
    const seg = db.prepare("SELECT id, post_hashes FROM segments ORDER BY to_tick DESC LIMIT 1").get() as { id: number; post_hashes: Buffer };
    const hashes = Buffer.from(seg.post_hashes);
    hashes[0] = (hashes[0] ?? 0) ^ 1; // the first tick of the segment
    db.prepare("UPDATE segments SET post_hashes = ? WHERE id = ?").run(hashes, seg.id);
    db.close();
    const t2 = await startTestNode({ "tick-interval": "1h", "lease-duration": "2h", "verify-interval": "5" }, { dir: t.dir, resumeStored: true });
    const d = await t2.waitFor<DivergenceEvent>("divergence", (e) => e.agentId === "survivor");
    expect(d.code).toBe("REPLAY_STATE_MISMATCH");
  });
});

describe("divergence policies", () => {
  // Acceptance 18: log keeps ticking.
  it("log: the divergence is reported and the agent keeps ticking", async () => {
    const t = await startTestNode({ "tick-interval": "5ms", "verify-interval": "1", "replay-on-divergence": "log" });
    await t.node.addAgent({ wasmPath: await nondeterministic(t) });
    const d = await t.waitFor<DivergenceEvent>("divergence");
    expect(d.code).toBe("REPLAY_STATE_MISMATCH");
    expect(d.policy).toBe("log");
    await t.waitFor<TickEvent>("tick", (e) => e.tick >= d.tick + 5n);
    expect(t.node.scheduler.view("nondet")?.status).toBe("running");
    expect(t.logs.events("replay_divergence").length).toBeGreaterThan(0);
    expect(await t.node.metrics.render()).toMatch(/igord_replay_divergences_total\{code="REPLAY_STATE_MISMATCH"\} [1-9]/);
  });

  // Acceptance 18: pause checkpoints and stops.
  it("pause: the agent is checkpointed and stopped, and its status says why", async () => {
    const t = await startTestNode({ "tick-interval": "5ms", "verify-interval": "1", "replay-on-divergence": "pause" });
    await t.node.addAgent({ wasmPath: await nondeterministic(t) });
    const stopped = await t.waitFor<AgentView>("stopped");
    expect(stopped.reason).toBe("replay_divergence");
    expect(stopped.error?.code).toBe("REPLAY_STATE_MISMATCH");
    await t.stop();
    const head = storedHead(t.config.dataDir, "nondet");
    expect(head?.status).toBe("stopped");
    expect(head?.statusReason).toBe("replay_divergence");
  });

  // Acceptance 18: intensify verifies every tick for a while.
  it("intensify: after a divergence every tick is verified for a window, then back to the interval", async () => {
    const t = await startTestNode({
      "tick-interval": "5ms",
      "verify-interval": "8",
      "replay-window": "8",
      "replay-on-divergence": "intensify",
    });
    await t.node.addAgent({ wasmPath: await nondeterministic(t) });
    const first = await t.waitFor<DivergenceEvent>("divergence");
    // While intensified, consecutive ticks are verified (and, for this agent, diverge) one by one.
    await t.waitFor<DivergenceEvent>("divergence", (d) => d.tick === first.tick + 1n);
    await t.waitFor<DivergenceEvent>("divergence", (d) => d.tick === first.tick + 2n);
    expect(t.logs.events("replay_intensify").length).toBeGreaterThan(0);
    expect(t.node.scheduler.view("nondet")?.status).toBe("running");
  });

  // Acceptance 18: migrate pauses without any peer.
  it("migrate: without a migration service the agent pauses and says so", async () => {
    const t = await startTestNode({ "tick-interval": "5ms", "verify-interval": "1", "replay-on-divergence": "migrate" });
    await t.node.addAgent({ wasmPath: await nondeterministic(t) });
    const stopped = await t.waitFor<AgentView>("stopped");
    expect(stopped.reason).toBe("replay_divergence_no_migration");
    expect(t.logs.events("replay_migrate_unavailable").length).toBe(1);
  });
});

describe("a diverged agent across a restart", () => {
  // The pause policy and the migrate policy without a peer both store it stopped with the divergence
  // as reason; its .wasm in the agents dir (the ordinary way to run one) must not undo that.
  for (const [policy, reason] of [
    ["pause", "replay_divergence"],
    ["migrate", "replay_divergence_no_migration"],
  ] as const) {
    it(`--replay-on-divergence ${policy}: the agent stays stopped when the node restarts with its file in the agents dir; igord start runs it`, async () => {
      const flags = { "tick-interval": "5ms", "verify-interval": "1", "replay-on-divergence": policy };
      const t = await startTestNode(flags, { watch: true, resumeStored: true });
      await writeWat(join(t.dir, "agents"), "nondet", NONDETERMINISTIC, CAPS("clock"));
      expect((await t.waitFor<AgentView>("stopped", (v) => v.id === "nondet")).reason).toBe(reason);
      await t.stop();
      const before = storedHead(t.config.dataDir, "nondet")!;

      // Restarted as the daemon does it: stored agents resumed, then the agents dir scanned (awaited).
      const t2 = await startTestNode(flags, { dir: t.dir, watch: true, resumeStored: true });
      expect(t2.node.scheduler.view("nondet")).toBeUndefined();
      const held = t2.logs.events("agent_file_held").find((l) => l.agent === "nondet");
      expect(held).toMatchObject({ code: "AGENT_STOPPED", reason });
      expect(held?.msg).toContain("igord start nondet");
      const after = storedHead(t2.config.dataDir, "nondet")!;
      expect({ status: after.status, statusReason: after.statusReason, tick: after.tick }).toEqual({ status: "stopped", statusReason: reason, tick: before.tick });

      // The operator's deliberate start still runs it.
      await startAgent(t2.node, "nondet");
      await t2.waitFor<TickEvent>("tick", (e) => e.agentId === "nondet" && e.tick > before.tick);
    });
  }
});

describe("bounded replay", () => {
  it("a replay that hangs is stopped by the tick timeout; the other agents and the node carry on", async () => {
    const t = await startTestNode({ "tick-interval": "20ms", "tick-timeout": "1s", "verify-interval": "1", workers: "1" });
    const hang = await writeWat(join(t.dir, "wasm"), "hangs", HANGS_IN_REPLAY, CAPS("clock"));
    await t.node.addAgent({ wasmPath: hang });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    const stopped = await t.waitFor<AgentView>("stopped", (v) => v.id === "hangs");
    expect(stopped.error?.code).toBe("TICK_TIMEOUT");
    const hb = t.node.scheduler.view("heartbeat")!.tick;
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= hb + 5n);
  });
});

describe("the migrate divergence policy with a migration service", () => {
  const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "migration-retry-delay": "10ms", "peer-refresh": "100ms" };

  // Acceptance 18: migrate moves it to a healthy peer.
  it("moves a diverging agent to the best known peer", async () => {
    const b = await startTestNode({ ...P2P, "replay-mode": "off" });
    const a = await startTestNode({ ...P2P, "tick-interval": "5ms", "verify-interval": "1", "replay-on-divergence": "migrate", bootstrap: b.node.migration!.addresses()[0]! });
    await waitUntil(() => a.node.migration!.peers.get(b.node.migration!.peerId)?.price != null, { what: "B's price answer" });
    await a.node.addAgent({ wasmPath: await nondeterministic(a) });
    await a.waitFor<DivergenceEvent>("divergence");
    // B starts it just before it confirms; A retires it when the confirmation arrives.
    await waitUntil(() => b.node.scheduler.view("nondet")?.status === "running" && a.node.store.lease("nondet")?.state === "RETIRED", {
      what: "the agent running on B and retired on A",
    });
    expect(a.logs.events("replay_migrate").length).toBeGreaterThan(0);
  });

  // Acceptance 18: migrate pauses when no peer can take it.
  it("pauses it when no known peer can take it (the registry knows B lacks its capability)", async () => {
    const b = await startTestNode({ ...P2P, capabilities: "log" });
    const a = await startTestNode({ ...P2P, "tick-interval": "5ms", "verify-interval": "1", "replay-on-divergence": "migrate", bootstrap: b.node.migration!.addresses()[0]! });
    await waitUntil(() => a.node.migration!.peers.get(b.node.migration!.peerId)?.price != null, { what: "B's price answer" });
    await a.node.addAgent({ wasmPath: await nondeterministic(a) });
    const stopped = await a.waitFor<AgentView>("stopped", (v) => v.id === "nondet");
    expect(stopped.reason).toBe("replay_divergence_no_migration");
    expect(a.logs.events("replay_migrate_failed")[0]?.code).toBe("MIGRATION_NO_CANDIDATES");
    expect(b.node.store.agent("nondet")).toBeUndefined();
    expect(a.node.store.lease("nondet")?.state).toBe("ACTIVE_OWNER");
  });
});
