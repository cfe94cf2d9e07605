// How long a hop took, as the migrate command answers it and the igord_migration_duration_seconds
// histogram counts it, is time that passed, not the wall clock's reading: a clock stepped an hour
// forward during a hop (an NTP step, a VM resumed) reported the hop as lasting an hour (3,600,543 ms).
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { inTime } from "../../src/migration/admission-context.js";
import type { MigrationTarget } from "../../src/migration/target.js";
import { type InProcessKitNode, startCluster, stopAll } from "../../src/testing/index.js";
import { waitUntil } from "../helpers/wait.js";
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

  it("an arriving package's checks keep their share of --migration-timeout across a wall-clock step: not refused MIGRATION_TIMEOUT by an hour forward, still bounded", async () => {
    const [, b] = (await startCluster(2, { flags: { ...P2P, "migration-timeout": "1s" } })).nodes as [InProcessKitNode, InProcessKitNode];
    // The admission a package arriving at b now gets (its checks' deadline set from now).
    const target = (b.node.migration as unknown as { incoming: MigrationTarget }).incoming;
    const admission = target.admission(new Set());
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, "now").mockImplementation(() => realNow() + HOUR_MS);
    // An hour forward on the wall clock: the checks went on (they were refused at once, the source
    // retrying into the same refusal while the clock stayed ahead of its deadline).
    expect(() => inTime(admission)).not.toThrow();
    // Their share of the timeout (half of 1 s) still ends them.
    const started = performance.now();
    await waitUntil(() => {
      try {
        inTime(admission);
        return false;
      } catch (e) {
        return (e as { code?: string }).code === "MIGRATION_TIMEOUT";
      }
    }, { what: "the checks' deadline passed", timeoutMs: 5_000 });
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
