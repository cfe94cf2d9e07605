// What the main thread does for a tick that asks it (src/wasm/host-io.ts carries the request): an
// HTTP request, a payment receipt signed with the agent's key (journalled durably before the signature goes
// back), the node's execution receipts. The pool checks who asks; this answers.
import type { HttpCall, HttpReply } from "../hostcalls/http.js";
import { type Ed25519Key, signBytes } from "../identity/keys.js";
import type { HostIoReply, HostIoRequest } from "./host-io.js";

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
}

/** Answers `request` for the agent whose tick made it. */
export async function answerHostIo(services: HostIoServices, agent: { agentId: string; identity?: Ed25519Key | undefined }, request: HostIoRequest): Promise<HostIoReply> {
  switch (request.kind) {
    case "http":
      return services.http ? services.http(request.call) : { kind: "error", message: "this pool performs no HTTP requests" };
    case "sign": {
      if (!agent.identity) return { kind: "error", message: "the agent has no key here" };
      const signature = signBytes(agent.identity, request.message);
      // Journalled first, durably: once the agent holds the receipt the money may be gone, tick
      // committed or not. The fsync runs off the main thread; the tick waits for it, other agents do not.
      await services.journalPayment?.(agent.agentId, request.tick, Buffer.concat([request.message, signature]));
      return { kind: "signature", signature };
    }
    case "receipt_count":
      return { kind: "count", count: services.receipts?.(agent.agentId).count() ?? 0 };
    case "receipt":
      return { kind: "receipt", bytes: services.receipts?.(agent.agentId).at(request.index) ?? null };
  }
}
