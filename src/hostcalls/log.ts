// log_emit(ptr, len) (capability "log", event id 3). The message is recorded as the payload and
// printed by the node when the tick commits, so a tick that never commits prints nothing and replay
// prints nothing. Result: 0 ok (or empty), -2 above LOG_MAX_BYTES, -4 outside memory. Replay checks
// the recorded line against the bytes the agent writes again, byte for byte.
// env.trace from AssemblyScript is recorded the same way.
import { EMPTY, type Observation } from "../eventlog/recorder.js";
import { guestBytes, type HostContext, readAsString, sameOutput } from "./context.js";
import { MAX_FAILURE_OUTPUT_BYTES } from "./output-tail.js";
import { HostcallId, HostcallResult, LOG_MAX_BYTES } from "./registry.js";

const encoder = new TextEncoder();

export function logEmit(ctx: HostContext): (ptr: number, len: number) => void {
  // The call being served: live() and check() read it (observe calls them synchronously, at most
  // once each, before the hostcall returns), so no closure is built a call.
  let ptr = 0;
  let len = 0;
  // The recorded line is a copy; replay compares against the guest's bytes in place.
  const written = (copy: boolean): Observation => {
    if (len <= 0) return { result: len === 0 ? 0 : HostcallResult.tooLarge, payload: EMPTY };
    if (len > LOG_MAX_BYTES) return { result: HostcallResult.tooLarge, payload: EMPTY };
    const src = guestBytes(ctx, ptr, len);
    if (src === null) return { result: HostcallResult.outOfBounds, payload: EMPTY };
    return { result: 0, payload: copy ? src.slice() : src };
  };
  const live = (): Observation => written(true);
  const check = sameOutput(() => written(false));
  return (p, n) => {
    ptr = p;
    len = n;
    if (ctx.tail && n > 0) {
      // The whole range checked as the call's own read does (a view, no copy): its end alone,
      // computed from a pointer past 2 GiB, wrapped to the bytes at address 0.
      const line = guestBytes(ctx, p, n);
      if (line !== null) ctx.tail.addLine(line.subarray(Math.max(0, n - MAX_FAILURE_OUTPUT_BYTES)), n);
    }
    ctx.source.observe(HostcallId.log_emit, live, check);
  };
}

/**
 * Records one log line the host assembled (env.trace, WASI fd_write to stdout/stderr) as a log_emit
 * entry: `line()` is what the agent produces now, so replay compares it with the log byte for byte.
 */
export function recordLine(ctx: HostContext, line: () => Uint8Array): void {
  const written = (): Observation => {
    const bytes = line();
    // Cut by a copy: a view would keep the whole line (env.trace of a 4 MiB string held 4 MiB in the
    // tick's log for each 1 MiB entry the log limit counts).
    return { result: 0, payload: bytes.length > LOG_MAX_BYTES ? bytes.slice(0, LOG_MAX_BYTES) : bytes };
  };
  ctx.source.observe(HostcallId.log_emit, written, sameOutput(written));
}

export function trace(ctx: HostContext): (msg: number, n: number, ...args: number[]) => void {
  return (msg, n, ...args) => {
    let noted = false;
    recordLine(ctx, () => {
      const text = readAsString(ctx, msg) ?? "";
      const values = args.slice(0, Math.max(0, Math.min(n, 5)));
      const line = encoder.encode(`trace: ${text}${values.length > 0 ? ` ${values.join(", ")}` : ""}`);
      // line() may run twice (replay's check after its live read): the tail takes it once.
      if (!noted && ctx.tail) ctx.tail.addLine(line.subarray(Math.max(0, line.length - MAX_FAILURE_OUTPUT_BYTES)), line.length);
      noted = true;
      return line;
    });
  };
}
