// A kit node in this process: an IgordNode on temp dirs, restarted on the same dirs.
import type { NodeConfig } from "../config/schema.js";
import type { Lease } from "../authority/lease.js";
import type { MigrationHooks, MigrationResult } from "../migration/context.js";
import type { IgordNode } from "../node/node.js";
import type { TickEvent } from "../scheduler/scheduler.js";
import type { SqliteStore } from "../store/sqlite-store.js";
import { controlBackend } from "../node/control-views.js";
import { type AgentInfo, agentInfo, checkpointOf, type InProcessKitNode, KIT_WAIT_MS, type KitNode, type Lineage, lineageOf, type OutboxMessage, outboxOf, readStore, type StoredCheckpoint, waitForStatus } from "./kit-node.js";
import { type LogCapture, startTestNode, type TestNode } from "./node.js";

export class InProcessNode implements InProcessKitNode {
  readonly mode = "in-process" as const;
  private t: TestNode;

  private constructor(
    readonly name: string,
    t: TestNode,
    private readonly flags: Record<string, string>,
    private readonly hooks: MigrationHooks | undefined,
  ) {
    this.t = t;
  }

  static async start(name: string, flags: Record<string, string>, hooks?: MigrationHooks): Promise<InProcessNode> {
    return new InProcessNode(name, await startTestNode(flags, {}, hooks), flags, hooks);
  }

  get node(): IgordNode {
    return this.t.node;
  }
  get config(): NodeConfig {
    return this.t.config;
  }
  get logs(): LogCapture {
    return this.t.logs;
  }
  readonly waitFor: TestNode["waitFor"] = (event, predicate, timeoutMs) => this.t.waitFor(event, predicate, timeoutMs);
  get dir(): string {
    return this.t.dir;
  }
  get dataDir(): string {
    return this.t.config.dataDir;
  }
  /** False once it stops, by stop() or by a teardown (stopAll) that stopped its IgordNode. */
  get running(): boolean {
    return !this.t.node.isStopping;
  }
  get address(): string {
    const a = this.t.node.migration?.addresses()[0];
    if (!a) throw new Error(`${this.name} has no p2p address (is it running with --listen?)`);
    return a;
  }
  get peerId(): string {
    return this.t.node.migration?.peerId ?? "";
  }

  async load(wasmPath: string): Promise<string> {
    return (await this.t.node.addAgent({ wasmPath })).id;
  }

  async waitForTick(agentId: string, atLeast = 1n, timeoutMs = KIT_WAIT_MS): Promise<bigint> {
    const e = await this.t.waitFor<TickEvent>("tick", (x) => x.agentId === agentId && x.tick >= atLeast, timeoutMs);
    return e.tick;
  }

  migrate(agentId: string, to: KitNode): Promise<MigrationResult> {
    return this.t.node.migrate(agentId, [to.address]);
  }

  private read<T>(f: (s: SqliteStore) => T): T {
    return this.running ? f(this.t.node.store) : readStore(this.dataDir, f);
  }
  lease(agentId: string): Lease | undefined {
    return this.read((s) => s.lease(agentId));
  }
  lineage(agentId: string): Lineage {
    return this.read((s) => lineageOf(s, agentId));
  }
  outbox(agentId: string): OutboxMessage[] {
    return this.read((s) => outboxOf(s, agentId));
  }
  checkpoint(agentId: string): StoredCheckpoint {
    return this.read((s) => checkpointOf(s, agentId, this.name));
  }

  agent(agentId: string): Promise<AgentInfo | undefined> {
    return Promise.resolve(agentInfo(controlBackend(this.t.node).agent(agentId)));
  }
  waitForStatus(agentId: string, status: string, timeoutMs?: number): Promise<AgentInfo> {
    return waitForStatus(this, agentId, status, timeoutMs);
  }

  stop(): Promise<void> {
    return this.t.stop();
  }

  kill(): Promise<void> {
    return Promise.reject(new Error(`${this.name} runs in this process: kill() (SIGKILL) needs startCluster(n, { mode: "process" })`));
  }

  async restart(): Promise<void> {
    // Stopping is idempotent: this also waits for a stop already under way, which holds the data dir.
    await this.stop();
    this.t = await startTestNode(this.flags, { dir: this.t.dir, resumeStored: true }, this.hooks);
  }
}
