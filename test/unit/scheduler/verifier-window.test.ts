// The self-verifier and the replay window: a tick the window lets go of before any verification
// held it (ticks came faster than the verification in flight) is never verified live, so it is
// counted (igord_replay_ticks_unverified_total) and said in one replay_ticks_unverified line a pass.
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { NodeMetrics } from "../../../src/metrics/metrics.js";
import type { ReplayOutcome } from "../../../src/replay/engine.js";
import { ReplayWindow } from "../../../src/replay/window.js";
import type { AgentRuntime } from "../../../src/scheduler/agent-runtime.js";
import { Verifier, type VerifierHost } from "../../../src/scheduler/verifier.js";
import type { WorkerPool } from "../../../src/wasm/pool.js";
import { LogCapture } from "../../helpers/node.js";

const NO_HOST: VerifierHost = { verified: () => undefined, divergence: () => undefined, pause: () => undefined, migrateAway: () => null };

/** The parts of an agent's runtime the verifier reads, with a replay window of `capacity` ticks. */
function agentWithWindow(capacity: number, status: string, logs: LogCapture): AgentRuntime {
  return {
    id: "a",
    window: new ReplayWindow(capacity),
    sinceVerify: 0,
    intensifyLeft: 0,
    verifying: false,
    replayVerified: 0,
    divergences: 0,
    status,
    detaching: false,
    logger: pino({ level: "debug" }, logs.stream),
  } as unknown as AgentRuntime;
}

describe("ticks the replay window lets go of unverified", () => {
  it("are counted in a metric and a log line once the verification in flight ends; those it held are not", async () => {
    let finish: (o: ReplayOutcome) => void = () => undefined;
    const replayed: bigint[][] = [];
    const pool = {
      replay: (_id: string, items: { tick: bigint }[]) => {
        replayed.push(items.map((i) => i.tick));
        return new Promise<ReplayOutcome>((resolve) => (finish = resolve));
      },
    } as unknown as WorkerPool;
    const metrics = new NodeMetrics({ agentStates: () => new Map(), budgets: () => [], workers: () => 0, leaseStates: () => new Map() });
    const logs = new LogCapture();
    const verifier = new Verifier(pool, { mode: "full", window: 3, verifyInterval: 3, onDivergence: "log" }, metrics, NO_HOST);
    const a = agentWithWindow(3, "running", logs);
    let pre = new Uint8Array(4);
    const commit = (tick: bigint): void => {
      const post = new Uint8Array(4).fill(Number(tick));
      a.window.pushTick(tick, pre, post, new Uint8Array(32), [{ id: 1, result: 0, payload: new Uint8Array(1) }], 10n, 1n);
      pre = post;
      verifier.afterCommit(a);
    };
    for (let t = 1n; t <= 3n; t++) commit(t);
    expect(replayed).toEqual([[1n, 2n, 3n]]);
    // While that pass runs, ticks 4 to 7 commit: 1 to 3 make room (the pass has them), then 4 goes.
    for (let t = 4n; t <= 7n; t++) commit(t);
    expect(logs.events("replay_ticks_unverified")).toEqual([]);
    finish({ verified: 3, failure: null, durationNs: 1n });
    await new Promise((r) => setImmediate(r));
    expect(logs.events("replay_ticks_unverified").map((l) => [l.count, l.lastTick])).toEqual([[1, "4"]]);
    expect(await metrics.registry.getSingleMetricAsString("igord_replay_ticks_unverified_total")).toMatch(/^igord_replay_ticks_unverified_total 1$/m);
    // Ticks 5 to 7 fill the window: the next pass starts as this one ends, before tick 8 could push 5 out.
    expect(replayed.at(-1)).toEqual([5n, 6n, 7n]);
    commit(8n);
    finish({ verified: 3, failure: null, durationNs: 1n });
    await new Promise((r) => setImmediate(r));
    expect(logs.events("replay_ticks_unverified")).toHaveLength(1);
  });

  it("are counted when the verification that held them fails (its worker died, the agent moved)", async () => {
    let fail: (e: Error) => void = () => undefined;
    const pool = {
      replay: () => new Promise<ReplayOutcome>((_resolve, reject) => (fail = reject)),
    } as unknown as WorkerPool;
    const metrics = new NodeMetrics({ agentStates: () => new Map(), budgets: () => [], workers: () => 0, leaseStates: () => new Map() });
    const logs = new LogCapture();
    const verifier = new Verifier(pool, { mode: "full", window: 3, verifyInterval: 3, onDivergence: "log" }, metrics, NO_HOST);
    const a = agentWithWindow(3, "stopped", logs);
    let pre = new Uint8Array(4);
    for (let t = 1n; t <= 5n; t++) {
      const post = new Uint8Array(4).fill(Number(t));
      a.window.pushTick(t, pre, post, new Uint8Array(32), [{ id: 1, result: 0, payload: new Uint8Array(1) }], 10n, 1n);
      pre = post;
      verifier.afterCommit(a);
    }
    // The pass holds ticks 1 to 3; ticks 4 and 5 pushed 1 and 2 out of the window meanwhile. The pass
    // fails: 1 and 2 were neither verified nor are they in the window any more, so never will be.
    fail(new Error("worker lost"));
    await new Promise((r) => setImmediate(r));
    expect(logs.events("replay_ticks_unverified").map((l) => [l.count, l.lastTick])).toEqual([[2, "2"]]);
    expect(await metrics.registry.getSingleMetricAsString("igord_replay_ticks_unverified_total")).toMatch(/^igord_replay_ticks_unverified_total 2$/m);
  });
});
