// emit(ptr, len) -> i32 (capability "emit", event id 10, a side effect): publishes the bytes to the
// agent's outbox when the tick commits. Only the agent's active owner may: outside ACTIVE_OWNER the
// call returns -3 (authority) and publishes nothing. Recorded payload: the message; replay returns
// the recorded result, publishes nothing again, and checks the recorded message against the bytes
// the agent passes, byte for byte. Result: 0 ok, -2 above EMIT_MAX_BYTES, -3 no
// authority, -4 outside memory.
import { EMPTY, type Observation } from "../eventlog/recorder.js";
import { guestBytes, type HostContext, sameOutput } from "./context.js";
import { EMIT_MAX_BYTES, HostcallId, HostcallResult } from "./registry.js";

export function emit(ctx: HostContext): (ptr: number, len: number) => number {
  return (ptr, len) => {
    const message = (): Observation => {
      if (len < 0 || len > EMIT_MAX_BYTES) return { result: HostcallResult.tooLarge, payload: EMPTY };
      const src = guestBytes(ctx, ptr, len);
      if (src === null) return { result: HostcallResult.outOfBounds, payload: EMPTY };
      return { result: HostcallResult.ok, payload: src.slice() };
    };
    const live = (): Observation => (ctx.authority() ? message() : { result: HostcallResult.authority, payload: EMPTY });
    // Replay has no authority of its own: a recorded refusal published nothing, so there is nothing
    // to compare; anything else must be exactly the message the agent passes again.
    const check = (rec: Observation): string | null =>
      rec.result === HostcallResult.authority ? (rec.payload.length === 0 ? null : "a refused emit recorded a message") : sameOutput(message)(rec);
    return ctx.source.observe(HostcallId.emit, live, check).result;
  };
}
