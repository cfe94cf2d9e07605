// Hostcalls an agent makes from agent_checkpoint (serialising its state): answered with zeros of
// the right shape, recorded nowhere and performing nothing, live as in replay. The node calls
// agent_checkpoint right after every tick and at every load; replay calls it only where it checks
// a state. Before, the live call ran with the tick's recorder and authority: an emit there was
// published, and a debug line logged there made every such tick diverge in replay.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { CheckpointEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import type { DivergenceEvent } from "../../src/scheduler/agent-runtime.js";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

const CLOCK = '(import "igor" "clock_now" (func $clock (result i64)))';
/** Every tick reads the clock (so it is verified by replay); agent_checkpoint runs `call` first. */
const inCheckpoint = (imports: string, data: string, call: string): string =>
  watAgent({
    imports: `${CLOCK} ${imports}`,
    onTick: "(drop (call $clock))",
    omit: ["agent_checkpoint"],
    extra: `${data}
  (func (export "agent_checkpoint") (result i32)
    ${call}
    (i32.store (i32.const 0) (global.get $ticks)) (i32.const 4))`,
  });

/** Every divergence of `agentId` from now on. */
function divergences(t: TestNode, agentId: string): DivergenceEvent[] {
  const seen: DivergenceEvent[] = [];
  t.node.scheduler.on("divergence", (d: DivergenceEvent) => {
    if (d.agentId === agentId) seen.push(d);
  });
  return seen;
}

const verifiedThrough = (t: TestNode, agentId: string, tick: bigint) =>
  t.waitFor<{ agentId: string; ticks: bigint[] }>("verified", (e) => e.agentId === agentId && e.ticks.some((x) => x >= tick), 20_000);

describe("hostcalls in agent_checkpoint", () => {
  it("an emit there is not published and not recorded: only a tick acts on the world", async () => {
    const t = await startTestNode({ "tick-interval": "10ms", "checkpoint-interval": "20ms", "verify-interval": "1" });
    const wasm = inCheckpoint('(import "igor" "emit" (func $emit (param i32 i32) (result i32)))', '(data (i32.const 256) "hello")', "(drop (call $emit (i32.const 256) (i32.const 5)))");
    const seen = divergences(t, "ckemit");
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "ckemit", wasm, CAPS("clock", "emit")) });
    const tick3 = await t.waitFor<TickEvent>("tick", (x) => x.agentId === "ckemit" && x.tick === 3n);
    expect(tick3.events.map((x) => x.id)).toEqual([HostcallId.clock_now]);
    await t.waitFor<CheckpointEvent>("checkpoint", (c) => c.agentId === "ckemit" && c.tick >= 3n && c.outcome === "written");
    await verifiedThrough(t, "ckemit", 3n);
    expect(t.node.store.outbox("ckemit")).toEqual([]);
    expect(seen).toEqual([]);
  });

  it("a line logged there is not joined to the tick's log, and the ticks verify", async () => {
    const t = await startTestNode({ "tick-interval": "5ms", "verify-interval": "1" });
    const wasm = inCheckpoint('(import "igor" "log_emit" (func $log (param i32 i32)))', '(data (i32.const 256) "saving")', "(call $log (i32.const 256) (i32.const 6))");
    const seen = divergences(t, "cklog");
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "cklog", wasm, CAPS("clock", "log")) });
    const tick2 = await t.waitFor<TickEvent>("tick", (x) => x.agentId === "cklog" && x.tick === 2n);
    expect(tick2.events.map((x) => x.id)).toEqual([HostcallId.clock_now]);
    await verifiedThrough(t, "cklog", 5n);
    expect(seen).toEqual([]);
  });

  it("what it writes to stdout through WASI at load is dropped, not joined to the first tick's first line", async () => {
    const t = await startTestNode({ "tick-interval": "10ms", "verify-interval": "1" });
    // agent_checkpoint writes "ck" (no newline) to stdout; agent_tick writes "t\n".
    const wasm = watAgent({
      imports: '(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))',
      omit: ["agent_checkpoint"],
      onTick: "(i32.store (i32.const 512) (i32.const 620)) (i32.store (i32.const 516) (i32.const 2)) (drop (call $fd_write (i32.const 1) (i32.const 512) (i32.const 1) (i32.const 700)))",
      extra: `(data (i32.const 600) "ck") (data (i32.const 620) "t\\n")
  (func (export "agent_checkpoint") (result i32)
    (i32.store (i32.const 512) (i32.const 600)) (i32.store (i32.const 516) (i32.const 2))
    (drop (call $fd_write (i32.const 1) (i32.const 512) (i32.const 1) (i32.const 700)))
    (i32.store (i32.const 0) (global.get $ticks)) (i32.const 4))`,
    });
    const seen = divergences(t, "ckout");
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "ckout", wasm, CAPS("log")) });
    const first = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "ckout" && e.tick === 1n);
    expect(first.events.filter((e) => e.id === HostcallId.log_emit).map((e) => new TextDecoder().decode(e.payload))).toEqual(["t"]);
    await verifiedThrough(t, "ckout", 3n);
    expect(seen).toEqual([]);
  });
});
