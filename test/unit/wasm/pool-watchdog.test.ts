// The watchdog's rebalancing waits for a worker to boot: a worker the pool has just spawned (to
// replace one terminated for a hung tick) takes tens of milliseconds before it listens, and agents
// moved onto it before then waited out its start-up as well as their loads, so each missed a tick
// (the hang bench's 215 ms gap at a 100 ms cadence).
import type { Worker } from "node:worker_threads";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Slot, WorkerHandle } from "../../../src/wasm/pool-state.js";
import { PoolWatchdog, type WatchedPool } from "../../../src/wasm/pool-watchdog.js";
import { Ctl } from "../../../src/wasm/worker-protocol.js";

function worker(id: number, placements: number[], booted: boolean): WorkerHandle {
  const ctl = new BigInt64Array(new SharedArrayBuffer(Ctl.size * 8));
  ctl[Ctl.current] = -1n;
  ctl[Ctl.booted] = booted ? 1n : 0n;
  return { id, worker: {} as Worker, ctl, placements: new Set(placements), stalled: false, dead: false, dedicated: false, replays: new Map() };
}

/** A pool of the given workers whose agents are all ready and idle; records the moves asked for. */
function fakePool(workers: WorkerHandle[]): WatchedPool & { moved: number[] } {
  const slots = new Map<number, Slot>();
  for (const h of workers) for (const p of h.placements) slots.set(p, { placement: p, worker: h, ready: true, inFlight: null, queued: null, rebalance: false } as Slot);
  const moved: number[] = [];
  return {
    moved,
    workers,
    live: () => workers.filter((w) => !w.dead && !w.stalled && !w.dedicated),
    slotAt: (p) => slots.get(p),
    evacuate: () => {},
    move: (slot) => {
      moved.push(slot.placement);
      slot.worker.placements.delete(slot.placement);
    },
    retire: () => {},
    fail: () => {},
    terminateIdle: () => {},
    releaseDedicated: () => {},
  };
}

const logger = pino({ level: "silent" });
const opts = { size: 2, tickTimeoutMs: 3000, stallMs: 25, logger };

describe("the watchdog's rebalancing", () => {
  it("moves no agent onto a worker that has not booted, and evens the workers out once it has", () => {
    const busy = worker(1, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], true);
    const fresh = worker(2, [], false);
    const pool = fakePool([busy, fresh]);
    const watchdog = new PoolWatchdog(pool, opts);

    watchdog.inspect();
    watchdog.inspect();
    expect(pool.moved).toEqual([]);

    Atomics.store(fresh.ctl, Ctl.booted, 1n);
    watchdog.inspect();
    expect(pool.moved).toHaveLength(5);
  });

  it("evens out booted workers at once", () => {
    const pool = fakePool([worker(1, [1, 2, 3, 4], true), worker(2, [], true)]);
    new PoolWatchdog(pool, opts).inspect();
    expect(pool.moved).toHaveLength(2);
  });
});
