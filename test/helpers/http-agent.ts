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

export function httpAgent(calls: HttpCallSpec[], o: HttpAgentOptions = {}): string {
  const enc = new TextEncoder();
  const data: string[] = [];
  const code: string[] = [];
  let at = DATA;
  const put = (s: string): [number, number] => {
    const b = enc.encode(s);
    const ptr = at;
    if (b.byteLength > 0) data.push(`(data (i32.const ${ptr}) "${wat(b)}")`);
    at += b.byteLength + 8;
    return [ptr, b.byteLength];
  };
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
  const size = stateBytes(calls.length);
  const guard = o.upToTick === undefined ? "(i32.const 1)" : `(i32.le_u (i32.load (i32.const 0)) (i32.const ${o.upToTick}))`;
  return `(module
  (import "igor" "http_request" (func $http (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  ${o.imports ?? ""}
  (memory (export "memory") ${MEMORY_PAGES})
  ${data.join("\n  ")}
  (func (export "agent_init"))
  (func (export "agent_tick") (result i32)
    (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (if ${guard} (then ${code.join("\n    ")}))
    (i32.const 0))
  (func (export "agent_checkpoint") (result i32) (i32.const ${size}))
  (func (export "agent_checkpoint_ptr") (result i32) (i32.const 0))
  (func (export "agent_resume") (param $p i32) (param $n i32)
    (if (i32.eq (local.get $n) (i32.const ${size})) (then (memory.copy (i32.const 0) (local.get $p) (local.get $n)))))
  (func (export "malloc") (param i32) (result i32) (i32.const ${65536 * 8}))
)`;
}

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
