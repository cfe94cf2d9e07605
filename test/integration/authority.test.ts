// Leases that fence: epochs survive restarts and reach the checkpoint headers, renewals bump the
// generation, a stale writer is refused, unresolved handoffs are not resumed, and a node suspended
// past its lease does not tick until it recovers with a new epoch.
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { parseCheckpoint } from "../../src/checkpoint/codec.js";
import type { AgentView, CheckpointEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { BUSY_TIMEOUT_MS, DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, startTestNode, stopAllNodes, tempDir } from "../helpers/node.js";
import { igord, killAll, startDaemon } from "../helpers/process.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";
import { waitUntil } from "../helpers/wait.js";
import { HostcallId } from "../../src/hostcalls/registry.js";

afterEach(async () => {
  killAll();
  await stopAllNodes();
});

const heartbeat = join(EXAMPLES, "heartbeat.wasm");

function headEpoch(dataDir: string, agentId: string): [bigint, bigint] {
  const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
  try {
    const cp = parseCheckpoint(store.head(agentId)!.blob);
    return [cp.epochMajor, cp.epochGeneration];
  } finally {
    store.close();
  }
}

describe("leases and epochs", () => {
  // Acceptance 30: epochs persist across restarts.
  it("renewals bump the generation, the epoch is in every checkpoint header, and a restart keeps it", async () => {
    // A main thread held past the lease and its grace (a loaded machine: 400 + 200 ms failed at load
    // 12) lapses the lease and recovers it at major 1, rightly; 1.2 s + 1 s leaves 1.6 s of slack.
    const t = await startTestNode({ "tick-interval": "20ms", "checkpoint-interval": "50ms", "lease-duration": "1200ms", "lease-grace": "1s" });
    await t.node.addAgent({ wasmPath: heartbeat });
    // Renewal is due when half of the 1.2 s remains: three renewals within ~2 s.
    await t.waitFor<TickEvent>("tick", (e) => (t.node.scheduler.view("heartbeat")?.lease?.epoch.generation ?? 0n) >= 3n && e.agentId === "heartbeat");
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.outcome === "written" && e.reason === "periodic" && e.tick > 5n);
    await t.stop();
    const [major, generation] = headEpoch(t.config.dataDir, "heartbeat");
    expect(major).toBe(0n);
    expect(generation).toBeGreaterThanOrEqual(2n);

    const t2 = await startTestNode({ "tick-interval": "20ms", "lease-duration": "60s" }, { dir: t.dir, resumeStored: true });
    const lease = t2.node.scheduler.view("heartbeat")?.lease;
    expect(lease?.epoch.major).toBe(0n);
    expect(lease?.epoch.generation).toBeGreaterThanOrEqual(generation); // never reset
    expect(await t2.node.metrics.render()).toMatch(/igord_agent_leases\{state="ACTIVE_OWNER"\} 1/);
  });

  it("a renewal that finds the write lock held (the commit thread mid-transaction) does not wait for it: the agent ticks on under its lease and renews once the lock is free", async () => {
    // Renewal is due with 27 s of the 30 s left (3 s in) and waits for the lock only in the last
    // 13.5 s: a loaded machine may stall this process for seconds without the renewal coming overdue.
    const t = await startTestNode({ "tick-interval": "20ms", "checkpoint-interval": "1h", "lease-duration": "30s", "lease-grace": "1s", "lease-renewal-window": "0.9" });
    await t.node.addAgent({ wasmPath: heartbeat });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 2n);
    const generation = () => t.node.scheduler.view("heartbeat")?.lease?.epoch.generation;
    const before = generation();
    // Another connection holds the write lock, as the commit thread does through each group commit.
    const other = new Database(join(t.config.dataDir, DB_FILE));
    other.exec("BEGIN IMMEDIATE");
    try {
      await waitUntil(() => t.logs.events("lease_renewal_deferred", "heartbeat").length > 0, { timeoutMs: 10_000, what: "a renewal put off" });
      const tick = t.node.scheduler.view("heartbeat")!.tick;
      // The main thread is not asleep in SQLite's busy handler: ticks go on, under the lease as it was.
      await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= tick + 5n);
      expect(generation()).toBe(before);
      expect(t.node.scheduler.view("heartbeat")?.status).toBe("running");
    } finally {
      other.exec("COMMIT");
      other.close();
    }
    await waitUntil(() => (generation() ?? 0n) > before!, { what: "the renewal, once the lock is free" });
    expect(t.node.store.lease("heartbeat")?.epoch.generation).toBe(generation());
    expect(await t.node.metrics.render()).toMatch(/igord_lease_renewals_deferred_total [1-9]/);
  });

  it("the lease sweep renews the agents that came due together, in one transaction: three agents, one call, each its own compare-and-set", async () => {
    // A sweep every second (6 s × 0.9 / 4, capped at LEASE_SWEEP_MAX_MS); renewals due with 5.4 s
    // left (0.6 s in), short with 2.7 s: a stall of well over a second still leaves them to the sweep.
    const t = await startTestNode({ "tick-interval": "20ms", "checkpoint-interval": "1h", "lease-duration": "6s", "lease-grace": "1s", "lease-renewal-window": "0.9" });
    const store = t.node.store;
    const calls: string[][] = [];
    const tryRenewLeases = store.tryRenewLeases.bind(store);
    store.tryRenewLeases = (renewals) => {
      calls.push(renewals.map((r) => r.agentId));
      return tryRenewLeases(renewals);
    };
    const ids = ["one", "two", "three"];
    await Promise.all(ids.map((agentId) => t.node.addAgent({ wasmPath: heartbeat, agentId })));
    const generations = () => ids.map((id) => t.node.scheduler.view(id)?.lease?.epoch.generation ?? 0n);
    await waitUntil(() => generations().every((g) => g >= 2n), { timeoutMs: 10_000, what: "two renewals of each agent" });
    // Loaded within milliseconds of each other, they come due within one sweep: renewed together.
    expect(calls.some((c) => ids.every((id) => c.includes(id)))).toBe(true);
    for (const id of ids) expect(store.lease(id)?.epoch.generation).toBe(t.node.scheduler.view(id)?.lease?.epoch.generation);
  });

  it("an agent that is always mid-tick (more work every tick, on the fast path) is renewed by the sweep too, never by a write that waits for the store", async () => {
    // A sweep every second (30 s × 0.9 / 4, capped); a renewal due 3 s after the one before and
    // short only 16.5 s after it: no stall of this process makes a tick's check write it.
    const t = await startTestNode({ "tick-interval": "20ms", "fast-tick-interval": "0", "checkpoint-interval": "1h", "lease-duration": "30s", "lease-grace": "1s", "lease-renewal-window": "0.9" });
    const store = t.node.store;
    const swept: string[] = [];
    const waited: string[] = [];
    const tryRenewLeases = store.tryRenewLeases.bind(store);
    store.tryRenewLeases = (renewals) => {
      swept.push(...renewals.map((r) => r.agentId));
      return tryRenewLeases(renewals);
    };
    const writeLease = store.writeLease.bind(store);
    store.writeLease = (agentId, expected, next) => {
      waited.push(agentId);
      writeLease(agentId, expected, next);
    };
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "busy", watAgent({ more: "(i32.const 1)" })) });
    const generation = () => t.node.scheduler.view("busy")?.lease?.epoch.generation ?? 0n;
    await waitUntil(() => generation() >= 2n, { timeoutMs: 20_000, what: "two renewals of the busy agent" });
    // It ticked all along: thousands of ticks, so a tick was in flight at nearly every sweep.
    expect(t.node.scheduler.view("busy")!.tick).toBeGreaterThan(1_000n);
    expect(swept.filter((id) => id === "busy").length).toBeGreaterThanOrEqual(2);
    expect(waited).toEqual([]);
    expect(store.lease("busy")?.epoch.generation).toBe(generation());
  });

  it("the store's renewals together: nothing written while another connection holds the write lock; a stale one refused, the others written; a change of state refused before anything is written", async () => {
    const t = await startTestNode({ "tick-interval": "20ms", "lease-duration": "60s" });
    for (const agentId of ["a", "b"]) await t.node.addAgent({ wasmPath: heartbeat, agentId });
    await t.node.scheduler.pause("a", "test");
    await t.node.scheduler.pause("b", "test");
    const store = t.node.store;
    const renewal = (agentId: string) => {
      const lease = store.lease(agentId)!;
      return { agentId, expected: { state: lease.state, epoch: lease.epoch }, next: { ...lease, epoch: { ...lease.epoch, generation: lease.epoch.generation + 1n }, expiresAtMs: Date.now() + 60_000 } };
    };
    const [a, b] = [renewal("a"), renewal("b")];
    const other = new Database(join(t.config.dataDir, DB_FILE));
    other.exec("BEGIN IMMEDIATE");
    try {
      const started = performance.now();
      expect(store.tryRenewLeases([a, b])).toBeNull();
      expect(performance.now() - started).toBeLessThan(BUSY_TIMEOUT_MS / 2);
    } finally {
      other.exec("COMMIT");
      other.close();
    }
    expect(store.lease("a")?.epoch.generation).toBe(a.expected.epoch.generation);
    // A belief the store does not hold (a generation it never had).
    const g = b.expected.epoch.generation;
    const stale = { ...b, expected: { ...b.expected, epoch: { ...b.expected.epoch, generation: g + 5n } }, next: { ...b.next, epoch: { ...b.next.epoch, generation: g + 6n } } };
    const results = store.tryRenewLeases([a, stale])!;
    expect(results[0]).toBeNull();
    expect(results[1]?.code).toBe("LEASE_STALE");
    expect(store.lease("a")).toEqual(a.next);
    expect(store.lease("b")?.epoch.generation).toBe(b.expected.epoch.generation);
    const retire = { ...b, next: { ...b.next, state: "RETIRED" as const } };
    expect(() => store.tryRenewLeases([renewal("a"), retire])).toThrow(expect.objectContaining({ code: "LEASE_TRANSITION" }));
    expect(store.lease("a")).toEqual(a.next);
  });

  it("the store's renewals without a wait: null and nothing written while another connection holds the write lock, without waiting out the busy timeout, which every other write still has", async () => {
    const t = await startTestNode({ "tick-interval": "20ms", "lease-duration": "60s" });
    await t.node.addAgent({ wasmPath: heartbeat });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 1n);
    await t.node.scheduler.pause("heartbeat", "test");
    const store = t.node.store;
    const lease = store.lease("heartbeat")!;
    const renewed = { ...lease, epoch: { ...lease.epoch, generation: lease.epoch.generation + 1n }, expiresAtMs: Date.now() + 60_000 };
    const belief = { state: lease.state, epoch: lease.epoch };
    const other = new Database(join(t.config.dataDir, DB_FILE));
    other.exec("BEGIN IMMEDIATE");
    try {
      const started = performance.now();
      expect(store.tryRenewLeases([{ agentId: "heartbeat", expected: belief, next: renewed }])).toBeNull();
      expect(performance.now() - started).toBeLessThan(BUSY_TIMEOUT_MS / 2);
      expect(store.lease("heartbeat")).toEqual(lease);
      expect((store as unknown as { db: Database.Database }).db.pragma("busy_timeout", { simple: true })).toBe(BUSY_TIMEOUT_MS);
    } finally {
      other.exec("COMMIT");
      other.close();
    }
    expect(store.tryRenewLeases([{ agentId: "heartbeat", expected: belief, next: renewed }])).toEqual([null]);
    expect(store.lease("heartbeat")).toEqual(renewed);
    // Only renewals: a state change waits for the lock (and is durable).
    expect(() => store.tryRenewLeases([{ agentId: "heartbeat", expected: { state: renewed.state, epoch: renewed.epoch }, next: { ...renewed, state: "RETIRED" } }])).toThrow(expect.objectContaining({ code: "LEASE_TRANSITION" }));
    // A stale belief is refused as by writeLease.
    expect(store.tryRenewLeases([{ agentId: "heartbeat", expected: belief, next: renewed }])?.[0]).toMatchObject({ code: "LEASE_STALE" });
  });

  it("a stale writer's checkpoint is refused and the agent stops", async () => {
    const t = await startTestNode({ "tick-interval": "10ms", "checkpoint-interval": "30ms" });
    await t.node.addAgent({ wasmPath: heartbeat });
    await t.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    // Another writer takes the agent to a newer epoch behind this node's back.
    const db = new Database(join(t.config.dataDir, DB_FILE));
    db.prepare("UPDATE agents SET epoch_major = 5 WHERE agent_id = 'heartbeat'").run();
    db.close();
    const stopped = await t.waitFor<AgentView>("stopped", (v) => v.id === "heartbeat");
    expect(stopped.error?.code).toBe("LEASE_STALE");
    expect(stopped.error?.message).toMatch(/the store has ACTIVE_OWNER \(5,0\)/);
  });

  it("an agent left in HANDOFF_INITIATED needs resolution and one that is RETIRED is not resumed", async () => {
    const t = await startTestNode({ "tick-interval": "10ms" });
    await t.node.addAgent({ wasmPath: heartbeat });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
    await t.stop();
    const db = new Database(join(t.config.dataDir, DB_FILE));
    db.prepare("UPDATE agents SET lease_state = 'HANDOFF_INITIATED', handoff_target = '12D3KooWtarget', handoff_checkpoint = 'ab' WHERE agent_id = 'heartbeat'").run();
    db.prepare("UPDATE agents SET lease_state = 'RETIRED' WHERE agent_id = 'survivor'").run();
    db.close();
    const t2 = await startTestNode({ "tick-interval": "10ms" }, { dir: t.dir, resumeStored: true });
    expect(t2.node.scheduler.has("heartbeat")).toBe(false);
    expect(t2.node.scheduler.has("survivor")).toBe(false);
    expect(t2.node.quarantined.get("heartbeat")?.code).toBe("LEASE_HANDOFF_UNRESOLVED");
    expect(t2.node.quarantined.get("heartbeat")?.message).toMatch(/12D3KooWtarget/);
    // Retired is a normal state: said once at info, not an error.
    expect(t2.logs.events("agent_not_resumed").map((l) => l.code)).toEqual(["LEASE_RETIRED"]);
    expect(t2.logs.events("agent_resume_failed")).toEqual([]);
  });

  it("igord recover resolves an unresolved handoff: a new major epoch, recorded in the lineage, and the agent runs again", async () => {
    const t = await startTestNode({ "tick-interval": "10ms" });
    await t.node.addAgent({ wasmPath: heartbeat });
    await t.waitFor<TickEvent>("tick", (e) => e.tick >= 3n);
    await t.stop();
    const db = new Database(join(t.config.dataDir, DB_FILE));
    db.prepare("UPDATE agents SET lease_state = 'HANDOFF_INITIATED', handoff_target = '12D3KooWgone', handoff_checkpoint = 'ab' WHERE agent_id = 'heartbeat'").run();
    db.close();
    const active = igord(["recover", "survivor-nope", "--reason", "x", "--data-dir", t.config.dataDir]);
    expect(active.status).toBe(1);
    const r = igord(["recover", "heartbeat", "--reason", "target confirmed it never stored the agent", "--data-dir", t.config.dataDir]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/HANDOFF_INITIATED \(0,\d+\) -> ACTIVE_OWNER \(1,0\) \(handoff to 12D3KooWgone abandoned\)/);
    const again = igord(["recover", "heartbeat", "--reason", "twice", "--data-dir", t.config.dataDir]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/is ACTIVE_OWNER at \(1,0\): nothing to recover \[LEASE_TRANSITION\]/);

    const t2 = await startTestNode({ "tick-interval": "10ms" }, { dir: t.dir, resumeStored: true });
    expect(t2.node.scheduler.view("heartbeat")?.lease?.epoch.major).toBe(1n);
    const resumedAt = t2.node.scheduler.view("heartbeat")!.tick;
    await t2.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= resumedAt + 2n);
    await t2.stop();
    const store = SqliteStore.open(join(t.config.dataDir, DB_FILE), { readonly: true });
    const events = store.lineageEvents("heartbeat");
    store.close();
    expect(events.map((e) => [e.kind, e.reason])).toEqual([["recovery", "recover: target confirmed it never stored the agent"]]);
    expect(headEpoch(t.config.dataDir, "heartbeat")[0]).toBe(1n);
    expect(igord(["verify", "--agent", "heartbeat", "--data-dir", t.config.dataDir]).stdout).toMatch(/^VALID/);
  });

  // Acceptance 30: no tick while expired, recovery logged with the new epoch, epochs persist across restarts.
  it("SIGSTOP past lease + grace, then SIGCONT: no tick while expired, recovery with a new epoch", async () => {
    const dir = tempDir();
    const d = startDaemon([
      "run", heartbeat, "--data-dir", join(dir, "data"), "--tick-interval", "50ms", "--checkpoint-interval", "100ms",
      "--lease-duration", "1s", "--lease-grace", "300ms", "--log-level", "debug",
    ]);
    await d.waitFor((l) => l.event === "tick" && Number(l.tick) >= 3);
    d.child.kill("SIGSTOP");
    const stoppedAt = Date.now();
    // Suspended well past expiry + grace (1.3 s), measured by the wall clock, not by the process.
    await new Promise<void>((resolve) => {
      const until = stoppedAt + 2500;
      const check = (): void => {
        if (Date.now() >= until) resolve();
        else setTimeout(check, until - Date.now());
      };
      check();
    });
    d.child.kill("SIGCONT");
    const recovered = await d.waitFor((l) => l.event === "lease_recovered");
    expect(recovered.major).toBe("1");
    expect(recovered.generation).toBe("0");
    const expiredLine = d.lines.find((l) => l.event === "lease_state" && l.state === "RECOVERY_REQUIRED");
    expect(expiredLine).toBeDefined();
    // No tick committed between the expiry and the recovery.
    const iExpired = d.lines.indexOf(expiredLine as Record<string, unknown>);
    const iRecovered = d.lines.indexOf(recovered);
    expect(d.lines.slice(iExpired, iRecovered).filter((l) => l.event === "tick")).toEqual([]);
    // By the clock too: no tick is stamped after the stop + lease + grace (the lease was renewed at
    // or before the stop, so it had lapsed by then) and before the recovery.
    const lapsedBy = stoppedAt + 1000 + 300;
    const ticksWhileLapsed = d.lines.filter((l) => l.event === "tick" && (l.time as number) > lapsedBy && (l.time as number) < (recovered.time as number));
    expect(ticksWhileLapsed).toEqual([]);
    expect(recovered.time as number).toBeGreaterThan(lapsedBy);
    await d.waitFor((l) => l.event === "tick" && (l.time as number) > (recovered.time as number));
    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
    expect(headEpoch(join(dir, "data"), "heartbeat")[0]).toBe(1n);
    // The recovered epoch persists: the restart starts from (1,g), never back at 0. Its lease lapsed
    // while the node was down (a process start outlasts lease + grace), so the restart may recover
    // it once more: then at major 2, one above the persisted epoch.
    const again = startDaemon(["run", heartbeat, "--data-dir", join(dir, "data"), "--tick-interval", "50ms", "--checkpoint-interval", "100ms", "--lease-duration", "1s", "--lease-grace", "300ms", "--log-level", "debug"]);
    await again.waitFor((l) => l.event === "tick");
    again.child.kill("SIGINT");
    expect(await again.exit).toBe(0);
    const recoveredAgain = again.lines.filter((l) => l.event === "lease_recovered").map((l) => l.major);
    expect(recoveredAgain.length).toBeLessThanOrEqual(1);
    expect(recoveredAgain.every((major) => major === "2")).toBe(true);
    for (const l of again.lines.filter((x) => x.event === "lease_state")) expect(Number(l.major)).toBeGreaterThanOrEqual(1);
    expect(headEpoch(join(dir, "data"), "heartbeat")[0]).toBe(1n + BigInt(recoveredAgain.length));
  });
});

