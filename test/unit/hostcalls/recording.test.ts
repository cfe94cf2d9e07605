// Every hostcall invocation — success, error or zero-length — appends exactly one entry to the tick's
// event log, through the same code path replay will use. Runs a real WAT agent in-process.
import { describe, expect, it } from "vitest";
import type { ObservationSource } from "../../../src/eventlog/recorder.js";
import { LiveRecorder, MAX_TICK_EVENT_BYTES, MAX_TICK_EVENT_ENTRIES, type Observation } from "../../../src/eventlog/recorder.js";
import { MAX_TICK_LOG_ENTRIES } from "../../../src/eventlog/tick-log.js";
import { ErrorCode, isIgordError } from "../../../src/errors.js";
import { planImports } from "../../../src/hostcalls/policy.js";
import { HostcallId } from "../../../src/hostcalls/registry.js";
import { parseManifest } from "../../../src/manifest/manifest.js";
import { readModuleInfo } from "../../../src/wasm/module-info.js";
import { AgentSandbox } from "../../../src/wasm/sandbox.js";
import { CAPS, wat2wasm, watAgent } from "../../helpers/wat.js";

const IMPORTS = `
  (import "igor" "clock_now" (func $clock (result i64)))
  (import "igor" "rand_bytes" (func $rand (param i32 i32) (result i32)))
  (import "igor" "log_emit" (func $log (param i32 i32)))
  (import "igor" "wallet_balance" (func $balance (result i64)))
  (import "igor" "node_price" (func $price (result i64)))`;

// Tick 1 exercises every path; results land at 64.. so the test can read the return codes.
const ON_TICK = `
  (drop (call $clock))
  (i32.store (i32.const 64) (call $rand (i32.const 128) (i32.const 16)))   ;; ok: 16
  (i32.store (i32.const 68) (call $rand (i32.const 128) (i32.const 0)))    ;; zero length: 0
  (i32.store (i32.const 72) (call $rand (i32.const 128) (i32.const -1)))   ;; negative: -2
  (i32.store (i32.const 76) (call $rand (i32.const 65530) (i32.const 16))) ;; outside memory: -4
  (call $log (i32.const 256) (i32.const 5))                                 ;; "hello"
  (call $log (i32.const 256) (i32.const 0))                                 ;; empty
  (call $log (i32.const 65535) (i32.const 100))                             ;; outside memory
  (i64.store (i32.const 80) (call $balance))
  (i64.store (i32.const 88) (call $price))`;

async function sandbox(source: ObservationSource) {
  const text = watAgent({ imports: IMPORTS, onTick: ON_TICK, extra: '(data (i32.const 256) "hello")' });
  const bytes = await wat2wasm(text);
  const module = new WebAssembly.Module(bytes);
  const plan = planImports(
    readModuleInfo(bytes),
    parseManifest(JSON.stringify(CAPS("clock", "rand", "log", "wallet", "pricing"))),
    new Set(["clock", "rand", "log", "wallet", "pricing"]),
  );
  return AgentSandbox.instantiate({
    module,
    plan,
    memoryCapPages: 16,
    context: {
      source,
      budget: () => 777n,
      price: () => 1000n,
      authority: () => true,
      world: {
        nowNs: () => 1_700_000_000_000_000_000n,
        randomFill: (b) => b.fill(0xab),
      },
    },
  });
}

