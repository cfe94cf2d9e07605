// The composition root: builds every service of a node and starts/stops them in order.
// start: data dir → worker pool → p2p → control API → agents (stored ones, then the agents dir), the
// agents loading in the background so that no single module can hold the node's start or the control
// API hostage. stop: the reverse, with every agent checkpointed before the pool goes away.
import { join } from "node:path";
import type { Logger } from "pino";
import type { NodeConfig } from "../config/schema.js";
import { type ControlServer, startControlServer } from "../control/server.js";
import { ensureControlToken, tokenPath } from "../control/token.js";
import { removeControlAddress, writeControlAddress } from "../control/locate.js";
import { DivergenceLog } from "../control/timeline.js";
import { ErrorCode, IgordError, isIgordError } from "../errors.js";
import type { Quarantine } from "./quarantine.js";
import type { StaleBinary } from "./stale-binary.js";
import { NodeCapabilities } from "../hostcalls/capabilities.js";
import { AgentsDirWatcher } from "../loader/agents-dir.js";
import { LoadFailures } from "../loader/load-failures.js";
import { deriveAgentId, ModuleCache, type PreparedAgent } from "../loader/prepare.js";
import { NodeMetrics } from "../metrics/metrics.js";
import { type AgentView, type CheckpointEvent, Scheduler } from "../scheduler/scheduler.js";
import { equalBytes, hex } from "../hash/bytes.js";
import { createHttpClient, type HttpClient } from "../hostcalls/http-fetch.js";
import { DestinationPolicy } from "../hostcalls/http-destination.js";
import { debitLostPayments, journalPayment, nodeReceipts, paidAfterHead, unjournalPayment } from "./lost-payments.js";
import { withAgentIdentity } from "../hostcalls/policy.js";
import { didFromPublicKey } from "../identity/did.js";
import { type Ed25519Key, signBytes } from "../identity/keys.js";
import { segmentSigningBytes } from "../replay/segment-seal.js";
import { sealOpenRuns } from "../replay/run-seal.js";
import { REPLAY_DIVERGENCE_NO_MIGRATION } from "../replay/policy.js";
import type { LeaseTiming } from "../authority/lease.js";
import { SIGNER_KEYS_MAX, SignerPool } from "../identity/signer-pool.js";
import { parseCheckpoint } from "../checkpoint/codec.js";
import { Checkpointer, HTTP_ACT_CHECKPOINT_REASON, PAYMENT_CHECKPOINT_REASON } from "../scheduler/checkpointer.js";
import { PreplacedAgent } from "../scheduler/preplaced.js";
import { DB_FILE, SqliteStore } from "../store/sqlite-store.js";
import { DataDirLock } from "../store/data-dir.js";
import type { EventLogKeep } from "../store/types.js";
import { type AgentSpec, WorkerPool } from "../wasm/pool.js";
import { type MigrationHooks, type MigrationResult, MigrationService } from "../migration/service.js";
import { agentsListing, controlBackend, listedQuarantined, nodeStatus } from "./control-views.js";
import { type ResumeOptions, resumeStoredAgent } from "./stored-resume.js";
import { overrideStoredBudget, pausedByUpgrade, startAgent } from "./agent-lifecycle.js";
import { loadAgentFile } from "./agent-load.js";
import { AgentTurns } from "./agent-turns.js";
import { DiskFullRestarts } from "./disk-full-restart.js";
import { DataDirGuard } from "./data-dir-guard.js";

import { VERSION } from "../version.js";

export { VERSION };
export type { Quarantine } from "./quarantine.js";
export type { StaleBinary } from "./stale-binary.js";
/** Threads that sign checkpoints and receipts in bulk (periodic group checkpoints). */
export const SIGNER_THREADS = 2;

/** The node's signer pool: SIGNER_THREADS threads, started once signing takes a share of the main thread. */
export function nodeSignerPool(): SignerPool {
  return new SignerPool(SIGNER_THREADS, SIGNER_KEYS_MAX, "when-busy");
}

