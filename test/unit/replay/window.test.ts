// The replay window keeps recent tick snapshots for self-verification: at most `capacity` of them
// and at most REPLAY_WINDOW_MAX_BYTES of states and logs, the newest always.
import { describe, expect, it } from "vitest";
import { REPLAY_WINDOW_MAX_BYTES, ReplayWindow } from "../../../src/replay/window.js";

const MiB = 1024 * 1024;

/** Pushes `ticks` observing ticks from tick `from` on, chained to the window's newest post-state. */
function fill(w: ReplayWindow, ticks: number, stateBytes: number, from = 1): Uint8Array[] {
  const states = [w.all().at(-1)?.post ?? new Uint8Array(stateBytes)];
  for (let t = from; t < from + ticks; t++) {
    const post = new Uint8Array(stateBytes).fill(t);
    w.push({ tick: BigInt(t), pre: states.at(-1)!, post, postHash: new Uint8Array(32), entries: [{ id: 1, result: 0, payload: new Uint8Array(8) }], budget: 0n, price: 0n });
    states.push(post);
  }
  return states;
}

describe("replay window", () => {
  it("holds no more bytes than its limit: large states leave fewer snapshots, and the newest is kept", () => {
    const w = new ReplayWindow(16, 4 * MiB);
    fill(w, 12, MiB);
    expect(w.bytes).toBeLessThanOrEqual(4 * MiB);
    expect(w.size).toBeGreaterThan(0);
    expect(w.size).toBeLessThan(4);
    expect(w.all().at(-1)?.tick).toBe(12n);
  });

  it("counts a state shared as one tick's post-state and the next one's pre-state once", () => {
    const w = new ReplayWindow(16, 64 * MiB);
    fill(w, 4, MiB);
    // Pre-state of tick 1 plus four post-states, and four 8-byte payloads.
    expect(w.bytes).toBe(5 * MiB + 4 * 8);
    expect(w.size).toBe(4);
  });

  it("ticks that observe nothing keep only the newest of them, holding exactly its two states", () => {
    const w = new ReplayWindow(16, 64 * MiB);
    fill(w, 2, 1000);
    let pre = w.all().at(-1)!.post;
    for (let t = 3; t <= 50; t++) {
      const post = new Uint8Array(100 + t);
      w.push({ tick: BigInt(t), pre, post, postHash: new Uint8Array(0), entries: [], budget: 0n, price: 0n });
      pre = post;
    }
    // Ticks 1 and 2 (observed) plus tick 50; states: tick 1's pre, the posts of 1 and 2, and 50's post
    // (its pre is 49's post, which only it holds now).
    expect(w.all().map((s) => s.tick)).toEqual([1n, 2n, 50n]);
    expect(w.bytes).toBe(3 * 1000 + 2 * 8 + 149 + 150);
  });

  it("a silent tick that replaces the newest silent one in place still evicts over the byte limit and never touches a snapshot a replay holds", () => {
    const w = new ReplayWindow(16, 10_000);
    fill(w, 1, 1000);
    const held = w.pending();
    expect(held.map((s) => s.tick)).toEqual([1n]);
    let pre = w.all().at(-1)!.post;
    for (let t = 2; t <= 5; t++) {
      const post = new Uint8Array(t === 5 ? 9_000 : 100);
      w.push({ tick: BigInt(t), pre, post, postHash: new Uint8Array(0), entries: [], budget: 0n, price: 0n });
      pre = post;
    }
    // Tick 5's 9,000-byte state pushes the window over 10,000 bytes: tick 1 goes, the newest stays.
    expect(w.all().map((s) => s.tick)).toEqual([5n]);
    expect(w.bytes).toBe(100 + 9_000);
    // The snapshot the replay took is as it was: tick 1 with its own states and log.
    expect(held[0]?.tick).toBe(1n);
    expect(held[0]?.entries.length).toBe(1);
    expect(held[0]?.post.byteLength).toBe(1000);
  });

  it("a single snapshot over the limit is still kept (the newest tick stays verifiable)", () => {
    const w = new ReplayWindow(16, MiB);
    fill(w, 3, 2 * MiB);
    expect(w.size).toBe(1);
    expect(w.all()[0]?.tick).toBe(3n);
  });

  it("defaults to REPLAY_WINDOW_MAX_BYTES", () => {
    expect(new ReplayWindow(16).maxBytes).toBe(REPLAY_WINDOW_MAX_BYTES);
  });
});

describe("dropSettled", () => {
  it("keeps only unverified observing snapshots and the newest, with the held bytes to match", () => {
    const w = new ReplayWindow(16);
    const states = Array.from({ length: 7 }, (_, i) => new Uint8Array(100).fill(i));
    const observed = [{ id: 1, result: 0, payload: new Uint8Array(10) }];
    for (let t = 1; t <= 6; t++) {
      w.push({ tick: BigInt(t), pre: states[t - 1]!, post: states[t]!, postHash: new Uint8Array(32), entries: t === 3 ? [] : observed, budget: 1n, price: 1n });
    }
    for (const s of w.pending().slice(0, 2)) s.verified = true; // ticks 1 and 2
    w.dropSettled();
    // Tick 3 observed nothing (never replayed); 1 and 2 are verified; 4, 5 and 6 remain.
    expect(w.all().map((s) => s.tick)).toEqual([4n, 5n, 6n]);
    expect(w.pending().map((s) => s.tick)).toEqual([4n, 5n, 6n]);
    expect(w.bytes).toBe(4 * 100 + 3 * 10);
    for (const s of w.pending()) s.verified = true;
    w.dropSettled();
    expect(w.all().map((s) => s.tick)).toEqual([6n]); // the newest stays
    expect(w.bytes).toBe(2 * 100 + 10);
    expect(w.pending()).toEqual([]);
  });
});

