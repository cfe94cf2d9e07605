// An operator's `igord recover` abandons an unconfirmed handoff: the agent runs here again at a new
// major epoch. The hop's migration record must say so. Found by the chaos harness
// (chaos-cluster.test.ts, seeds 13 and 14): after a recover the record stayed in state `recovery`
// for ever, through restarts, so `igord migrations` showed a
// handoff waiting for its target long after the operator had settled it, and the daemon's sweep
// never timed it out.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { controlGet } from "../../src/control/client.js";
import { ErrorCode } from "../../src/errors.js";
import { MIGRATION_TERMINAL } from "../../src/store/types.js";
import { type InProcessKitNode, startNode, stopAll } from "../../src/testing/index.js";
import { EXAMPLES } from "../helpers/node.js";
import { igordAsync } from "../helpers/process.js";
import { RoguePeer } from "../helpers/rogue.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(stopAll);

const heartbeat = join(EXAMPLES, "heartbeat.wasm");

const FLAGS = {
  listen: "/ip4/127.0.0.1/tcp/0",
  "accept-migrations": "any",
  "tick-interval": "10ms",
  "checkpoint-interval": "0",
  "migration-retry-delay": "10ms",
  "migration-max-delay": "50ms",
  "migration-timeout": "1s",
  "peer-refresh": "0",
  control: "127.0.0.1:0",
};

type Listed = { id: number; state: string; error: { code: string; message: string } | null };

/** A source whose hop to a target that swallowed the package (and never answers) is RECOVERY_REQUIRED; the operator recovers it. */
async function recovered(): Promise<{ a: InProcessKitNode; id: number; stopTarget: () => Promise<void> }> {
  const a = await startNode({ flags: FLAGS });
  const target = await RoguePeer.start();
  await a.node.addAgent({ wasmPath: heartbeat });
  const r = await a.node.migrate("heartbeat", [await target.swallow()]);
  expect(r.outcome).toBe("recovery");
  expect(a.node.store.migrations({ agentId: "heartbeat" })[0]).toMatchObject({ id: r.id, state: "recovery" });
  const { host, port } = a.node.controlAddress!;
  const x = await igordAsync(["recover", "heartbeat", "--reason", "target decommissioned", "--data-dir", a.config.dataDir, "--control", `${host}:${port}`]);
  expect(x.stderr).toBe("");
  expect(x.status).toBe(0);
  await a.node.migration!.resolved("heartbeat");
  await waitUntil(() => a.node.scheduler.view("heartbeat")?.status === "running", { what: "the agent running here again" });
  return { a, id: r.id, stopTarget: () => target.stop() };
}

describe("igord recover and the hop it abandons", () => {
  it("the abandoned hop's record is failed (MIGRATION_AMBIGUOUS, naming the recover and its reason), not left in recovery; igord migrations shows it so", async () => {
    const { a, id, stopTarget } = await recovered();
    try {
      const record = a.node.store.migrations({ agentId: "heartbeat" }).find((m) => m.id === id)!;
      expect(record.state).toBe("failed");
      expect(record.error?.code).toBe(ErrorCode.MigrationAmbiguous);
      expect(record.error?.message).toMatch(/abandoned by igord recover: target decommissioned; the agent runs here at epoch \(1,0\)/);
      expect(a.node.store.migrations().filter((m) => !MIGRATION_TERMINAL.includes(m.state))).toEqual([]);
      // What `igord migrations` shows.
      const { migrations } = (await controlGet(a.node.controlAddress!, a.config.dataDir, "/v1/migrations?agent=heartbeat")) as { migrations: Listed[] };
      expect(migrations.find((x) => x.id === id)).toMatchObject({ state: "failed", error: { code: "MIGRATION_AMBIGUOUS" } });
    } finally {
      await stopTarget();
    }
  });

  it("a record already left in recovery by an earlier recover is settled by the daemon once its lease holds no handoff", async () => {
    const { a, id, stopTarget } = await recovered();
    try {
      // What a store written before this fix holds: the lease recovered, the record still in recovery.
      a.node.store.updateMigration(id, { state: "recovery", error: { code: ErrorCode.MigrationAmbiguous, message: "no confirmation" } });
      await a.restart();
      await waitUntil(() => a.node.store.migrations({ agentId: "heartbeat" }).find((m) => m.id === id)?.state === "failed", {
        what: "the stale recovery record settled by the sweep",
        timeoutMs: 10_000,
      });
      expect(a.node.store.migrations({ agentId: "heartbeat" }).find((m) => m.id === id)?.error?.code).toBe(ErrorCode.MigrationAmbiguous);
      expect(a.lease("heartbeat")?.state).toBe("ACTIVE_OWNER");
    } finally {
      await stopTarget();
    }
  });
});
