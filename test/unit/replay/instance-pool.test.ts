// Replay instances reset to their post-initialisation image instead of being rebuilt: a reset
// instance must give exactly what a fresh one gives, for every window of many ticks, including
// agents that keep unrecorded state in globals, tables or memory outside their checkpoint (they must
// still diverge, at the same tick with the same state), and agents that grow memory or tables
// (those instances are dropped, never reused).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LiveRecorder } from "../../../src/eventlog/recorder.js";
import { sha256 } from "../../../src/hash/bytes.js";
import { withAgentIdentity } from "../../../src/hostcalls/policy.js";
import { ModuleCache, prepareFromBytes } from "../../../src/loader/prepare.js";
import { parseManifest } from "../../../src/manifest/manifest.js";
import { type ReplayItem, type ReplayOutcome, type ReplayTarget, replay } from "../../../src/replay/engine.js";
import { clearReplayPool, replayPoolStats } from "../../../src/replay/instance-pool.js";
import { RESET_SECTION, withResetExports } from "../../../src/wasm/reset-exports.js";
import { AgentSandbox } from "../../../src/wasm/sandbox.js";
import { EXAMPLES } from "../../helpers/node.js";
import { liveTickItems } from "../../helpers/live-ticks.js";
import { CAPS, wat2wasm, watAgent, withCustomSection } from "../../helpers/wat.js";

const IMPORTS = `
  (import "igor" "clock_now" (func $clock (result i64)))
  (import "igor" "rand_bytes" (func $rand (param i32 i32) (result i32)))`;

// Everything it keeps is in its checkpoint (the counter); it scribbles on scratch memory, a global
// and its table every tick, which a reset must put back before the next resume.
const TIDY = watAgent({
  imports: IMPORTS,
  onTick: `
    (drop (call $rand (i32.const 128) (i32.const 4)))
    (global.set $ticks (i32.add (global.get $ticks) (i32.load8_u (i32.const 128))))
    (i32.store (i32.const 4096) (global.get $ticks))
    (global.set $scratch (global.get $ticks))
    (table.copy (i32.const 0) (i32.const 1) (i32.const 1))
    (global.set $ticks (i32.add (global.get $ticks) (i32.wrap_i64 (i64.and (call $clock) (i64.const 15)))))`,
  extra: `(global $scratch (mut i32) (i32.const 0))
    (table 2 funcref) (elem (i32.const 0) $one $seven)
    (func $one (result i32) (i32.const 1)) (func $seven (result i32) (i32.const 7))`,
});

// Hidden inputs, each in one place the checkpoint does not cover.
const HIDDEN_GLOBAL = watAgent({
  imports: IMPORTS,
  onTick: `(global.set $hidden (i32.add (global.get $hidden) (i32.const 7)))
    (global.set $ticks (i32.add (global.get $ticks) (global.get $hidden)))
    (drop (call $clock))`,
  extra: "(global $hidden (mut i32) (i32.const 0))",
});

const HIDDEN_MEMORY = watAgent({
  imports: IMPORTS,
  onTick: `(i32.store (i32.const 2048) (i32.add (i32.load (i32.const 2048)) (i32.const 3)))
    (global.set $ticks (i32.add (global.get $ticks) (i32.load (i32.const 2048))))
    (drop (call $clock))`,
  extra: '(data (i32.const 2048) "\\05")',
});

// The table entry called flips from $one to $seven after the first tick.
const HIDDEN_TABLE = watAgent({
  imports: IMPORTS,
  onTick: `(global.set $ticks (i32.add (global.get $ticks) (call_indirect (type $f) (i32.const 0))))
    (table.copy (i32.const 0) (i32.const 1) (i32.const 1))
    (drop (call $clock))`,
  extra: `(type $f (func (result i32)))
    (table 2 funcref) (elem (i32.const 0) $one $seven)
    (func $one (result i32) (i32.const 1)) (func $seven (result i32) (i32.const 7))`,
});

