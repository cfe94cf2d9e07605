// The hostcalls of the `igor` module: name, event-log id (igor's numbering), capability, signature,
// and whether a call observes the world or acts on it (CE-4/CM-5: side effects are only allowed to
// the agent's active owner; the authority issue gates them).

export type ValType = "i32" | "i64";
export type HostcallKind = "observation" | "side_effect";

export interface HostcallSpec {
  name: string;
  /** Event-log id, igor's `eventlog.HostcallID`. */
  id: number;
  /** null: no capability needed (it reveals nothing about the world). */
  capability: string | null;
  kind: HostcallKind;
  params: readonly ValType[];
  results: readonly ValType[];
}

/** Bumped whenever a hostcall's signature, result codes or recorded payload change. */
export const HOSTCALL_ABI_VERSION = 1;

export const HostcallId = {
  clock_now: 1,
  rand_bytes: 2,
  log_emit: 3,
  wallet_balance: 4,
  wallet_receipt_count: 5,
  wallet_receipt: 6,
  node_price: 7,
  http_request: 8,
  wallet_pay: 9,
  emit: 10,
  /** igord extension (ids from 20 on are igord's own). */
  resume_interrupted: 20,
} as const;

export const HOSTCALLS: readonly HostcallSpec[] = [
  {
    name: "clock_now",
    id: HostcallId.clock_now,
    capability: "clock",
    kind: "observation",
    params: [],
    results: ["i64"],
  },
  {
    name: "rand_bytes",
    id: HostcallId.rand_bytes,
    capability: "rand",
    kind: "observation",
    params: ["i32", "i32"],
    results: ["i32"],
  },
  {
    name: "log_emit",
    id: HostcallId.log_emit,
    capability: "log",
    kind: "observation",
    params: ["i32", "i32"],
    results: [],
  },
  {
    name: "wallet_balance",
    id: HostcallId.wallet_balance,
    capability: "wallet",
    kind: "observation",
    params: [],
    results: ["i64"],
  },
  {
    name: "wallet_receipt_count",
    id: HostcallId.wallet_receipt_count,
    capability: "wallet",
    kind: "observation",
    params: [],
    results: ["i32"],
  },
  {
    name: "wallet_receipt",
    id: HostcallId.wallet_receipt,
    capability: "wallet",
    kind: "observation",
    params: ["i32", "i32", "i32"],
    results: ["i32"],
  },
  {
    name: "node_price",
    id: HostcallId.node_price,
    capability: "pricing",
    kind: "observation",
    params: [],
    results: ["i64"],
  },
  {
    // GET and HEAD observe the world; any other method acts on it and needs ACTIVE_OWNER (http.ts).
    name: "http_request",
    id: HostcallId.http_request,
    capability: "http",
    kind: "side_effect",
    params: ["i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32"],
    results: ["i32"],
  },
  {
    // Money leaving the budget: ACTIVE_OWNER within the lease only (wallet-pay.ts).
    name: "wallet_pay",
    id: HostcallId.wallet_pay,
    capability: "x402",
    kind: "side_effect",
    params: ["i64", "i32", "i32", "i32", "i32", "i32", "i32"],
    results: ["i32"],
  },
  {
    // Publishes a message to the agent's outbox: the one side effect this build offers.
    name: "emit",
    id: HostcallId.emit,
    capability: "emit",
    kind: "side_effect",
    params: ["i32", "i32"],
    results: ["i32"],
  },
  {
    // Whether this instance resumed after an interruption (interrupted.ts): recorded, never gated.
    name: "resume_interrupted",
    id: HostcallId.resume_interrupted,
    capability: null,
    kind: "observation",
    params: [],
    results: ["i32"],
  },
];

/** Capabilities this build implements; the default node capability set. */
export const IMPLEMENTED_CAPABILITIES = ["clock", "emit", "http", "log", "pricing", "rand", "wallet", "x402"] as const;
/** The one version of each capability this build implements (a manifest's `"version"`). */
export const IMPLEMENTED_CAPABILITY_VERSION = 1;

const BY_NAME = new Map(HOSTCALLS.map((h) => [h.name, h]));
const BY_ID = new Map(HOSTCALLS.map((h) => [h.id, h]));

export function hostcallByName(name: string): HostcallSpec | undefined {
  return BY_NAME.get(name);
}

export function hostcallById(id: number): HostcallSpec | undefined {
  return BY_ID.get(id);
}

/** Return codes shared by hostcalls (igor's convention: >= 0 success, < 0 error). */
export const HostcallResult = {
  ok: 0,
  error: -1,
  tooLarge: -2,
  authority: -3,
  outOfBounds: -4,
  /**
   * The node could not answer in time (wallet_receipt_count, wallet_receipt: the main thread holds
   * the receipts and did not reply within what is left of the tick). Not "none": an agent looking
   * for a lost payment's receipt must not take it for "not paid".
   */
  unanswered: -5,
} as const;

/** rand_bytes refuses requests larger than this (igor: 64 MiB). */
export const RAND_MAX_BYTES = 64 * 1024 * 1024;
/** emit refuses messages larger than this. */
export const EMIT_MAX_BYTES = 64 * 1024;
/** log_emit drops messages larger than this (igor: 1 MiB). */
export const LOG_MAX_BYTES = 1024 * 1024;
