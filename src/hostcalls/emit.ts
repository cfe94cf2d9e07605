// emit(ptr, len) -> i32 (capability "emit", event id 10, a side effect): publishes the bytes to the
// agent's outbox when the tick commits. Only the agent's active owner may: outside ACTIVE_OWNER the
// call returns -3 (authority) and publishes nothing. Recorded payload: the message; replay returns
// the recorded result and publishes nothing again. Result: 0 ok, -2 above EMIT_MAX_BYTES, -3 no
// authority, -4 outside memory.
import { EMPTY } from "../eventlog/recorder.js";
import { guestBytes, type HostContext } from "./context.js";
import { EMIT_MAX_BYTES, HostcallId, HostcallResult } from "./registry.js";

export function emit(ctx: HostContext): (ptr: number, len: number) => number {
  return (ptr, len) =>
    ctx.source.observe(HostcallId.emit, () => {
      if (!ctx.authority()) return { result: HostcallResult.authority, payload: EMPTY };
      if (len < 0 || len > EMIT_MAX_BYTES) return { result: HostcallResult.tooLarge, payload: EMPTY };
      const src = guestBytes(ctx, ptr, len);
      if (src === null) return { result: HostcallResult.outOfBounds, payload: EMPTY };
      return { result: HostcallResult.ok, payload: src.slice() };
    }).result;
}
