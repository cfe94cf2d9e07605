// A runtime that fails prints why to stdout/stderr and then traps with a bare `unreachable` (Rust's
// panic hook and its allocation-failure handler, a C assert): the error quotes what the failed guest
// call last wrote, bounded by MAX_FAILURE_OUTPUT_BYTES, and never what an earlier call wrote.
import { describe, expect, it } from "vitest";
import { ErrorCode, IgordError } from "../../../src/errors.js";
import { MAX_FAILURE_OUTPUT_BYTES } from "../../../src/hostcalls/output-tail.js";
import { inProcessSandbox, thrownBy } from "../../helpers/sandbox.js";
import { watAgent } from "../../helpers/wat.js";

const W = "wasi_snapshot_preview1";
const IMPORTS = `(import "${W}" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "${W}" "proc_exit" (func $exit (param i32)))`;
const LONG = 3000;
/**
 * $say(fd, ptr, len): one fd_write of one iovec (at 512). Data: "tick line\n" at 2048, "boom: the
 * reason\n" at 2100, LONG 'a's then "END\n" at 4096.
 */
const EXTRA = `(func $say (param $fd i32) (param $p i32) (param $n i32)
    (i32.store (i32.const 512) (local.get $p)) (i32.store (i32.const 516) (local.get $n))
    (drop (call $write (local.get $fd) (i32.const 512) (i32.const 1) (i32.const 520))))
  (data (i32.const 2048) "tick line\\n")
  (data (i32.const 2100) "boom: the reason\\n")
  (data (i32.const 4096) "${"a".repeat(LONG)}END\\n")`;

/** Tick 1 writes a line and returns; tick 2 runs `failing`. */
async function agent(failing: string) {
  const wat = watAgent({
    imports: IMPORTS,
    extra: EXTRA,
    onTick: `(if (i32.eq (global.get $ticks) (i32.const 1)) (then (call $say (i32.const 1) (i32.const 2048) (i32.const 10))))
      (if (i32.eq (global.get $ticks) (i32.const 2)) (then ${failing}))`,
  });
  return (await inProcessSandbox(wat, ["log"])).sb;
}

function failureOf(fn: () => unknown): IgordError {
  const err = thrownBy(fn);
  if (!(err instanceof IgordError)) throw new Error(`expected an IgordError, got ${String(err)}`);
  return err;
}

