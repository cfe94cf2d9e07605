// The deterministic WASI layer against real modules, in-process: what each preview1 function answers,
// that WASI time and randomness are recorded observations replayed exactly (a fresh replay instance
// sees what the long-lived live one saw), stdout/stderr as line-buffered log lines, proc_exit.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { IgordError } from "../../../src/errors.js";
import { LiveRecorder } from "../../../src/eventlog/recorder.js";
import type { LogEntry } from "../../../src/eventlog/tick-log.js";
import { planImports } from "../../../src/hostcalls/policy.js";
import { HostcallId } from "../../../src/hostcalls/registry.js";
import { parseManifest } from "../../../src/manifest/manifest.js";
import { type ReplayItem, replay } from "../../../src/replay/engine.js";
import { INIT_RANDOM_DOMAIN } from "../../../src/wasi/host.js";
import { readModuleInfo } from "../../../src/wasm/module-info.js";
import { AgentSandbox } from "../../../src/wasm/sandbox.js";
import { ROOT } from "../../helpers/node.js";
import { CAPS, wat2wasm, watAgent } from "../../helpers/wat.js";

const TINYGO = readFileSync(join(ROOT, "test", "fixtures", "wasi", "tinygo-shaped.wat"), "utf8");
const sha = (b: Uint8Array) => new Uint8Array(createHash("sha256").update(b).digest());
const text = (e: LogEntry) => new TextDecoder().decode(e.payload);

async function target(wat: string, caps: string[], identity = "did:key:z6MkAgentA") {
  const bytes = await wat2wasm(wat);
  return {
    module: new WebAssembly.Module(bytes),
    plan: planImports(readModuleInfo(bytes), parseManifest(JSON.stringify(CAPS(...caps))), new Set(caps), identity),
    memoryCapPages: 16,
  };
}

/** A long-lived live instance whose clock advances on every read; returns one replay item per tick. */
async function live(wat: string, caps: string[], n: number, identity = "did:key:z6MkAgentA") {
  const t = await target(wat, caps, identity);
  const rec = new LiveRecorder();
  let clock = 1_700_000_000_000_000_000n;
  const sb = AgentSandbox.instantiate({
    ...t,
    context: {
      source: rec,
      budget: () => 100n,
      price: () => 1n,
      authority: () => true,
      world: { nowNs: () => (clock += 1_234_567n), randomFill: (b) => b.fill(0xab) },
    },
  });
  sb.init();
  const loadEntries = rec.take();
  const items: ReplayItem[] = [];
  for (let i = 1; i <= n; i++) {
    const pre = sb.captureState();
    sb.tick();
    const post = sb.captureState();
    items.push({ tick: BigInt(i), preState: pre, entries: rec.take(), expectedPostHash: sha(post), budget: 100n, price: 1n });
  }
  return { t, sb, items, loadEntries, post: sb.captureState() };
}

/** A module whose tick calls `body` and stores its i32 result (an errno) at 0: the state. */
const probe = (imports: string, body: string, extra = "") =>
  watAgent({ imports, onTick: `(global.set $ticks ${body})`, extra });

async function tickOnce(wat: string, caps: string[]): Promise<{ state: number; entries: LogEntry[]; bytes: (at: number, n: number) => Uint8Array }> {
  const t = await target(wat, caps);
  const rec = new LiveRecorder();
  const sb = AgentSandbox.instantiate({
    ...t,
    context: { source: rec, budget: () => 1n, price: () => 1n, authority: () => true, world: { nowNs: () => 42_000n, randomFill: (b) => b.fill(7) } },
  });
  sb.init();
  sb.tick();
  const state = new DataView(sb.captureState().buffer).getInt32(0, true);
  const mem = (sb as unknown as { memory: WebAssembly.Memory }).memory;
  return { state, entries: rec.take(), bytes: (at, n) => new Uint8Array(mem.buffer, at, n).slice() };
}

const W = "wasi_snapshot_preview1";

