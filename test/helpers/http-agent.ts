// WAT agents that call igor.http_request, and small loopback HTTP servers for them.
// The agent's whole checkpointed state is [0, stateBytes): the tick counter at 0, each call's last
// result at RESULTS + 4*i, each call's response buffer at RESP + i*RESP_SLOT. So a replayed tick
// reproduces only if every result and every response byte comes back exactly as recorded.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const RESULTS = 16;
const RESP = 1024;
export const RESP_SLOT = 8192;
const DATA = 65536 * 4;
export const MEMORY_PAGES = 16;

export interface HttpCallSpec {
  method?: string;
  url: string;
  headers?: string;
  body?: string;
  /** resp_cap passed (default RESP_SLOT). */
  cap?: number;
  /** Overrides of the lengths passed (to exceed igor's limits without writing the bytes). */
  methodLen?: number;
  urlLen?: number;
  /** resp pointer override (e.g. outside memory). */
  respPtr?: number;
}

export interface HttpAgentOptions {
  /** Make the calls only on ticks <= this (default: every tick). */
  upToTick?: number;
  /** Extra imports/code, e.g. a clock read so a tick without calls still records something. */
  imports?: string;
  /** Where the calls are made: in agent_tick (default), or while loading: in agent_init and again in agent_resume. */
  phase?: "tick" | "load";
}

function wat(bytes: Uint8Array): string {
  return [...bytes].map((b) => `\\${b.toString(16).padStart(2, "0")}`).join("");
}

export function stateBytes(calls: number): number {
  return RESP + calls * RESP_SLOT;
}

export function resultOffset(i: number): number {
  return RESULTS + 4 * i;
}

export function respOffset(i: number): number {
  return RESP + i * RESP_SLOT;
}

/** Strings placed in data segments from DATA on: put returns (pointer, byte length). */
function dataSegments(): { data: string[]; put: (s: string) => [number, number] } {
  const enc = new TextEncoder();
  const data: string[] = [];
  let at = DATA;
  const put = (s: string): [number, number] => {
    const b = enc.encode(s);
    const ptr = at;
    if (b.byteLength > 0) data.push(`(data (i32.const ${ptr}) "${wat(b)}")`);
    at += b.byteLength + 8;
    return [ptr, b.byteLength];
  };
  return { data, put };
}

export function httpAgent(calls: HttpCallSpec[], o: HttpAgentOptions = {}): string {
  const { data, put } = dataSegments();
  const code: string[] = [];
  calls.forEach((c, i) => {
    const [mp, ml] = put(c.method ?? "GET");
    const [up, ul] = put(c.url);
    const [hp, hl] = put(c.headers ?? "");
    const [bp, bl] = put(c.body ?? "");
    code.push(`(i32.store (i32.const ${resultOffset(i)}) (call $http
      (i32.const ${mp}) (i32.const ${c.methodLen ?? ml}) (i32.const ${up}) (i32.const ${c.urlLen ?? ul})
      (i32.const ${hp}) (i32.const ${hl}) (i32.const ${bp}) (i32.const ${bl})
      (i32.const ${c.respPtr ?? respOffset(i)}) (i32.const ${c.cap ?? RESP_SLOT})))`);
  });
  return agentModule({
    imports: `(import "igor" "http_request" (func $http (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  ${o.imports ?? ""}`,
    data,
    code,
    upToTick: o.upToTick,
    stateSize: stateBytes(calls.length),
    load: o.phase === "load",
  });
}

/** The module around a tick body: the tick counter at 0, [0, stateSize) checkpointed, malloc high in memory. */
function agentModule(m: { imports: string; data: string[]; code: string[]; upToTick: number | undefined; stateSize: number; load?: boolean }): string {
  const guard = m.upToTick === undefined ? "(i32.const 1)" : `(i32.le_u (i32.load (i32.const 0)) (i32.const ${m.upToTick}))`;
  const tickCode = m.load ? [] : m.code;
  const loadCode = m.load ? m.code.join("\n    ") : "";
  return `(module
  ${m.imports}
  (memory (export "memory") ${MEMORY_PAGES})
  ${m.data.join("\n  ")}
  (func (export "agent_init") ${loadCode})
  (func (export "agent_tick") (result i32)
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (if ${guard} (then ${tickCode.join("\n    ")}))
    (i32.const 0))
  (func (export "agent_checkpoint") (result i32) (i32.const ${m.stateSize}))
  (func (export "agent_checkpoint_ptr") (result i32) (i32.const 0))
  (func (export "agent_resume") (param $p i32) (param $n i32)
    (if (i32.eq (local.get $n) (i32.const ${m.stateSize})) (then (memory.copy (i32.const 0) (local.get $p) (local.get $n))))
    ${loadCode})
  (func (export "malloc") (param i32) (result i32) (i32.const ${65536 * 8}))
)`;
}