describe("a failed guest call quotes its last output", () => {
  it("a trap after a line on stderr: AGENT_TRAP quotes it, not what the earlier tick wrote", async () => {
    const sb = await agent("(call $say (i32.const 2) (i32.const 2100) (i32.const 17)) (unreachable)");
    sb.tick();
    const err = failureOf(() => sb.tick());
    expect(err.code).toBe(ErrorCode.AgentTrap);
    expect(err.message).toBe("agent trapped during agent_tick: unreachable (its last output: boom: the reason)");
    expect(err.details).toEqual({ trap: "unreachable", during: "agent_tick", output: "boom: the reason" });
  });

  it("proc_exit(3) quotes the output; proc_exit(0), a clean stop, does not", async () => {
    const failing = await agent("(call $say (i32.const 2) (i32.const 2100) (i32.const 17)) (call $exit (i32.const 3))");
    failing.tick();
    const err = failureOf(() => failing.tick());
    expect([err.code, err.details.exitCode, err.details.output]).toEqual([ErrorCode.AgentExit, 3, "boom: the reason"]);
    const clean = await agent("(call $exit (i32.const 0))");
    clean.tick();
    const stop = failureOf(() => clean.tick());
    expect([stop.message, stop.details.output]).toEqual(["agent called proc_exit(0) during agent_tick", undefined]);
  });

  it("a long output is quoted from its end, at most MAX_FAILURE_OUTPUT_BYTES, marked cut", async () => {
    const sb = await agent(`(call $say (i32.const 2) (i32.const 4096) (i32.const ${LONG + 4})) (unreachable)`);
    sb.tick();
    const output = String(failureOf(() => sb.tick()).details.output);
    expect(output.endsWith("aaaEND")).toBe(true);
    expect(output.startsWith("…aaa")).toBe(true);
    expect(output.length).toBeLessThanOrEqual(MAX_FAILURE_OUTPUT_BYTES + 1);
  });

  it("a trap in a call that wrote nothing is the bare trap", async () => {
    const silent = await agent("(unreachable)");
    silent.tick();
    const err = failureOf(() => silent.tick());
    expect([err.message, err.details]).toEqual(["agent trapped during agent_tick: unreachable", { trap: "unreachable", during: "agent_tick" }]);
  });

  it("a trap after WASI calls refused for want of a capability names each call and the capability (a Rust println! without log panics, and its panic message is refused too)", async () => {
    const wat = watAgent({
      imports: `${IMPORTS} (import "${W}" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
        (import "${W}" "random_get" (func $random (param i32 i32) (result i32)))`,
      extra: EXTRA,
      onTick: `(drop (call $clock (i32.const 0) (i64.const 1) (i32.const 600)))
        (drop (call $random (i32.const 600) (i32.const 16)))
        (call $say (i32.const 1) (i32.const 2048) (i32.const 10))
        (call $say (i32.const 2) (i32.const 2100) (i32.const 17))
        (unreachable)`,
    });
    const { sb } = await inProcessSandbox(wat, []);
    const err = failureOf(() => sb.tick());
    expect(err.message).toBe(
      'agent trapped during agent_tick: unreachable (WASI calls refused ENOTCAPABLE, the manifest not granting their capability: clock_time_get needs "clock", random_get needs "rand", fd_write needs "log")',
    );
    expect(err.details.refused).toEqual(["clock_time_get", "random_get", "fd_write"]);
    // Granted, the same calls are served: the trap quotes the output instead.
    const granted = (await inProcessSandbox(wat, ["clock", "rand", "log"])).sb;
    expect(failureOf(() => granted.tick()).message).toBe("agent trapped during agent_tick: unreachable (its last output: tick line | boom: the reason)");
  });

  it("a freestanding agent (no WASI) that logs through igor.log_emit before it traps gets that line quoted, as a no_std Rust panic handler would write it", async () => {
    const wat = watAgent({
      imports: '(import "igor" "log_emit" (func $log (param i32 i32)))',
      extra: '(data (i32.const 2100) "panicked at src/lib.rs:9:5: attempt to divide by zero")',
      onTick: "(call $log (i32.const 2100) (i32.const 53)) (unreachable)",
    });
    const { sb } = await inProcessSandbox(wat, ["log"]);
    const err = failureOf(() => sb.tick());
    expect(err.message).toBe("agent trapped during agent_tick: unreachable (its last output: panicked at src/lib.rs:9:5: attempt to divide by zero)");
  });

  it("a trap in agent_checkpoint quotes what it wrote there, though that output is never logged", async () => {
    const wat = watAgent({
      imports: IMPORTS,
      extra: `${EXTRA} (func (export "agent_checkpoint") (result i32)
        (if (i32.eq (global.get $ticks) (i32.const 1)) (then (call $say (i32.const 2) (i32.const 2100) (i32.const 17)) (unreachable)))
        (i32.const 0))`,
      omit: ["agent_checkpoint"],
    });
    const { sb } = await inProcessSandbox(wat, ["log"]);
    sb.tick();
    const err = failureOf(() => sb.captureState());
    expect(err.message).toBe("agent trapped during agent_checkpoint: unreachable (its last output: boom: the reason)");
  });
  it("a log_emit whose range runs past the top of the 32-bit address space is refused -4 and quotes nothing: not the bytes at address 0 its end wraps to", async () => {
    // log_emit(0xFFFFFC00, 2048): the range [4 GiB - 1 KiB, 4 GiB + 1 KiB) is outside memory. Its
    // last 1 KiB, computed in signed 32-bit arithmetic, started at address 0, where this agent keeps a secret.
    const wat = watAgent({
      imports: '(import "igor" "log_emit" (func $log (param i32 i32)))',
      extra: '(data (i32.const 0) "SECRET-NEVER-LOGGED")',
      onTick: "(call $log (i32.const -1024) (i32.const 2048)) (unreachable)",
    });
    const { sb, rec } = await inProcessSandbox(wat, ["log"]);
    const err = failureOf(() => sb.tick());
    expect(err.message).toBe("agent trapped during agent_tick: unreachable");
    expect(err.details.output).toBeUndefined();
    expect(rec.take().map((e) => e.result)).toEqual([-4]);
  });
});
