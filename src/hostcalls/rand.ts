// rand_bytes(ptr, len) -> i32 (capability "rand", event id 2). Returns len on success, 0 for len 0,
// -2 when len is negative or above RAND_MAX_BYTES, -4 when the buffer is outside memory. Every path
// records one entry; on success the payload is the random bytes written.
import { EMPTY } from "../eventlog/recorder.js";
import { guestBytes, type HostContext } from "./context.js";
import { HostcallId, HostcallResult, RAND_MAX_BYTES } from "./registry.js";

export function randBytes(ctx: HostContext): (ptr: number, len: number) => number {
  return (ptr, len) => {
    const o = ctx.source.observe(HostcallId.rand_bytes, () => {
      if (len < 0 || len > RAND_MAX_BYTES) return { result: HostcallResult.tooLarge, payload: EMPTY };
      if (len === 0) return { result: 0, payload: EMPTY };
      if (guestBytes(ctx, ptr, len) === null) return { result: HostcallResult.outOfBounds, payload: EMPTY };
      // The tick's log must be able to take the bytes before they are drawn (MAX_TICK_EVENT_BYTES).
      ctx.source.reserve?.(HostcallId.rand_bytes, len);
      const bytes = new Uint8Array(len);
      ctx.world.randomFill(bytes);
      return { result: len, payload: bytes };
    }, (rec) => {
      const want = rec.result > 0 ? len : 0;
      return rec.payload.length === want ? null : `payload is ${rec.payload.length} bytes for a ${len}-byte request returning ${rec.result}`;
    });
    if (o.result > 0) {
      const dst = guestBytes(ctx, ptr, o.payload.length);
      if (dst === null) return HostcallResult.outOfBounds;
      dst.set(o.payload);
    }
    return o.result;
  };
}
