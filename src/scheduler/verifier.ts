// Continuous self-verification of the scheduler's agents: every verify-interval ticks (every tick
// while intensified, and whenever the window could hold no more ticks to verify) the unverified
// window snapshots are replayed on the agent's worker, under the watchdog; a divergence is reported
// and handled by the configured policy. A tick the window let go of unverified is counted and logged.
import { IgordError } from "../errors.js";
import type { NodeMetrics } from "../metrics/metrics.js";
import type { ReplayItem } from "../replay/engine.js";
import { onDivergence, REPLAY_DIVERGENCE, selfVerifies } from "../replay/policy.js";
import type { WorkerPool } from "../wasm/pool.js";
import type { Snapshot } from "../replay/window.js";
import { type AgentRuntime, type DivergenceEvent, NO_REPLAY, type ReplayOptions } from "./agent-runtime.js";

/**
 * Post-states up to this size travel to the replay as themselves and are compared byte for byte (no
 * SHA-256 of the replayed state: ~1 µs of a window's fixed cost for a small state); larger ones as
 * their hash, so a window's message stays small.
 */
export const EXPECTED_STATE_MAX_BYTES = 4096;

/** The replay items of unverified window snapshots: consecutive ones chain in one instance (pre of N+1 is post of N). */
export function verifyItems(pending: readonly Snapshot[]): ReplayItem[] {
  return pending.map((s, i) => ({
    tick: s.tick,
    ...(i > 0 && pending[i - 1]?.post === s.pre ? {} : { preState: s.pre }),
    entries: s.entries,
    ...(s.post.length <= EXPECTED_STATE_MAX_BYTES ? { expectedPost: s.post } : { expectedPostHash: s.postHash }),
    budget: s.budget,
    price: s.price,
  }));
}

export interface VerifierHost {
  verified(e: { agentId: string; ticks: bigint[]; durationNs: bigint }): void;
  divergence(e: DivergenceEvent): void;
  /** Stops the agent for the pause policy. */
  pause(a: AgentRuntime, reason: string, error: IgordError): void;
  /** The migrate policy's way out (the node's migration service), if any. */
  migrateAway(): ((agentId: string) => void) | null;
}

export class Verifier {
  constructor(
    private readonly pool: WorkerPool,
    private readonly options: ReplayOptions | undefined,
    private readonly metrics: NodeMetrics | undefined,
    private readonly host: VerifierHost,
  ) {}

  get replay(): ReplayOptions {
    return this.options ?? NO_REPLAY;
  }

  /**
   * Every verify-interval ticks (every tick while intensified) replays the unverified snapshots; also
   * as soon as the next tick would push one out of the window (its byte bound holds fewer ticks of
   * a large state than the interval).
   */
  afterCommit(a: AgentRuntime): void {
    const rp = this.replay;
    if (!selfVerifies(rp.mode) || rp.verifyInterval <= 0) return;
    a.sinceVerify++;
    if (a.intensifyLeft > 0) a.intensifyLeft--;
    const due = a.intensifyLeft > 0 || a.sinceVerify >= rp.verifyInterval || a.window.mustVerify();
    if (!due || a.verifying) return;
    this.verifyWindow(a);
  }

  /** Replays the window's unverified snapshots, held by this pass until it ends. */
  private verifyWindow(a: AgentRuntime): void {
    const pending = a.window.claim();
    a.sinceVerify = 0;
    if (pending.length === 0) return;
    this.runVerification(a, verifyItems(pending), (verified, failed) => {
      pending.slice(0, verified).forEach((s) => {
        s.verified = true;
      });
      if (failed) {
        const f = pending[verified];
        if (f) f.verified = true; // reported once
      }
      a.window.dropSettled();
    }, () => a.window.forfeit(pending));
  }

  /**
   * Verifies ticks this node recorded before it restarted: the last stored segment of event logs,
   * replayed as a chain from the checkpoint before it against the stored per-tick state hashes.
   */
  verifyStored(a: AgentRuntime, items: ReplayItem[]): void {
    if (items.length === 0 || !selfVerifies(this.replay.mode) || a.verifying) return;
    this.runVerification(a, items, () => undefined);
  }