// NaN payloads in float globals (set by agent_init), mixed into the state, then overwritten.
const HIDDEN_FLOATS = watAgent({
  imports: IMPORTS,
  omit: ["agent_init"],
  onTick: `(global.set $ticks (i32.add (global.get $ticks)
      (i32.add (i32.wrap_i64 (i64.reinterpret_f64 (global.get $d))) (i32.reinterpret_f32 (global.get $f)))))
    (global.set $d (f64.const 1.5)) (global.set $f (f32.const 2.5))
    (drop (call $clock))`,
  extra: `(global $d (mut f64) (f64.const 0)) (global $f (mut f32) (f32.const 0))
    (func (export "agent_init")
      (global.set $d (f64.reinterpret_i64 (i64.const 0x7ff0000000000123)))
      (global.set $f (f32.reinterpret_i32 (i32.const 0x7f800045))))`,
});

// An i64 global above 2^53 (exact only as an i64), stepped every tick.
const HIDDEN_I64 = watAgent({
  imports: IMPORTS,
  onTick: `(global.set $big (i64.add (global.get $big) (i64.const 0x20000000000001)))
    (global.set $ticks (i32.add (global.get $ticks) (i32.wrap_i64 (i64.shr_u (global.get $big) (i64.const 40)))))
    (drop (call $clock))`,
  extra: "(global $big (mut i64) (i64.const 0x7000000000000001))",
});

// A mutable funcref global that flips from $one to $seven after the first tick.
const HIDDEN_FUNCREF = watAgent({
  imports: IMPORTS,
  onTick: `(table.set $calls (i32.const 0) (global.get $f))
    (global.set $ticks (i32.add (global.get $ticks) (call_indirect $calls (type $r) (i32.const 0))))
    (global.set $f (ref.func $seven))
    (drop (call $clock))`,
  extra: `(type $r (func (result i32)))
    (table $calls 1 funcref)
    (global $f (mut funcref) (ref.func $one))
    (elem declare func $one $seven)
    (func $one (result i32) (i32.const 1)) (func $seven (result i32) (i32.const 7))`,
});

// The second of two tables: an entry set by the first tick and read by every later one.
const HIDDEN_SECOND_TABLE = watAgent({
  imports: IMPORTS,
  onTick: `(global.set $ticks (i32.add (global.get $ticks) (call_indirect $b (type $r) (i32.const 0))))
    (table.set $b (i32.const 0) (table.get $a (i32.const 1)))
    (drop (call $clock))`,
  extra: `(type $r (func (result i32)))
    (table $a 2 funcref) (elem (table $a) (i32.const 0) func $one $seven)
    (table $b 1 funcref) (elem (table $b) (i32.const 0) func $one)
    (func $one (result i32) (i32.const 1)) (func $seven (result i32) (i32.const 7))`,
});

// Grows its memory and its table every tick and counts their sizes into its state.
const GROWS = watAgent({
  imports: IMPORTS,
  memory: '(memory (export "memory") 1 64)',
  onTick: `(drop (memory.grow (i32.const 1)))
    (drop (table.grow $t (ref.null func) (i32.const 1)))
    (global.set $ticks (i32.add (global.get $ticks) (i32.add (memory.size) (table.size $t))))
    (drop (call $clock))`,
  extra: "(table $t 1 funcref)",
});

// Grows only its table (its memory keeps its size): the reset must refuse the instance all the same.
const GROWS_TABLE = watAgent({
  imports: IMPORTS,
  onTick: `(drop (table.grow $t (ref.null func) (i32.const 1)))
    (global.set $ticks (i32.add (global.get $ticks) (table.size $t)))
    (drop (call $clock))`,
  extra: "(table $t 1 funcref)",
});

async function prepared(bytes: Uint8Array<ArrayBuffer>): Promise<ReplayTarget> {
  const p = prepareFromBytes({
    agentId: "a",
    bytes,
    manifest: parseManifest(JSON.stringify(CAPS("clock", "rand", "log")), "manifest"),
    source: "test",
    offered: new Set(["clock", "rand", "log"]),
    cache: new ModuleCache(),
  });
  return { module: p.module, plan: p.plan, memoryCapPages: p.memoryCapPages };
}

