// What an agent's tick makes the node print is bounded in bytes, not only in lines: the node prints
// its log lines and published messages on its main thread (a JSON line each, control characters
// escaped six bytes for one), which every agent, the control API, lease renewals and libp2p share. A
// tick may record 16 MiB (MAX_TICK_EVENT_BYTES): fifteen 1 MiB lines of NUL bytes, or 240 messages of
// 64 KiB, took the main thread about a second a tick to print, and as long again per tick at a stop.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { MAX_PRINTED_BYTES_PER_TICK } from "../../src/scheduler/agent-outputs.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { type LogLine, startTestNode, stopAllNodes } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

const MIB = 1024 * 1024;
const LINES = 15;
const MESSAGES = 240;
const MESSAGE_BYTES = 64 * 1024;

/**
 * Tick 1 logs LINES lines of 1 MiB of NUL bytes; tick 2 emits MESSAGES messages of 64 KiB of them
 * (memory past the 4-byte state is zeroed); later ticks do nothing.
 */
const LOUD = watAgent({
  imports: `(import "igor" "log_emit" (func $log (param i32 i32)))
    (import "igor" "emit" (func $emit (param i32 i32) (result i32)))`,
  memory: '(memory (export "memory") 17)',
  extra: "(global $i (mut i32) (i32.const 0))",
  onTick: `(global.set $i (i32.const 0))
    (if (i32.eq (global.get $ticks) (i32.const 1)) (then (block $done (loop $more
      (call $log (i32.const 65536) (i32.const ${MIB}))
      (global.set $i (i32.add (global.get $i) (i32.const 1)))
      (br_if $done (i32.ge_u (global.get $i) (i32.const ${LINES})))
      (br $more)))))
    (if (i32.eq (global.get $ticks) (i32.const 2)) (then (block $done (loop $more
      (drop (call $emit (i32.const 65536) (i32.const ${MESSAGE_BYTES})))
      (global.set $i (i32.add (global.get $i) (i32.const 1)))
      (br_if $done (i32.ge_u (global.get $i) (i32.const ${MESSAGES})))
      (br $more)))))`,
});

const printedBytes = (lines: LogLine[]): number => lines.reduce((n, l) => n + Buffer.byteLength(String(l.msg)), 0);

describe("what a tick prints", () => {
  it("a tick's log lines and published messages are printed up to MAX_PRINTED_BYTES_PER_TICK, the line crossing it cut, the rest counted; the event log and the outbox keep every byte", async () => {
    const t = await startTestNode({ "tick-interval": "20ms", "checkpoint-interval": "20ms", "verify-interval": "0" });
    await t.node.addAgent({ wasmPath: await writeWat(join(t.dir, "wasm"), "loud", LOUD, CAPS("log", "emit")) });
    const tick1 = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "loud" && e.tick === 1n);
    const tick2 = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "loud" && e.tick === 2n);
    // Every byte is recorded: the tick's log (replay, audits) holds the lines and the messages whole.
    expect(tick1.events.filter((e) => e.id === HostcallId.log_emit).map((e) => e.payload.length)).toEqual(Array(LINES).fill(MIB));
    expect(tick2.events.filter((e) => e.id === HostcallId.emit).map((e) => e.payload.length)).toEqual(Array(MESSAGES).fill(MESSAGE_BYTES));
    await waitUntil(() => t.logs.events("agent_lines_not_printed", "loud").length === 2, { what: "both ticks' notes of what was not printed" });

    const logLines = t.logs.events("agent_log", "loud");
    expect(logLines.every((l) => l.tick === "1")).toBe(true);
    expect(printedBytes(logLines)).toBe(MAX_PRINTED_BYTES_PER_TICK);
    // The one line printed is the first, cut, and says how long it was.
    expect(logLines).toHaveLength(1);
    expect(logLines[0]).toMatchObject({ bytes: MIB, cut: true });

    const outputs = t.logs.events("agent_output", "loud");
    expect(outputs.every((l) => l.tick === "2")).toBe(true);
    expect(printedBytes(outputs)).toBe(MAX_PRINTED_BYTES_PER_TICK);

    const [ofLog, ofOutput] = ["agent_log", "agent_output"].map((of) => t.logs.events("agent_lines_not_printed", "loud").find((l) => l.of === of));
    expect(ofLog).toMatchObject({ tick: "1", count: LINES - 1, bytes: LINES * MIB - MAX_PRINTED_BYTES_PER_TICK, byteLimit: MAX_PRINTED_BYTES_PER_TICK });
    expect(ofOutput).toMatchObject({ tick: "2", count: MESSAGES - outputs.length, bytes: MESSAGES * MESSAGE_BYTES - MAX_PRINTED_BYTES_PER_TICK });

    // The outbox keeps every message whole: printing is for people, the outbox for consumers.
    const stored = t.node.store.outbox("loud", -1n, MESSAGES + 1);
    expect(stored.map((m) => m.payload.length)).toEqual(Array(MESSAGES).fill(MESSAGE_BYTES));
  });
});