describe("hostcall event recording", () => {
  it("records exactly one entry per invocation, error and zero-length paths included", async () => {
    const rec = new LiveRecorder();
    const sb = await sandbox(rec);
    sb.init();
    sb.tick();
    const entries = rec.take();
    expect(entries.map((e) => [e.id, e.result, e.payload.byteLength])).toEqual([
      [HostcallId.clock_now, 0, 8],
      [HostcallId.rand_bytes, 16, 16],
      [HostcallId.rand_bytes, 0, 0],
      [HostcallId.rand_bytes, -2, 0],
      [HostcallId.rand_bytes, -4, 0],
      [HostcallId.log_emit, 0, 5],
      [HostcallId.log_emit, 0, 0],
      [HostcallId.log_emit, -4, 0],
      [HostcallId.wallet_balance, 0, 8],
      [HostcallId.node_price, 0, 8],
    ]);
    expect(new TextDecoder().decode(entries[5]?.payload)).toBe("hello");
    expect(new DataView(entries[0]!.payload.buffer).getBigInt64(0, true)).toBe(1_700_000_000_000_000_000n);
    expect(new DataView(entries[8]!.payload.buffer).getBigInt64(0, true)).toBe(777n);
    expect(rec.take()).toEqual([]);
  });

  it("serves recorded observations back through the same path (replay shape)", async () => {
    const live = new LiveRecorder();
    const first = await sandbox(live);
    first.init();
    first.tick();
    const recorded = live.take();
    // A source that ignores the world and returns the recorded entries in order.
    let i = 0;
    const served: number[] = [];
    const replay: ObservationSource = {
      observe(id: number): Observation {
        const e = recorded[i++];
        if (!e || e.id !== id) throw new Error(`mismatch at ${i - 1}`);
        served.push(id);
        return { result: e.result, payload: e.payload };
      },
    };
    const second = await sandbox(replay);
    second.init();
    second.tick();
    expect(served.length).toBe(recorded.length);
    expect(second.captureState()).toEqual(first.captureState());
  });

  it("a side effect (emit) runs only under the active owner's authority; outside it returns -3 and publishes nothing", async () => {
    const text = watAgent({
      imports: '(import "igor" "emit" (func $emit (param i32 i32) (result i32)))',
      onTick: `
        (i32.store (i32.const 64) (call $emit (i32.const 256) (i32.const 5)))
        (i32.store (i32.const 68) (call $emit (i32.const 65535) (i32.const 100)))`,
      extra: '(data (i32.const 256) "hello")',
    });
    const bytes = await wat2wasm(text);
    const plan = planImports(readModuleInfo(bytes), parseManifest(JSON.stringify(CAPS("emit"))), new Set(["emit"]));
    const run = (authority: boolean) => {
      const rec = new LiveRecorder();
      const sb = AgentSandbox.instantiate({
        module: new WebAssembly.Module(bytes),
        plan,
        memoryCapPages: 16,
        context: { source: rec, budget: () => 1n, price: () => 1n, authority: () => authority, world: { nowNs: () => 0n, randomFill: () => undefined } },
      });
      sb.init();
      sb.tick();
      return rec.take().map((e) => [e.id, e.result, new TextDecoder().decode(e.payload)]);
    };
    expect(run(true)).toEqual([
      [HostcallId.emit, 0, "hello"],
      [HostcallId.emit, -4, ""],
    ]);
    // Outside ACTIVE_OWNER: HostcallResult.authority, recorded, nothing published.
    expect(run(false)).toEqual([
      [HostcallId.emit, -3, ""],
      [HostcallId.emit, -3, ""],
    ]);
  });

  it("a tick whose event log would pass MAX_TICK_EVENT_BYTES fails with TICK_LOG_TOO_LARGE; rand_bytes is refused before it allocates", async () => {
    // 1 MiB of randomness per call, forever: only the per-tick cap stops it.
    const text = watAgent({
      imports: '(import "igor" "rand_bytes" (func $rand (param i32 i32) (result i32)))',
      onTick: `(loop $more (drop (call $rand (i32.const 65536) (i32.const 1048576))) (br $more))`,
      memory: '(memory (export "memory") 17)',
    });
    const bytes = await wat2wasm(text);
    const plan = planImports(readModuleInfo(bytes), parseManifest(JSON.stringify(CAPS("rand"))), new Set(["rand"]));
    const rec = new LiveRecorder();
    let filled = 0;
    const sb = AgentSandbox.instantiate({
      module: new WebAssembly.Module(bytes),
      plan,
      memoryCapPages: 32,
      context: { source: rec, budget: () => 1n, price: () => 1n, authority: () => true, world: { nowNs: () => 0n, randomFill: (b) => void (filled += b.byteLength) } },
    });
    sb.init();
    let error: unknown;
    try {
      sb.tick();
    } catch (e) {
      error = e;
    }
    expect(isIgordError(error, ErrorCode.TickLogTooLarge), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/rand_bytes at position 15: the tick's event log would grow to \d+ bytes, over the per-tick limit of 16777216/);
    // Fifteen calls fit (the log's headers count too); the sixteenth never drew its mebibyte.
    expect(filled).toBe(15 * 1048576);
    expect(MAX_TICK_EVENT_BYTES).toBe(16 * 1024 * 1024);
  });
});

describe("the live recorder's entry cap", () => {
  it("takes MAX_TICK_EVENT_ENTRIES entries a tick and refuses the next with TICK_LOG_TOO_LARGE, under what every reader of stored logs takes", () => {
    expect(MAX_TICK_EVENT_ENTRIES).toBeLessThanOrEqual(MAX_TICK_LOG_ENTRIES);
    const rec = new LiveRecorder(MAX_TICK_EVENT_BYTES, 3);
    const empty = (): Observation => ({ result: 0, payload: new Uint8Array() });
    for (let i = 0; i < 3; i++) rec.observe(HostcallId.resume_interrupted, empty);
    let refused: unknown = null;
    try {
      rec.observe(HostcallId.resume_interrupted, empty);
    } catch (e) {
      refused = e;
    }
    expect(isIgordError(refused, ErrorCode.TickLogTooLarge)).toBe(true);
    expect(rec.take()).toHaveLength(3);
    // A new tick starts empty.
    rec.observe(HostcallId.resume_interrupted, empty);
    expect(rec.size).toBe(1);
  });
});
