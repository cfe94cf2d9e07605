// wallet_balance() -> i64 (capability "wallet", event id 4): the agent's budget in microcents at the
// start of the tick.
import { type HostContext, i64Payload, payloadOf, readI64Payload } from "./context.js";
import { HostcallId } from "./registry.js";

export function walletBalance(ctx: HostContext): () => bigint {
  return () =>
    readI64Payload(
      ctx.source.observe(HostcallId.wallet_balance, () => ({ result: 0, payload: i64Payload(ctx.budget()) }), payloadOf(8))
        .payload,
    );
}