const liveTicks = liveTickItems;

/** The windows the verifier sends: `size` consecutive ticks chained from the first one's state. */
function windows(items: ReplayItem[], size: number): ReplayItem[][] {
  const out: ReplayItem[][] = [];
  for (let i = 0; i < items.length; i += size) {
    out.push(items.slice(i, i + size).map((it, j) => (j === 0 ? it : { ...it, preState: undefined })));
  }
  return out;
}

const comparable = (o: ReplayOutcome) => ({ ...o, durationNs: 0n });

/** Replays every window on pooled instances and again each on a fresh one; the outcomes must match. */
function pooledVersusFresh(t: ReplayTarget, items: ReplayItem[]): { pooled: ReplayOutcome[]; stats: ReturnType<typeof replayPoolStats> } {
  const ws = windows(items, 5);
  clearReplayPool();
  const before = replayPoolStats();
  const pooled = ws.map((w) => replay(t, w));
  const after = replayPoolStats();
  const fresh = ws.map((w) => {
    clearReplayPool();
    return replay(t, w);
  });
  expect(pooled.map(comparable)).toEqual(fresh.map(comparable));
  return {
    pooled,
    stats: { created: after.created - before.created, reused: after.reused - before.reused, dropped: after.dropped - before.dropped, idle: after.idle },
  };
}

afterEach(clearReplayPool);

