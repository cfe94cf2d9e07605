// The lease fence of the scheduler: every dispatch and every sweep checks the agent's lease, renews
// it when due, moves it to RECOVERY_REQUIRED past expiry + grace and recovers it (major + 1) after a
// plain expiry. A tick carries when its authority lapses (authorityUntil), and the scheduler commits
// no result arriving after that (CE-4).
import { ErrorCode, IgordError } from "../errors.js";
import { canTick, formatEpoch, isExpired, type Lease, type LeaseTiming, needsRenewal, renewalOverdue, transition } from "../authority/lease.js";
import type { NodeMetrics } from "../metrics/metrics.js";
import { type AgentRuntime, type AgentStatus, type LeaseOptions, reasonFor } from "./agent-runtime.js";

/** How often leases are checked even for agents that are not ticking (so idle agents renew). */
export const LEASE_SWEEP_MAX_MS = 1000;
/** While the store is busy, the renewals a sweep gathered are tried again this often, until the next sweep. */
export const RENEWAL_RETRY_MS = 10;

/** A renewal the sweep gathered: the agent's lease as it was then, and what it renews to. */
interface GatheredRenewal {
  a: AgentRuntime;
  expected: Lease;
  next: Lease;
  /** The fence's time when gathered, and the wall clock then: a retry's time is the first plus what the second moved since. */
  atMs: number;
  wallAt: number;
  /** Counted and logged as put off once. */
  putOff: boolean;
}

export interface FenceHost {
  /** Stops the agent: the fence found it may not run here. */
  finish(a: AgentRuntime, status: AgentStatus, reason: string, error: IgordError | null): void;
}

export class LeaseFence {
  /** Renewals the current sweep gathered, written together (renewGathered). */
  private gathered: GatheredRenewal[] = [];
  private retry: NodeJS.Timeout | null = null;

  constructor(
    private readonly leases: LeaseOptions | undefined,
    private readonly metrics: NodeMetrics | undefined,
    private readonly host: FenceHost,
  ) {}

  /** How often to sweep idle agents' leases; null when leases are off. */
  sweepIntervalMs(): number | null {
    const timing = this.leases?.timing;
    if (!timing || timing.durationMs <= 0) return null;
    return Math.max(10, Math.min(LEASE_SWEEP_MAX_MS, Math.floor((timing.durationMs * timing.renewalWindow) / 4)));
  }

  /** Unix ms when a tick dispatched now loses its side-effect authority (expiry + grace); null = never. */
  authorityUntil(a: AgentRuntime): number | null {
    return a.lease?.expiresAtMs != null && this.leases ? a.lease.expiresAtMs + this.leases.timing.graceMs : null;
  }

  /** Whether the agent may act on the world in a tick dispatched now. */
  authority(a: AgentRuntime): boolean {
    return a.lease === null || canTick(a.lease);
  }

  /**
   * Fences a tick: renews the lease when due; past expiry + grace moves it to RECOVERY_REQUIRED,
   * then recovers on its own (major + 1, logged) only after a plain expiry with no handoff in
   * flight. Returns whether the agent may tick now. With a store that renews several leases at once
   * (tryRenewAll), a due renewal is the sweep's (`sweeping`: gathered for renewGathered) until it
   * runs short, when the check writes it and waits for the store if it must.
   */
  check(a: AgentRuntime, nowMs: number, sweeping = false): boolean {
    const leases = this.leases;
    const lease = a.lease;
    if (!leases || !lease) return true;
    try {
      if (isExpired(lease, leases.timing, nowMs) && (lease.state === "ACTIVE_OWNER" || lease.state === "HANDOFF_INITIATED")) {
        this.set(a, transition(lease, { type: "expire", nowMs }, leases.timing), "expired");
      }
      const current = a.lease as Lease;
      if (current.state === "RECOVERY_REQUIRED") {
        if (current.handoff !== null) {
          a.logger.error({ event: "lease_recovery_needed", handoff: current.handoff }, "lease expired with a handoff unresolved: not ticking");
          this.host.finish(a, "stopped", "recovery_required", null);
          return false;
        }
        this.set(a, transition(current, { type: "recover", cause: "expiry", nowMs }, leases.timing), "recovered");
      } else if (needsRenewal(current, leases.timing, nowMs)) {
        if (leases.tryRenewAll && !renewalOverdue(current, leases.timing, nowMs)) {
          // Renewed by the sweep with every agent due since the sweep before: one transaction, not
          // one each (each one of its own dropped the commit thread's page cache).
          if (sweeping) this.gather(a, current, leases.timing, nowMs);
        } else this.set(a, transition(current, { type: "renew", nowMs }, leases.timing), "renewed");
      }
    } catch (e) {
      // A store failure is not a stale lease: only the store's own LEASE_STALE says another writer won.
      const err = e instanceof IgordError ? e : new IgordError(ErrorCode.StoreError, (e as Error).message, { cause: e });
      a.logger.error({ event: "lease_failed", code: err.code }, err.message);
      this.host.finish(a, "failed", reasonFor(err), err);
      return false;
    }
    return canTick(a.lease as Lease);
  }

