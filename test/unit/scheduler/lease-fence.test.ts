// The lease fence's renewals: with a store that renews several at once, written together by the
// sweep; when the store is busy, put off while the lease has time to spare, waited for once it runs
// short (RENEWAL_DEFERRABLE_SHARE of the renewal window).
import pino from "pino";
import { describe, expect, it, vi } from "vitest";
import { ErrorCode, IgordError } from "../../../src/errors.js";
import type { NodeMetrics } from "../../../src/metrics/metrics.js";
import type { LeaseRenewal } from "../../../src/store/sqlite-store.js";
import { genesisLease, type Lease } from "../../../src/authority/lease.js";
import type { AgentRuntime, LeaseOptions } from "../../../src/scheduler/agent-runtime.js";
import { LeaseFence, RENEWAL_RETRY_MS } from "../../../src/scheduler/lease-fence.js";

const timing = { durationMs: 60_000, graceMs: 10_000, renewalWindow: 0.5 };
const T0 = 1_000_000;

function agent(id = "a", startedAt = T0): AgentRuntime {
  return { id, lease: genesisLease(timing, startedAt), status: "running", detaching: false, logger: pino({ level: "silent" }) } as unknown as AgentRuntime;
}

/**
 * A store that renews several leases at once: each call's agent ids recorded; `busy` refuses the
 * whole call (null); `stale` names agents whose renewal it refuses with LEASE_STALE.
 */
function batchStore(opts: { busy?: () => boolean; stale?: Set<string> } = {}) {
  const calls: string[][] = [];
  const written: Lease[] = [];
  const leases: LeaseOptions = {
    timing,
    write: (_id, _expected, next) => void written.push(next),
    tryRenewAll: (renewals: readonly LeaseRenewal[]) => {
      calls.push(renewals.map((r) => r.agentId));
      if (opts.busy?.()) return null;
      return renewals.map((r) => (opts.stale?.has(r.agentId) ? new IgordError(ErrorCode.LeaseStale, `agent "${r.agentId}": stale`) : null));
    },
  };
  return { leases, calls, written };
}

describe("lease renewals while the store is busy", () => {
  it("a due renewal is put off while more than half of the renewal window remains: the agent ticks under its lease, nothing waits", () => {
    const { leases, written, calls } = batchStore({ busy: () => true });
    const fence = new LeaseFence(leases, undefined, { finish: () => expect.unreachable() });
    const a = agent();
    const before = a.lease;
    // Due (30 s left of 60) and 20 s left: within the deferrable half.
    try {
      for (const now of [T0 + 30_000, T0 + 40_000, T0 + 44_999]) {
        expect(fence.check(a, now)).toBe(true);
        fence.sweep([a], now);
      }
    } finally {
      fence.stop();
    }
    expect(calls).toHaveLength(3);
    expect(written).toEqual([]);
    expect(a.lease).toBe(before);
  });

  it("with half of the renewal window or less left (a quarter of the lease), the renewal waits for the store", () => {
    const { leases, written, calls } = batchStore({ busy: () => true });
    const fence = new LeaseFence(leases, undefined, { finish: () => expect.unreachable() });
    const a = agent();
    expect(fence.check(a, T0 + 45_000)).toBe(true);
    expect(calls).toEqual([]);
    expect(written).toHaveLength(1);
    expect(a.lease?.epoch.generation).toBe(1n);
    expect(a.lease?.expiresAtMs).toBe(T0 + 45_000 + 60_000);
  });

  it("a store that takes it at once renews without waiting; one without tryRenewAll always waits", () => {
    const written: Lease[] = [];
    const a = agent();
    const fence = new LeaseFence({ timing, write: () => expect.unreachable(), tryRenewAll: (renewals) => renewals.map((r) => (written.push(r.next), null)) }, undefined, { finish: () => expect.unreachable() });
    fence.sweep([a], T0 + 30_000);
    expect(a.lease?.epoch.generation).toBe(1n);
    const b = agent();
    const plain = new LeaseFence({ timing, write: (_i, _e, next) => void written.push(next) }, undefined, { finish: () => expect.unreachable() });
    expect(plain.check(b, T0 + 30_000)).toBe(true);
    expect(b.lease?.epoch.generation).toBe(1n);
    expect(written).toHaveLength(2);
  });
});

