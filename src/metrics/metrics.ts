// Prometheus metrics for the node (prom-client, one registry per node: no hidden global state).
import { Counter, Gauge, Histogram, type Metric, Registry } from "prom-client";

export interface AgentGaugeSource {
  agentStates(): Map<string, number>;
  budgets(): Iterable<[string, bigint]>;
  workers(): number;
  leaseStates?(): Map<string, number>;
}

/**
 * A label-less histogram observed once per committed tick. prom-client's observe() (label hashing,
 * a bucket search through an object) cost ~0.3 µs on the main thread, more than the rest of a tick's
 * commit; this one adds to an array. It renders as prom-client's Histogram does (cumulative `le`
 * buckets, +Inf, _sum, _count), in the same registry.
 */
export class TickHistogram {
  readonly type = "histogram";
  readonly labelNames: string[] = [];
  readonly aggregator = "sum";
  private readonly counts: Float64Array;
  private sum = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
    registry: Registry,
  ) {
    this.counts = new Float64Array(buckets.length + 1);
    registry.registerMetric(this as unknown as Metric);
  }

  observe(seconds: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && seconds > (b[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += seconds;
  }

  get(): Promise<{ name: string; help: string; type: "histogram"; aggregator: "sum"; values: { labels: Record<string, string | number>; value: number; metricName: string }[] }> {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    let cumulative = 0;
    for (let i = 0; i <= this.buckets.length; i++) {
      cumulative += this.counts[i] as number;
      values.push({ labels: { le: this.buckets[i] ?? "+Inf" }, value: cumulative, metricName: `${this.name}_bucket` });
    }
    values.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` }, { labels: {}, value: cumulative, metricName: `${this.name}_count` });
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
  }
}

/** Ticks of one agent committed since the registry was last read. */
export interface TickTally {
  n: number;
}

export class NodeMetrics {
  readonly registry = new Registry();
  readonly ticks: Counter<"agent">;
  readonly tickDuration: TickHistogram;
  readonly failures: Counter<"code">;
  readonly evacuations: Counter;
  readonly checkpoints: Counter<"reason">;
  readonly replays: Counter<"result">;
  readonly replayUnverified: Counter;
  readonly divergences: Counter<"code">;
  readonly replayDuration: Histogram;
  readonly leaseTransitions: Counter<"to" | "why">;
  readonly leaseRenewalsDeferred: Counter;
  readonly migrationAttempts: Counter<"direction">;
  readonly migrationOutcomes: Counter<"direction" | "outcome">;
  readonly migrationDuration: Histogram<"direction">;
  readonly migrationBytes: Counter<"direction">;
  readonly migrationRetries: Counter;
  readonly migrationFallbacks: Counter;
  readonly migrationAmbiguous: Counter;
  readonly migrationRefusals: Counter<"code">;

  private readonly pendingTicks = new Map<string, TickTally>();

  /**
   * The agent's tally of committed ticks not yet added to igord_ticks_total: the scheduler keeps it
   * on its record and adds 1 per tick (no lookup by id per tick); it is read when the registry is.
   * One per agent id, like the counter's own series for that id.
   */
  tickTally(agent: string): TickTally {
    let t = this.pendingTicks.get(agent);
    if (!t) this.pendingTicks.set(agent, (t = { n: 0 }));
    return t;
  }

  /**
   * Drops what is kept per agent id (its tally and its igord_ticks_total series) once the agent left
   * the node (migrated away, removed): a node agents pass through would keep one of each per id that
   * ever ticked here. Should it come back, its series starts again from 0, as a counter may.
   */
  forgetAgent(agent: string): void {
    this.pendingTicks.delete(agent);
    this.ticks.remove({ agent });
  }

  /** One committed tick, counted on its agent's tally, that ran `seconds`. */
  tickCommitted(tally: TickTally, seconds: number): void {
    tally.n++;
    this.tickDuration.observe(seconds);
  }

  constructor(source: AgentGaugeSource) {
    const registers = [this.registry];
    const pendingTicks = this.pendingTicks;
    this.ticks = new Counter({
      name: "igord_ticks_total",
      help: "Committed agent ticks",
      labelNames: ["agent"],
      registers,
      // Ticks are counted per agent in a plain map and added here when the registry is read: a
      // labelled inc() per tick costs more than the rest of the tick's bookkeeping.
      collect() {
        for (const [agent, t] of pendingTicks) {
          if (t.n === 0) continue;
          this.inc({ agent }, t.n);
          t.n = 0;
        }
      },
    });
    this.tickDuration = new TickHistogram(
      "igord_tick_duration_seconds",
      "Duration of a tick including state capture",
      [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15],
      this.registry,
    );
    this.failures = new Counter({
      name: "igord_agent_failures_total",
      help: "Agents stopped by a failure, by error code",
      labelNames: ["code"],
      registers,
    });
    this.evacuations = new Counter({
      name: "igord_agent_evacuations_total",
      help: "Agents moved off a worker whose tick stalled",
      registers,
    });
    this.checkpoints = new Counter({
      name: "igord_checkpoints_total",
      help: "Signed checkpoints persisted, by reason",
      labelNames: ["reason"],
      registers,
    });
    this.replays = new Counter({
      name: "igord_replay_verifications_total",
      help: "Replayed ticks, by result (verified, diverged)",
      labelNames: ["result"],
      registers,
    });
    this.replayUnverified = new Counter({
      name: "igord_replay_ticks_unverified_total",
      help: "Ticks with observations the replay window let go of before they were verified (a verification was still running)",
      registers,
    });
    this.divergences = new Counter({
      name: "igord_replay_divergences_total",
      help: "Replay divergences, by reason code",
      labelNames: ["code"],
      registers,
    });
    this.replayDuration = new Histogram({
      name: "igord_replay_duration_seconds",
      help: "Time spent replaying a batch of snapshots (the node's cost, not the agent's)",
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.leaseTransitions = new Counter({
      name: "igord_lease_transitions_total",
      help: "Lease changes (renewals, expiries, recoveries), by resulting state and cause",
      labelNames: ["to", "why"],
      registers,
    });
    this.leaseRenewalsDeferred = new Counter({
      name: "igord_lease_renewals_deferred_total",
      help: "Due lease renewals put off because another writer held the store (tried again shortly, and waited for once the lease runs short)",
      registers,
    });
    this.migrationAttempts = new Counter({
      name: "igord_migration_attempts_total",
      help: "Migration transfer attempts (out: each try of a target; in: each package received)",
      labelNames: ["direction"],
      registers,
    });
    this.migrationOutcomes = new Counter({
      name: "igord_migrations_total",
      help: "Finished migrations by outcome (done, reverted, recovery, refused, resolved_retired, resolved_reclaimed)",
      labelNames: ["direction", "outcome"],
      registers,
    });
    this.migrationDuration = new Histogram({
      name: "igord_migration_duration_seconds",
      help: "Time from migration request to its outcome",
      labelNames: ["direction"],
      buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120],
      registers,
    });
    this.migrationBytes = new Counter({
      name: "igord_migration_bytes_total",
      help: "Migration package bytes sent (out) and received (in)",
      labelNames: ["direction"],
      registers,
    });
    this.migrationRetries = new Counter({ name: "igord_migration_retries_total", help: "Retries of a migration target after a retriable failure", registers });
    this.migrationFallbacks = new Counter({ name: "igord_migration_fallbacks_total", help: "Migrations that moved on to a fallback candidate", registers });
    this.migrationAmbiguous = new Counter({
      name: "igord_migration_ambiguous_total",
      help: "Transfers sent without a confirmation (the agent goes to RECOVERY_REQUIRED until the target answers)",
      registers,
    });
    this.migrationRefusals = new Counter({
      name: "igord_migration_refusals_total",
      help: "Incoming migrations this node refused, by error code",
      labelNames: ["code"],
      registers,
    });
    new Gauge({
      name: "igord_agent_leases",
      help: "Agents by lease state",
      labelNames: ["state"],
      registers,
      collect() {
        this.reset();
        for (const [state, n] of source.leaseStates?.() ?? []) this.set({ state }, n);
      },
    });
    new Gauge({
      name: "igord_agents",
      help: "Agents by state",
      labelNames: ["state"],
      registers,
      collect() {
        this.reset();
        for (const [state, n] of source.agentStates()) this.set({ state }, n);
      },
    });
    new Gauge({
      name: "igord_agent_budget_remaining_microcents",
      help: "Remaining budget per agent, in microcents",
      labelNames: ["agent"],
      registers,
      collect() {
        this.reset();
        for (const [agent, budget] of source.budgets()) this.set({ agent }, Number(budget));
      },
    });
    new Gauge({
      name: "igord_workers",
      help: "Live agent worker threads",
      registers,
      collect() {
        this.set(source.workers());
      },
    });
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