  /**
   * The sweep: checks each agent given with no tick in flight (idle ones renew only here), gathers
   * the due renewals of those mid-tick, then writes the renewals together (renewGathered).
   */
  sweep(agents: Iterable<AgentRuntime>, nowMs: number): void {
    // What the sweep before gathered and could not write yet is gathered again, as it is now.
    this.forgetGathered();
    for (const a of agents) {
      if (a.inFlight) this.gatherMidTick(a, nowMs);
      else this.check(a, nowMs, true);
    }
    this.renewGathered();
  }

  /**
   * An agent mid-tick is only gathered for a renewal, due or short, while its lease is valid: what
   * else the fence does (expiry, recovery, stopping it) waits for its next dispatch, where the check
   * also writes a short renewal the sweep could not. An agent that always has a tick in flight when
   * the sweep runs (more work every tick) would otherwise renew only by that waiting write.
   */
  private gatherMidTick(a: AgentRuntime, nowMs: number): void {
    const leases = this.leases;
    const lease = a.lease;
    if (!leases?.tryRenewAll || !lease || isExpired(lease, leases.timing, nowMs) || !needsRenewal(lease, leases.timing, nowMs)) return;
    this.gather(a, lease, leases.timing, nowMs);
  }

  /** Gathers the agent's renewal from `lease` for the sweep's one transaction (renewGathered). */
  private gather(a: AgentRuntime, lease: Lease, timing: LeaseTiming, nowMs: number): void {
    this.gathered.push({ a, expected: lease, next: transition(lease, { type: "renew", nowMs }, timing), atMs: nowMs, wallAt: Date.now(), putOff: false });
  }

  /** No renewal is tried again after this (the scheduler stops). */
  stop(): void {
    this.forgetGathered();
  }

  private forgetGathered(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.gathered = [];
  }

  /**
   * Writes the gathered renewals in one transaction. While another writer holds the store (the
   * commit thread, mid-transaction) they are tried again every RENEWAL_RETRY_MS until the next
   * sweep: the leases have time to spare, and nothing waits. A renewal the store refuses, or a store
   * that fails, is not applied and nothing more is done here: the agent's check writes it once it
   * runs short, and acts on what that write says (LEASE_STALE stops the agent).
   */
  private renewGathered(): void {
    this.retry = null;
    const leases = this.leases;
    // Still as gathered: running here, not leaving, its lease not written since (a tick's check
    // writes a renewal that ran short), and not past expiry + grace by now. A renewal put off while
    // the store was busy, or while the main thread stalled, may come due only after that: written
    // then, it renewed a lapsed lease at the same epoch, which the lease's own transitions refuse
    // (it must expire, and be recovered at the next major epoch: the agent's next check does that).
    const batch = leases ? this.gathered.filter((g) => g.a.lease === g.expected && g.a.status === "running" && !g.a.detaching && !isExpired(g.expected, leases.timing, g.atMs + (Date.now() - g.wallAt))) : [];
    this.gathered = [];
    if (batch.length === 0 || !leases?.tryRenewAll) return;
    let results: (IgordError | null)[] | null;
    try {
      results = leases.tryRenewAll(batch.map((g) => ({ agentId: g.a.id, expected: { state: g.expected.state, epoch: g.expected.epoch }, next: g.next })));
    } catch (e) {
      for (const g of batch) g.a.logger.warn({ event: "lease_renewal_failed", code: e instanceof IgordError ? e.code : ErrorCode.StoreError }, `lease renewal failed: ${(e as Error).message}`);
      return;
    }
    if (results === null) {
      for (const g of batch) {
        if (g.putOff) continue;
        g.putOff = true;
        this.metrics?.leaseRenewalsDeferred.inc();
        g.a.logger.debug({ event: "lease_renewal_deferred", expiresAt: g.expected.expiresAtMs }, "lease renewal put off: the store is busy");
      }
      this.gathered = batch;
      this.retry = setTimeout(() => this.renewGathered(), RENEWAL_RETRY_MS);
      this.retry.unref();
      return;
    }
    results.forEach((err, i) => {
      const g = batch[i] as GatheredRenewal;
      if (err) g.a.logger.warn({ event: "lease_renewal_failed", code: err.code }, `lease renewal refused: ${err.message}`);
      else this.applied(g.a, g.next, "renewed");
    });
  }

  private set(a: AgentRuntime, next: Lease, why: "expired" | "recovered" | "renewed"): void {
    const prev = a.lease as Lease;
    this.leases?.write(a.id, { state: prev.state, epoch: prev.epoch }, next);
    this.applied(a, next, why);
  }

  /** The lease written: held in memory, counted and logged. */
  private applied(a: AgentRuntime, next: Lease, why: "expired" | "recovered" | "renewed"): void {
    a.lease = next;
    this.metrics?.leaseTransitions.inc({ to: next.state, why });
    const fields = { event: why === "recovered" ? "lease_recovered" : "lease_state", state: next.state, epoch: formatEpoch(next.epoch), major: String(next.epoch.major), generation: String(next.epoch.generation), why, expiresAt: next.expiresAtMs };
    if (why === "renewed") a.logger.debug(fields, "lease renewed");
    else a.logger.warn(fields, why === "recovered" ? `lease recovered on this node at epoch ${formatEpoch(next.epoch)}` : `lease ${why}: ${next.state}`);
  }
}