export interface NodeOptions {
  config: NodeConfig;
  logger: Logger;
  /** Load and watch config.agentsDir (the daemon); `igord run` adds its one agent itself. */
  watchAgentsDir?: boolean;
  /** Resume every active stored agent at start (the daemon); `run`/`resume` run exactly one. */
  resumeStoredAgents?: boolean;
  /** Fault injection for migration tests. */
  migrationHooks?: MigrationHooks;
  /**
   * The data dir is no longer this node's alone: another process took its lock file after this
   * node's was deleted or replaced (`data_dir_lock_lost`, DATA_DIR_LOCKED), or its database was
   * deleted or replaced (`store_removed`, STORE_REMOVED). By default the node stops; the daemon also exits 1.
   */
  onDataDirLost?: (error: IgordError) => void;
}

export interface AddAgentOptions {
  wasmPath: string;
  agentId?: string;
  manifestPath?: string;
  /**
   * Budget in microcents. For a new agent: its starting budget (default --budget). For a stored
   * agent: an explicit override, recorded in its lineage as a signed budget override.
   */
  budget?: bigint;
  /**
   * The agents-dir watcher saw the file change while it watched: with --upgrade-agents-dir, taken as
   * the agent's new code even when it is code the agent ran before (an undo in the dev loop). A file
   * found at start that holds such code is a stale binary instead (the agent came back upgraded).
   */
  fileChanged?: boolean;
}

/** What the pool needs to run a prepared agent, its manifest's per-tick limit included. */
export function agentSpec(p: PreparedAgent, identity: Ed25519Key): AgentSpec {
  const cpu = p.manifest.resourceLimits.maxCpuMillis;
  // WASI's out-of-tick random stream is derived from the agent's DID (src/wasi/host.ts).
  const plan = withAgentIdentity(p.plan, didFromPublicKey(identity.publicKey));
  return { agentId: p.agentId, module: p.module, plan, memoryCapPages: p.memoryCapPages, tickLimitMs: cpu === null ? null : Number(cpu), identity };
}

/** How a node opens its store (the checkpoint benchmark opens its own the same way). */
export function storeOptions(config: NodeConfig): Parameters<typeof SqliteStore.open>[1] {
  const retention = config.eventLogRetention;
  const maxBytes = config.eventLogMaxBytes;
  const eventLogRetention: EventLogKeep =
    "ticks" in retention ? { ticks: BigInt(retention.ticks), maxBytes } : { bytes: maxBytes > 0 ? Math.min(retention.bytes, maxBytes) : retention.bytes };
  // Group commits move to their own thread (store/commit-thread.ts) once they keep the main thread busy.
  return { sync: config.sync, eventLogRetention, outboxRetentionBytes: config.outboxRetentionBytes, commitThread: "when-busy" };
}

export class IgordNode {
  readonly config: NodeConfig;
  readonly logger: Logger;
  readonly capabilities: NodeCapabilities;
  readonly pool: WorkerPool;
  readonly scheduler: Scheduler;
  readonly metrics: NodeMetrics;
  readonly store: SqliteStore;
  readonly checkpointer: Checkpointer;
  /** Signs checkpoints and receipts in bulk; its threads start once signing is busy. */
  readonly signer: SignerPool;
  readonly nodeId: string;
  readonly quarantined = new Map<string, Quarantine>();
  /** Recent divergences, for the dashboard's timelines (bounded). */
  readonly divergences = new DivergenceLog();
  /** Agent files that failed to load (listed by the control API until they load or are removed). */
  readonly loadFailures = new LoadFailures();
  /** Agents whose file in the agents dir holds other code than they run (listed until upgraded). */
  readonly staleBinaries = new Map<string, StaleBinary>();
  readonly cache = new ModuleCache();
  /**
   * Commands on one agent, one after the other: the operator's (control API) and the agents dir's
   * upgrades alike, so that a stop or start never decides on an agent an upgrade has paused.
   */
  readonly turns = new AgentTurns();
  private watcher: AgentsDirWatcher | null = null;
  private control: ControlServer | null = null;
  /** Unix ms when start() began (0 before). */
  startedAt = 0;
  private stopping: Promise<void> | null = null;
  /** True once stop() began: no agent loads any more. */
  get isStopping(): boolean {
    return this.stopping !== null;
  }
  /** Settles once the agents present at start (stored ones and the agents dir) have each loaded or failed. */
  private initialLoad: Promise<void> = Promise.resolve();
  private readonly resumeStored: boolean;
  readonly leaseTiming: LeaseTiming;
  /** The p2p host and migrations; null with --listen off. */
  readonly migration: MigrationService | null;
  /** This process's exclusive right to run agents from the data dir, held until stop(). */
  private readonly lock: DataDirLock;
  /** Checks that the lock file and the database at their paths are still this node's. */
  private readonly guard: DataDirGuard;
  /** Agents failed by a full disk, started again once it has room. */
  private readonly diskFullRestarts: DiskFullRestarts;
  /** Agents' HTTP requests: to public addresses and the operator's --http-private-networks only. */
  private readonly http: HttpClient;

