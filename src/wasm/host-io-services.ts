// What the main thread does for a tick that asks it (src/wasm/host-io.ts carries the request): an
// HTTP request, a payment receipt signed with the agent's key (journalled durably before the signature goes
// back), the node's execution receipts. The pool checks who asks; this answers.
import { type HttpCall, type HttpReply, isObservationMethod } from "../hostcalls/http.js";
import { type Ed25519Key, signBytes } from "../identity/keys.js";
import type { ClaimReply, HostIoEnvelope, HostIoReply, HostIoRequest } from "./host-io.js";

/** The node's receipts of an agent, read one at a time: an agent asks as often as its tick allows. */
export interface ReceiptList {
  count(): number;
  at(index: number): Uint8Array | null;
}

export interface HostIoServices {
  /** Performs a tick's HTTP request (the node's HttpClient); without it a request fails (-1): nothing reaches the network unless the node says where it may go. */
  http?: (call: HttpCall) => Promise<HttpReply>;
  /** The node's receipts of an agent: its lost payments', then its execution receipts (wallet_receipt_count / wallet_receipt). */
  receipts?: (agentId: string) => ReceiptList;
  /** Journals a signed payment receipt; the signature goes back to the tick once the journal row is durable (resolved). */
  journalPayment?: (agentId: string, tick: bigint, receipt: Uint8Array) => Promise<void>;
  /** Drops the journal row of a receipt no guest took (the tick stopped waiting for its signature): nothing can be paid with it. */
  unjournalPayment?: (agentId: string, receipt: Uint8Array) => void;
  /**
   * Before a payment is signed or an HTTP request that acts is sent: makes the state the acting tick
   * started from durable (a checkpoint of the agent's committed ticks, when some came after its last
   * one). False: it could not be, and nothing is done.
   */
  checkpointBeforeAct?: (agentId: string, act: "payment" | "http") => Promise<boolean>;
}

/** Whether `request` acts on the world (a payment, an HTTP request that is not a read): the active owner's alone. */
function actsOnTheWorld(request: HostIoRequest): boolean {
  return request.kind === "sign" || (request.kind === "http" && !isObservationMethod(request.call.method));
}

/**
 * Answers a tick's request for the agent whose tick made it. The worker checked the tick's authority
 * when the guest called; the main thread, busy, may get to the request later. One that acts on the
 * world is refused past that authority (the tick is not committed, and its re-run would act again),
 * as the worker refuses it when the guest calls after it; and no request is performed once the
 * worker has stopped waiting for it (the guest went on without it).
 */
export async function answerHostIo(services: HostIoServices, agent: { agentId: string; identity?: Ed25519Key | undefined }, env: Pick<HostIoEnvelope, "request" | "authorityUntilMs" | "waitsUntilMs">, claim: ClaimReply = () => true): Promise<HostIoReply> {
  const { request } = env;
  const now = Date.now();
  const lapsed = (at: number): boolean => env.authorityUntilMs !== null && at > env.authorityUntilMs;
  if (now > env.waitsUntilMs) return { kind: "error", message: "the tick stopped waiting before the node got to this request" };
  if (actsOnTheWorld(request) && lapsed(now)) {
    const message = "the tick's authority lapsed before the node got to this request";
    return request.kind === "http" ? { kind: "refused", message } : { kind: "error", message };
  }
  switch (request.kind) {
    case "http": {
      if (!services.http) return { kind: "error", message: "this pool performs no HTTP requests" };
      // A request that acts is sent from a state a restart resumes, as a payment is signed from one (below).
      if (actsOnTheWorld(request) && services.checkpointBeforeAct) {
        if (!(await services.checkpointBeforeAct(agent.agentId, "http"))) return { kind: "error", message: "the agent's state could not be checkpointed before its request" };
        if (lapsed(Date.now())) return { kind: "refused", message: "the tick's authority lapsed while its state was checkpointed before its request" };
      }
      return services.http(request.call);
    }
    case "sign": {
      if (!agent.identity) return { kind: "error", message: "the agent has no key here" };
      // The payment is made from a state a restart resumes: the intent the agent began in an earlier
      // tick (and let "a checkpoint cover", a moment it cannot see) is in it, to be reconciled after a
      // crash. Without it the agent resumed from before the intent, found nothing to reconcile and
      // paid again.
      if (services.checkpointBeforeAct && !(await services.checkpointBeforeAct(agent.agentId, "payment"))) {
        return { kind: "error", message: "the agent's state could not be checkpointed before its payment" };
      }
      if (lapsed(Date.now())) return { kind: "error", message: "the tick's authority lapsed while its state was checkpointed before its payment" };
      const signature = signBytes(agent.identity, request.message);
      const receipt = Buffer.concat([request.message, signature]);
      // Journalled first, durably: once the agent holds the receipt the money may be gone, tick
      // committed or not. The fsync runs off the main thread; the tick waits for it, other agents do not.
      await services.journalPayment?.(agent.agentId, request.tick, receipt);
      // The guest takes the signature only if its tick still waits for it (its wallet_pay returned
      // -6, "nothing debited", if not): a receipt no guest holds pays for nothing, so its row goes,
      // or the next start would debit it as a lost payment.
      if (!claim()) {
        services.unjournalPayment?.(agent.agentId, receipt);
        return { kind: "error", message: "the tick stopped waiting for this signature" };
      }
      return { kind: "signature", signature };
    }
    case "receipt_count":
      return { kind: "count", count: services.receipts?.(agent.agentId).count() ?? 0 };
    case "receipt":
      return { kind: "receipt", bytes: services.receipts?.(agent.agentId).at(request.index) ?? null };
  }
}
