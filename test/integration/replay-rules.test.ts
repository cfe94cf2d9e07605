// The replay rule "agent_resume is the exact inverse of agent_checkpoint" is checked before an agent
// first ticks: a module that breaks it is refused at load with a message naming the rule and the fix,
// a stored agent that breaks it is quarantined with its history intact, and every agent we ship passes.
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type IgordError, isIgordError } from "../../src/errors.js";
import type { DivergenceEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { formatAgents } from "../../src/cli/status.js";
import { AS_FIXTURES, EXAMPLES, startTestNode, stopAllNodes, storedHead, type TestNode } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";
import { BUMPS_ONCE_TICKED, CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

/** Resume restores the counter and counts itself: the trap an author fell into (issue 13). */
const BUMPS_ON_RESUME = watAgent({
  omit: ["agent_resume"],
  extra: `(func (export "agent_resume") (param $p i32) (param $n i32)
    (if (i32.eq (local.get $n) (i32.const 4)) (then (global.set $ticks (i32.add (i32.load (local.get $p)) (i32.const 1))))))`,
});


async function refusal(t: TestNode, wasmPath: string): Promise<IgordError> {
  try {
    await t.node.addAgent({ wasmPath });
  } catch (e) {
    if (isIgordError(e)) return e;
    throw e;
  }
  throw new Error(`expected ${wasmPath} to be refused`);
}

describe("replay rules caught at load", () => {
  it("a new agent whose agent_resume bumps a counter is refused before its first tick, naming the rule and the fix; nothing is stored", async () => {
    const t = await startTestNode({ "tick-interval": "10ms" });
    const path = await writeWat(join(t.dir, "wasm"), "counts_resumes", BUMPS_ON_RESUME);
    const err = await refusal(t, path);
    expect(err.code).toBe("AGENT_RESUME_NOT_INVERSE");
    expect(err.message).toMatch(/agent_resume must be the exact inverse of agent_checkpoint/);
    expect(err.message).toMatch(/bump no counter on resume/);
    expect(err.message).toMatch(/docs\/AGENT_ABI\.md/);
    expect(err.details).toMatchObject({ rule: "resume_inverse_of_checkpoint", givenBytes: 4, checkpointBytes: 4, firstDifference: 0 });
    expect(t.node.scheduler.list()).toEqual([]);
    expect(t.node.store.agent("counts_resumes")).toBeUndefined();
    expect(t.node.loadFailures.size).toBe(1);
  });

  it("a stored agent that breaks the rule is quarantined with the reason at restart; its checkpoints are kept", async () => {
    const t = await startTestNode({ "tick-interval": "10ms" });
    const path = await writeWat(join(t.dir, "wasm"), "counts_later", BUMPS_ONCE_TICKED);
    await t.node.addAgent({ wasmPath: path });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "counts_later" && e.tick === 3n);
    await t.stop();
    const before = storedHead(t.config.dataDir, "counts_later")!;
    expect(before.tick).toBeGreaterThanOrEqual(3n);

    const t2 = await startTestNode({ "tick-interval": "10ms" }, { dir: t.dir, resumeStored: true });
    const q = t2.node.quarantined.get("counts_later");
    expect(q?.code).toBe("AGENT_RESUME_NOT_INVERSE");
    expect(q?.message).toMatch(/agent_resume must be the exact inverse of agent_checkpoint/);
    expect(t2.logs.events("agent_quarantined", "counts_later")).toHaveLength(1);
    expect(t2.node.scheduler.view("counts_later")).toBeUndefined();
    await t2.stop();
    const after = storedHead(t.config.dataDir, "counts_later")!;
    expect(after).toEqual(before);
  });

  it("a resume check that hangs is bounded by the tick timeout and names agent_resume", async () => {
    const t = await startTestNode({ "tick-interval": "10ms", "tick-timeout": "300ms" });
    const hangs = watAgent({ omit: ["agent_resume"], extra: '(func (export "agent_resume") (param i32 i32) (loop $l (br $l)))' });
    const started = Date.now();
    const err = await refusal(t, await writeWat(join(t.dir, "wasm"), "hangs_on_resume", hangs));
    expect(err.code).toBe("TICK_TIMEOUT");
    expect(err.details.phase).toBe("agent_resume");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(t.node.store.agent("hangs_on_resume")).toBeUndefined();
  });

  it("a load (the check included) is bounded by the tick timeout, not by the manifest's per-tick max_cpu_millis", async () => {
    const t = await startTestNode({ "tick-interval": "10ms" });
    // The first state capture in each instance is slow (~0.2-1 s): a load captures once in each of
    // its two instances; ticks capture fast after that.
    const spin = "(loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 300000000))))";
    const slowFirstCapture = watAgent({
      omit: ["agent_checkpoint"],
      extra: `(global $captured (mut i32) (i32.const 0))
        (func (export "agent_checkpoint") (result i32) (local $i i32)
          (if (i32.eqz (global.get $captured)) (then ${spin} (global.set $captured (i32.const 1))))
          (i32.store (i32.const 0) (global.get $ticks)) (i32.const 4))`,
    });
    const path = await writeWat(join(t.dir, "wasm"), "slow_capture", slowFirstCapture, { resource_limits: { max_cpu_millis: 50 } });
    await t.node.addAgent({ wasmPath: path });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "slow_capture" && e.tick === 3n);
    expect(t.node.scheduler.view("slow_capture")?.status).toBe("running");
  });

  it("every shipped example and AssemblyScript fixture passes the check fresh and again after ticking and a restart", async () => {
    const flags = { "tick-interval": "10ms", "fast-tick-interval": "10ms", capabilities: "clock,rand,log,wallet,pricing,emit" };
    const t = await startTestNode(flags, { watch: true, start: false });
    const dir = t.config.agentsDir;
    mkdirSync(dir, { recursive: true });
    const names: string[] = [];
    for (const f of readdirSync(EXAMPLES).filter((n) => n.endsWith(".wasm"))) {
      const name = f.slice(0, -5);
      copyFileSync(join(EXAMPLES, f), join(dir, f));
      if (existsSync(join(EXAMPLES, `${name}.manifest.json`))) copyFileSync(join(EXAMPLES, `${name}.manifest.json`), join(dir, `${name}.manifest.json`));
      names.push(name);
    }
    // effects holds an InFlight intent from its second tick on: its resume must restore it as is.
    const fixtures: Record<string, string[]> = { effects: ["log"], emitter: ["emit", "log"], runtime_alloc: ["log"], uses_date: ["clock", "log"] };
    for (const [name, caps] of Object.entries(fixtures)) {
      copyFileSync(join(AS_FIXTURES, `${name}.wasm`), join(dir, `${name}.wasm`));
      writeFileSync(join(dir, `${name}.manifest.json`), JSON.stringify(CAPS(...caps)));
      names.push(name);
    }
    await t.node.start();
    await t.node.whenLoaded();
    expect(t.logs.events("agent_load_failed").map((l) => l.msg)).toEqual([]);
    for (const name of names) await t.waitFor<TickEvent>("tick", (e) => e.agentId === name && e.tick >= 3n);
    await t.stop();
    const heads = new Map(names.map((name) => [name, storedHead(t.config.dataDir, name)!.tick]));

    const t2 = await startTestNode(flags, { dir: t.dir, resumeStored: true });
    expect([...t2.node.quarantined.keys()]).toEqual([]);
    for (const name of names) await t2.waitFor<TickEvent>("tick", (e) => e.agentId === name && e.tick === (heads.get(name) ?? 0n) + 1n);
    await waitUntil(() => t2.node.scheduler.list().every((a) => a.status === "running" || a.reason === "budget_exhausted"));
  });

  it("igord agents shows an agent's divergences in the table: the count and the last one's tick and code", async () => {
    const t = await startTestNode({ "tick-interval": "5ms", "replay-mode": "periodic", "verify-interval": "2", "replay-on-divergence": "log" });
    // A hidden input ($hidden is not in the checkpoint): replay from the pre-state computes another state.
    const nondet = watAgent({
      imports: '(import "igor" "clock_now" (func $clock (result i64)))',
      onTick: `(global.set $hidden (i32.add (global.get $hidden) (i32.const 7)))
        (global.set $ticks (i32.add (global.get $ticks) (global.get $hidden)))
        (drop (call $clock))`,
      extra: "(global $hidden (mut i32) (i32.const 0))",
    });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "nondet", nondet, CAPS("clock")) });
    const d = await t.waitFor<DivergenceEvent>("divergence", (e) => e.agentId === "nondet");
    const listed = t.node.agentsJson().find((a) => a.id === "nondet")!;
    expect(listed.lastDivergence).toMatchObject({ code: d.code });
    const row = formatAgents(t.node.agentsJson()).split("\n").find((l) => l.startsWith("nondet"))!;
    expect(row).toMatch(new RegExp(`nondet\\s+running\\s+\\d+\\s+\\S+\\s+\\d+ \\(last: tick \\d+ ${d.code}\\)`));
  });
});
