import { describe, expect, it } from "vitest";
import { DueQueue } from "../../../src/scheduler/due-queue.js";

interface Item {
  id: string;
  dueVersion: number;
}
const items = new Map<string, Item>();
const item = (id: string): Item => {
  let it = items.get(id);
  if (!it) items.set(id, (it = { id, dueVersion: 0 }));
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
});

describe("stall threshold", () => {
  it("scales with the tick interval, within bounds and below half the tick timeout", async () => {
    const { stallThresholdMs } = await import("../../../src/wasm/pool.js");
    expect(stallThresholdMs(1000, 15_000)).toBe(200);
    expect(stallThresholdMs(100, 15_000)).toBe(25);
    expect(stallThresholdMs(10, 15_000)).toBe(20);
    expect(stallThresholdMs(1000, 100)).toBe(50);
  });
});
