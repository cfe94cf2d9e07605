import { describe, expect, it } from "vitest";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { DueQueue, type DueEntry, NOT_IN_LANE } from "../../../src/scheduler/due-queue.js";

interface Item {
  id: string;
  dueEntry: DueEntry | null;
  dueLane: number;
}
const fresh = (id: string): Item => ({ id, dueEntry: null, dueLane: NOT_IN_LANE });
const items = new Map<string, Item>();
const item = (id: string): Item => {
  let it = items.get(id);
  if (!it) items.set(id, (it = fresh(id)));
  return it;
};
const ids = (xs: Item[]): string[] => xs.map((x) => x.id);

describe("due queue", () => {
  it("pops agents in due order and only when due", () => {
    const q = new DueQueue<Item>();
    q.schedule(item("b"), 20);
    q.schedule(item("a"), 10);
    q.schedule(item("c"), 30);
    expect(q.peek()).toBe(10);
    expect(ids(q.popDue(25))).toEqual(["a", "b"]);
    expect(ids(q.popDue(25))).toEqual([]);
    expect(ids(q.popDue(30))).toEqual(["c"]);
  });

  it("rescheduling replaces the earlier entry and cancel removes it", () => {
    const q = new DueQueue<Item>();
    q.schedule(item("a"), 10);
    q.schedule(item("a"), 50);
    q.schedule(item("b"), 20);
    q.cancel(item("b"));
    expect(ids(q.popDue(40))).toEqual([]);
    expect(ids(q.popDue(50))).toEqual(["a"]);
    expect(q.peek()).toBeNull();
  });

  it("keeps order across many entries", () => {
    const q = new DueQueue<Item>();
    const dues = Array.from({ length: 500 }, (_, i) => (i * 7919) % 1000);
    for (const [i, d] of dues.entries()) q.schedule(item(`a${i}`), d);
    const popped = ids(q.popDue(1000)).map((id) => dues[Number(id.slice(1))] as number);
    expect(popped).toEqual([...popped].sort((x, y) => x - y));
    expect(popped.length).toBe(500);
  });

  it("holds nothing of an item once it is cancelled or rescheduled, though its old due time is far off and behind a live one", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const q = new DueQueue<Item>();
    q.schedule(fresh("head"), 10);
    // In the lane (due in order), in the heap (due out of order), and rescheduled from the lane to the heap.
    const refs = ((): WeakRef<Item>[] => {
      const lane = fresh("lane");
      const heap = fresh("heap");
      const moved = fresh("moved");
      q.schedule(lane, 1_000);
      q.schedule(moved, 2_000);
      q.schedule(heap, 500);
      q.cancel(lane);
      q.cancel(heap);
      q.schedule(moved, 5);
      q.cancel(moved);
      return [new WeakRef(lane), new WeakRef(heap), new WeakRef(moved)];
    })();
    // A WeakRef keeps its target through the job that made it.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(refs.map((r) => r.deref()?.id ?? null)).toEqual([null, null, null]);
    expect(ids(q.popDue(10_000))).toEqual(["head"]);
  });
});

describe("due queue against a plain model", () => {
  it("schedules, cancels and pops like a list searched for the earliest due, over runs in due order and out of it", () => {
    // A seeded generator: the same 20,000 steps every run.
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const q = new DueQueue<Item>();
    const model = new Map<string, number>(); // id -> due of its live entry
    const pool = Array.from({ length: 300 }, (_, i) => fresh(`m${i}`));
    let now = 0;
    for (let step = 0; step < 20_000; step++) {
      const it = pool[rand(pool.length)] as Item;
      const op = rand(10);
      if (op < 6) {
        // Mostly "now + interval" (in due order, the lane), sometimes anywhere (the heap).
        const due = op < 4 ? now + rand(3) : now + rand(500) - 100;
        q.schedule(it, due);
        model.set(it.id, due);
      } else if (op < 7) {
        q.cancel(it);
        model.delete(it.id);
      } else {
        now += rand(40);
        const popped = q.popDue(now);
        const expected = [...model].filter(([, d]) => d <= now);
        expect(popped.map((x) => model.get(x.id))).toEqual([...popped.map((x) => model.get(x.id))].sort((a, b) => (a as number) - (b as number)));
        expect(ids(popped).sort()).toEqual(expected.map(([id]) => id).sort());
        for (const x of popped) model.delete(x.id);
      }
      const min = Math.min(...model.values());
      expect(q.peek()).toBe(model.size === 0 ? null : min);
    }
  });
});

describe("stall threshold", () => {
  it("scales with the tick interval, within bounds and below half the tick timeout", async () => {
    const { stallThresholdMs } = await import("../../../src/wasm/pool-watchdog.js");
    expect(stallThresholdMs(1000, 15_000)).toBe(200);
    expect(stallThresholdMs(100, 15_000)).toBe(25);
    expect(stallThresholdMs(10, 15_000)).toBe(20);
    expect(stallThresholdMs(1000, 100)).toBe(50);
  });
});
