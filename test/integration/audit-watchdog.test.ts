// Audit replay's chain on a real worker: each tick of the chain is bounded by the tick timeout on its
// own (the worker restarts its watchdog's clock at every tick of a chain, replay/chain.ts), so a
// chain of slow but finishing ticks longer than the timeout in total completes, and a tick that
// never returns is stopped by the watchdog. A caller's deadline (migration admission's) ends a replay between ticks.
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { buildChain } from "../../src/replay/chain.js";
import { WorkerPool } from "../../src/wasm/pool.js";
import { replayTarget } from "../helpers/replay-agents.js";
import { watAgent } from "../helpers/wat.js";

const TICK_TIMEOUT_MS = 800;
// 26–45 ms a tick once tiered up on this machine (quiet to loaded), 2–3× that before; well under the timeout.
const BUSY = "(global.set $i (i32.const 80000000)) (loop $l (global.set $i (i32.sub (global.get $i) (i32.const 1))) (br_if $l (global.get $i)))";
const SLOW_TICKS = watAgent({ onTick: BUSY, extra: "(global $i (mut i32) (i32.const 0))" });
// Ticks normally live; an instance that was resumed (as every replay instance is) spins.
const HANGS_IN_REPLAY = watAgent({
  omit: ["agent_resume"],
  onTick: "(if (global.get $resumed) (then (loop $spin (br $spin))))",
  extra: `(global $resumed (mut i32) (i32.const 0))
    (func (export "agent_resume") (param i32 i32) (global.set $resumed (i32.const 1)))`,
});

let pool: WorkerPool | null = null;
afterEach(async () => {
  await pool?.stop();
  pool = null;
});

async function placed(text: string): Promise<WorkerPool> {
  const t = await replayTarget(text, []);
  pool = new WorkerPool({ size: 1, tickTimeoutMs: TICK_TIMEOUT_MS, tickIntervalMs: TICK_TIMEOUT_MS, logger: pino({ level: "silent" }) });
  pool.start();
  await pool.place({ agentId: "a", ...t }, { state: null, budget: 0n, price: 0n });
  return pool;
}

// A chain of `count` ticks that observe nothing and carry no expected hash, from the state 0.
const chainOf = (count: number) => buildChain(1n, count, new Uint8Array(4), () => ({})).chain;

describe("audit replay chain under the worker's watchdog", () => {
  it("a chain of slow ticks that together outlast the tick timeout completes: each tick has the whole timeout", async () => {
    const p = await placed(SLOW_TICKS);
    // 80 ticks: 30 took 797 ms on a quiet machine, under the 800 ms the check below needs.
    const out = await p.replay("a", chainOf(80));
    expect(out).toMatchObject({ verified: 80, failure: null });
    // Only meaningful if the chain as a whole took longer than one tick may.
    expect(Number(out.durationNs) / 1e6).toBeGreaterThan(TICK_TIMEOUT_MS);
  }, 60_000);

  it("a tick of the chain that never returns is stopped by the tick timeout", async () => {
    const p = await placed(HANGS_IN_REPLAY);
    // The replay fails with the reason (not as a worker crash), and so does the agent lost with it.
    const failures: { code: string; message: string }[] = [];
    p.on("lost", (l) => failures.push(l.error));
    const started = performance.now();
    await expect(p.replay("a", chainOf(5))).rejects.toMatchObject({ code: "TICK_TIMEOUT", message: expect.stringMatching(/tick timeout/) });
    expect(performance.now() - started).toBeGreaterThanOrEqual(TICK_TIMEOUT_MS - 50);
    expect(failures).toEqual([expect.objectContaining({ code: "TICK_TIMEOUT", message: expect.stringMatching(/replay/) })]);
  }, 60_000);

  it("a replay given a deadline ends at the first tick not started by it, as a chain and as items, and the agent stays placed", async () => {
    const p = await placed(SLOW_TICKS);
    const deadlineNs = process.hrtime.bigint() + 150_000_000n;
    const chain = await p.replay("a", chainOf(30), { deadlineNs });
    expect(chain.failure?.error.code).toBe("REPLAY_DEADLINE");
    expect(chain.verified).toBeGreaterThan(0);
    expect(chain.verified).toBeLessThan(30);
    const items = Array.from({ length: 30 }, (_, i) => ({ tick: BigInt(i + 1), entries: [], budget: 0n, price: 0n, ...(i === 0 ? { preState: new Uint8Array(4) } : {}) }));
    const late = await p.replay("a", items, { deadlineNs: process.hrtime.bigint() - 1_000_000n });
    expect(late).toMatchObject({ verified: 0, failure: { tick: 1n, error: { code: "REPLAY_DEADLINE" } } });
    expect(p.has("a")).toBe(true);
    expect(await p.replay("a", chainOf(2))).toMatchObject({ verified: 2, failure: null });
  }, 60_000);
});
