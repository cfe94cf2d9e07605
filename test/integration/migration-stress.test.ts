// Many agents migrating at random between three nodes, several migrations in flight at once, with
// periodic checkpoints and self-verification on. Invariants: every tick of every agent runs exactly
// once and in order, only on the node that owns it then; budgets only go down; at the end exactly
// one node owns each agent. Bounded in CI (IGORD_SOAK=1 runs it for a minute).
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { EXAMPLES } from "../helpers/node.js";
import { startCluster, stopAll } from "../../src/testing/index.js";

afterEach(stopAll);

const SECONDS = process.env.IGORD_SOAK ? 60 : 4;
const MAX_SECONDS = SECONDS * 5;
const AGENTS = 6;
const IN_FLIGHT = 3;

/** xorshift32: a fixed sequence, so a failing run can be replayed. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe("migration under load", () => {
  it(`${AGENTS} agents hopping at random between 3 nodes for ${SECONDS}s: each tick once, by its owner; one owner at the end`, async () => {
    const flags = { "tick-interval": "5ms", "checkpoint-interval": "50ms", "verify-interval": "3", workers: "2" };
    const cluster = await startCluster(3, { flags });
    const nodes = cluster.nodes;
    const ids = Array.from({ length: AGENTS }, (_, i) => `hb${i}`);
    const ran = new Map<string, { node: number; tick: bigint; budget: bigint; owner: string | undefined }[]>(ids.map((id) => [id, []]));
    nodes.forEach((t, n) =>
      t.node.scheduler.on("tick", (e: TickEvent) => {
        ran.get(e.agentId)?.push({ node: n, tick: e.tick, budget: e.budget, owner: t.node.store.lease(e.agentId)?.state });
      }),
    );
    for (const id of ids) await nodes[0]!.node.addAgent({ wasmPath: join(EXAMPLES, "heartbeat.wasm"), agentId: id });
    const holder = (id: string) => nodes.findIndex((t) => t.node.scheduler.view(id)?.status === "running");
    const random = rng(0x1234567);
    const outcomes = new Map<string, number>();
    const busy = new Set<string>();
    // At least SECONDS of hopping and at least MIN_DONE completed hops: a loaded machine takes longer
    // to reach the count instead of failing a rate (bounded by MAX_SECONDS).
    const MIN_DONE = SECONDS * 5 + 1;
    const start = Date.now();
    const deadline = start + SECONDS * 1000;
    const cap = start + MAX_SECONDS * 1000;
    const going = () => Date.now() < cap && (Date.now() < deadline || (outcomes.get("done") ?? 0) < MIN_DONE);
    const workers = Array.from({ length: IN_FLIGHT }, async () => {
      while (going()) {
        const id = ids[Math.floor(random() * ids.length)]!;
        const from = holder(id);
        if (busy.has(id) || from < 0) {
          await nodes[0]!.waitFor<TickEvent>("tick", () => true).catch(() => undefined);
          await new Promise((r) => setImmediate(r));
          continue;
        }
        const to = (from + 1 + Math.floor(random() * 2)) % 3;
        busy.add(id);
        try {
          const r = await nodes[from]!.migrate(id, nodes[to]!);
          outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
        } catch (e) {
          const code = (e as { code?: string }).code ?? "?";
          outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
        } finally {
          busy.delete(id);
        }
      }
    });
    await Promise.all(workers);
    console.log(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    expect(outcomes.get("done") ?? 0).toBeGreaterThanOrEqual(MIN_DONE);
    expect(outcomes.get("recovery") ?? 0).toBe(0);
    expect(outcomes.get("reverted") ?? 0).toBe(0);
    // Let every agent tick once more where it landed, then check the invariants.
    for (const id of ids) {
      const n = holder(id);
      expect(n).toBeGreaterThanOrEqual(0);
      const at = nodes[n]!.node.scheduler.view(id)!.tick;
      await nodes[n]!.waitFor<TickEvent>("tick", (e) => e.agentId === id && e.tick > at);
    }
    for (const id of ids) {
      const r = ran.get(id)!;
      const ticks = r.map((x) => x.tick);
      expect(ticks, `${id}: each tick once, in order`).toEqual(ticks.map((_, i) => BigInt(i + 1)));
      expect(r.every((x) => x.owner === "ACTIVE_OWNER"), `${id}: only its owner ticked it`).toBe(true);
      expect(r.every((x, i) => i === 0 || x.budget <= r[i - 1]!.budget), `${id}: budget only goes down`).toBe(true);
      expect(cluster.owner(id)).toBe(nodes[holder(id)]);
      const states = nodes.map((t) => t.lease(id)?.state);
      expect(states.every((s) => s === undefined || s === "ACTIVE_OWNER" || s === "RETIRED")).toBe(true);
    }
  }, (MAX_SECONDS + 60) * 1000);
});