describe("replay instances reset to their post-initialisation image", () => {
  it("the real survivor agent verifies 400 ticks in windows of 5 on one reused instance, as on fresh ones", async () => {
    const t = await prepared(new Uint8Array(readFileSync(join(EXAMPLES, "survivor.wasm"))));
    const items = liveTicks(t, 400);
    const { pooled, stats } = pooledVersusFresh(t, items);
    expect(pooled.every((o) => o.failure === null && o.verified === 5)).toBe(true);
    expect(stats).toMatchObject({ created: 1, reused: 79, dropped: 0 });
  });

  it("an agent that scribbles on scratch memory, a global and its table verifies on a reused instance", async () => {
    const t = await prepared(await wat2wasm(TIDY));
    const { pooled, stats } = pooledVersusFresh(t, liveTicks(t, 100));
    expect(pooled.every((o) => o.failure === null)).toBe(true);
    expect(stats.reused).toBe(19);
  });

  for (const [name, text] of [
    ["a mutable global", HIDDEN_GLOBAL],
    ["memory outside the state", HIDDEN_MEMORY],
    ["a table entry", HIDDEN_TABLE],
    ["float globals holding NaN payloads", HIDDEN_FLOATS],
    ["an i64 global above 2^53", HIDDEN_I64],
    ["a funcref global", HIDDEN_FUNCREF],
    ["the second of two tables", HIDDEN_SECOND_TABLE],
  ] as const) {
    it(`state kept in ${name} still diverges at the first tick of a window run on a reset instance, as on a fresh one`, async () => {
      const t = await prepared(await wat2wasm(text, { reference_types: true }));
      const { pooled, stats } = pooledVersusFresh(t, liveTicks(t, 60));
      // Window 1 starts from the initial state and continues in its instance: it reproduces. Window 2
      // runs on that instance, reset; it and every later window fail on their first tick, with the
      // replayed state hash a fresh instance computes (pooledVersusFresh compares the details).
      expect(pooled[0]).toMatchObject({ verified: 5, failure: null });
      pooled.slice(1).forEach((o, i) => {
        expect(o.failure?.error.code).toBe("REPLAY_STATE_MISMATCH");
        expect(o.failure?.tick).toBe(BigInt(5 * (i + 1) + 1));
      });
      // Window 2 reused window 1's instance; a failed run's instance is dropped, so no more reuse
      // (each failed window runs once: every tick's state is compared, the failing tick named at once).
      expect(stats).toMatchObject({ reused: 1, dropped: 11 });
    });
  }

  it("instances whose memory or table grew are dropped, never reused", async () => {
    const t = await prepared(await wat2wasm(GROWS, { reference_types: true }));
    // Single-tick windows that reproduce (each from its recorded pre-state: sizes start at 1 again
    // only in a fresh instance, so a reused grown instance would compute another state).
    const items = liveTicks(t, 1);
    const before = replayPoolStats();
    const runs = Array.from({ length: 10 }, () => replay(t, items));
    expect(runs.every((o) => o.failure === null && o.verified === 1)).toBe(true);
    const after = replayPoolStats();
    expect({ reused: after.reused - before.reused, dropped: after.dropped - before.dropped }).toEqual({ reused: 0, dropped: 10 });
  });

  it("an agent that defines no global (its state in memory only) verifies on a reused instance, and memory it keeps outside its state still diverges", async () => {
    // No global section to extend: the memory's saved page count needs one of its own.
    const text = `(module
      (import "igor" "clock_now" (func $clock (result i64)))
      (memory (export "memory") 1)
      (func (export "agent_init"))
      (func (export "agent_tick") (result i32)
        (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
        (i32.store (i32.const 4) (i32.add (i32.load (i32.const 4)) (i32.load (i32.const 2048))))
        (i32.store (i32.const 2048) (i32.add (i32.load (i32.const 2048)) (i32.const 1)))
        (drop (call $clock)) (i32.const 0))
      (func (export "agent_checkpoint") (result i32) (i32.const 8))
      (func (export "agent_checkpoint_ptr") (result i32) (i32.const 0))
      (func (export "agent_resume") (param $p i32) (param $n i32) (memory.copy (i32.const 0) (local.get $p) (local.get $n)))
      (func (export "malloc") (param i32) (result i32) (i32.const 1024)))`;
    const t = await prepared(await wat2wasm(text));
    expect(WebAssembly.Module.exports(t.module).map((e) => e.name)).toContain("igord.restore");
    const { pooled, stats } = pooledVersusFresh(t, liveTicks(t, 20));
    expect(pooled[0]).toMatchObject({ verified: 5, failure: null });
    pooled.slice(1).forEach((o) => expect(o.failure?.error.code).toBe("REPLAY_STATE_MISMATCH"));
    expect(stats.reused).toBe(1);
  });

  it("an instance whose table grew while its memory did not is dropped, never reused", async () => {
    const t = await prepared(await wat2wasm(GROWS_TABLE, { reference_types: true }));
    const items = liveTicks(t, 1);
    clearReplayPool();
    const before = replayPoolStats();
    const runs = Array.from({ length: 10 }, () => replay(t, items));
    expect(runs.every((o) => o.failure === null && o.verified === 1)).toBe(true);
    const after = replayPoolStats();
    // Each instance goes back to the pool (its memory kept its size); the next acquire's restore
    // sees the grown table and drops it for a fresh one.
    expect({ created: after.created - before.created, reused: after.reused - before.reused, dropped: after.dropped - before.dropped }).toEqual({ created: 10, reused: 0, dropped: 9 });
  });
});

