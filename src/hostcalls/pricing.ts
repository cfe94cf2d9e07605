// node_price() -> i64 (capability "pricing", event id 7): the price this node charges the agent, in
// microcents per second.
import { type HostContext, i64Payload, payloadOf, readI64Payload } from "./context.js";
import { HostcallId } from "./registry.js";

export function nodePrice(ctx: HostContext): () => bigint {
  return () =>
    readI64Payload(
      ctx.source.observe(HostcallId.node_price, () => ({ result: 0, payload: i64Payload(ctx.price()) }), payloadOf(8))
        .payload,
    );
}