  constructor(opts: NodeOptions) {
    this.leaseTiming = {
      durationMs: opts.config.leaseDurationMs,
      graceMs: opts.config.leaseGraceMs,
      renewalWindow: opts.config.leaseRenewalWindow,
    };
    this.resumeStored = opts.resumeStoredAgents ?? true;
    this.config = opts.config;
    this.logger = opts.logger;
    this.capabilities = new NodeCapabilities(opts.config.capabilities);
    // First of all: a second process on a live node's data dir would run the same agents.
    this.lock = DataDirLock.acquire(this.config.dataDir);
    try {
      this.store = SqliteStore.open(join(this.config.dataDir, DB_FILE), storeOptions(this.config));
    } catch (e) {
      this.lock.release();
      throw e;
    }
    this.guard = new DataDirGuard(this.lock, this.store.path, this.logger, opts.onDataDirLost ?? (() => void this.stop().catch(() => undefined)));
    const node = this.store.nodeKey();
    this.nodeId = node.peerId;
    this.signer = nodeSignerPool();
    this.checkpointer = new Checkpointer(this.store, node, this.config.receiptIntervalMs, this.signer, this.config.historyRetention);
    this.http = createHttpClient(new DestinationPolicy(this.config.httpPrivateNetworks));
    this.pool = new WorkerPool({
      size: opts.config.workers,
      tickTimeoutMs: opts.config.tickTimeoutMs,
      tickIntervalMs: opts.config.tickIntervalMs,
      logger: opts.logger.child({ component: "pool" }),
      receipts: (agentId) => nodeReceipts(this.store, agentId, this.checkpointer.lostReceipts(agentId)),
      journalPayment: (agentId, tick, receipt) => journalPayment(this.store, agentId, tick, receipt),
      unjournalPayment: (agentId, receipt) => unjournalPayment(this.store, agentId, receipt),
      checkpointBeforeAct: (agentId, act) => this.scheduler.checkpointBeforeAct(agentId, act === "payment" ? PAYMENT_CHECKPOINT_REASON : HTTP_ACT_CHECKPOINT_REASON),
      http: (call) => this.http.perform(call),
    });
    this.metrics = new NodeMetrics({
      agentStates: () => {
        const counts = this.scheduler.statusCounts();
        counts.set("quarantined", listedQuarantined(this).length);
        counts.set("load_failed", this.loadFailures.size);
        counts.set("migrating", this.migratingAgents().length);
        counts.set("receiving", this.receivingAgents().length);
        return counts;
      },
      leaseStates: () => {
        // An agent whose handoff awaits its target's answer, or whose hop is still under way, runs
        // nowhere, yet its lease is this node's: RECOVERY_REQUIRED is the state an operator alerts on.
        const counts = this.scheduler.leaseStates();
        for (const id of [...(this.migration?.resolvingAgents() ?? []), ...this.migratingAgents()]) {
          const state = this.scheduler.has(id) ? undefined : this.store.lease(id)?.state;
          if (state) counts.set(state, (counts.get(state) ?? 0) + 1);
        }
        return counts;
      },
      budgets: () => this.scheduler.budgets(),
      workers: () => this.pool.stats().workers,
    });
    this.scheduler = new Scheduler({
      migrateAway: () => (this.migration ? (id) => void this.migrateAway(id) : null),
      pool: this.pool,
      checkpointer: this.checkpointer,
      checkpointIntervalMs: opts.config.checkpointIntervalMs,
      persistEventLogs: true,
      leases: {
        timing: this.leaseTiming,
        write: (id, expected, next) => this.store.writeLease(id, expected, next),
        tryRenewAll: (renewals) => this.store.tryRenewLeases(renewals),
      },
      replay: {
        mode: opts.config.replayMode,
        window: opts.config.replayWindow,
        verifyInterval: opts.config.verifyInterval,
        onDivergence: opts.config.replayOnDivergence,
      },
      logger: opts.logger,
      metrics: this.metrics,
      tickIntervalMs: opts.config.tickIntervalMs,
      fastTickIntervalMs: opts.config.fastTickIntervalMs,
      tickTimeoutMs: opts.config.tickTimeoutMs,
      hibernateAfterMs: opts.config.hibernateAfterMs,
    });
    this.diskFullRestarts = new DiskFullRestarts({
      start: (id) => this.turns.run(id, () => startAgent(this, id)),
      view: (id) => this.scheduler.view(id) ?? null,
      stopping: () => this.stopping !== null,
      logger: this.logger,
    });
    this.scheduler.on("stopped", (v) => this.diskFullRestarts.onStopped(v));
    this.scheduler.on("checkpoint", (e) => this.diskFullRestarts.onCheckpoint(e));
    this.scheduler.on("divergence", (d) => this.divergences.add({ agentId: d.agentId, tick: d.tick, code: d.code, message: d.message, at: Date.now() }));
    this.migration =
      opts.config.listen.length > 0
        ? new MigrationService(
            {
              config: opts.config,
              logger: opts.logger.child({ component: "migration" }),
              store: this.store,
              metrics: this.metrics,
              capabilities: this.capabilities,
              cache: this.cache,
              pool: this.pool,
              leaseTiming: this.leaseTiming,
              nodeKey: node.key,
              detach: async (id, alsoWrite) => {
                const detached = await this.scheduler.detach(id, alsoWrite);
                // Nothing journalled stays behind: the package's budget lacks every payment made here.
                debitLostPayments(this.store, this.logger, id);
                return detached;
              },
              handedOffUntold: (id) => this.scheduler.handedOffUntold(id),
              resume: async (id, windowVerified, preplaced, heldUntil) => {
                await this.resumeAgent(id, undefined, { windowVerified: windowVerified ?? false, ...(preplaced ? { preplaced } : {}), ...(heldUntil ? { heldUntil } : {}) });
              },
              preplace: (a) => {
                // What resumeAgent will compute from the stored rows, from the admitted package.
                const override = a.events.filter((e) => equalBytes(e.afterHash, a.headHash)).at(-1);
                return PreplacedAgent.place(this.pool, agentSpec(a.prepared, a.identity), {
                  wasmHash: a.prepared.wasmHash,
                  state: a.head.state,
                  budget: override ? override.newBudget : a.head.budget,
                  price: this.config.price,
                  interrupted: a.interrupted || paidAfterHead(a.events, a.headHash),
                  publicKey: a.identity.publicKey,
                  stateOfOlderModule: hex(a.head.wasmHash) !== a.prepared.wasmHash,
                }, { prepared: a.prepared, identity: a.identity, headHash: a.headHash });
              },
              retired: (id) => {
                this.quarantined.delete(id);
              },
              quarantine: (id, err) => {
                this.quarantined.set(id, { code: err.code, message: err.message, at: Date.now() });
              },
              runningAgents: () => this.scheduler.statusCounts().get("running") ?? 0,
              stopping: () => this.stopping !== null,
            },
            opts.migrationHooks,
          )
        : null;
    if (opts.watchAgentsDir ?? true) {
      this.watcher = new AgentsDirWatcher(
        opts.config.agentsDir,
        async (wasmPath, changed) => {
          await this.addAgent({ wasmPath, fileChanged: changed });
        },
        (path, reason) => this.logger.warn({ event: "agent_file_skipped", path, reason }, `skipping ${path}: it ${reason}`),
      );
    }
  }

