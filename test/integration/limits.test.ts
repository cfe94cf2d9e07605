// Resource limits a manifest declares, and the node's own caps on what one agent may cost it: each
// is enforced with its own error code, and what was committed before stays intact.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentView, CheckpointEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import Database from "better-sqlite3";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { EXAMPLES, startTestNode, stopAllNodes } from "../helpers/node.js";
import { igord } from "../helpers/process.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";
import { MAX_TICK_EVENT_ENTRIES } from "../../src/eventlog/recorder.js";
import { MAX_PRINTED_LINES_PER_TICK } from "../../src/scheduler/agent-outputs.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(stopAllNodes);

/** Spins on the clock for `ms` milliseconds from its third tick on (ticks 1–2 are quick). */
const spinner = (ms: number) =>
  watAgent({
    imports: '(import "igor" "clock_now" (func $clock (result i64)))',
    onTick: `(if (i32.ge_u (global.get $ticks) (i32.const 3)) (then
      (global.set $until (i64.add (call $clock) (i64.const ${ms * 1_000_000})))
      (block $done (loop $spin (br_if $done (i64.ge_s (call $clock) (global.get $until))) (br $spin)))))`,
    extra: "(global $until (mut i64) (i64.const 0))",
  });

describe("manifest resource limits", () => {
  it("a tick that runs longer than max_cpu_millis fails with TICK_CPU_EXCEEDED and never commits", async () => {
    const t = await startTestNode({ "tick-interval": "5ms", "checkpoint-interval": "0", "tick-timeout": "5s" });
    // Generous against a loaded machine: ticks 1–2 take microseconds, tick 3 a full second.
    const manifest = { ...CAPS("clock"), resource_limits: { max_cpu_millis: 150 } };
    const path = await writeWat(join(t.dir, "wasm"), "spinner", spinner(1000), manifest);
    await t.node.addAgent({ wasmPath: path });
    const stopped = await t.waitFor<AgentView>("stopped", (v) => v.id === "spinner");
    expect(stopped.status).toBe("failed");
    expect(stopped.error?.code).toBe("TICK_CPU_EXCEEDED");
    expect(stopped.error?.message).toMatch(/tick 3 ran \d+ ms, over the manifest's max_cpu_millis of 150/);
    expect(stopped.tick).toBe(2n);
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.agentId === "spinner" && e.reason === "tick_cpu_exceeded");
    expect(t.node.store.head("spinner")?.tick).toBe(2n);
  });

  it("a tick that would never end is stopped at max_cpu_millis by the watchdog, long before the tick timeout", async () => {
    const t = await startTestNode({ "tick-interval": "5ms", "checkpoint-interval": "0", "tick-timeout": "60s" });
    const forever = watAgent({ onTick: "(if (i32.ge_u (global.get $ticks) (i32.const 3)) (then (loop $spin (br $spin))))" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "forever", forever, { resource_limits: { max_cpu_millis: 300 } }) });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "calm", watAgent(), CAPS()) });
    const hung = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "forever" && e.tick === 2n);
    const stopped = await t.waitFor<AgentView>("stopped", (v) => v.id === "forever", 10_000);
    expect(Date.now() - hung.at).toBeLessThan(5000);
    expect(stopped.error?.code).toBe("TICK_CPU_EXCEEDED");
    expect(stopped.error?.message).toMatch(/over the manifest's max_cpu_millis of 300/);
    expect(stopped.tick).toBe(2n);
    const calm = t.node.scheduler.view("calm")!.tick;
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "calm" && e.tick > calm + 2n);
  });

  it("an agent drawing randomness without end fails its tick with TICK_LOG_TOO_LARGE; the node carries on", async () => {
    const t = await startTestNode({ "tick-interval": "5ms", "checkpoint-interval": "0", "tick-timeout": "10s" });
    const hog = watAgent({
      imports: '(import "igor" "rand_bytes" (func $rand (param i32 i32) (result i32)))',
      onTick: "(loop $more (drop (call $rand (i32.const 65536) (i32.const 1048576))) (br $more))",
      memory: '(memory (export "memory") 17)',
    });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "hog", hog, CAPS("rand")) });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "calm", watAgent(), CAPS()) });
    const stopped = await t.waitFor<AgentView>("stopped", (v) => v.id === "hog");
    expect(stopped.error?.code).toBe("TICK_LOG_TOO_LARGE");
    expect(stopped.error?.message).toMatch(/over the per-tick limit of 16777216/);
    const calm = t.node.scheduler.view("calm")!.tick;
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "calm" && e.tick > calm);
  });

  it("a tick that makes more hostcalls than MAX_TICK_EVENT_ENTRIES fails with TICK_LOG_TOO_LARGE; one that makes exactly that many commits, and its stored log is read back by restart verification and the audit", async () => {
    // resume_interrupted needs no capability and costs 10 bytes of log: within the 16 MiB a tick
    // could record ~1.67 M entries, more than any reader of stored logs takes (MAX_TICK_LOG_ENTRIES),
    // each an object on the main thread (seconds of its time, every tick).
    const calls = (n: number): string =>
      watAgent({
        imports: '(import "igor" "resume_interrupted" (func $ri (result i32)))',
        onTick: `(if (i32.eq (global.get $ticks) (i32.const 2)) (then
          (block $done (loop $more
            (drop (call $ri))
            (global.set $i (i32.add (global.get $i) (i32.const 1)))
            (br_if $done (i32.ge_u (global.get $i) (i32.const ${n})))
            (br $more)))))`,
        extra: "(global $i (mut i32) (i32.const 0))",
      });
    const t = await startTestNode({ "tick-interval": "20ms", "checkpoint-interval": "0", "tick-timeout": "10s", "verify-interval": "1" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "over", calls(MAX_TICK_EVENT_ENTRIES + 1), CAPS()) });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "full", calls(MAX_TICK_EVENT_ENTRIES), CAPS()) });
    const stopped = await t.waitFor<AgentView>("stopped", (v) => v.id === "over", 30_000);
    expect(stopped.error?.code).toBe("TICK_LOG_TOO_LARGE");
    expect(stopped.error?.message).toMatch(new RegExp(`resume_interrupted at position ${MAX_TICK_EVENT_ENTRIES}: the tick's event log would hold more than ${MAX_TICK_EVENT_ENTRIES} entries`));
    expect(stopped.tick).toBe(1n);
    const full = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "full" && e.tick === 2n, 30_000);
    expect(full.events).toHaveLength(MAX_TICK_EVENT_ENTRIES);
    // The shutdown checkpoint commits tick 2 with its log.
    await t.stop();
    const audit = igord(["verify", "--agent", "full", "--replay", "--data-dir", t.config.dataDir]);
    expect(audit.stderr).toBe("");
    expect(audit.stdout).toMatch(/VALID/);
    const again = await startTestNode({ "tick-interval": "20ms", "checkpoint-interval": "0", "verify-interval": "1" }, { dir: t.dir, resumeStored: true });
    await again.waitFor<TickEvent>("tick", (e) => e.agentId === "full");
    expect(again.logs.events("agent_resume_failed")).toEqual([]);
  }, 90_000);

  it("an agent_init that makes more hostcalls than MAX_TICK_EVENT_ENTRIES is refused at load with TICK_LOG_TOO_LARGE naming agent_init, not a tick", async () => {
    const t = await startTestNode({ "tick-interval": "20ms", "checkpoint-interval": "0", "tick-timeout": "10s" });
    const chatty = watAgent({
      imports: '(import "igor" "resume_interrupted" (func $ri (result i32)))',
      omit: ["agent_init"],
      extra: `(global $i (mut i32) (i32.const 0))
        (func (export "agent_init") (block $done (loop $more
          (drop (call $ri))
          (global.set $i (i32.add (global.get $i) (i32.const 1)))
          (br_if $done (i32.gt_u (global.get $i) (i32.const ${MAX_TICK_EVENT_ENTRIES})))
          (br $more))))`,
    });
    const err = await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "chatty", chatty, CAPS()) }).then(
      () => null,
      (e: unknown) => e as { code?: string; message: string; details?: Record<string, unknown> },
    );
    expect(err?.code).toBe("TICK_LOG_TOO_LARGE");
    expect(err?.message).toMatch(new RegExp(`^agent_init: resume_interrupted at position ${MAX_TICK_EVENT_ENTRIES}: its event log would hold more than ${MAX_TICK_EVENT_ENTRIES} entries`));
    expect(err?.details).toMatchObject({ phase: "agent_init" });
  });

  it("a tick's log lines are printed up to MAX_PRINTED_LINES_PER_TICK, the rest counted in one line; the event log keeps them all", async () => {
    const t = await startTestNode({ "tick-interval": "20ms", "checkpoint-interval": "0" });
    const chatty = watAgent({
      imports: '(import "igor" "log_emit" (func $log (param i32 i32)))',
      memory: '(memory (export "memory") 1) (data (i32.const 64) "x")',
      onTick: `(if (i32.eq (global.get $ticks) (i32.const 1)) (then
        (block $done (loop $more
          (call $log (i32.const 64) (i32.const 1))
          (global.set $i (i32.add (global.get $i) (i32.const 1)))
          (br_if $done (i32.ge_u (global.get $i) (i32.const ${MAX_PRINTED_LINES_PER_TICK + 500})))
          (br $more)))))`,
      extra: "(global $i (mut i32) (i32.const 0))",
    });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "chatty", chatty, CAPS("log")) });
    const tick1 = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "chatty" && e.tick === 1n);
    expect(tick1.events).toHaveLength(MAX_PRINTED_LINES_PER_TICK + 500);
    await waitUntil(() => t.logs.events("agent_lines_not_printed", "chatty").length === 1);
    expect(t.logs.events("agent_log", "chatty")).toHaveLength(MAX_PRINTED_LINES_PER_TICK);
    expect(t.logs.events("agent_lines_not_printed", "chatty")[0]).toMatchObject({ tick: "1", of: "agent_log", count: 500 });
  });

  it("an agent whose stored history would pass max_storage_bytes fails with STORAGE_LIMIT; what is stored stays under the limit", async () => {
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "5ms" });
    const manifest = { ...CAPS(), resource_limits: { max_storage_bytes: 4096 } };
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "grower", watAgent(), manifest) });
    const stopped = await t.waitFor<AgentView>("stopped", (v) => v.id === "grower");
    expect(stopped.error?.code).toBe("STORAGE_LIMIT");
    expect(stopped.error?.message).toMatch(/agent "grower": its stored bytes \(history, event logs, outbox\) would grow to \d+, over the manifest's max_storage_bytes of 4096/);
    expect(t.node.store.storedBytes("grower")).toBeLessThanOrEqual(4096);
    expect(t.node.store.historyCount("grower")).toBeGreaterThan(3);
  });

  it("an agent whose emitted messages would pass max_storage_bytes fails with STORAGE_LIMIT: its outbox counts as its storage, and what is stored stays under the limit", async () => {
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "5ms", "verify-interval": "0", "history-retention": "4" });
    // Each tick emits 2 KiB; its history alone (4 checkpoints kept) stays far under 64 KiB.
    const emitter = watAgent({
      imports: '(import "igor" "emit" (func $emit (param i32 i32) (result i32)))',
      onTick: "(drop (call $emit (i32.const 1024) (i32.const 2048)))",
    });
    const manifest = { ...CAPS("emit"), resource_limits: { max_storage_bytes: 65_536 } };
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "emitter", emitter, manifest) });
    const stopped = await t.waitFor<AgentView>("stopped", (v) => v.id === "emitter", 20_000);
    expect(stopped.error?.code).toBe("STORAGE_LIMIT");
    const messages = t.node.store.outbox("emitter", -1n, 1_000_000);
    expect(messages.length).toBeGreaterThan(10);
    expect(t.node.store.storedBytes("emitter")).toBeLessThanOrEqual(65_536);
  });
});

