// The composition root: builds every service of a node and starts/stops them in order.
// start: data dir → worker pool → agents (agents dir) → control API. stop: the reverse, with every
// agent checkpointed before the pool goes away.
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import type { Logger } from "pino";
import type { NodeConfig } from "../config/schema.js";
import { agentJson } from "../control/json.js";
import { type ControlServer, startControlServer } from "../control/server.js";
import { ensureControlToken, tokenPath } from "../control/token.js";
import { ErrorCode, IgordError } from "../errors.js";
import { NodeCapabilities } from "../hostcalls/capabilities.js";
import { AgentsDirWatcher } from "../loader/agents-dir.js";
import { ModuleCache, prepareAgent } from "../loader/prepare.js";
import { NodeMetrics } from "../metrics/metrics.js";
import { type AgentView, Scheduler } from "../scheduler/scheduler.js";
import { type AgentStore, MemoryAgentStore } from "../store/agent-store.js";
import { WorkerPool } from "../wasm/pool.js";

export const VERSION = "0.1.0";

export interface NodeOptions {
  config: NodeConfig;
  logger: Logger;
  store?: AgentStore;
  /** Load and watch config.agentsDir (the daemon); `igord run` adds its one agent itself. */
  watchAgentsDir?: boolean;
}

export interface AddAgentOptions {
  wasmPath: string;
  agentId?: string;
  manifestPath?: string;
  /** Budget for a new agent (microcents); defaults to the node's --budget. */
  budget?: bigint;
}

export class IgordNode {
  readonly config: NodeConfig;
  readonly logger: Logger;
  readonly capabilities: NodeCapabilities;
  readonly pool: WorkerPool;
  readonly scheduler: Scheduler;
  readonly metrics: NodeMetrics;
  readonly store: AgentStore;
  private readonly cache = new ModuleCache();
  private watcher: AgentsDirWatcher | null = null;
  private control: ControlServer | null = null;
  private startedAt = 0;
  private stopping: Promise<void> | null = null;

  constructor(opts: NodeOptions) {
    this.config = opts.config;
    this.logger = opts.logger;
    this.capabilities = new NodeCapabilities(opts.config.capabilities);
    this.store = opts.store ?? new MemoryAgentStore();
    this.pool = new WorkerPool({
      size: opts.config.workers,
      tickTimeoutMs: opts.config.tickTimeoutMs,
      tickIntervalMs: opts.config.tickIntervalMs,
      logger: opts.logger.child({ component: "pool" }),
    });
    this.metrics = new NodeMetrics({
      agentStates: () => this.scheduler.statusCounts(),
      budgets: () => this.scheduler.budgets(),
      workers: () => this.pool.stats().workers,
    });
    this.scheduler = new Scheduler({
      pool: this.pool,
      store: this.store,
      logger: opts.logger,
      metrics: this.metrics,
      tickIntervalMs: opts.config.tickIntervalMs,
      fastTickIntervalMs: opts.config.fastTickIntervalMs,
      tickTimeoutMs: opts.config.tickTimeoutMs,
    });
    if (opts.watchAgentsDir ?? true) {
      this.watcher = new AgentsDirWatcher(opts.config.agentsDir, async (wasmPath) => {
        await this.addAgent({ wasmPath });
      });
    }
  }

  async start(): Promise<void> {
    this.startedAt = Date.now();
    mkdirSync(this.config.dataDir, { recursive: true });
    this.pool.start();
    this.logger.info(
      {
        event: "node_starting",
        version: VERSION,
        capabilities: this.capabilities.list(),
        workers: this.config.workers,
      },
      "igord starting",
    );
    if (this.watcher) {
      await this.watcher.initialScan();
      this.watcher.start();
    }
    if (this.config.control) {
      const token = ensureControlToken(this.config.dataDir);
      this.control = await startControlServer(
        this.config.control,
        token,
        this.controlBackend(),
        this.logger.child({ component: "control" }),
      );
      this.logger.info(
        {
          event: "control_listening",
          host: this.control.address.host,
          port: this.control.address.port,
          token: tokenPath(this.config.dataDir),
        },
        `control API on ${this.control.address.host}:${this.control.address.port}`,
      );
    }
  }

