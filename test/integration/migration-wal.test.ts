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

type WalIndex = { frames: number; backfilled: number };

/**
 * The WAL index's counters (sqlite.org/walformat.html): mxFrame, the WAL's last valid frame (offset
 * 16), and nBackfill, the frames a checkpoint has copied back into the database (offset 96): it grows
 * only when a checkpoint runs, and drops to 0 when the WAL starts over.
 */
function walIndex(t: TestNode): WalIndex {
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

/** One hop's hold of a node's WAL checkpoints: the WAL index when it was taken and when released. */
type Hold = { node: number; taken: WalIndex; released?: WalIndex };

/**
 * Records each hold a hop takes on a node's WAL checkpoints (store.deferWalCheckpoints), with the
 * WAL index at both ends: a node's hop is over when it releases its hold, which for a target is
 * once it has sent `result`, possibly before the source's migrate() returns.
 */
function recordHolds(t: TestNode, node: number, holds: Hold[]): void {
  const store = t.node.store;
  const defer = store.deferWalCheckpoints.bind(store);
  store.deferWalCheckpoints = () => {
    const hold: Hold = { node, taken: walIndex(t) };
    holds.push(hold);
    const release = defer();
    return () => {
      hold.released ??= walIndex(t);
      release();
    };
  };
}

describe("WAL checkpoints and migrations", () => {
  it("no WAL checkpoint runs inside a hop's commits, on either side; they run between hops and the WAL stays bounded", async () => {
    const a = await startTestNode(P2P);
    const b = await startTestNode(P2P);
    await a.node.addAgent({ wasmPath: join(EXAMPLES, "survivor.wasm") });
    const nodes = [a, b];
    const holds: Hold[] = [];
    nodes.forEach((t, n) => recordHolds(t, n, holds));
    let peak = 0;
    let between = 0;
    // ~18 WAL pages a hop on each node: 90 hops take each node's WAL past the threshold at least once.
    for (let i = 0; i < 90; i++) {
      const from = nodes[i % 2] as TestNode;
      const to = nodes[(i + 1) % 2] as TestNode;
      const at = from.node.scheduler.view("survivor")!.tick;
      await from.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick > at);
      const first = holds.length;
      const r = await from.node.migrate("survivor", [to.node.migration!.addresses()[0]!]);
      expect(r.outcome).toBe("done");
      // Both sides held their checkpoints for this hop, and the target releases once it has answered.
      const hop = holds.slice(first);
      expect(hop.map((h) => h.node).sort(), `hop ${i}: one hold on each node`).toEqual([0, 1]);
      await waitUntil(() => hop.every((h) => h.released), { timeoutMs: 2_000, pollMs: 1, what: `both nodes' holds released after hop ${i}` });
      for (const { node: n, taken: was, released: is } of hop) {
        const startedOver = is!.frames < was.frames || is!.backfilled < was.backfilled;
        // A WAL that started over during the hold was checkpointed whole before it began (a writer
        // starts it over once a checkpoint copied everything back); else nothing was copied back.
        if (startedOver) expect(was.backfilled, `hop ${i}, node ${n}: the WAL was checkpointed during the hop`).toBe(was.frames);
        else expect(is!.backfilled, `hop ${i}, node ${n}: a checkpoint ran during the hop`).toBe(was.backfilled);
        peak = Math.max(peak, is!.frames);
        // The deferred checkpoint of a WAL past the threshold runs once the hop is over (the new
        // owner's next commit may already have started the WAL over after it).
        if (is!.frames < WAL_THRESHOLD) continue;
        const t = nodes[n] as TestNode;
        const checkpointed = (): boolean => {
          const now = walIndex(t);
          return now.backfilled >= is!.frames || now.frames < is!.frames;
        };
        await waitUntil(checkpointed, { timeoutMs: 2_000, pollMs: 2, what: `node ${n}'s deferred WAL checkpoint after hop ${i}` });
        between++;
      }
    }
    expect(between).toBeGreaterThanOrEqual(2);
    expect(peak).toBeLessThan(WAL_DEFERRED_MAX_PAGES);
  });
});
