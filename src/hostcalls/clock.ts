// clock_now (capability "clock", event id 1): Unix nanoseconds as i64; payload = 8 bytes LE.
// env."Date.now" from AssemblyScript is served through the same observation, in milliseconds.
import { type HostContext, i64Payload, payloadOf, readI64Payload } from "./context.js";
import { HostcallId } from "./registry.js";

const EIGHT_BYTES = payloadOf(8);

function observeNow(ctx: HostContext): bigint {
  const o = ctx.source.observe(
    HostcallId.clock_now,
    () => ({ result: 0, payload: i64Payload(ctx.world.nowNs()) }),
    EIGHT_BYTES,
  );
  return readI64Payload(o.payload);
}

export function clockNow(ctx: HostContext): () => bigint {
  return () => observeNow(ctx);
}

export function dateNow(ctx: HostContext): () => number {
  return () => Number(observeNow(ctx) / 1_000_000n);
}