  async start(): Promise<void> {
    this.startedAt = Date.now();
    // An --agents-dir that is a file, or cannot be read, is refused before anything starts.
    this.watcher?.checkDir();
    this.guard.start();
    // The first agent's worker boots while the services start; the others as agents need them.
    this.pool.start(1);
    this.logger.info(
      {
        event: "node_starting",
        version: VERSION,
        nodeId: this.nodeId,
        db: this.store.path,
        capabilities: this.capabilities.list(),
        workers: this.config.workers,
      },
      "igord starting",
    );
    await this.migration?.start();
    if (this.config.control) {
      const token = ensureControlToken(this.config.dataDir);
      this.control = await startControlServer(this.config.control, token, controlBackend(this), this.logger.child({ component: "control" }));
      // Clients (igord status, agents, migrate...) find the address actually bound here.
      writeControlAddress(this.config.dataDir, this.control.address);
      this.logger.info(
        { event: "control_listening", host: this.control.address.host, port: this.control.address.port, token: tokenPath(this.config.dataDir) },
        `control API on ${this.control.address.host}:${this.control.address.port}`,
      );
    }
    this.sealRecordedSegments();
    this.initialLoad = this.loadInitialAgents();
  }

  /**
   * Event-log segments this node recorded before it signed them (an upgrade from a version without
   * signed segments) are signed now with their agent's key, bound to the checkpoint before them as if
   * they had been sealed when recorded; so the histories stay auditable and can still migrate.
   * Segments that arrived unsigned from elsewhere are never marked so and stay unverifiable.
   */
  private sealRecordedSegments(): void {
    let sealed = 0;
    for (const seg of this.store.segmentsRecordedUnsigned()) {
      if (seg.blob.length === 0 && seg.postHashes.length === 0) continue; // nothing observed: stays unsigned
      const closing = this.store.checkpointAtTick(seg.agentId, seg.toTick);
      if (!closing) continue;
      const cp = parseCheckpoint(closing.blob);
      this.store.sealRecordedSegment(seg.id, signBytes(this.store.identity(seg.agentId), segmentSigningBytes(cp.prevHash, seg)));
      sealed++;
    }
    if (sealed > 0) this.logger.info({ event: "segments_sealed", count: sealed }, `signed ${sealed} event-log segments recorded before this version signed them`);
    // Runs left open by a crash (a clean stop seals them): sealed before any agent runs or leaves.
    const runs = sealOpenRuns(this.store);
    if (runs > 0) this.logger.info({ event: "runs_sealed", count: runs }, `sealed ${runs} open runs of event-log segments`);
  }

