// How long a hop took, as the migrate command answers it and the igord_migration_duration_seconds
// histogram counts it, is time that passed, not the wall clock's reading: a clock stepped an hour
// forward during a hop (an NTP step, a VM resumed) reported the hop as lasting an hour (3,600,543 ms).
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type InProcessKitNode, startCluster, stopAll } from "../../src/testing/index.js";
import { EXAMPLES } from "../helpers/node.js";

afterEach(async () => {
  vi.restoreAllMocks();
  await stopAll();
});

const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "10ms", "checkpoint-interval": "0", "peer-refresh": "0" };
const HOUR_MS = 3_600_000;

describe("a hop's duration and the wall clock", () => {
  it("a wall clock stepped an hour forward while the hop runs does not make it an hour long", async () => {
    const [a, b] = (await startCluster(2, { flags: P2P })).nodes as [InProcessKitNode, InProcessKitNode];
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    await a.waitForTick("heartbeat", 3n);
    // The step comes once the source has detached the agent: the hop is under way.
    const realNow = Date.now.bind(Date);
    let step = 0;
    vi.spyOn(Date, "now").mockImplementation(() => realNow() + step);
    a.node.scheduler.on("checkpoint", (e) => {
      if (e.agentId === "heartbeat" && e.reason === "migrate") step = HOUR_MS;
    });
    const r = await a.migrate("heartbeat", b);
    expect(r.outcome).toBe("done");
    expect(step).toBe(HOUR_MS);
    expect(r.durationMs).toBeLessThan(60_000);
    const metric = (await a.node.metrics.render()).split("\n").find((l) => l.startsWith('igord_migration_duration_seconds_sum{direction="out"}'));
    expect(Number(metric?.split(" ").pop())).toBeLessThan(60);
  });
});