describe("history retention", () => {
  it("--history-retention N keeps the newest N checkpoints behind a signed base: storage stays flat and verify and verify --replay say VALID", async () => {
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "10ms", "history-retention": "4" });
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    let written = 0;
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.outcome === "written" && ++written >= 8);
    const early = t.node.store.storedBytes("heartbeat");
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => e.outcome === "written" && ++written >= 24);
    await t.stop();
    const store = SqliteStore.open(join(t.config.dataDir, DB_FILE), { readonly: true });
    const history = [...store.history("heartbeat")];
    const base = store.historyBase("heartbeat");
    const bytes = store.storedBytes("heartbeat");
    store.close();
    expect(history).toHaveLength(4);
    expect(history[0]!.tick).toBeGreaterThan(0n);
    expect(base).toMatchObject({ baseTick: history[0]!.tick });
    // Every checkpoint before the oldest kept one was pruned (sequence numbers are never reused).
    expect(base!.pruned).toBe(history[0]!.seq - 1n);
    expect(base!.pruned).toBeGreaterThan(8n);
    // Twenty more checkpoints, about the same storage (heartbeat's logs grow a little with its tick count).
    expect(bytes).toBeLessThan(early * 2);
    const r = igord(["verify", "--agent", "heartbeat", "--replay", "--data-dir", t.config.dataDir]);
    expect(r.stdout).toMatch(/^VALID/);
    expect(r.stdout).toMatch(new RegExp(`note: history pruned before tick ${history[0]!.tick}: ${base!.pruned} earlier checkpoints removed by retention \\(signed base; origin `));
    expect(r.stdout).toMatch(/replay: VALID/);
    expect(r.status).toBe(0);

    // A base whose signature does not hold is not a note but a failure.
    const db = new Database(join(t.config.dataDir, DB_FILE));
    db.prepare("UPDATE history_bases SET pruned = pruned + 1 WHERE agent_id = 'heartbeat'").run();
    db.close();
    const bad = igord(["verify", "--agent", "heartbeat", "--data-dir", t.config.dataDir]);
    expect(bad.stdout).toMatch(/^INVALID/);
    expect(bad.stdout).toMatch(/reason: the signed history base .* signature INVALID/);
    expect(bad.status).toBe(1);
  });

  it("--history-retention 16 prunes four checkpoints at a time: one signed base per four checkpoints, not per checkpoint, and 16 to 19 kept", async () => {
    const t = await startTestNode({ "tick-interval": "2ms", "checkpoint-interval": "10ms", "history-retention": "16" });
    // The plan is read from the store once a step (its dueIn), not with every checkpoint.
    const store = t.node.store;
    const prunePlan = store.prunePlan.bind(store);
    let reads = 0;
    store.prunePlan = (agentId, keep) => {
      reads++;
      return prunePlan(agentId, keep);
    };
    await t.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    // The base after each written checkpoint: it moves only in steps of HISTORY_PRUNE_STEP's 16 / 4.
    const seen = new Set<bigint>();
    let written = 0;
    await t.waitFor<CheckpointEvent>("checkpoint", (e) => {
      if (e.outcome !== "written") return false;
      const base = t.node.store.historyBase("heartbeat");
      if (base) seen.add(base.pruned);
      const kept = t.node.store.historyCount("heartbeat");
      expect(kept).toBeGreaterThanOrEqual(Math.min(16, written + 2));
      expect(kept).toBeLessThanOrEqual(19);
      return ++written >= 60 && seen.size >= 5;
    }, 30_000);
    for (const pruned of seen) expect(pruned % 4n).toBe(0n);
    expect(reads).toBeLessThan(written / 2);
    await t.stop();
    const r = igord(["verify", "--agent", "heartbeat", "--data-dir", t.config.dataDir]);
    expect(r.stdout).toMatch(/^VALID/);
  });
});