describe("a TinyGo-shaped module", () => {
  it("loads without the rand capability although _initialize calls random_get, and links imports it never calls", async () => {
    const t = await target(TINYGO, ["clock", "log"]);
    expect(t.plan.wasi?.functions).toContain("random_get");
    expect(t.plan.wasi?.functions).toContain("path_open");
    expect(t.plan.wasi?.rand).toBe(false);
    const { items, loadEntries } = await live(TINYGO, ["clock", "log"], 1);
    // _initialize's line is recorded in the load's log; its random_get records nothing.
    expect(loadEntries.map((e) => [e.id, text(e)])).toEqual([[HostcallId.log_emit, "runtime initialised"]]);
    expect(items[0]?.entries.map((e) => e.id)).toEqual([HostcallId.clock_now, HostcallId.clock_now, HostcallId.clock_now, HostcallId.log_emit]);
  });

  it("state that stores WASI time replays in a fresh instance per tick and as a chain: the live instance's clock is not the replay's", async () => {
    const { t, items } = await live(TINYGO, ["clock", "log"], 12);
    // Every tick's state differs (time is in it), so a replay serving other times would diverge.
    expect(new Set(items.map((i) => Buffer.from(i.expectedPostHash!).toString("hex"))).size).toBe(12);
    expect(replay(t, items)).toMatchObject({ verified: 12, failure: null });
    const chain = items.map((it, i) => (i === 0 ? it : { ...it, preState: undefined }));
    expect(replay(t, chain)).toMatchObject({ verified: 12, failure: null });
    // From a later pre-state only (a window snapshot on another node): still identical.
    expect(replay(t, items.slice(7))).toMatchObject({ verified: 5, failure: null });
  });

  it("a recorded WASI time altered in the log is a divergence at its tick", async () => {
    const { t, items } = await live(TINYGO, ["clock", "log"], 4);
    const bad = items[2]!;
    const entries = bad.entries.map((e, k) => (k === 0 ? { ...e, payload: e.payload.map((b, i) => (i === 0 ? b ^ 1 : b)) } : e));
    const out = replay(t, [...items.slice(0, 2), { ...bad, entries }, items[3]!]);
    expect(out.failure?.tick).toBe(3n);
    expect(out.failure?.error.code).toBe("REPLAY_STATE_MISMATCH");
  });

  it("the random bytes served outside ticks derive from the agent's DID: same DID, same state; another DID, another state", async () => {
    const a1 = await live(TINYGO, ["clock", "log"], 3, "did:key:z6MkAgentA");
    const a2 = await live(TINYGO, ["clock", "log"], 3, "did:key:z6MkAgentA");
    const b = await live(TINYGO, ["clock", "log"], 3, "did:key:z6MkAgentB");
    expect(a2.post).toEqual(a1.post);
    expect(b.post).not.toEqual(a1.post);
    // The documented derivation: SHA-256(domain ‖ 0 ‖ id ‖ u64le(0)), first 8 bytes at the seed's address.
    const seed = createHash("sha256").update(INIT_RANDOM_DOMAIN).update("\0").update("did:key:z6MkAgentA").update(new Uint8Array(8)).digest().subarray(0, 8);
    const mem = (a1.sb as unknown as { memory: WebAssembly.Memory }).memory;
    expect(Buffer.from(new Uint8Array(mem.buffer, 1024, 8))).toEqual(seed);
  });

  it("a plan never bound to the agent's DID refuses to serve the stream rather than serve another one", async () => {
    const t = await target(TINYGO, ["clock", "log"], "");
    const world = { nowNs: () => 0n, randomFill: () => undefined };
    expect(() => AgentSandbox.instantiate({ ...t, context: { source: new LiveRecorder(), budget: () => 1n, price: () => 1n, authority: () => true, world } })).toThrow(
      /_initialize: the WASI plan is not bound to the agent's DID/,
    );
  });

  it("stdout is line-buffered into log_emit lines; a partial stderr line is flushed when the tick returns; replay compares lines byte for byte", async () => {
    const { t, items } = await live(TINYGO, ["clock", "log"], 3);
    const lines = items.map((i) => i.entries.filter((e) => e.id === HostcallId.log_emit).map(text));
    expect(lines).toEqual([["tinygo-shaped: tick 1"], ["tinygo-shaped: tick 2"], ["tinygo-shaped: tick 3", "stderr without a newline"]]);
    const third = items[2]!;
    const altered = third.entries.map((e) => (e.id === HostcallId.log_emit && text(e).startsWith("stderr") ? { ...e, payload: new TextEncoder().encode("stderr without a newlinE") } : e));
    const out = replay(t, [{ ...third, entries: altered }]);
    expect(out.failure?.error.code).toBe("REPLAY_PAYLOAD_MISMATCH");
    expect(out.failure?.error.message).toMatch(/log_emit at position 4/);
  });
});

