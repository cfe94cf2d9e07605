// The lease fence's renewals when the store is busy: put off while the lease has time to spare,
// waited for once it runs short (RENEWAL_DEFERRABLE_SHARE of the renewal window).
import pino from "pino";
import { describe, expect, it } from "vitest";
import { genesisLease, type Lease } from "../../../src/authority/lease.js";
import type { AgentRuntime, LeaseOptions } from "../../../src/scheduler/agent-runtime.js";
import { LeaseFence } from "../../../src/scheduler/lease-fence.js";

const timing = { durationMs: 60_000, graceMs: 10_000, renewalWindow: 0.5 };
const T0 = 1_000_000;

/** A store that is busy for tryRenew, and records what each writer wrote. */
function busyStore(): { leases: LeaseOptions; written: Lease[]; tried: Lease[] } {
  const written: Lease[] = [];
  const tried: Lease[] = [];
  return {
    written,
    tried,
    leases: {
      timing,
      write: (_id, _expected, next) => void written.push(next),
      tryRenew: (_id, _expected, next) => (tried.push(next), false),
    },
  };
}

function agent(): AgentRuntime {
  return { id: "a", lease: genesisLease(timing, T0), logger: pino({ level: "silent" }) } as unknown as AgentRuntime;
}

describe("lease renewals while the store is busy", () => {
  it("a due renewal is put off while more than half of the renewal window remains: the agent ticks under its lease, nothing waits", () => {
    const { leases, written, tried } = busyStore();
    const fence = new LeaseFence(leases, undefined, { finish: () => expect.unreachable() });
    const a = agent();
    const before = a.lease;
    // Due (30 s left of 60) and 20 s left: within the deferrable half.
    for (const now of [T0 + 30_000, T0 + 40_000, T0 + 44_999]) expect(fence.check(a, now)).toBe(true);
    expect(tried).toHaveLength(3);
    expect(written).toEqual([]);
    expect(a.lease).toBe(before);
  });

  it("with half of the renewal window or less left (a quarter of the lease), the renewal waits for the store", () => {
    const { leases, written, tried } = busyStore();
    const fence = new LeaseFence(leases, undefined, { finish: () => expect.unreachable() });
    const a = agent();
    expect(fence.check(a, T0 + 45_000)).toBe(true);
    expect(tried).toEqual([]);
    expect(written).toHaveLength(1);
    expect(a.lease?.epoch.generation).toBe(1n);
    expect(a.lease?.expiresAtMs).toBe(T0 + 45_000 + 60_000);
  });

  it("a store that takes it at once renews without waiting; one without tryRenew always waits", () => {
    const written: Lease[] = [];
    const a = agent();
    const fence = new LeaseFence({ timing, write: () => expect.unreachable(), tryRenew: (_i, _e, next) => (written.push(next), true) }, undefined, { finish: () => expect.unreachable() });
    expect(fence.check(a, T0 + 30_000)).toBe(true);
    expect(a.lease?.epoch.generation).toBe(1n);
    const b = agent();
    const plain = new LeaseFence({ timing, write: (_i, _e, next) => void written.push(next) }, undefined, { finish: () => expect.unreachable() });
    expect(plain.check(b, T0 + 30_000)).toBe(true);
    expect(b.lease?.epoch.generation).toBe(1n);
    expect(written).toHaveLength(2);
  });
});
