// fd_write takes a list of buffers, and nothing stops a guest from naming the same memory many times
// over: what the host copies must be bounded by what it keeps (a partial line, the tick's log), not
// by the sum of the buffers. In its own file: it reads the process's peak RSS, which earlier tests
// in the same worker would have raised.
import { describe, expect, it } from "vitest";
import { ErrorCode, IgordError } from "../../../src/errors.js";
import type { AgentSandbox } from "../../../src/wasm/sandbox.js";
import { inProcessSandbox, thrownBy } from "../../helpers/sandbox.js";
import { watAgent } from "../../helpers/wat.js";

const W = "wasi_snapshot_preview1";
const IOVECS = 4096;
const PAGES = 2;
/** What fd_write is handed: IOVECS × the whole memory (512 MiB). */
const NAMED_BYTES = IOVECS * PAGES * 65536;

/** $bomb: one fd_write to stdout of IOVECS iovecs, each the whole memory (no newline in it: zeros). */
const BOMB = `(func $bomb (result i32) (local $i i32)
  (block $done (loop $l
    (br_if $done (i32.ge_u (local.get $i) (i32.const ${IOVECS})))
    (i32.store (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0))
    (i32.store (i32.add (i32.const 1028) (i32.shl (local.get $i) (i32.const 3))) (i32.const ${PAGES * 65536}))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $l)))
  (call $write (i32.const 1) (i32.const 1024) (i32.const ${IOVECS}) (i32.const 64)))`;

async function sandbox(wat: string): Promise<AgentSandbox> {
  return (await inProcessSandbox(wat.replace('(memory (export "memory") 1)', `(memory (export "memory") ${PAGES})`), ["log"], 16)).sb;
}

const peakRssBytes = (): number => process.resourceUsage().maxRSS * 1024;

describe("fd_write's buffers", () => {
  it("512 MiB named by 4,096 iovecs of the same 128 KiB: a tick fails TICK_LOG_TOO_LARGE at the log limit, and agent_checkpoint's write (dropped) copies nothing; the process's peak RSS grows far less than 512 MiB", async () => {
    const imports = `(import "${W}" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))`;
    const inTick = await sandbox(watAgent({ imports, onTick: "(drop (call $bomb))", extra: BOMB }));
    const inCheckpoint = await sandbox(
      watAgent({
        imports,
        omit: ["agent_checkpoint"],
        extra: `${BOMB} (func (export "agent_checkpoint") (result i32) (drop (call $bomb)) (i32.store (i32.const 0) (global.get $ticks)) (i32.const 4))`,
      }),
    );
    inCheckpoint.tick(); // between ticks from now: what agent_checkpoint writes is dropped
    const before = peakRssBytes();
    const err = thrownBy(() => inTick.tick());
    expect(err instanceof IgordError && err.code).toBe(ErrorCode.TickLogTooLarge);
    expect(inCheckpoint.captureState()).toEqual(new Uint8Array([1, 0, 0, 0]));
    const grown = peakRssBytes() - before;
    expect(grown, `peak RSS grew ${grown} bytes for ${NAMED_BYTES} named`).toBeLessThan(NAMED_BYTES / 4);
  });
});
