// A log line is cut to LOG_MAX_BYTES, and what the tick's log keeps of it is that much: the per-tick
// log limit (MAX_TICK_EVENT_BYTES) bounds the memory a tick's lines hold only if no line holds more.
import { describe, expect, it } from "vitest";
import { LOG_MAX_BYTES } from "../../../src/hostcalls/registry.js";
import { inProcessSandbox } from "../../helpers/sandbox.js";
import { watAgent } from "../../helpers/wat.js";

describe("a log line over LOG_MAX_BYTES", () => {
  it("env.trace of a 4 MiB string records its first LOG_MAX_BYTES bytes holding only those: three such lines in a tick hold 3 MiB, not 12", async () => {
    // An AssemblyScript string at 65536: its byte length (8 MiB of UTF-16 zeros, 4 Mi characters) at 65532.
    const wat = watAgent({
      imports: '(import "env" "trace" (func $trace (param i32 i32 f64 f64 f64 f64 f64)))',
      memory: '(memory (export "memory") 130)',
      onTick: `(i32.store (i32.const 65532) (i32.const ${8 * 1024 * 1024}))
        (call $trace (i32.const 65536) (i32.const 0) (f64.const 0) (f64.const 0) (f64.const 0) (f64.const 0) (f64.const 0))
        (call $trace (i32.const 65536) (i32.const 0) (f64.const 0) (f64.const 0) (f64.const 0) (f64.const 0) (f64.const 0))
        (call $trace (i32.const 65536) (i32.const 0) (f64.const 0) (f64.const 0) (f64.const 0) (f64.const 0) (f64.const 0))`,
    });
    const { sb, rec } = await inProcessSandbox(wat, ["log"], 256);
    rec.take();
    sb.tick();
    const lines = rec.take();
    expect(lines).toHaveLength(3);
    for (const l of lines) {
      expect(l.payload.byteLength).toBe(LOG_MAX_BYTES);
      expect(new TextDecoder().decode(l.payload.subarray(0, 7))).toBe("trace: ");
      // The entry (kept for the tick, cloned to the main thread) holds its own bytes, not the 4 MiB line.
      expect(l.payload.buffer.byteLength).toBe(LOG_MAX_BYTES);
    }
  });
});
