// The node, not the agent, frames an agent's HTTP request: the agent's Host, Content-Length,
// Transfer-Encoding, Trailer and connection headers are not sent (as Go's net/http, igor's client,
// ignores them). Otherwise a GET (an observation any run may make, without the owner's authority)
// with a body (Node sends a GET's body unframed), or declaring Content-Length: 0, carried a second
// request in its body, a POST, on the node's kept-alive connection; and a Host naming another site
// reached it through a shared server in allowed_hosts.
// A raw TCP server on loopback records the bytes the node sends.
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { DestinationPolicy } from "../../src/hostcalls/http-destination.js";
import { createHttpClient, type HttpClient } from "../../src/hostcalls/http-fetch.js";

let server: Server | null = null;
let client: HttpClient | null = null;
const conns: Socket[] = [];
afterEach(async () => {
  client?.close();
  client = null;
  for (const c of conns.splice(0)) c.destroy();
  const s = server;
  server = null;
  if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
});

/** A server that answers every request head it sees with 200 "ok", and keeps every byte it got. */
async function recording(): Promise<{ url: string; bytes: () => string }> {
  let got = "";
  server = createServer((s) => {
    conns.push(s);
    s.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      for (let i = 0; i < (d.toString("latin1").match(/ HTTP\/1\.1\r\n/g) ?? []).length; i++) s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/page`, bytes: () => got };
}

function perform(call: Parameters<HttpClient["perform"]>[0]): ReturnType<HttpClient["perform"]> {
  client ??= createHttpClient(new DestinationPolicy(["127.0.0.0/8"]));
  return client.perform(call);
}

describe("an agent's HTTP request as it goes on the wire", () => {
  it("a GET declaring Content-Length: 0 with a POST in its body is sent as one GET whose body is those bytes, not as a GET and a POST", async () => {
    const srv = await recording();
    const smuggled = new TextEncoder().encode("POST /transfer HTTP/1.1\r\nhost: bank\r\ncontent-length: 0\r\n\r\n");
    const r = await perform({ method: "GET", url: srv.url, headers: [["Content-Length", "0"], ["Transfer-Encoding", "identity"], ["Connection", "keep-alive"]], body: smuggled, timeoutMs: 5_000, readLimit: 100 });
    expect(r).toMatchObject({ kind: "response", status: 200 });
    const wire = srv.bytes();
    const head = wire.slice(0, wire.indexOf("\r\n\r\n"));
    expect(head.startsWith("GET /page HTTP/1.1\r\n")).toBe(true);
    // One request: its body, framed by the node, is exactly the agent's bytes.
    expect(head.toLowerCase()).toContain(`content-length: ${smuggled.byteLength}`);
    expect(head.toLowerCase()).not.toContain("transfer-encoding");
    expect(wire.slice(wire.indexOf("\r\n\r\n") + 4)).toBe(Buffer.from(smuggled).toString("latin1"));
  });

  it("a GET with a body and no headers at all is framed by its length (Node sends a GET's body bare)", async () => {
    const srv = await recording();
    const body = new TextEncoder().encode("DELETE /all HTTP/1.1\r\nhost: x\r\n\r\n");
    expect(await perform({ method: "GET", url: srv.url, headers: [], body, timeoutMs: 5_000, readLimit: 100 })).toMatchObject({ kind: "response", status: 200 });
    const wire = srv.bytes();
    expect(wire.slice(0, wire.indexOf("\r\n\r\n")).toLowerCase()).toContain(`content-length: ${body.byteLength}`);
  });

  it("the agent's Host header is not sent: the request names the host of its URL, the one allowed_hosts checked", async () => {
    const srv = await recording();
    const port = new URL(srv.url).port;
    const r = await perform({ method: "GET", url: srv.url, headers: [["Host", "other-site.example"], ["X-Kept", "yes"]], body: null, timeoutMs: 5_000, readLimit: 100 });
    expect(r).toMatchObject({ kind: "response", status: 200 });
    const head = srv.bytes().toLowerCase();
    expect(head).toContain(`host: 127.0.0.1:${port}\r\n`);
    expect(head).not.toContain("other-site.example");
    expect(head).toContain("x-kept: yes");
  });
});