describe("lease renewals written together by the sweep", () => {
  it("a tick's check leaves a due renewal to the sweep, which renews every agent due in one call and leaves the others", () => {
    const { leases, calls, written } = batchStore();
    const fence = new LeaseFence(leases, undefined, { finish: () => expect.unreachable() });
    const a = agent("a");
    const b = agent("b", T0 - 5_000);
    const young = agent("young", T0 + 20_000);
    // 30 s of 60 left for a, 25 for b: both due, neither short; 50 for young: not yet.
    const now = T0 + 30_000;
    expect(fence.check(a, now)).toBe(true);
    expect(calls).toEqual([]);
    expect(a.lease?.epoch.generation).toBe(0n);
    fence.sweep([a, b, young], now);
    expect(calls).toEqual([["a", "b"]]);
    expect([a, b, young].map((x) => x.lease?.epoch.generation)).toEqual([1n, 1n, 0n]);
    expect(a.lease?.expiresAtMs).toBe(now + 60_000);
    expect(written).toEqual([]);
  });

  it("while the store is busy the gathered renewals are put off, counted once each, and tried again until the store takes them; one written meanwhile is left out", () => {
    let busy = true;
    const { leases, calls, written } = batchStore({ busy: () => busy });
    const deferred: number[] = [];
    const metrics = { leaseRenewalsDeferred: { inc: () => deferred.push(1) }, leaseTransitions: { inc: () => undefined } } as unknown as NodeMetrics;
    const fence = new LeaseFence(leases, metrics, { finish: () => expect.unreachable() });
    const a = agent("a");
    const b = agent("b");
    vi.useFakeTimers();
    try {
      fence.sweep([a, b], T0 + 30_000);
      vi.advanceTimersByTime(RENEWAL_RETRY_MS * 2);
      expect(calls).toEqual([["a", "b"], ["a", "b"], ["a", "b"]]);
      expect(deferred).toHaveLength(2);
      expect(a.lease?.epoch.generation).toBe(0n);
      // b's renewal runs short: its check writes it, waiting for the store.
      expect(fence.check(b, T0 + 46_000)).toBe(true);
      expect(written).toHaveLength(1);
      expect(b.lease?.epoch.generation).toBe(1n);
      busy = false;
      vi.advanceTimersByTime(RENEWAL_RETRY_MS);
      expect(calls.at(-1)).toEqual(["a"]);
      expect(a.lease?.epoch.generation).toBe(1n);
      // Taken: nothing is tried again.
      const tries = calls.length;
      vi.advanceTimersByTime(RENEWAL_RETRY_MS * 5);
      expect(calls).toHaveLength(tries);
      expect(deferred).toHaveLength(2);
    } finally {
      fence.stop();
      vi.useRealTimers();
    }
  });

  it("a renewal the store refuses is not applied: the agent ticks on under its lease, and its check writes the renewal once it runs short", () => {
    const { leases, calls, written } = batchStore({ stale: new Set(["a"]) });
    const finished: string[] = [];
    const fence = new LeaseFence({ ...leases, write: () => { throw new IgordError(ErrorCode.LeaseStale, "the store has another epoch"); } }, undefined, { finish: (x, _s, reason) => void finished.push(`${x.id}:${reason}`) });
    const a = agent("a");
    const b = agent("b");
    fence.sweep([a, b], T0 + 30_000);
    expect(calls).toEqual([["a", "b"]]);
    expect([a, b].map((x) => x.lease?.epoch.generation)).toEqual([0n, 1n]);
    expect(fence.check(a, T0 + 40_000)).toBe(true);
    expect(finished).toEqual([]);
    expect(fence.check(a, T0 + 46_000)).toBe(false);
    expect(finished).toEqual(["a:lease_stale"]);
    expect(written).toEqual([]);
  });

  it("the retry leaves out an agent that is leaving or stopped by the time the store is free, and the scheduler's stop ends the retries", () => {
    let busy = true;
    const { leases, calls } = batchStore({ busy: () => busy });
    const fence = new LeaseFence(leases, undefined, { finish: () => expect.unreachable() });
    const a = agent("a");
    const b = agent("b");
    const c = agent("c");
    vi.useFakeTimers();
    try {
      fence.sweep([a, b, c], T0 + 30_000);
      (a as { detaching: boolean }).detaching = true;
      (b as { status: string }).status = "stopped";
      busy = false;
      vi.advanceTimersByTime(RENEWAL_RETRY_MS);
      expect(calls).toEqual([["a", "b", "c"], ["c"]]);
      expect([a, b, c].map((x) => x.lease?.epoch.generation)).toEqual([0n, 0n, 1n]);
      busy = true;
      const d = agent("d");
      fence.sweep([d], T0 + 30_000);
      fence.stop();
      vi.advanceTimersByTime(RENEWAL_RETRY_MS * 5);
      expect(calls).toHaveLength(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it("an agent mid-tick is gathered for its renewal, due or short, and renewed with the others; nothing else is done to it until its next dispatch", () => {
    const { leases, calls, written } = batchStore();
    const fence = new LeaseFence(leases, undefined, { finish: () => expect.unreachable() });
    const midTick = (id: string, startedAt: number) => Object.assign(agent(id, startedAt), { inFlight: true });
    // At T0 + 50 s: due (30 s left), short (10 s left: past the deferrable half), past expiry + grace, not due.
    const now = T0 + 50_000;
    const due = midTick("due", T0 + 20_000);
    const short = midTick("short", T0);
    const expired = midTick("expired", T0 - 30_000);
    const young = midTick("young", T0 + 40_000);
    const expiredLease = expired.lease;
    fence.sweep([due, short, expired, young], now);
    expect(calls).toEqual([["due", "short"]]);
    expect([due, short, young].map((x) => x.lease?.epoch.generation)).toEqual([1n, 1n, 0n]);
    expect(short.lease?.expiresAtMs).toBe(now + 60_000);
    // The expired lease is the next dispatch's to settle (the tick in flight is judged by its own authority).
    expect(expired.lease).toBe(expiredLease);
    expect(written).toEqual([]);
  });

  it("a renewal put off until its lease is past expiry + grace is not written by the retry: the lease is left to expire and be recovered at the next major epoch", () => {
    let busy = true;
    const { leases, calls } = batchStore({ busy: () => busy });
    const fence = new LeaseFence(leases, undefined, { finish: () => expect.unreachable() });
    const a = Object.assign(agent("a"), { inFlight: true });
    const gathered = a.lease;
    const expiresAt = gathered?.expiresAtMs as number;
    vi.useFakeTimers();
    try {
      // 5 ms before expiry + grace: renewable, gathered mid-tick, the store busy. The retry comes
      // 10 ms later (or later still, after a stall of the main thread): past expiry + grace.
      vi.setSystemTime(expiresAt + timing.graceMs - 5);
      fence.sweep([a], expiresAt + timing.graceMs - 5);
      busy = false;
      vi.advanceTimersByTime(RENEWAL_RETRY_MS);
      expect(calls).toEqual([["a"]]);
      expect(a.lease).toBe(gathered);
    } finally {
      fence.stop();
      vi.useRealTimers();
    }
  });
});
