// Migration benchmark: hop latency (p50/p99) between two in-process nodes over libp2p on loopback
// TCP, with the defaults that matter — --sync full on both sides and replay verification of the
// shipped window on the target — and the time of 20 back-to-back round trips.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { loadConfig } from "../dist/config/load.js";
import { IgordNode } from "../dist/node/node.js";

export async function p2pNode(flags = {}) {
  const dir = mkdtempSync(join(tmpdir(), "igord-bench-mig-"));
  const config = loadConfig({
    flags: {
      "agents-dir": join(dir, "agents"),
      "data-dir": join(dir, "data"),
      control: "off",
      "log-level": "warn",
      listen: "/ip4/127.0.0.1/tcp/0",
      // The two bench nodes take agents from each other (a fresh node trusts nobody by default).
      "accept-migrations": "any",
      "tick-interval": "5ms",
      "checkpoint-interval": "0",
      "peer-refresh": "0",
      workers: "1",
      ...flags,
    },
    env: {},
  });
  const node = new IgordNode({ config, logger: pino({ level: "warn" }, new Writable({ write: (_c, _e, cb) => cb() })), watchAgentsDir: false });
  await node.start();
  return { node, addr: node.migration.addresses()[0], cleanup: async () => { await node.stop(); rmSync(dir, { recursive: true, force: true }); } };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/**
 * `hops` migrations of `agentId` back and forth between the two nodes (it starts on the first), each
 * once it has ticked twice where it is (so every hop ships and verifies a fresh window): each hop's
 * wall time, ms. Throws on a hop that does not end `done`.
 */
export async function timedHops(nodes, agentId, hops) {
  const times = [];
  for (let i = 0; i < hops; i++) {
    const from = nodes[i % 2];
    const to = nodes[(i + 1) % 2];
    const at = from.node.scheduler.view(agentId).tick;
    await new Promise((resolve) => {
      const on = (e) => {
        if (e.agentId === agentId && e.tick >= at + 2n) {
          from.node.scheduler.off("tick", on);
          resolve();
        }
      };
      from.node.scheduler.on("tick", on);
    });
    const t0 = performance.now();
    const r = await from.node.migrate(agentId, [to.addr]);
    times.push(performance.now() - t0);
    if (r.outcome !== "done") throw new Error(`hop ${i} failed: ${JSON.stringify(r.error)}`);
  }
  return times;
}

/** `hops` migrations A↔B of survivor (clock, rand, log), each after the agent ticked again. */
export async function migrationHops({ hops = 200, wasm }) {
  const a = await p2pNode();
  const b = await p2pNode();
  try {
    await a.node.addAgent({ wasmPath: wasm });
    const nodes = [a, b];
    // CPU of the whole process (both nodes, every thread) over the hops and the round trips.
    const cpu0 = process.cpuUsage();
    const times = await timedHops(nodes, "survivor", hops);
    const warm = times.slice(5).sort((x, y) => x - y);
    // 20 round trips, back to back.
    const holder = nodes[hops % 2];
    const other = nodes[(hops + 1) % 2];
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) {
      await holder.node.migrate("survivor", [other.addr]);
      await other.node.migrate("survivor", [holder.addr]);
    }
    const roundTrips = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const cpuPerHopMs = (cpu.user + cpu.system) / 1000 / (hops + 40);
    return { p50: pct(warm, 50), p99: pct(warm, 99), first: times[0], hops, roundTrips, cpuPerHopMs };
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
}

if (process.argv[1]?.endsWith("bench-migration.mjs")) {
  const { fileURLToPath } = await import("node:url");
  const root = join(fileURLToPath(new URL(".", import.meta.url)), "..");
  await import("../dist/shim/promise-with-resolvers.js");
  const r = await migrationHops({ hops: 200, wasm: join(root, "agents", "survivor.wasm") });
  console.log(JSON.stringify(r, null, 2));
}
