// clock_now (capability "clock", event id 1): Unix nanoseconds as i64; payload = 8 bytes LE.
// env."Date.now" from AssemblyScript is served through the same observation, in milliseconds.
import type { Observation } from "../eventlog/recorder.js";
import { type HostContext, i64Payload, payloadOf, readI64Payload } from "./context.js";
import { HostcallId } from "./registry.js";

const EIGHT_BYTES = payloadOf(8);

/** clock_now as the agent sees it: the observation's closure is built once per instance, not a call. */
function observer(ctx: HostContext): () => bigint {
  const live = (): Observation => ({ result: 0, payload: i64Payload(ctx.world.nowNs()) });
  return () => readI64Payload(ctx.source.observe(HostcallId.clock_now, live, EIGHT_BYTES).payload);
}

export function clockNow(ctx: HostContext): () => bigint {
  return observer(ctx);
}

export function dateNow(ctx: HostContext): () => number {
  const now = observer(ctx);
  return () => Number(now() / 1_000_000n);
}