describe("side effects and the lease", () => {
  // Each tick: spin (reading the recorded clock) for 300 ms, then emit. With a 100 ms lease and no
  // grace, the lease lapses mid-tick: the side effect is refused with -3 at the moment it is tried.
  const SLOW_EMITTER = watAgent({
    imports: `(import "igor" "clock_now" (func $clock (result i64)))
      (import "igor" "emit" (func $emit (param i32 i32) (result i32)))`,
    onTick: `(global.set $until (i64.add (call $clock) (i64.const 300000000)))
      (block $done (loop $spin
        (br_if $done (i64.ge_s (call $clock) (global.get $until)))
        ;; about a millisecond of work between clock reads keeps the event log small
        (global.set $n (i32.const 0))
        (loop $work (global.set $n (i32.add (global.get $n) (i32.const 1))) (br_if $work (i32.lt_u (global.get $n) (i32.const 1000000))))
        (br $spin)))
      (drop (call $emit (i32.const 256) (i32.const 5)))`,
    extra: '(global $until (mut i64) (i64.const 0)) (global $n (mut i32) (i32.const 0)) (data (i32.const 256) "hello")',
  });

  it("a tick whose lease lapses mid-tick (expiry + grace) is never committed, and its side effect publishes nothing", async () => {
    const t = await startTestNode({ "tick-interval": "10ms", "lease-duration": "100ms", "lease-grace": "0", "lease-renewal-window": "0.5", "verify-interval": "0", "tick-timeout": "5s" });
    const path = await writeWat(join(t.dir, "wasm"), "slow", SLOW_EMITTER, CAPS("clock", "emit"));
    await t.node.addAgent({ wasmPath: path });
    // Every run of tick 1 outlives the 100 ms lease it was dispatched under: each is discarded and
    // retried. The sweep renews the lease of an agent mid-tick too, so the lease itself may never
    // lapse; the tick's authority did, and its emit was refused then: still not committed.
    const discarded = () => t.logs.events("tick_discarded", "slow");
    await waitUntil(() => discarded().length >= 2, { timeoutMs: 5000, what: "two discarded runs of tick 1" });
    await waitUntil(() => discarded().some((l) => Number(l.expiresAt) > Number(l.authorityUntil)), { timeoutMs: 10_000, what: "a discarded run whose lease was renewed mid-tick" });
    expect(t.logs.events("tick_discarded", "slow").every((l) => l.tick === "1")).toBe(true);
    expect(t.node.scheduler.view("slow")?.tick).toBe(0n);
    expect(t.node.store.outbox("slow")).toEqual([]);
  });

  it("within its lease the same side effect succeeds and is published with the checkpoint that covers its tick", async () => {
    const t = await startTestNode({ "tick-interval": "10ms", "lease-duration": "60s", "verify-interval": "0", "tick-timeout": "5s" });
    const path = await writeWat(join(t.dir, "wasm"), "slow", SLOW_EMITTER, CAPS("clock", "emit"));
    await t.node.addAgent({ wasmPath: path });
    const e = await t.waitFor<TickEvent>("tick", (x) => x.agentId === "slow");
    expect(e.events.filter((x) => x.id === HostcallId.emit).map((x) => x.result)).toEqual([0]);
    await t.node.scheduler.pause("slow", "test");
    expect(t.node.store.outbox("slow").map((m) => new TextDecoder().decode(m.payload))).toEqual(["hello"]);
  });
});