describe("module rewriting for reset", () => {
  it("adds the save and restore functions to an eligible module, exports nothing else of its state, and marks it", async () => {
    const bytes = await wat2wasm(TIDY);
    const before = WebAssembly.Module.exports(new WebAssembly.Module(bytes)).map((e) => `${e.name}:${e.kind}`);
    const m = new WebAssembly.Module(withResetExports(bytes, "k") as Uint8Array<ArrayBuffer>);
    expect(WebAssembly.Module.exports(m).map((e) => `${e.name}:${e.kind}`)).toEqual([...before, "igord.save:function", "igord.restore:function"]);
    expect(new TextDecoder().decode(WebAssembly.Module.customSections(m, RESET_SECTION)[0])).toBe("k");
  });

  it("restore puts back every mutable global and table entry that save took, and refuses a grown table", async () => {
    const text = `(module
      (global $i (mut i32) (i32.const 1)) (global $l (mut i64) (i64.const 2)) (global $f (mut f32) (f32.const 3)) (global $d (mut f64) (f64.const 4))
      (global $r (mut funcref) (ref.null func)) (global $k i32 (i32.const 9))
      (table $t 2 funcref) (elem (i32.const 0) $a)
      (func $a (result i32) (i32.const 5))
      (func (export "scribble")
        (global.set $i (i32.const -1)) (global.set $l (i64.const -1)) (global.set $f (f32.const -1)) (global.set $d (f64.const -1))
        (global.set $r (ref.func $a)) (table.set $t (i32.const 0) (ref.null func)) (table.set $t (i32.const 1) (ref.func $a)))
      (func (export "grow") (drop (table.grow $t (ref.null func) (i32.const 1))))
      (func (export "read") (result i32 i64 f32 f64 i32 i32 i32 i32)
        (global.get $i) (global.get $l) (global.get $f) (global.get $d) (ref.is_null (global.get $r))
        (ref.is_null (table.get $t (i32.const 0))) (ref.is_null (table.get $t (i32.const 1))) (table.size $t)))`;
    const m = new WebAssembly.Module(withResetExports(await wat2wasm(text, { reference_types: true }), "k") as Uint8Array<ArrayBuffer>);
    const x = new WebAssembly.Instance(m).exports as Record<string, () => unknown>;
    const pristine = x.read?.();
    x["igord.save"]?.();
    x.scribble?.();
    expect(x.read?.()).not.toEqual(pristine);
    expect(x["igord.restore"]?.()).toBe(1);
    expect(x.read?.()).toEqual(pristine);
    x.scribble?.();
    x.grow?.();
    const grown = x.read?.();
    expect(x["igord.restore"]?.()).toBe(0);
    expect(x.read?.()).toEqual(grown);
  });

  for (const [why, extra] of [
    ["a passive data segment", '(data "abc")'],
    ["a passive element segment", "(table 1 funcref) (elem func $f) (func $f)"],
    ["an imported mutable global", ""],
    ["a v128 global", "(global $v (mut v128) (v128.const i64x2 0 0))"],
  ] as const) {
    it(`leaves a module with ${why} as it is (its instances are always fresh)`, async () => {
      const text =
        why === "an imported mutable global"
          ? watAgent({ imports: '(import "env" "g" (global (mut i32)))' })
          : watAgent({ extra });
      expect(withResetExports(await wat2wasm(text, { reference_types: true }), "k")).toBeNull();
    });
  }
});

describe("a module's own reset marker is not trusted", () => {
  it("state kept in a hidden global of a module that ships its own igord.reset section still diverges on a reused instance", async () => {
    // The loader leaves a module that already carries the marker unrewritten (no global exported),
    // so the pool must not reuse its instances: a reused one would keep the hidden global.
    const t = await prepared(withCustomSection(await wat2wasm(HIDDEN_GLOBAL), RESET_SECTION, "forged"));
    const { pooled } = pooledVersusFresh(t, liveTicks(t, 20));
    pooled.slice(1).forEach((o) => expect(o.failure?.error.code).toBe("REPLAY_STATE_MISMATCH"));
  });

  it("a module whose marker names another agent's module never replays on that module's instances", async () => {
    const victim = await prepared(await wat2wasm(TIDY));
    const victimKey = new TextDecoder().decode(WebAssembly.Module.customSections(victim.module, RESET_SECTION)[0] as ArrayBuffer);
    // Same imports and manifest as the victim, other code: every tick adds 1000 to its counter.
    const hostile = await prepared(
      withCustomSection(await wat2wasm(watAgent({ imports: IMPORTS, onTick: "(global.set $ticks (i32.add (global.get $ticks) (i32.const 1000))) (drop (call $clock))" })), RESET_SECTION, victimKey),
    );
    const victimItems = liveTicks(victim, 10);
    clearReplayPool();
    // The hostile agent's replay (an admission or an audit on the same thread) leaves its instance idle...
    replay(hostile, liveTicks(hostile, 3));
    // ...and the victim's next verification must still run the victim's code.
    const out = replay(victim, victimItems);
    expect(out).toMatchObject({ failure: null, verified: 10 });
  });
});

