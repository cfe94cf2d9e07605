// The scheduler's checkpoints of its agents: what one captures of a running agent (its subject), the
// checkpoint in flight per agent (so a resume or an operator's write waits for it), and what follows
// its outcome (the published messages logged, a LEASE_STALE under a lease this node itself moved on
// taken again, any other failure ending the agent's run). The checkpointer encodes, signs and commits.
import { ErrorCode, IgordError } from "../errors.js";
import type { Lease } from "../authority/lease.js";
import type { NodeMetrics } from "../metrics/metrics.js";
import type { CheckpointCommit, OutboxBatch, AgentStatus as StoredStatus } from "../store/sqlite-store.js";
import type { AgentRuntime, CheckpointEvent } from "./agent-runtime.js";
import { logPublished } from "./agent-outputs.js";
import type { Checkpointer, CheckpointSubject } from "./checkpointer.js";

/** A subject without messages (nothing to log as published). */
const NO_PUBLISHED: readonly OutboxBatch[] = [];

export interface CheckpointRequestHooks {
  /** Every outcome, written, skipped or failed (the scheduler's `checkpoint` event). */
  outcome: (e: CheckpointEvent) => void;
  /** Whether this runtime is still the agent's on this node (a handoff's detach takes it off). */
  here: (a: AgentRuntime) => boolean;
  /** A checkpoint that could not be persisted: the agent's run ends with it. */
  failed: (a: AgentRuntime, error: IgordError) => void;
}

export class CheckpointRequests {
  private readonly pending = new Set<Promise<void>>();
  /**
   * Each agent's latest checkpoint still in flight. An agent's checkpoints commit in the order they
   * started (the checkpointer chains them), so once this one settles, all of its earlier ones have.
   */
  private readonly latest = new Map<string, Promise<void>>();

  constructor(
    private readonly checkpointer: Checkpointer,
    /** Keep every tick's event log until a checkpoint stores it (for audit replay). */
    private readonly persistEventLogs: boolean,
    private readonly metrics: NodeMetrics | undefined,
    private readonly hooks: CheckpointRequestHooks,
  ) {}

  /**
   * Checkpoints the agent's committed state; a failure to persist ends its run (hooks.failed).
   * `refused`: the messages of an earlier attempt refused LEASE_STALE under a lease this node moved
   * on since, which this one publishes with its own (null on a first attempt).
   */
  take(a: AgentRuntime, reason: string, status: StoredStatus, statusReason: string | null, refused: readonly OutboxBatch[] | null = null, alsoWrite?: CheckpointCommit["alsoWrite"]): Promise<void> {
    const tick = a.tick;
    const subject = this.subject(a);
    // The continuation keeps only these, not the subject: its state and tick logs die once encoded.
    const { outbox = NO_PUBLISHED, lease } = subject;
    const p = this.checkpointer.checkpoint(subject, reason, status, statusReason, alsoWrite).then(
      (outcome) => {
        this.hooks.outcome({ agentId: a.id, tick, reason, outcome });
        if (outcome === "written") {
          if (refused) logPublished(a, refused);
          logPublished(a, outbox);
          this.metrics?.checkpoints.inc({ reason });
          a.logger.info({ event: "checkpoint_saved", tick: String(tick), budget: String(a.budget), reason }, "checkpoint saved");
        }
      },
      (e: unknown) => {
        const err = e instanceof IgordError ? e : new IgordError(ErrorCode.StoreError, (e as Error).message);
        // Captured under a lease this node itself has moved on since (a recovery at major + 1 while
        // the checkpoint was being signed): nothing else wrote; take it again under the new lease.
        if (err.code === ErrorCode.LeaseStale && refused === null && movedByUs(a, lease)) {
          // The refused checkpoint's logs and messages stay with the checkpointer and go with this one.
          return this.take(a, reason, status, statusReason, outbox, alsoWrite);
        }
        // A runtime a handoff's detach took off this node has no chain left to write to, and nothing
        // here to fail: the agent runs elsewhere now (or again here, as another runtime).
        if (!this.hooks.here(a)) {
          a.logger.debug({ event: "checkpoint_dropped", tick: String(tick), code: err.code, reason }, `checkpoint of an agent that left this node dropped: ${err.message}`);
          return;
        }
        a.logger.error({ event: "checkpoint_failed", tick: String(tick), code: err.code, reason }, err.message);
        this.hooks.outcome({ agentId: a.id, tick, reason, outcome: "failed", code: err.code });
        this.hooks.failed(a, err);
      },
    );
    this.pending.add(p);
    this.latest.set(a.id, p);
    void p.finally(() => {
      this.pending.delete(p);
      if (this.latest.get(a.id) === p) this.latest.delete(a.id);
    });
    return p;
  }

  /** What a checkpoint of the agent captures now; its logs and messages since the last one move into it. */
  private subject(a: AgentRuntime): CheckpointSubject {
    const logs = a.pendingLogs;
    a.pendingLogs = [];
    a.pendingLogBytes = 0;
    const outbox = a.pendingOutbox;
    a.pendingOutbox = [];
    // Built by assignment, not conditional spreads (each spread built and copied an object per checkpoint).
    const s: CheckpointSubject = {
      outbox,
      maxStorageBytes: a.meta.limits?.maxStorageBytes ?? null,
      agentId: a.id,
      tick: a.tick,
      budget: a.budget,
      price: a.price,
      state: a.state,
      wasmHash: a.meta.wasmHash,
      identity: a.meta.identity,
      tickAt: a.lastTickAt,
    };
    // Without them a checkpoint cannot tell which payments its ticks made (it settles by tick).
    if (this.persistEventLogs) s.logs = logs;
    if (a.lease) s.lease = a.lease;
    return s;
  }

  /** Resolves once every checkpoint started so far is durable (or failed). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  /** The agent's latest checkpoint in flight, settled either way; null when none is. */
  settledFor(id: string): Promise<void> | null {
    const p = this.latest.get(id);
    return p ? p.catch(() => undefined) : null;
  }
}

/** Whether the agent's current lease is a newer one this node took itself (still the owner). */
function movedByUs(a: AgentRuntime, belief: Lease | undefined): boolean {
  const now = a.lease;
  if (!belief || !now || now.state !== "ACTIVE_OWNER") return false;
  return now.epoch.major > belief.epoch.major || (now.epoch.major === belief.epoch.major && now.epoch.generation > belief.epoch.generation);
}