  /** Resolves once every agent present at start has loaded or failed (each bounded by the tick timeout). */
  whenLoaded(): Promise<void> {
    return this.initialLoad;
  }

  private async loadInitialAgents(): Promise<void> {
    if (this.resumeStored) await this.resumeStoredAgents();
    if (this.stopping) return;
    this.migration?.resolvePending();
    if (this.watcher) {
      try {
        await this.watcher.initialScan();
      } catch (e) {
        // Checked at start; changed since (replaced by a file): the watcher's scans report it.
        this.logger.warn({ event: "agent_file_skipped", path: this.config.agentsDir, reason: (e as Error).message }, (e as Error).message);
      }
      if (!this.stopping) this.watcher.start();
    }
    this.logger.info({ event: "agents_loaded", running: this.scheduler.statusCounts().get("running") ?? 0, quarantined: this.quarantined.size }, "agents present at start are loaded");
  }

  get controlAddress(): ControlServer["address"] | null {
    return this.control?.address ?? null;
  }

  /**
   * A restart resumes every agent this node owned, each from its last committed checkpoint. They load
   * side by side: one whose guest code hangs costs at most the tick timeout and holds up nobody.
   */
  private async resumeStoredAgents(): Promise<void> {
    const resumes = this.store
      .listAgents()
      .filter((row) => row.status === "active" || pausedByUpgrade(row))
      .map((row) =>
        this.resumeAgent(row.agentId).then(
          () => {
            // It was running when the node stopped during its upgrade: it runs on, with the code the upgrade left.
            if (row.status !== "active") this.store.setStatus(row.agentId, "active", null);
          },
          (e: unknown) => {
            // Failures are reported, and listed as quarantined with their reason, by resumeAgent; an
            // agent that moved away is a normal state, said here once.
            if (isIgordError(e, ErrorCode.LeaseRetired)) this.logger.info({ event: "agent_not_resumed", agent: row.agentId, code: e.code, target: e.details.target }, e.message);
          },
        ),
      );
    await Promise.all(resumes);
  }

