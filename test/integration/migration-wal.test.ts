// A migration's commits never run SQLite's WAL checkpoint (a thousand pages copied back and two
// more fsyncs, a hop's slowest part when it lands inside one): each hop defers it, and it runs
// between hops instead, so the WAL still stays bounded.
import { closeSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { WAL_DEFERRED_MAX_PAGES } from "../../src/store/sqlite-store.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES, startTestNode, stopAllNodes, type TestNode } from "../helpers/node.js";
import { waitUntil } from "../helpers/wait.js";

afterEach(async () => {
  await stopAllNodes();
});

const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "tick-interval": "5ms", "checkpoint-interval": "0", "peer-refresh": "0" };
/** SQLite's default autocheckpoint threshold, in WAL frames (pages). */
const WAL_THRESHOLD = 1000;

/**
 * The WAL index's counters (sqlite.org/walformat.html): mxFrame, the WAL's last valid frame (offset
 * 16), and nBackfill, the frames a checkpoint has copied back into the database (offset 96): it grows
 * only when a checkpoint runs, and drops to 0 when the WAL starts over.
 */
function walIndex(t: TestNode): { frames: number; backfilled: number } {
  const fd = openSync(`${t.node.store.path}-shm`, "r");
  try {
    const read = (offset: number): number => {
      const v = new Uint32Array(1);
      readSync(fd, v, 0, 4, offset);
      return v[0] ?? 0;
    };
    return { frames: read(16), backfilled: read(96) };
  } finally {
    closeSync(fd);
  }
}

describe("WAL checkpoints and migrations", () => {
  it("no WAL checkpoint runs inside a hop's commits, on either side; they run between hops and the WAL stays bounded", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
    const nodes = [a, b];
    let peak = 0;
    let between = 0;
    // ~18 WAL pages a hop on each node: 90 hops take each node's WAL past the threshold at least once.
    for (let i = 0; i < 90; i++) {
      const from = nodes[i % 2] as TestNode;
      const to = nodes[(i + 1) % 2] as TestNode;
      const at = from.node.scheduler.view("survivor")!.tick;
      await from.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick > at);
      const before = nodes.map(walIndex);
      const r = await from.node.migrate("survivor", [to.node.migration!.addresses()[0]!]);
      expect(r.outcome).toBe("done");
      const after = nodes.map(walIndex);
      nodes.forEach((_, n) => {
        const [was, is] = [before[n], after[n]] as { frames: number; backfilled: number }[];
        const startedOver = is!.frames < was!.frames || is!.backfilled < was!.backfilled;
        // A WAL that started over during the hop was checkpointed whole before it began (a writer
        // starts it over once a checkpoint copied everything back); else nothing was copied back.
        if (startedOver) expect(was!.backfilled, `hop ${i}, node ${n}: the WAL was checkpointed during the hop`).toBe(was!.frames);
        else expect(is!.backfilled, `hop ${i}, node ${n}: a checkpoint ran during the hop`).toBe(was!.backfilled);
        peak = Math.max(peak, is!.frames);
      });
      // The deferred checkpoint of a WAL past the threshold runs once the hop is over.
      for (const [n, t] of nodes.entries()) {
        if ((after[n] as { frames: number }).frames < WAL_THRESHOLD) continue;
        await waitUntil(() => walIndex(t).backfilled >= (after[n] as { frames: number }).frames, { timeoutMs: 2_000, pollMs: 2, what: `node ${n}'s deferred WAL checkpoint after hop ${i}` });
        between++;
      }
    }
    expect(between).toBeGreaterThanOrEqual(2);
    expect(peak).toBeLessThan(WAL_DEFERRED_MAX_PAGES);
  });
});