  get controlAddress(): ControlServer["address"] | null {
    return this.control?.address ?? null;
  }

  /** Loads one agent: validates everything first, then resumes it from the store or starts it fresh. */
  async addAgent(o: AddAgentOptions): Promise<AgentView> {
    try {
      return await this.loadAgent(o);
    } catch (e) {
      // The one place a failed load is reported (the agents-dir watcher relies on it).
      this.logger.error(
        {
          event: "agent_load_failed",
          path: o.wasmPath,
          code: (e as IgordError).code,
          err: (e as Error).message,
        },
        `cannot load ${o.wasmPath}: ${(e as Error).message}`,
      );
      throw e;
    }
  }

  private async loadAgent(o: AddAgentOptions): Promise<AgentView> {
    if (this.stopping) throw new IgordError(ErrorCode.NodeStopping, "the node is stopping");
    const prepared = prepareAgent({ ...o, offered: this.capabilities.snapshot(), cache: this.cache });
    if (this.scheduler.has(prepared.agentId)) {
      throw new IgordError(
        ErrorCode.AgentExists,
        `agent "${prepared.agentId}" is already loaded on this node (from another file?)`,
      );
    }
    const stored = this.store.latest(prepared.agentId);
    if (stored && stored.wasmHash !== prepared.wasmHash) {
      throw new IgordError(
        ErrorCode.AgentBadState,
        `agent "${prepared.agentId}" has a checkpoint for a different WASM binary (${stored.wasmHash.slice(0, 12)}…, file is ${prepared.wasmHash.slice(0, 12)}…)`,
      );
    }
    const spec = {
      agentId: prepared.agentId,
      module: prepared.module,
      plan: prepared.plan,
      memoryCapPages: prepared.memoryCapPages,
    };
    const meta = {
      wasmHash: prepared.wasmHash,
      wasmPath: resolve(o.wasmPath),
      capabilities: [...prepared.manifest.capabilities.keys()].sort(),
    };
    const init = stored
      ? { tick: stored.tick, budget: stored.budget, price: this.config.price, state: stored.state }
      : { tick: 0n, budget: o.budget ?? this.config.budget, price: this.config.price, state: null };
    return this.scheduler.add(spec, meta, init);
  }

  status(): Record<string, unknown> {
    const counts = Object.fromEntries(this.scheduler.statusCounts());
    const pool = this.pool.stats();
    return {
      version: VERSION,
      pid: process.pid,
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      agents: counts,
      workers: pool,
      capabilities: this.capabilities.list(),
      priceMicrocents: this.config.price.toString(),
      tickIntervalMs: this.config.tickIntervalMs,
      fastTickIntervalMs: this.config.fastTickIntervalMs,
      tickTimeoutMs: this.config.tickTimeoutMs,
      agentsDir: resolve(this.config.agentsDir),
      dataDir: resolve(this.config.dataDir),
    };
  }

  private controlBackend() {
    return {
      status: () => this.status(),
      agents: () => this.scheduler.list().map(agentJson),
      agent: (id: string) => {
        const v = this.scheduler.view(id);
        return v ? agentJson(v) : undefined;
      },
      metrics: async () => ({ contentType: this.metrics.contentType, body: await this.metrics.render() }),
      setCapabilities: (caps: string[]) => {
        this.capabilities.replace(caps);
        this.logger.info(
          { event: "capabilities_changed", capabilities: this.capabilities.list() },
          "node capabilities changed",
        );
        return this.capabilities.list();
      },
    };
  }

  /** Stops ticking, checkpoints every agent, and shuts every service down. Idempotent. */
  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.logger.info({ event: "node_stopping" }, "igord stopping: checkpointing agents");
    this.watcher?.stop();
    await this.scheduler.stop();
    await this.pool.stop();
    this.store.close();
    await this.control?.close();
    this.logger.info({ event: "node_stopped" }, "igord stopped");
  }
}
