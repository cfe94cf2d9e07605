// What a local caller without the token can hold of the daemon through its control port: connections
// are bounded (MAX_CONTROL_CONNECTIONS; past it the oldest idle one makes room, so idle sockets cannot
// keep the CLI out), one that sends no complete request is closed after CONTROL_HEADERS_TIMEOUT_MS,
// and a refused one at once, so idle sockets cannot take the process's file descriptors, which its
// agents' HTTP requests, libp2p and the store need.
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { CONTROL_HEADERS_TIMEOUT_MS, CONTROL_REQUEST_TIMEOUT_MS, MAX_CONTROL_BODY_BYTES, MAX_CONTROL_CONNECTIONS } from "../../src/control/server.js";
import { controlGet } from "../../src/control/client.js";
import { readControlToken } from "../../src/control/token.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";

const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await stopAllNodes();
});

describe("the control port under idle connections", () => {
  it("past MAX_CONTROL_CONNECTIONS open sockets, one is closed for each new one, and only those", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0" });
    const { host, port } = t.node.controlAddress!;
    const extra = 10;
    let closed = 0;
    for (let i = 0; i < MAX_CONTROL_CONNECTIONS + extra; i++) {
      const s = connect(port, host);
      s.on("error", () => undefined);
      s.on("close", () => closed++);
      sockets.push(s);
    }
    // Each socket sends nothing: only the server can close one, and it closes one for each past the bound.
    await waitUntil(() => closed >= extra, { what: `${extra} connections past the bound closed by the server`, timeoutMs: 5_000 });
    expect(closed).toBeLessThanOrEqual(extra + 2);
  });

  it("with MAX_CONTROL_CONNECTIONS idle sockets held open, the CLI's request is still answered: the oldest idle one makes room", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0" });
    const { host, port } = t.node.controlAddress!;
    const idle: Socket[] = [];
    for (let i = 0; i < MAX_CONTROL_CONNECTIONS; i++) {
      const s = connect(port, host);
      s.on("error", () => undefined);
      sockets.push(s);
      idle.push(s);
    }
    // All connected (queued for the server in this order) before the CLI connects.
    await Promise.all(idle.map((s) => new Promise<void>((resolve) => (s.connecting ? s.once("connect", () => resolve()) : resolve()))));
    // They send a few bytes of headers and nothing more, as a flood would.
    for (const s of idle) s.write("GET /v1/status HTTP/1.1\r\n");
    const status = (await controlGet(t.node.controlAddress!, t.config.dataDir, "/v1/status")) as { nodeId?: string };
    expect(typeof status.nodeId).toBe("string");
    // The oldest made room, not the newest.
    await waitUntil(() => idle[0]!.closed, { what: "the oldest idle socket closed by the server", timeoutMs: 5_000 });
    expect(idle.at(-1)!.closed).toBe(false);
  });
});

/** Sends `head` then one body byte every 200 ms for as long as the connection lasts; resolves when the server closes it, with what it answered. */
function trickle(host: string, port: number, head: string, timeoutMs: number, what: string): Promise<string> {
  const s = connect(port, host);
  sockets.push(s);
  s.on("error", () => undefined);
  let answer = "";
  let closed = false;
  s.on("data", (d: Buffer) => (answer += d.toString("latin1")));
  s.on("close", () => (closed = true));
  s.write(`${head}\r\nhost: ${host}:${port}\r\ncontent-length: ${MAX_CONTROL_BODY_BYTES}\r\n\r\n{`);
  const drip = setInterval(() => s.writable && s.write(" "), 200);
  return waitUntil(() => closed, { what, timeoutMs }).then(() => answer).finally(() => clearInterval(drip));
}

describe("the control port under slow request bodies", () => {
  // A caller without the token that sends headers and then trickles a body: answered 401 at once,
  // and its connection is closed then, not held while the body trickles (Node drains it up to its
  // 300 s requestTimeout), so MAX_CONTROL_CONNECTIONS such callers cannot shut the CLI out for minutes.
  it("a request without the token whose body never ends gets 401 and its connection closed at once", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0" });
    const { host, port } = t.node.controlAddress!;
    const answer = await trickle(host, port, "POST /v1/agents/x/stop HTTP/1.1", CONTROL_HEADERS_TIMEOUT_MS / 2, "the server closed the unauthenticated connection");
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer).toContain("CONTROL_UNAUTHORIZED");
  });

  it("a request with the token whose body never ends is closed after CONTROL_REQUEST_TIMEOUT_MS, not Node's 300 s", async () => {
    const t = await startTestNode({ control: "127.0.0.1:0" });
    const { host, port } = t.node.controlAddress!;
    const started = Date.now();
    const head = `PUT /v1/capabilities HTTP/1.1\r\nauthorization: Bearer ${readControlToken(t.config.dataDir)}`;
    await trickle(host, port, head, CONTROL_REQUEST_TIMEOUT_MS * 2, "the server closed the slow body");
    expect(Date.now() - started).toBeGreaterThanOrEqual(CONTROL_REQUEST_TIMEOUT_MS - 1_000);
  }, 40_000);
});
