// A side effect is the active owner's alone, within the authority its tick was dispatched with. The
// worker checks it when the guest calls, but the main thread performs the effect (the HTTP request,
// the payment's signature and journal row): a main thread busy past that authority sent a POST or
// journalled a payment for a tick that was then discarded, and its re-run did it again.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickRequest } from "../../src/wasm/pool.js";
import { httpAgent, httpManifest, LOOPBACK_HTTP, payAgent, startServer, type TestServer } from "../helpers/http-agent.js";
import { startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";
import { writeWat } from "../helpers/wat.js";

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await stopAllNodes();
});

// One-second leases with no grace, renewed at half: tick 1's authority ends about a second after it
// is dispatched, and nothing is renewed while the main thread is held.
const SHORT_AUTHORITY = { "tick-interval": "1000ms", "lease-duration": "1000ms", "lease-grace": "0", "lease-renewal-window": "0.5", "verify-interval": "0", "tick-timeout": "10s", "checkpoint-interval": "1h" };

/**
 * Holds the main thread when it gets to the first request of a tick that acts on the world, until
 * 200 ms past the authority that tick was dispatched with (a long GC, a large commit, another
 * agent's work), then lets it answer.
 */
function holdMainThreadPastFirstAuthority(t: TestNode): void {
  type Env = { request: { kind: string } };
  const pool = t.node as unknown as { pool: { dispatch: (r: readonly TickRequest[]) => void; serveIo: (h: unknown, env: Env) => Promise<unknown> } };
  const p = pool.pool;
  const dispatch = p.dispatch.bind(p);
  let until: number | null = null;
  p.dispatch = (reqs) => {
    until ??= reqs[0]?.authorityUntilMs ?? null;
    dispatch(reqs);
  };
  const serveIo = p.serveIo.bind(p);
  let held = false;
  p.serveIo = (h, env) => {
    if (!held && until !== null && (env.request.kind === "http" || env.request.kind === "sign")) {
      held = true;
      while (Date.now() < until + 200) {
        // busy
      }
    }
    return serveIo(h, env);
  };
}

const settled = (t: TestNode, id: string) => waitUntil(() => (t.node.scheduler.view(id)?.tick ?? 0n) >= 2n, { timeoutMs: 15_000, what: `${id}'s tick 2` });

describe("side effects and the authority a tick was dispatched with", () => {
  it("a POST the main thread gets to after the tick's authority lapsed is not sent: the server sees the committed run's only", async () => {
    const arrivals: number[] = [];
    const s = await startServer((_req, res) => {
      arrivals.push(Date.now());
      res.end("ok");
    });
    servers.push(s);
    const t = await startTestNode({ ...LOOPBACK_HTTP, ...SHORT_AUTHORITY });
    holdMainThreadPastFirstAuthority(t);
    const path = await writeWat(join(t.dir, "wasm"), "poster", httpAgent([{ method: "POST", url: `${s.url}/write`, body: "once" }], { upToTick: 1 }), httpManifest({ allowed_hosts: ["127.0.0.1"], timeout_ms: 5000 }));
    await t.node.addAgent({ wasmPath: path });
    await settled(t, "poster");
    // The held run was discarded (it outlived its authority) and tick 1 ran again.
    expect(t.logs.events("tick_discarded", "poster").length).toBeGreaterThanOrEqual(1);
    expect(arrivals).toHaveLength(1);
  }, 30_000);

  it("a payment the main thread gets to after the tick's authority lapsed is neither signed nor journalled", async () => {
    const t = await startTestNode(SHORT_AUTHORITY);
    const journalled: number[] = [];
    const store = t.node.store;
    const journal = store.journalPayment.bind(store);
    store.journalPayment = (p) => {
      journalled.push(Date.now());
      return journal(p);
    };
    holdMainThreadPastFirstAuthority(t);
    const x402 = { capabilities: { x402: { version: 1, options: {} }, wallet: { version: 1 } } };
    const path = await writeWat(join(t.dir, "wasm"), "payer", payAgent([{ amount: 1000n, recipient: "p", memo: "m" }], { upToTick: 1 }), x402);
    await t.node.addAgent({ wasmPath: path });
    await settled(t, "payer");
    expect(t.logs.events("tick_discarded", "payer").length).toBeGreaterThanOrEqual(1);
    expect(journalled).toHaveLength(1);
    expect(t.logs.events("lost_payment_debited", "payer")).toHaveLength(0);
  }, 30_000);
});
