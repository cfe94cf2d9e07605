// The AssemblyScript SDK's HTTP wrappers never send a request that acts on the world twice: igor's
// policy of asking again with room after the -5 size hint is a second request, which is harmless for
// a GET and a duplicate side effect for a POST (a second deployment, a second order).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HostcallId } from "../../src/hostcalls/registry.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { buildAgent } from "../helpers/examples.js";
import { LOOPBACK_HTTP, startServer, type TestServer } from "../helpers/http-agent.js";
import { ROOT, startTestNode, stopAllNodes } from "../helpers/node.js";
import { logLines } from "../helpers/tick-logs.js";

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await stopAllNodes();
});

describe("the SDK's HTTP wrappers and side effects", () => {
  it("a POST whose answer is larger than the SDK's 8 KiB buffer is sent once: the SDK does not ask again and says the answer did not fit; given room, it gets the answer whole", async () => {
    const BODY = 20_000;
    const s = await startServer((_req, res) => res.end(Buffer.alloc(BODY, 0x61)));
    servers.push(s);
    const t = await startTestNode({ ...LOOPBACK_HTTP, "tick-interval": "20ms", "checkpoint-interval": "30ms", "tick-timeout": "5s" });
    const wasm = join(t.dir, "poster.wasm");
    await buildAgent(join(ROOT, "test", "fixtures", "as", "http_post_big.ts"), wasm, { force: true, defines: { IGOR_TEST_PORT: s.port } });
    writeFileSync(join(t.dir, "poster.manifest.json"), JSON.stringify({
      capabilities: { log: { version: 1 }, http: { version: 1, options: { allowed_hosts: ["localhost"], max_response_bytes: 65536 } } },
    }));
    await t.node.addAgent({ wasmPath: wasm });
    const first = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "poster" && e.tick === 1n);
    const second = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "poster" && e.tick === 2n);
    // Before: the SDK sent the POST again with room for the size the host hinted (igor's GET policy).
    expect(s.requests.map((r) => `${r.method} ${r.url}`)).toEqual(["POST /deploy", "POST /deploy"]);
    expect(first.events.filter((x) => x.id === HostcallId.http_request).map((x) => x.result)).toEqual([-5]);
    expect(logLines(first)).toEqual(["post status=0 bytes=0 error=-5"]);
    // With room for its answer (httpPost's responseBytes), one request brings it whole.
    expect(second.events.filter((x) => x.id === HostcallId.http_request).map((x) => x.result)).toEqual([200]);
    expect(logLines(second)).toEqual([`post status=200 bytes=${BODY} error=0`]);
  });
});
