// Tick items and tick results cross between the pool and its workers packed in one buffer; what
// comes out must be exactly what went in.
import { describe, expect, it } from "vitest";
import { type OkOutcome, OkOutcomeReader, OkOutcomeWriter, PACKED_STATE_MAX, packable, packOkOutcomes, packTickItems, type TickItem, TickItems, unpackOkOutcomes, unpackTickItems } from "../../../src/wasm/worker-protocol.js";

describe("worker protocol packing", () => {
  it("tick items round-trip, including 64-bit budgets, no authority expiry and fractional-free expiries", () => {
    const items: TickItem[] = [
      { placement: 1, tick: 1n, budget: 0n, price: 0n, authority: false, authorityUntilMs: null },
      { placement: 2 ** 40, tick: 2n ** 63n - 1n, budget: 2n ** 63n - 1n, price: 123_456_789n, authority: true, authorityUntilMs: 1_764_000_000_123 },
      { placement: 3, tick: 7n, budget: 10n ** 12n, price: 1n, authority: true, authorityUntilMs: null },
    ];
    expect(unpackTickItems(packTickItems(items, items.map((i) => i.placement)))).toEqual(items);
    expect(unpackTickItems(packTickItems([], []))).toEqual([]);
  });

  it("successful outcomes round-trip with their states, hashes and event logs, each as its own copy", () => {
    const outcomes: OkOutcome[] = [
      { placement: 5, tick: 9n, status: "ok", more: true, elapsedNs: 12_345n, state: new Uint8Array([1, 2, 3, 4]), postHash: new Uint8Array(32).fill(7), events: [
        { id: 1, result: 0, payload: new Uint8Array(8).fill(9) },
        { id: 2, result: -4, payload: new Uint8Array(0) },
        { id: 3, result: 0, payload: new TextEncoder().encode("a log line") },
      ] },
      { placement: 6, tick: 2n ** 63n, status: "ok", more: false, elapsedNs: 0n, state: new Uint8Array(0), postHash: new Uint8Array(0), events: [] },
      { placement: 7, tick: 1n, status: "ok", more: false, elapsedNs: 1n, state: new Uint8Array(PACKED_STATE_MAX).fill(3), postHash: new Uint8Array(0), events: [] },
    ];
    const back = unpackOkOutcomes(packOkOutcomes(outcomes));
    expect(back).toEqual(outcomes);
    // Copies, not views of the message: keeping one state does not keep the whole batch alive.
    expect(back[0]?.state.buffer.byteLength).toBe(4);
    expect(back[0]?.events[2]?.payload.buffer.byteLength).toBe(10);
  });

  it("only successful outcomes with states up to PACKED_STATE_MAX are packed", () => {
    const ok = (n: number): OkOutcome => ({ placement: 1, tick: 1n, status: "ok", more: false, elapsedNs: 1n, state: new Uint8Array(n), postHash: new Uint8Array(0), events: [] });
    expect(packable(ok(PACKED_STATE_MAX))).toBe(true);
    expect(packable(ok(PACKED_STATE_MAX + 1))).toBe(false);
    expect(packable({ placement: 1, tick: 1n, status: "skipped" })).toBe(false);
  });

  it("a writer that outgrows its first buffer hands over every outcome written, then starts again empty", () => {
    const w = new OkOutcomeWriter(64);
    const outcomes: OkOutcome[] = Array.from({ length: 50 }, (_, i) => ({
      placement: i, tick: BigInt(i) + 1n, status: "ok" as const, more: i % 2 === 0, elapsedNs: BigInt(i * 1000),
      state: new Uint8Array(i * 7).fill(i), postHash: i % 3 === 0 ? new Uint8Array(32).fill(i) : new Uint8Array(0),
      events: i % 3 === 0 ? [{ id: 4, result: i, payload: new Uint8Array(i).fill(1) }] : [],
    }));
    for (const o of outcomes) w.write(o.placement, o.tick, o.more, o.elapsedNs, o.state, o.postHash, o.events);
    expect(w.count).toBe(50);
    const first = w.take();
    expect(unpackOkOutcomes(first)).toEqual(outcomes);
    expect(w.count).toBe(0);
    const one = outcomes[7] as OkOutcome;
    w.write(one.placement, one.tick, one.more, one.elapsedNs, one.state, one.postHash, one.events);
    expect(unpackOkOutcomes(w.take())).toEqual([one]);
    expect(unpackOkOutcomes(w.take())).toEqual([]);
  });

  it("a tick's 64 bits go from the batch into its result as two 32-bit words, past 2^53 too", () => {
    const ticks = [1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 64n - 1n];
    const items = new TickItems(packTickItems(ticks.map((tick) => ({ tick, budget: 1n, price: 1n })), ticks.map((_, i) => i)));
    const w = new OkOutcomeWriter(64);
    for (let i = 0; i < items.length; i++) w.writeWords(items.placement(i), items.tickLo(i), items.tickHi(i), false, 1n, new Uint8Array(0), new Uint8Array(0), []);
    expect(unpackOkOutcomes(w.take()).map((o) => o.tick)).toEqual(ticks);
  });

  it("a reader skips an outcome it does not take and matches ticks exactly, neighbours past 2^53 included", () => {
    const outcomes: OkOutcome[] = [
      { placement: 1, tick: 2n ** 53n + 1n, status: "ok", more: false, elapsedNs: 5n, state: new Uint8Array([1, 2]), postHash: new Uint8Array(32).fill(1), events: [{ id: 2, result: 0, payload: new Uint8Array(3).fill(4) }] },
      { placement: 2, tick: 7n, status: "ok", more: true, elapsedNs: 6n, state: new Uint8Array([9]), postHash: new Uint8Array(0), events: [] },
    ];
    const r = new OkOutcomeReader(packOkOutcomes(outcomes));
    expect(r.next()).toBe(true);
    // 2^53 + 1 and 2^53 are the same double: the comparison must not be made in doubles.
    expect(r.isTick(2n ** 53n)).toBe(false);
    expect(r.isTick(2n ** 53n + 1n)).toBe(true);
    expect(r.next()).toBe(true); // the first one's body and log skipped, never copied
    expect([r.placement, r.more, r.elapsedNs, r.isTick(7n), r.isTick(8n)]).toEqual([2, true, 6n, true, false]);
    r.take();
    expect([...r.state]).toEqual([9]);
    expect(r.events).toEqual([]);
    expect(r.next()).toBe(false);
  });
});
