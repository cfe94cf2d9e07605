import { describe, expect, it } from "vitest";
import {
  canTick,
  compareEpochs,
  type Lease,
  type LeaseEvent,
  LEASE_STATES,
  type LeaseState,
  genesisLease,
  incomingLease,
  isExpired,
  needsRenewal,
  transition,
} from "../../../src/authority/lease.js";
import { isIgordError } from "../../../src/errors.js";

const timing = { durationMs: 60_000, graceMs: 10_000, renewalWindow: 0.5 };
const T0 = 1_000_000;
const EXPIRED = T0 + 60_000 + 10_001;

function lease(state: LeaseState, handoff = false): Lease {
  return {
    state,
    epoch: { major: 3n, generation: 7n },
    expiresAtMs: T0 + 60_000,
    handoff: handoff ? { target: "12D3KooWtarget", checkpointHash: "ab".repeat(32) } : null,
  };
}

// Each event with the conditions under which it is valid from its allowed states.
const EVENTS: Record<LeaseEvent["type"], { event: LeaseEvent; allowed: LeaseState[]; handoff?: boolean }> = {
  renew: { event: { type: "renew", nowMs: T0 + 40_000 }, allowed: ["ACTIVE_OWNER"] },
  expire: { event: { type: "expire", nowMs: EXPIRED }, allowed: ["ACTIVE_OWNER", "HANDOFF_INITIATED"] },
  start_handoff: { event: { type: "start_handoff", handoff: { target: "t", checkpointHash: "00" } }, allowed: ["ACTIVE_OWNER"] },
  revert_handoff: { event: { type: "revert_handoff" }, allowed: ["HANDOFF_INITIATED"] },
  confirm_handoff: { event: { type: "confirm_handoff" }, allowed: ["HANDOFF_INITIATED"] },
  ambiguous_handoff: { event: { type: "ambiguous_handoff" }, allowed: ["HANDOFF_INITIATED"] },
  target_confirmed: { event: { type: "target_confirmed" }, allowed: ["HANDOFF_INITIATED", "RECOVERY_REQUIRED"], handoff: true },
  receive: { event: { type: "receive", sourceEpoch: { major: 5n, generation: 0n } }, allowed: ["RETIRED"] },
  assume: { event: { type: "assume", nowMs: T0 }, allowed: ["HANDOFF_PENDING"] },
  abort_receive: { event: { type: "abort_receive" }, allowed: ["HANDOFF_PENDING"] },
  recover: { event: { type: "recover", cause: "operator", nowMs: T0 }, allowed: ["RECOVERY_REQUIRED"] },
};

describe("lease state machine", () => {
  for (const [name, { event, allowed, handoff }] of Object.entries(EVENTS)) {
    for (const state of LEASE_STATES) {
      const ok = allowed.includes(state);
      it(`${state} ${ok ? "allows" : "forbids"} ${name}`, () => {
        if (ok) {
          expect(() => transition(lease(state, handoff), event, timing)).not.toThrow();
        } else {
          let err: unknown;
          try {
            transition(lease(state, handoff), event, timing);
          } catch (e) {
            err = e;
          }
          expect(isIgordError(err, "LEASE_TRANSITION")).toBe(true);
          expect((err as Error).message).toContain(state);
        }
      });
    }
  }

  it("only ACTIVE_OWNER may tick", () => {
    expect(LEASE_STATES.filter((s) => canTick(lease(s)))).toEqual(["ACTIVE_OWNER"]);
  });

  it("renewal bumps the generation and extends the expiry; an expired lease cannot renew", () => {
    const r = transition(lease("ACTIVE_OWNER"), { type: "renew", nowMs: T0 + 40_000 }, timing);
    expect(r.epoch).toEqual({ major: 3n, generation: 8n });
    expect(r.expiresAtMs).toBe(T0 + 100_000);
    expect(() => transition(lease("ACTIVE_OWNER"), { type: "renew", nowMs: EXPIRED }, timing)).toThrow(/past expiry and grace/);
  });

  it("expiry needs the grace period to pass; renewal is due in the last window fraction", () => {
    const l = lease("ACTIVE_OWNER");
    expect(isExpired(l, timing, T0 + 65_000)).toBe(false);
    expect(isExpired(l, timing, EXPIRED)).toBe(true);
    expect(() => transition(l, { type: "expire", nowMs: T0 + 65_000 }, timing)).toThrow(/has not expired/);
    expect(needsRenewal(l, timing, T0 + 20_000)).toBe(false);
    expect(needsRenewal(l, timing, T0 + 30_000)).toBe(true);
  });

  it("recovery moves to a new major epoch", () => {
    const r = transition(lease("RECOVERY_REQUIRED"), { type: "recover", cause: "expiry", nowMs: T0 }, timing);
    expect(r).toMatchObject({ state: "ACTIVE_OWNER", epoch: { major: 4n, generation: 0n }, handoff: null });
  });

  it("an unresolved handoff is never self-promoted, but the target's word or an operator resolves it", () => {
    const stuck = lease("RECOVERY_REQUIRED", true);
    expect(() => transition(stuck, { type: "recover", cause: "expiry", nowMs: T0 }, timing)).toThrow(/handoff to 12D3KooWtarget is unresolved/);
    for (const cause of ["operator", "target_denied"] as const) {
      expect(transition(stuck, { type: "recover", cause, nowMs: T0 }, timing).epoch.major).toBe(4n);
    }
  });

  it("an agent returns only with a newer epoch, and assuming ownership takes major + 1", () => {
    expect(() => transition(lease("RETIRED"), { type: "receive", sourceEpoch: { major: 2n, generation: 9n } }, timing)).toThrow(/older/);
    const pending = incomingLease({ major: 6n, generation: 2n });
    expect(transition(pending, { type: "assume", nowMs: T0 }, timing).epoch).toEqual({ major: 7n, generation: 0n });
  });

  it("epochs order major first; leases can be disabled", () => {
    expect(compareEpochs({ major: 1n, generation: 9n }, { major: 2n, generation: 0n })).toBe(-1);
    expect(compareEpochs({ major: 2n, generation: 1n }, { major: 2n, generation: 0n })).toBe(1);
    const off = genesisLease({ ...timing, durationMs: 0 }, T0);
    expect(off.expiresAtMs).toBeNull();
    expect(isExpired(off, timing, Number.MAX_SAFE_INTEGER)).toBe(false);
  });
});