  /** Loads an agent from a .wasm file: resumes it when this node has it stored, else creates it. */
  async addAgent(o: AddAgentOptions): Promise<AgentView> {
    try {
      const view = await loadAgentFile(this, o);
      this.loadFailures.clear(o.wasmPath);
      for (const [id, s] of this.staleBinaries) if (s.path === o.wasmPath) this.staleBinaries.delete(id);
      return view;
    } catch (e) {
      // A file left behind by an agent that moved to another node is a normal state: said once, at info.
      if (isIgordError(e, ErrorCode.LeaseRetired)) {
        this.logger.info({ event: "agent_file_retired", path: o.wasmPath, target: e.details.target, epoch: e.details.epoch }, `${o.wasmPath} is left over: ${e.message}; it does not run here`);
        throw e;
      }
      if (isIgordError(e, ErrorCode.AgentStaleBinary)) {
        this.staleBinaries.set(e.details.agentId as string, { path: o.wasmPath, wasmHash: e.details.fileWasm as string, command: e.details.command as string });
        this.logger.warn({ event: "agent_stale_binary", path: o.wasmPath, agent: e.details.agentId, stored: e.details.storedWasm, file: e.details.fileWasm }, e.message);
        throw e;
      }
      // Stopped or removed by the operator, quarantined (listed with its reason), or its id held by an
      // agent arriving by migration: the file stays where it is and is said once, at info.
      if (isIgordError(e, ErrorCode.AgentStopped) || isIgordError(e, ErrorCode.AgentRemoved) || isIgordError(e, ErrorCode.AgentQuarantined) || isIgordError(e, ErrorCode.MigrationInProgress)) {
        this.logger.info({ event: "agent_file_held", path: o.wasmPath, code: e.code, agent: e.details.agentId, reason: e.details.reason }, `${o.wasmPath} is not loaded: ${e.message}`);
        throw e;
      }
      // The one place a failed load is reported (the agents-dir watcher relies on it).
      if ((e as IgordError).code !== ErrorCode.NodeStopping) this.loadFailures.record(o.wasmPath, o.agentId ?? deriveAgentId(o.wasmPath), e);
      this.logger.error(
        { event: "agent_load_failed", path: o.wasmPath, code: (e as IgordError).code, err: (e as Error).message },
        `cannot load ${o.wasmPath}: ${(e as Error).message}`,
      );
      throw e;
    }
  }

  /** Resumes a stored agent from its head checkpoint after the load checks; quarantines it if they fail. */
  resumeAgent(agentId: string, wasmPath?: string, opts: ResumeOptions = {}): Promise<AgentView> {
    return resumeStoredAgent(this, agentId, wasmPath, opts);
  }

  /** Sets a stored agent's budget explicitly; recorded in its lineage, signed by the agent's key. */
  overrideBudget(agentId: string, newBudget: bigint, reason: string): void {
    overrideStoredBudget(this, agentId, newBudget, reason);
  }

  /** Migrates a running agent (control API and CLI): to the targets in order, or the best candidates. */
  migrate(agentId: string, targets: readonly string[] = []): Promise<MigrationResult> {
    if (!this.migration) throw new IgordError(ErrorCode.P2pUnavailable, "this node runs without the p2p service (--listen off)");
    return this.migration.migrate(agentId, targets);
  }

