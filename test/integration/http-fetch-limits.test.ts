// The main thread's side of http_request (hostcalls/http-fetch.ts) against a real HTTP server on
// loopback: what a server sends is read up to the request's read limit, never more, whatever it
// declares about its body; a compressed body is never inflated on the main thread (with fetch, a
// 64 KiB gzip was decoded whole: 64 MiB held and cloned to the agent's worker).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { DestinationPolicy } from "../../src/hostcalls/http-destination.js";
import { createHttpClient, type HttpClient } from "../../src/hostcalls/http-fetch.js";

let server: Server | null = null;
let client: HttpClient | null = null;
afterEach(async () => {
  client?.close();
  client = null;
  const s = server;
  server = null;
  if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
});

/** The node's HTTP client, its servers on this machine opened (as tests and demos do). */
function performHttp(call: Parameters<HttpClient["perform"]>[0]): ReturnType<HttpClient["perform"]> {
  client ??= createHttpClient(new DestinationPolicy(["127.0.0.0/8"]));
  return client.perform(call);
}

/** A server on port 0 answering every request with `body` and these headers. */
async function serve(body: Uint8Array, headers: Record<string, string | number>): Promise<string> {
  server = createServer((_req, res) => {
    res.writeHead(200, headers);
    res.end(body);
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

const LIMIT = 1024 * 1024 + 1;

describe("an agent's HTTP response read on the main thread", () => {
  it("a gzip body is handed over as the server sent it, never inflated: a 64 MiB bomb in 64 KiB arrives as its 64 KiB and leaves no 64 MiB buffer behind", async () => {
    const inflated = 64 * 1024 * 1024;
    const bomb = gzipSync(new Uint8Array(inflated));
    expect(bomb.byteLength).toBeLessThan(LIMIT);
    const url = await serve(bomb, { "content-type": "application/octet-stream", "content-encoding": "gzip", "content-length": bomb.byteLength });
    const reply = await performHttp({ method: "GET", url, headers: [["Accept-Encoding", "gzip"]], body: null, timeoutMs: 10_000, readLimit: LIMIT });
    expect(reply.kind).toBe("response");
    if (reply.kind !== "response") return;
    expect(reply.body).toEqual(new Uint8Array(bomb));
    // The bytes handed on (and cloned to the agent's worker) are what was read, no more.
    expect(reply.body.buffer.byteLength).toBeLessThan(2 * LIMIT);
  });

  it("a plain body within its declared length is read whole, and one over the limit is cut to it", async () => {
    const body = new Uint8Array(5000).fill(7);
    const url = await serve(body, { "content-length": body.byteLength });
    const small = await performHttp({ method: "GET", url, headers: [], body: null, timeoutMs: 10_000, readLimit: LIMIT });
    expect(small.kind === "response" && small.body.byteLength).toBe(5000);
    const cut = await performHttp({ method: "GET", url, headers: [], body: null, timeoutMs: 10_000, readLimit: 100 });
    expect(cut.kind === "response" && cut.body.byteLength).toBe(100);
  });
});