describe("a memory exported under another name", () => {
  it("state kept in a memory exported as \"mem\" (not \"memory\") still diverges on a reused instance", async () => {
    // The agent's checkpoint is empty; it reads the clock twice in its first five ticks, once later,
    // counting ticks in its memory, which no checkpoint holds. A fresh instance starts the counter over; so must a reused one.
    const text = watAgent({
      imports: IMPORTS,
      memory: '(memory (export "mem") 1)',
      omit: ["agent_checkpoint"],
      onTick: `(i32.store (i32.const 2048) (i32.add (i32.load (i32.const 2048)) (i32.const 1)))
        (if (i32.le_u (i32.load (i32.const 2048)) (i32.const 5)) (then (drop (call $clock))))
        (drop (call $clock))`,
      extra: '(func (export "agent_checkpoint") (result i32) (i32.const 0))',
    });
    const t = await prepared(await wat2wasm(text));
    const { pooled } = pooledVersusFresh(t, liveTicks(t, 20));
    expect(pooled[0]).toMatchObject({ verified: 5, failure: null });
    pooled.slice(1).forEach((o) => expect(o.failure?.error.code).toBe("REPLAY_LOG_EXHAUSTED"));
  });
});

describe("a WASI agent's host-side state", () => {
  it("a WASI agent that reads random_get in agent_resume verifies on a reused instance as on a fresh one", async () => {
    // Outside a tick random_get serves the agent's identity stream, from its start in each fresh
    // instance. This agent mixes 4 bytes of it, read at resume, into every tick's state, so the live
    // instance (resumed once from its checkpoint, as after a restart or a migration) and a fresh
    // replay instance agree; a reused instance must serve the same bytes, not the stream's next ones.
    const text = watAgent({
      imports: `${IMPORTS} (import "wasi_snapshot_preview1" "random_get" (func $rg (param i32 i32) (result i32)))`,
      onTick: "(global.set $ticks (i32.add (global.get $ticks) (global.get $seed))) (drop (call $clock))",
      omit: ["agent_resume"],
      extra: `(global $seed (mut i32) (i32.const 0))
        (func (export "agent_resume") (param $p i32) (param $n i32)
          (drop (call $rg (i32.const 512) (i32.const 4)))
          (global.set $seed (i32.and (i32.load (i32.const 512)) (i32.const 0xffff)))
          (if (i32.eq (local.get $n) (i32.const 4)) (then (global.set $ticks (i32.load (local.get $p))))))`,
    });
    const p = await prepared(await wat2wasm(text));
    const t = { ...p, plan: withAgentIdentity(p.plan, "did:key:z6MkResumeSeed") };
    const rec = new LiveRecorder();
    let clock = 1_000n;
    const live = AgentSandbox.instantiate({
      ...t,
      context: { source: rec, budget: () => 100n, price: () => 1n, authority: () => true, world: { nowNs: () => (clock += 37n), randomFill: (b) => b.fill(1) } },
    });
    live.init();
    live.resume(new Uint8Array(4));
    rec.take();
    const items: ReplayItem[] = [];
    for (let i = 1; i <= 20; i++) {
      const pre = live.captureState();
      live.tick();
      items.push({ tick: BigInt(i), preState: pre, entries: rec.take(), expectedPostHash: sha256(live.captureState()), budget: 100n, price: 1n });
    }
    // Strict, as for evidence from a peer or from storage: every tick compared, no second run.
    const { pooled, stats } = pooledVersusFresh(t, items);
    expect(pooled.every((o) => o.failure === null && o.verified === 5)).toBe(true);
    expect(stats).toMatchObject({ created: 1, reused: 3 });
  });
});
