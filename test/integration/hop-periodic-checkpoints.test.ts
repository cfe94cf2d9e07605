// A periodic checkpoint that fell due while a hop's detach was committing its own checkpoint was
// queued behind it, ran once the agent had left (its checkpoint chain forgotten), failed "no
// checkpoint chain is tracked" (checkpoint_failed, at error) and failed the agent that had just
// moved (a `stopped` event, status failed, reason store_error), on a hop that went through.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentView } from "../../src/scheduler/scheduler.js";
import { fdatasyncWal } from "../../src/store/sqlite-store.js";
import { EXAMPLES } from "../helpers/node.js";
import { type InProcessKitNode, startCluster, stopAll } from "../../src/testing/index.js";

afterEach(stopAll);

describe("periodic checkpoints during a hop", () => {
  it("a periodic round that falls due while the detach commits leaves the leaving agent to the detach: the hop logs no checkpoint_failed and fails no agent", async () => {
    const cluster = await startCluster(2, { flags: { "tick-interval": "10ms", "checkpoint-interval": "20ms" } });
    const [a, b] = cluster.nodes as [InProcessKitNode, InProcessKitNode];
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm") });
    // A second agent stays: its periodic checkpoint shows that a periodic round ran.
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm"), agentId: "stays" });
    await a.waitForTick("heartbeat", 3n);
    // The detach's WAL sync is held until a periodic round has run meanwhile.
    let hold = false;
    let release: (() => void) | null = null;
    const cp = a.node.checkpointer;
    const checkpoint = cp.checkpoint.bind(cp);
    cp.checkpoint = (...args: Parameters<typeof checkpoint>) => {
      if (release && args[0].agentId === "stays" && args[1] === "periodic") release();
      return checkpoint(...args);
    };
    a.node.store.walSync = async (fd) => {
      if (hold) {
        hold = false;
        await new Promise<void>((resolve) => (release = resolve));
        release = null;
      }
      await fdatasyncWal(fd);
    };
    const stopped: string[] = [];
    a.node.scheduler.on("stopped", (v: AgentView) => stopped.push(`${v.id}: ${v.status} (${v.reason})`));
    hold = true;
    expect((await a.migrate("heartbeat", b)).outcome).toBe("done");
    await b.waitForTick("heartbeat", b.node.store.head("heartbeat")!.tick + 1n);
    // A periodic round after the hop: anything queued behind the detach has run by its end.
    const round = a.node.scheduler.view("stays")!.tick;
    await a.waitFor("checkpoint", (e: { agentId: string; tick: bigint; reason: string }) => e.agentId === "stays" && e.reason === "periodic" && e.tick > round);
    expect(a.logs.events("checkpoint_failed").map((l) => `${String(l.agent)}: ${String(l.reason)} ${String(l.msg)}`)).toEqual([]);
    expect(stopped).toEqual([]);
    expect(cluster.owner("heartbeat")).toBe(b);
    expect(a.node.scheduler.view("stays")?.status).toBe("running");
  });
});
