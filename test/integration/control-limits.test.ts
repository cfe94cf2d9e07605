// What a local caller without the token can hold of the daemon through its control port: connections
// are bounded (MAX_CONTROL_CONNECTIONS) and one that sends no complete request is closed after
// CONTROL_HEADERS_TIMEOUT_MS, so idle sockets cannot take the process's file descriptors, which its
// agents' HTTP requests, libp2p and the store need.
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_CONTROL_CONNECTIONS } from "../../src/control/server.js";
import { startTestNode, stopAllNodes } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";

const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await stopAllNodes();
});

describe("the control port under idle connections", () => {
  it("past MAX_CONTROL_CONNECTIONS open sockets, each new one is closed at once, and only those", async () => {
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
    // Each socket sends nothing: only the server can close one, and it does so for those past the bound.
    await waitUntil(() => closed >= extra, { what: `${extra} connections past the bound closed by the server`, timeoutMs: 5_000 });
    expect(closed).toBeLessThanOrEqual(extra + 2);
  });
});