  /** The migrate divergence policy: the agent leaves for the best candidate; without one it pauses. */
  private async migrateAway(agentId: string): Promise<void> {
    try {
      const r = await this.migrate(agentId);
      if (r.outcome === "reverted") throw new IgordError(r.error?.code as ErrorCode, r.error?.message ?? "migration failed");
    } catch (e) {
      const err = e as IgordError;
      if (err.code === ErrorCode.MigrationInProgress) return; // an earlier divergence already moves it
      this.logger.error({ event: "replay_migrate_failed", agent: agentId, code: err.code }, `cannot migrate ${agentId} after its divergence: ${err.message}; pausing it`);
      const v = this.scheduler.view(agentId);
      if (v?.status === "running") await this.scheduler.pause(agentId, REPLAY_DIVERGENCE_NO_MIGRATION);
    }
  }

  /**
   * Agents detached for a hop this node sends and not settled yet (handed off, its attempts under
   * way): they tick nowhere, so neither the scheduler nor the resolution lists them.
   */
  migratingAgents(): string[] {
    return (this.migration?.sendingAgents() ?? []).filter((id) => !this.scheduler.has(id) && !this.quarantined.has(id));
  }

  /** Agents being received here and not stored and scheduled yet: they run nowhere so far. */
  receivingAgents(): string[] {
    return [...(this.migration?.receiving.keys() ?? [])].filter((id) => !this.scheduler.has(id));
  }

  /** The node's status as the control API and `igord status` show it. */
  status(): Record<string, unknown> {
    return nodeStatus(this);
  }

  /** Every agent this node knows of as the control API lists them (with `all`, also those that moved away). */
  agentsJson(opts: { all?: boolean } = {}): (Record<string, unknown> & { id: string })[] {
    return agentsListing(this, opts);
  }

  /** Stops ticking, checkpoints every agent, and shuts every service down. Idempotent. */
  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.logger.info({ event: "node_stopping" }, "igord stopping: checkpointing agents");
    this.guard.stop();
    this.diskFullRestarts.stop();
    // A checkpoint that fails while stopping loses the agent's last ticks: stop() must say so.
    const unsaved = new Map<string, string>();
    const onCheckpoint = (e: CheckpointEvent): void => {
      if (e.outcome === "failed" && e.reason === "shutdown") unsaved.set(e.agentId, e.code ?? ErrorCode.StoreError);
    };
    this.scheduler.on("checkpoint", onCheckpoint);
    this.watcher?.stop();
    // Loads still running end with the pool; the ones already placed are checkpointed with the rest.
    await this.migration?.stop();
    await this.scheduler.stop();
    this.scheduler.off("checkpoint", onCheckpoint);
    await this.pool.stop();
    this.http.close();
    await this.signer.close();
    // Every agent's open run of event-log segments, sealed with its key before the store closes.
    try {
      sealOpenRuns(this.store);
    } catch (e) {
      this.logger.warn({ event: "runs_seal_failed", err: e }, "open runs of event-log segments stay open until the next start");
    }
    this.guard.closeStore(this.store);
    if (this.control) removeControlAddress(this.config.dataDir, this.control.address);
    this.lock.release();
    await this.control?.close();
    if (unsaved.size > 0) {
      const agents = [...unsaved.keys()].sort();
      const message = `${agents.length} agent${agents.length > 1 ? "s" : ""} could not be checkpointed at shutdown: ${agents.map((id) => `${id} (${unsaved.get(id)})`).join(", ")}; each resumes from its last committed checkpoint (see checkpoint_failed in the log)`;
      this.logger.error({ event: "shutdown_checkpoints_failed", agents }, message);
      this.logger.info({ event: "node_stopped" }, "igord stopped");
      throw new IgordError(ErrorCode.ShutdownCheckpointFailed, message, { details: { agents } });
    }
    this.logger.info({ event: "node_stopped" }, "igord stopped");
  }
}