  /** `lost`: the pass failed (not a divergence), so what it held was not verified. */
  private runVerification(a: AgentRuntime, items: ReplayItem[], mark: (verified: number, failed: boolean) => void, lost?: () => void): void {
    a.verifying = true;
    const timer = this.metrics?.replayDuration.startTimer();
    this.pool
      .replay(a.id, items)
      .then(
        (outcome) => {
          timer?.();
          mark(outcome.verified, outcome.failure !== null);
          a.replayVerified += outcome.verified;
          if (outcome.verified > 0) {
            this.metrics?.replays.inc({ result: "verified" }, outcome.verified);
            const ticks = items.slice(0, outcome.verified).map((s) => s.tick);
            a.logger.debug(
              { event: "replay_verified", ticks: ticks.map(String), durationNs: String(outcome.durationNs) },
              `replay verified ${ticks.length} tick(s)`,
            );
            this.host.verified({ agentId: a.id, ticks, durationNs: outcome.durationNs });
          }
          if (outcome.failure) this.diverged(a, outcome.failure.tick, IgordError.fromJSON(outcome.failure.error));
        },
        (e: unknown) => {
          // The agent moved or its worker died: not a divergence; the next pass retries what the
          // window still holds, and what left it meanwhile is counted as unverified.
          lost?.();
          a.logger.debug({ event: "replay_skipped", err: (e as Error).message }, "replay skipped");
        },
      )
      .finally(() => {
        a.verifying = false;
        a.window.release();
        this.reportDropped(a);
        // Ticks that came during the pass fill the window: the next pass starts now, not after the
        // next tick pushed one of them out.
        if (a.status === "running" && !a.detaching && a.window.mustVerify()) this.verifyWindow(a);
      });
  }

  /**
   * Ticks the window let go of before any verification held them (ticks came faster than a
   * verification in flight could take them): never verified, so said once a pass, never silently.
   */
  private reportDropped(a: AgentRuntime): void {
    const { count, lastTick } = a.window.takeDropped();
    if (count === 0) return;
    this.metrics?.replayUnverified.inc(count);
    a.logger.warn(
      { event: "replay_ticks_unverified", count, lastTick: String(lastTick) },
      `${count} tick(s) up to ${String(lastTick)} left the replay window before they were verified (a verification was still running); they will not be verified live (igord verify --replay audits the stored history)`,
    );
  }

  private diverged(a: AgentRuntime, tick: bigint, err: IgordError): void {
    const policy = this.replay.onDivergence;
    a.divergences++;
    this.metrics?.replays.inc({ result: "diverged" });
    this.metrics?.divergences.inc({ code: err.code });
    a.logger.error(
      { event: "replay_divergence", tick: String(tick), code: err.code, policy, details: err.details },
      `replay of tick ${tick} did not reproduce: ${err.message}`,
    );
    this.host.divergence({ agentId: a.id, tick, code: err.code, message: err.message, policy });
    if (a.status !== "running" || a.detaching) return;
    const migrateAway = this.host.migrateAway();
    const action = onDivergence(policy, this.replay.window, migrateAway !== null);
    if (action.kind === "migrate" && migrateAway) {
      a.logger.warn({ event: "replay_migrate" }, "divergence policy is migrate: moving the agent to another node");
      migrateAway(a.id);
      return;
    }
    if (action.kind === "intensify") {
      a.intensifyLeft = action.ticks;
      a.logger.warn({ event: "replay_intensify", ticks: action.ticks }, `verifying every tick for the next ${action.ticks} ticks`);
    } else if (action.kind === "pause") {
      if (action.reason !== REPLAY_DIVERGENCE) {
        a.logger.warn({ event: "replay_migrate_unavailable" }, "divergence policy is migrate, but this node has no migration service: pausing");
      }
      this.host.pause(a, action.reason, err);
    }
  }
}