/** Node config that lets agents reach this machine's test servers (a fresh node refuses loopback: http-destination.ts). */
export const LOOPBACK_HTTP = { "http-private-networks": "127.0.0.0/8" } as const;

export function httpManifest(options: Record<string, unknown> = {}, extra: string[] = []): unknown {
  return { capabilities: { http: { version: 1, options }, ...Object.fromEntries(extra.map((c) => [c, { version: 1 }])) } };
}

export interface TestServer {
  server: Server;
  url: string;
  port: number;
  /** Requests received so far, in order. */
  requests: { method: string; url: string; headers: IncomingMessage["headers"]; body: string }[];
  close(): Promise<void>;
}

/** A loopback HTTP server on port 0; `handle` answers each request after its body was read. */
export async function startServer(handle: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<TestServer> {
  const requests: TestServer["requests"] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      handle(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  let closed = false;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => {
      if (closed) return Promise.resolve();
      closed = true;
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export interface PayCallSpec {
  /** Microcents, or "balance" to pay whatever wallet_balance returns. */
  amount: bigint | "balance";
  recipient: string;
  memo?: string;
  /** out_cap passed (default PAY_SLOT). */
  cap?: number;
  recipientLen?: number;
}

export const PAY_SLOT = 512;
const PAY_OUT = 1024;
const PAY_STATE = 4096;
const RECEIPT_BUF = 3072;

export function payOutOffset(i: number): number {
  return PAY_OUT + i * PAY_SLOT;
}

/**
 * A WAT agent that calls wallet_pay (state [0, 4096): ticks at 0, `interrupted` stores
 * resume_interrupted's answer at 4, receipt count at 8, wallet_receipt's
 * result at 12 and its bytes at 3072, each call's result at RESULTS + 4*i, its output at 1024 + 512*i).
 * `receipts` adds wallet_receipt_count / wallet_receipt(count - 1) each tick; `httpFirst` a GET before
 * the payments, `httpAfter` one after them, `trapAfter` a trap after them.
 */
export function payAgent(calls: PayCallSpec[], o: { upToTick?: number; receipts?: boolean; httpFirst?: string; httpAfter?: string; interrupted?: boolean; trapAfter?: boolean } = {}): string {
  const { data, put } = dataSegments();
  const code: string[] = [];
  if (o.interrupted) code.push("(i32.store (i32.const 4) (call $interrupted))");
  const get = (url: string): void => {
    const [up, ul] = put(url);
    const [mp] = put("GET");
    code.push(`(drop (call $http (i32.const ${mp}) (i32.const 3) (i32.const ${up}) (i32.const ${ul}) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const ${65536 * 3}) (i32.const 8192)))`);
  };
  if (o.httpFirst !== undefined) get(o.httpFirst);
  calls.forEach((c, i) => {
    const [rp, rl] = put(c.recipient);
    const [mp, ml] = put(c.memo ?? "");
    const amount = c.amount === "balance" ? "(call $balance)" : `(i64.const ${c.amount})`;
    code.push(`(i32.store (i32.const ${resultOffset(i)}) (call $pay ${amount} (i32.const ${rp}) (i32.const ${c.recipientLen ?? rl}) (i32.const ${mp}) (i32.const ${ml}) (i32.const ${payOutOffset(i)}) (i32.const ${c.cap ?? PAY_SLOT})))`);
  });
  if (o.httpAfter !== undefined) get(o.httpAfter);
  if (o.trapAfter) code.push("unreachable");
  if (o.receipts) {
    code.push(`(i32.store (i32.const 8) (call $count))
    (if (i32.gt_s (i32.load (i32.const 8)) (i32.const 0)) (then
      (i32.store (i32.const 12) (call $receipt (i32.sub (i32.load (i32.const 8)) (i32.const 1)) (i32.const ${RECEIPT_BUF}) (i32.const 1024)))))`);
  }
  return agentModule({
    imports: `(import "igor" "wallet_pay" (func $pay (param i64 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "igor" "wallet_balance" (func $balance (result i64)))
  ${o.receipts ? `(import "igor" "wallet_receipt_count" (func $count (result i32)))
  (import "igor" "wallet_receipt" (func $receipt (param i32 i32 i32) (result i32)))` : ""}
  ${o.interrupted ? '(import "igor" "resume_interrupted" (func $interrupted (result i32)))' : ""}
  ${o.httpFirst !== undefined || o.httpAfter !== undefined ? '(import "igor" "http_request" (func $http (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))' : ""}`,
    data,
    code,
    upToTick: o.upToTick,
    stateSize: PAY_STATE,
  });
}