describe("preview1 functions", () => {
  it("clock_time_get and random_get in a tick are the recorded clock_now and rand_bytes; without their capability they answer ENOTCAPABLE and record nothing", async () => {
    const imports = `(import "${W}" "clock_time_get" (func $ct (param i32 i64 i32) (result i32)))
      (import "${W}" "random_get" (func $rg (param i32 i32) (result i32)))`;
    const clock = probe(imports, "(call $ct (i32.const 0) (i64.const 1) (i32.const 64))");
    const withClock = await tickOnce(clock, ["clock"]);
    expect(withClock.state).toBe(0);
    expect(withClock.entries.map((e) => e.id)).toEqual([HostcallId.clock_now]);
    expect(new DataView(withClock.bytes(64, 8).buffer).getBigUint64(0, true)).toBe(42_000n);
    const noClock = await tickOnce(clock, []);
    expect([noClock.state, noClock.entries.length]).toEqual([76, 0]);
    const rand = probe(imports, "(call $rg (i32.const 64) (i32.const 5))");
    const withRand = await tickOnce(rand, ["rand"]);
    expect(withRand.state).toBe(0);
    expect(withRand.entries).toEqual([{ id: HostcallId.rand_bytes, result: 5, payload: new Uint8Array(5).fill(7) }]);
    expect(withRand.bytes(64, 5)).toEqual(new Uint8Array(5).fill(7));
    expect((await tickOnce(rand, [])).state).toBe(76);
    expect((await tickOnce(probe(imports, "(call $rg (i32.const 70000) (i32.const 5))"), ["rand"])).state).toBe(21);
    expect((await tickOnce(probe(imports, "(call $ct (i32.const 2) (i64.const 1) (i32.const 64))"), ["clock"])).state).toBe(28);
  });

  it("stdout and stderr are a character device without seek; other descriptors are EBADF; no preopens; empty args and environ", async () => {
    const imports = `(import "${W}" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
      (import "${W}" "fd_seek" (func $seek (param i32 i64 i32 i32) (result i32)))
      (import "${W}" "fd_close" (func $close (param i32) (result i32)))
      (import "${W}" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
      (import "${W}" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
      (import "${W}" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
      (import "${W}" "args_sizes_get" (func $args (param i32 i32) (result i32)))
      (import "${W}" "environ_sizes_get" (func $env (param i32 i32) (result i32)))
      (import "${W}" "sched_yield" (func $yield (result i32)))
      (import "${W}" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (import "${W}" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))`;
    const cases: [string, number][] = [
      ["(call $fdstat (i32.const 1) (i32.const 64))", 0],
      ["(call $fdstat (i32.const 0) (i32.const 64))", 8],
      ["(call $seek (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 64))", 70],
      ["(call $seek (i32.const 9) (i64.const 0) (i32.const 0) (i32.const 64))", 8],
      ["(call $close (i32.const 2))", 0],
      ["(call $close (i32.const 5))", 8],
      ["(call $prestat (i32.const 3) (i32.const 64))", 8],
      ["(call $write (i32.const 4) (i32.const 64) (i32.const 0) (i32.const 96))", 8],
      ["(call $write (i32.const 1) (i32.const 64) (i32.const 0) (i32.const 96))", 76],
      ["(call $read (i32.const 5) (i32.const 64) (i32.const 0) (i32.const 96))", 8],
      ["(call $read (i32.const 1) (i32.const 64) (i32.const 0) (i32.const 96))", 52],
      ["(call $args (i32.const 64) (i32.const 68))", 0],
      ["(call $env (i32.const 64) (i32.const 68))", 0],
      ["(call $yield)", 0],
      ["(call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 64))", 52],
      ["(call $poll (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 200))", 52],
    ];
    for (const [body, errno] of cases) expect((await tickOnce(probe(imports, body), [])).state, body).toBe(errno);
    const fdstat = await tickOnce(probe(imports, "(call $fdstat (i32.const 1) (i32.const 64))"), []);
    const st = new DataView(fdstat.bytes(64, 24).buffer);
    expect(st.getUint8(0)).toBe(2); // character device
    expect(st.getBigUint64(8, true)).toBe(1n << 6n); // fd_write only: wasi-libc's isatty() says yes
  });

  it("fd_write splits lines at every newline and at 1 MiB; nwritten counts every byte; a fault writes nothing", async () => {
    const imports = `(import "${W}" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))`;
    // 17 iovecs of the same 64 KiB: 1 MiB + 64 KiB without a newline, then "a\nb\nc" on stderr.
    const iovecs = Array.from({ length: 17 }, (_, i) => `(i32.store (i32.const ${256 + i * 8}) (i32.const 65536)) (i32.store (i32.const ${260 + i * 8}) (i32.const 65536))`).join(" ");
    const body = `(block (result i32) ${iovecs}
      (drop (call $write (i32.const 1) (i32.const 256) (i32.const 17) (i32.const 64)))
      (i32.store (i32.const 512) (i32.const 600)) (i32.store (i32.const 516) (i32.const 5))
      (drop (call $write (i32.const 2) (i32.const 512) (i32.const 1) (i32.const 68)))
      (i32.store (i32.const 520) (i32.const 2000000))
      (i32.store (i32.const 524) (i32.const 5))
      (call $write (i32.const 2) (i32.const 512) (i32.const 2) (i32.const 72)))`;
    const r = await tickOnce(probe(imports, body, '(data (i32.const 600) "a\\nb\\nc")').replace('(memory (export "memory") 1)', '(memory (export "memory") 2)'), ["log"]);
    expect(r.state).toBe(21);
    expect(new DataView(r.bytes(64, 8).buffer).getUint32(0, true)).toBe(17 * 65536);
    expect(new DataView(r.bytes(64, 8).buffer).getUint32(4, true)).toBe(5);
    expect(r.entries.map((e) => e.payload.byteLength)).toEqual([1024 * 1024, 1, 1, 64 * 1024, 1]);
    expect(r.entries.slice(1, 3).map(text)).toEqual(["a", "b"]);
    expect(text(r.entries[4]!)).toBe("c");
  });

  it("outside a tick the clock reads 0 and random_get serves the identity stream whatever the capabilities", async () => {
    const imports = `(import "${W}" "clock_time_get" (func $ct (param i32 i64 i32) (result i32)))`;
    const wat = watAgent({
      imports,
      extra: '(func (export "_initialize") (i64.store (i32.const 64) (i64.const -1)) (drop (call $ct (i32.const 0) (i64.const 1) (i32.const 64))))',
    });
    const r = await tickOnce(wat, ["clock"]);
    expect(r.entries).toEqual([]);
    expect(r.bytes(64, 8)).toEqual(new Uint8Array(8));
  });

  it("proc_exit unwinds the guest and reports AGENT_EXIT with its code", async () => {
    const wat = watAgent({ imports: `(import "${W}" "proc_exit" (func $exit (param i32)))`, onTick: "(if (i32.eq (global.get $ticks) (i32.const 2)) (then (call $exit (i32.const 3)) unreachable))" });
    const t = await target(wat, []);
    const sb = AgentSandbox.instantiate({ ...t, context: { source: new LiveRecorder(), budget: () => 1n, price: () => 1n, authority: () => true, world: { nowNs: () => 0n, randomFill: () => undefined } } });
    sb.init();
    sb.tick();
    let err: unknown;
    try {
      sb.tick();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IgordError);
    expect((err as IgordError).code).toBe("AGENT_EXIT");
    expect((err as IgordError).details).toMatchObject({ exitCode: 3, during: "agent_tick" });
    expect((err as IgordError).message).toMatch(/proc_exit\(3\) during agent_tick/);
  });
});
