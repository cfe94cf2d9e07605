// An HTTP request that acts on the world (any method but GET and HEAD) is sent only from a state a
// restart resumes, as a payment is signed only from one (payment-covered-intent.test.ts). The SDK's
// pattern records and begins an intent in one tick and acts in a later one, once "a checkpoint has
// covered" the intent, a moment the agent cannot see: when it guessed short, the POST went out before
// any checkpoint held the intent, and after a crash the agent resumed without it, had nothing to
// reconcile, and placed the order again.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { buildAgent } from "../helpers/examples.js";
import { LOOPBACK_HTTP, startServer, type TestServer } from "../helpers/http-agent.js";
import { ROOT, startTestNode, stopAllNodes, storedHead, tempDir } from "../helpers/node.js";
import { type Daemon, killAll, startDaemon } from "../helpers/process.js";
import { logLines } from "../helpers/tick-logs.js";

const servers: TestServer[] = [];
afterEach(async () => {
  await killAll();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await stopAllNodes();
});

describe("an HTTP request that acts, and the checkpoint before it", () => {
  it("an agent that POSTs before any periodic checkpoint covered its intent and is SIGKILLed as the order arrives resumes with the intent, finds the order placed and does not POST again", { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const agents = join(dir, "agents");
    mkdirSync(agents, { recursive: true });
    // The order server: the daemon is SIGKILLed the moment an order arrives, before it is answered.
    const placed = new Set<string>();
    let daemon: Daemon | null = null;
    const s = await startServer((req, res) => {
      if (req.method === "POST") {
        placed.add(String(req.headers["idempotency-key"]));
        daemon?.child.kill("SIGKILL");
        res.writeHead(201).end();
        return;
      }
      const id = (req.url ?? "").split("/").pop() ?? "";
      res.writeHead(placed.has(id) ? 200 : 404).end();
    });
    servers.push(s);
    const src = join(dir, "poster.wasm");
    await buildAgent(join(ROOT, "test", "fixtures", "as", "reconciling_poster.ts"), src, { force: true, defines: { IGOR_TEST_PORT: s.port } });
    copyFileSync(src, join(agents, "poster.wasm"));
    writeFileSync(join(agents, "poster.manifest.json"), JSON.stringify({
      capabilities: { log: { version: 1 }, http: { version: 1, options: { allowed_hosts: ["localhost"] } } },
    }));
    // No periodic checkpoint in the run: only what the node takes of its own accord.
    const flags = Object.entries(LOOPBACK_HTTP).flatMap(([k, v]) => [`--${k}`, v]);
    daemon = startDaemon(["--agents-dir", agents, "--data-dir", join(dir, "data"), "--control", "off", "--tick-interval", "50ms", "--checkpoint-interval", "1h", ...flags]);
    await daemon.exit;
    expect([...placed]).toEqual(["order-0"]);
    // The state the POST was sent from (tick 2, the intent in flight) is stored.
    expect(storedHead(join(dir, "data"), "poster")?.tick).toBe(2n);

    const again = await startTestNode({ ...LOOPBACK_HTTP, "tick-interval": "50ms" }, { dir, resumeStored: true });
    const settled = await again.waitFor<TickEvent>("tick", (e) => e.agentId === "poster" && logLines(e).length > 0);
    expect(logLines(settled)).toEqual(["reconciled order-0: arrived"]);
    await again.waitFor<TickEvent>("tick", (e) => e.agentId === "poster" && e.tick === settled.tick + 3n);
    expect(s.requests.filter((r) => r.method === "POST")).toHaveLength(1);
  });
});