describe("held bytes", () => {
  /** Every distinct state a snapshot holds, once, plus every log payload: what the window must report. */
  function distinctBytes(w: ReplayWindow): number {
    const states = new Set<Uint8Array>();
    let payloads = 0;
    for (const s of w.all()) {
      states.add(s.pre);
      states.add(s.post);
      for (const e of s.entries) payloads += e.payload.byteLength;
    }
    return [...states].reduce((n, s) => n + s.byteLength, payloads);
  }

  it("equal the distinct states and payloads held through collapses, evictions from the middle and dropSettled", () => {
    // A deterministic mix of observing and silent ticks, verification passes and byte-limit evictions.
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const w = new ReplayWindow(6, 4000);
    let pre = new Uint8Array(50);
    for (let t = 1; t <= 2000; t++) {
      const post = new Uint8Array(1 + rand(900));
      const entries = Array.from({ length: rand(3) }, () => ({ id: 1, result: 0, payload: new Uint8Array(rand(40)) }));
      w.push({ tick: BigInt(t), pre, post, postHash: new Uint8Array(32), entries, budget: 1n, price: 1n });
      pre = post;
      if (rand(5) === 0) {
        for (const s of w.pending().slice(0, rand(4))) s.verified = true;
        w.dropSettled();
      }
      expect(w.bytes, `after tick ${t}`).toBe(distinctBytes(w));
      expect(w.all().at(-1)?.tick).toBe(BigInt(t));
    }
  });
});

describe("ticks still to verify", () => {
  it("says it must verify once the next tick would push a tick still to verify out, by count", () => {
    const w = new ReplayWindow(4, 64 * MiB);
    fill(w, 3, 100);
    expect(w.mustVerify()).toBe(false);
    fill(w, 1, 100, 4);
    // Four unverified observing ticks in a window of four: the fifth would push tick 1 out.
    expect(w.mustVerify()).toBe(true);
  });

  it("says so by bytes too: a 20 MiB state fills the 64 MiB bound with fewer ticks than the count allows", () => {
    const w = new ReplayWindow(16, REPLAY_WINDOW_MAX_BYTES);
    fill(w, 1, 20 * MiB);
    expect(w.mustVerify()).toBe(false); // 40 MiB held; a third state fits
    fill(w, 1, 20 * MiB, 2);
    // Tick 1's pre-state and three post-states would be 80 MiB: tick 1 would go, unverified.
    expect(w.mustVerify()).toBe(true);
  });

  it("ticks held by a verification in flight make room without a loss; only a tick nobody holds is counted when it goes", () => {
    const w = new ReplayWindow(3, 64 * MiB);
    fill(w, 3, 100);
    expect(w.mustVerify()).toBe(true);
    const claimed = w.claim();
    expect(claimed.map((s) => s.tick)).toEqual([1n, 2n, 3n]);
    expect(w.mustVerify()).toBe(false);
    // Ticks 4 and 5 push the claimed ticks 1 and 2 out: their verification still has them.
    fill(w, 2, 100, 4);
    expect(w.takeDropped()).toEqual({ count: 0, lastTick: null });
    // Tick 6 pushes out tick 3 (claimed); tick 7 must push out tick 4: nobody holds it.
    fill(w, 2, 100, 6);
    expect(w.all().map((s) => s.tick)).toEqual([5n, 6n, 7n]);
    expect(w.takeDropped()).toEqual({ count: 1, lastTick: 4n });
    expect(w.takeDropped()).toEqual({ count: 0, lastTick: null });
    // The pass ends: what it did not verify is to verify again.
    w.release();
    expect(w.pending().map((s) => s.tick)).toEqual([5n, 6n, 7n]);
  });

  it("goes first for what no verification needs: a verified or silent tick before one still to verify with fewer observations", () => {
    const w = new ReplayWindow(3, 64 * MiB);
    const s = [0, 1, 2, 3, 4].map((i) => new Uint8Array(10).fill(i));
    const two = [1, 2].map(() => ({ id: 1, result: 0, payload: new Uint8Array(1) }));
    w.push({ tick: 1n, pre: s[0]!, post: s[1]!, postHash: new Uint8Array(32), entries: two, budget: 0n, price: 0n });
    w.push({ tick: 2n, pre: s[1]!, post: s[2]!, postHash: new Uint8Array(32), entries: two.slice(1), budget: 0n, price: 0n });
    w.push({ tick: 3n, pre: s[2]!, post: s[3]!, postHash: new Uint8Array(32), entries: two.slice(1), budget: 0n, price: 0n });
    w.all()[0]!.verified = true;
    w.push({ tick: 4n, pre: s[3]!, post: s[4]!, postHash: new Uint8Array(32), entries: two.slice(1), budget: 0n, price: 0n });
    expect(w.all().map((x) => x.tick)).toEqual([2n, 3n, 4n]);
    expect(w.takeDropped().count).toBe(0);
  });
});
