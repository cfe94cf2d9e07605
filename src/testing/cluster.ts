// The test kit's cluster: N real igord nodes on free loopback ports with temp data dirs, either in this
// process (fast; observed through the scheduler's events) or as child processes (a real SIGKILL and
// restart), behind one interface for what a multi-node test does: load an agent, wait for ticks,
// migrate, kill, restart, read the lineage and the outbox, check that exactly one node owns the agent.
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Lease } from "../authority/lease.js";
import { parseCheckpoint } from "../checkpoint/codec.js";
import { type ChainReport, verifyChain } from "../checkpoint/verify-chain.js";
import { controlPost } from "../control/client.js";
import type { MigrationHooks, MigrationResult } from "../migration/context.js";
import type { TickEvent } from "../scheduler/scheduler.js";
import { DB_FILE, SqliteStore } from "../store/sqlite-store.js";
import type { LineageEvent } from "../store/types.js";
import type { NodeConfig } from "../config/schema.js";
import type { IgordNode } from "../node/node.js";
import { type LogCapture, startTestNode, stopAllNodes, type TestNode, tempDir } from "./node.js";
import { type Daemon, killAll, startDaemon } from "./process.js";
import { waitUntil } from "./wait.js";

/** How long a kit node waits for a tick, a load or a start before failing the test. */
export const KIT_WAIT_MS = 15_000;

/**
 * Flags every kit node gets: p2p on a free loopback port, migrations accepted from any peer (the
 * nodes of one cluster trust each other), fast ticks, a checkpoint every 100 ms (so a SIGKILL loses
 * little), no peer polling.
 */
export const KIT_FLAGS: Readonly<Record<string, string>> = {
  listen: "/ip4/127.0.0.1/tcp/0",
  "accept-migrations": "any",
  "tick-interval": "20ms",
  "checkpoint-interval": "100ms",
  "migration-retry-delay": "10ms",
  "migration-timeout": "5s",
  "peer-refresh": "0",
  workers: "1",
};

export type NodeMode = "in-process" | "process";

export interface ClusterOptions {
  /** "in-process" (the default: an IgordNode in this process) or "process" (a real igord child; kill() is SIGKILL). */
  mode?: NodeMode;
  /** igord flags for every node, as on the command line without "--" (`{ price: "0.002" }`); they override KIT_FLAGS. */
  flags?: Record<string, string>;
  /** Fault injection inside the migration protocol (in-process nodes only). */
  migrationHooks?: MigrationHooks;
}

/** An agent's message from its outbox (the emit hostcall), as the owner at that tick published it. */
export interface OutboxMessage {
  tick: bigint;
  epochMajor: bigint;
  text: string;
}

export interface StoredCheckpoint {
  tick: bigint;
  epochMajor: bigint;
  budget: bigint;
  /** The bytes agent_checkpoint returned. */
  state: Uint8Array;
}

/** An agent's stored history on one node, verified like `igord verify --agent`. */
export interface Lineage {
  checkpoints: { seq: bigint; tick: bigint; epochMajor: bigint; reason: string }[];
  events: LineageEvent[];
  report: ChainReport;
}

export interface KitNode {
  readonly name: string;
  readonly mode: NodeMode;
  /** The node's temp dir: data/ (SQLite, keys) and agents/ under it. */
  readonly dir: string;
  readonly dataDir: string;
  /** The multiaddr other nodes reach this node at (changes on restart: a new free port). */
  readonly address: string;
  readonly peerId: string;
  /** Loads `<name>.wasm` (with `<name>.manifest.json` next to it) and resolves with the agent id once it runs. */
  load(wasmPath: string): Promise<string>;
  /** Resolves with the agent's tick number once it has run tick `atLeast` (default 1) here. */
  waitForTick(agentId: string, atLeast?: bigint, timeoutMs?: number): Promise<bigint>;
  /** Migrates the agent to `to` (this node must own it). */
  migrate(agentId: string, to: KitNode): Promise<MigrationResult>;
  /** The agent's lease on this node (undefined when the node never had it). */
  lease(agentId: string): Lease | undefined;
  lineage(agentId: string): Lineage;
  /** The agent's last stored checkpoint here: its tick, epoch and the state the agent wrote (throws when there is none). */
  checkpoint(agentId: string): StoredCheckpoint;
  outbox(agentId: string): OutboxMessage[];
  /** Stops the node cleanly (agents checkpointed). */
  stop(): Promise<void>;
  /** SIGKILL: the process dies mid-whatever (mode "process" only). */
  kill(): Promise<void>;
  /** Starts the node again on the same data dir; the agents it owned resume from their last checkpoint. */
  restart(): Promise<void>;
  readonly running: boolean;
}

/** A node in this process: also its IgordNode (store, scheduler, metrics) and captured logs, for white-box tests. */
export interface InProcessKitNode extends KitNode {
  readonly mode: "in-process";
  /** The running IgordNode (a new one after restart()). */
  readonly node: IgordNode;
  readonly config: NodeConfig;
  /** Every log line of the current run, parsed. */
  readonly logs: LogCapture;
  /** The first scheduler event of the current run matching `predicate`, past or future. */
  waitFor: TestNode["waitFor"];
}

export interface Cluster<N extends KitNode = KitNode> {
  readonly nodes: N[];
  /** Node i (throws when there is none). */
  at(i: number): N;
  /** The nodes on which the agent's lease is ACTIVE_OWNER. */
  owners(agentId: string): N[];
  /** The one node that owns the agent; throws naming every owner when there is not exactly one. */
  owner(agentId: string): N;
  /** Stops every node of the cluster and removes their dirs. */
  stop(): Promise<void>;
}

const clusters = new Set<Cluster>();
/** Temp dirs of process nodes (in-process nodes' dirs are tracked by startTestNode). */
const processDirs = new Set<string>();
// A runner that exits without teardown: process.ts has SIGKILLed the daemons; their dirs go too.
process.once("exit", () => {
  for (const d of processDirs) rmSync(d, { recursive: true, force: true });
});

/** Starts `n` nodes. Stop them with cluster.stop() or, in afterEach, with stopAll(). */
export function startCluster(n: number, opts: ClusterOptions & { mode: "process" }): Promise<Cluster>;
export function startCluster(n: number, opts?: ClusterOptions & { mode?: "in-process" }): Promise<Cluster<InProcessKitNode>>;
export async function startCluster(n: number, opts: ClusterOptions = {}): Promise<Cluster> {
  const mode = opts.mode ?? "in-process";
  const flags = { ...KIT_FLAGS, ...opts.flags };
  const nodes: KitNode[] = [];
  const cluster: Cluster = {
    nodes,
    at: (i) => {
      const node = nodes[i];
      if (!node) throw new Error(`the cluster has ${nodes.length} nodes; there is no node ${i}`);
      return node;
    },
    owners: (agentId) => nodes.filter((x) => x.lease(agentId)?.state === "ACTIVE_OWNER"),
    owner: (agentId) => {
      const owners = cluster.owners(agentId);
      if (owners.length !== 1) {
        const states = nodes.map((x) => `${x.name}: ${x.lease(agentId)?.state ?? "none"}`).join(", ");
        throw new Error(`expected exactly one owner of "${agentId}", found ${owners.length} (${states})`);
      }
      return owners[0] as KitNode;
    },
    stop: async () => {
      clusters.delete(cluster);
      await Promise.all(nodes.map((x) => (x.running ? x.stop() : Promise.resolve())));
    },
  };
  clusters.add(cluster);
  for (let i = 0; i < n; i++) {
    nodes.push(mode === "process" ? await ProcessNode.start(`node${i}`, flags) : await InProcessNode.start(`node${i}`, flags, opts.migrationHooks));
  }
  return cluster;
}

/** Starts one node (a cluster of one). */
export function startNode(opts: ClusterOptions & { mode: "process" }): Promise<KitNode>;
export function startNode(opts?: ClusterOptions & { mode?: "in-process" }): Promise<InProcessKitNode>;
export async function startNode(opts: ClusterOptions = {}): Promise<KitNode> {
  return (await startCluster(1, opts as ClusterOptions & { mode: "process" })).at(0);
}

/**
 * Tears down everything the kit started in this test file: clusters, in-process nodes, child
 * processes (SIGKILL) and temp dirs. Call it from afterEach, so a failing test leaves nothing behind.
 */
export async function stopAll(): Promise<void> {
  for (const c of clusters) clusters.delete(c);
  await killAll();
  await stopAllNodes();
  for (const d of processDirs) rmSync(d, { recursive: true, force: true });
  processDirs.clear();
}

function readStore<T>(dataDir: string, read: (store: SqliteStore) => T): T {
  const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
  try {
    return read(store);
  } finally {
    store.close();
  }
}

function lineageOf(store: SqliteStore, agentId: string): Lineage {
  const rows = [...store.history(agentId)];
  const checkpoints = rows.map((r) => ({ seq: r.seq, tick: r.tick, epochMajor: parseCheckpoint(r.blob).epochMajor, reason: r.reason }));
  const events = store.lineageEvents(agentId);
  const entries = rows.map((r) => ({ name: `seq ${r.seq}`, bytes: r.blob }));
  const report = verifyChain(entries, events.filter((e) => e.kind === "budget_override"), undefined, store.historyBase(agentId));
  return { checkpoints, events, report };
}

function checkpointOf(store: SqliteStore, agentId: string, node: string): StoredCheckpoint {
  const head = store.head(agentId);
  if (!head) throw new Error(`${node} has no checkpoint of "${agentId}"`);
  const cp = parseCheckpoint(head.blob);
  return { tick: cp.tick, epochMajor: cp.epochMajor, budget: cp.budget, state: cp.state };
}

function outboxOf(store: SqliteStore, agentId: string): OutboxMessage[] {
  const text = new TextDecoder();
  return store.outbox(agentId).map((m) => ({ tick: m.tick, epochMajor: m.epochMajor, text: text.decode(m.payload) }));
}

function agentIdOf(wasmPath: string): string {
  return basename(wasmPath).replace(/\.wasm$/, "");
}

class InProcessNode implements InProcessKitNode {
  readonly mode = "in-process" as const;
  private t: TestNode;
  private up = true;

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
  get running(): boolean {
    return this.up;
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
    return this.up ? f(this.t.node.store) : readStore(this.dataDir, f);
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

  async stop(): Promise<void> {
    this.up = false;
    await this.t.stop();
  }

  kill(): Promise<void> {
    return Promise.reject(new Error(`${this.name} runs in this process: kill() (SIGKILL) needs startCluster(n, { mode: "process" })`));
  }

  async restart(): Promise<void> {
    if (this.up) await this.stop();
    this.t = await startTestNode(this.flags, { dir: this.t.dir, resumeStored: true }, this.hooks);
    this.up = true;
  }
}

type LogLine = Record<string, unknown>;

class ProcessNode implements KitNode {
  readonly mode = "process" as const;
  private daemon!: Daemon;
  private addr = "";
  private peer = "";
  private control: { host: string; port: number } | null = null;
  private up = false;

  private constructor(
    readonly name: string,
    readonly dir: string,
    private readonly flags: Record<string, string>,
  ) {}

  static async start(name: string, flags: Record<string, string>): Promise<ProcessNode> {
    const dir = tempDir("igord-kit-");
    processDirs.add(dir);
    const n = new ProcessNode(name, dir, flags);
    await n.spawn();
    return n;
  }

  get dataDir(): string {
    return join(this.dir, "data");
  }
  get agentsDir(): string {
    return join(this.dir, "agents");
  }
  get running(): boolean {
    return this.up && this.daemon.child.exitCode === null && this.daemon.child.signalCode === null;
  }
  get address(): string {
    return this.addr;
  }
  get peerId(): string {
    return this.peer;
  }

  private async spawn(): Promise<void> {
    mkdirSync(this.agentsDir, { recursive: true });
    const all: Record<string, string> = {
      "data-dir": this.dataDir,
      "agents-dir": this.agentsDir,
      control: "127.0.0.1:0",
      ...this.flags,
      // The kit sees ticks through the daemon's debug lines.
      "log-level": "debug",
    };
    const args = Object.entries(all).flatMap(([k, v]) => [`--${k}`, v]);
    this.daemon = startDaemon(args, { ...process.env, IGORD_LISTEN: all.listen ?? "off" });
    const listening = await this.daemon.waitFor((l) => l.event === "p2p_listening" || l.event === "agents_loaded", KIT_WAIT_MS);
    if (listening.event === "p2p_listening") {
      this.addr = (listening.addrs as string[])[0] ?? "";
      this.peer = String(listening.peerId);
    }
    const control = await this.daemon.waitFor((l) => l.event === "control_listening", KIT_WAIT_MS);
    this.control = { host: String(control.host), port: Number(control.port) };
    await this.daemon.waitFor((l) => l.event === "agents_loaded", KIT_WAIT_MS);
    this.up = true;
  }

  /** Lines this process logged since it (re)started, parsed. */
  get logs(): LogLine[] {
    return this.daemon.lines;
  }

  async load(wasmPath: string): Promise<string> {
    const agentId = agentIdOf(wasmPath);
    const manifest = join(dirname(wasmPath), `${agentId}.manifest.json`);
    // The daemon watches its agents dir: the manifest lands first, the module in one rename.
    if (existsSync(manifest)) copyFileSync(manifest, join(this.agentsDir, `${agentId}.manifest.json`));
    const partial = join(this.agentsDir, `.${agentId}.wasm.partial`);
    copyFileSync(wasmPath, partial);
    renameSync(partial, join(this.agentsDir, `${agentId}.wasm`));
    const line = await this.daemon.waitFor(
      (l) => (l.event === "agent_started" && l.agent === agentId) || (l.event === "agent_load_failed" && typeof l.path === "string" && basename(l.path) === `${agentId}.wasm`),
      KIT_WAIT_MS,
    );
    if (line.event === "agent_load_failed") throw new Error(`${this.name} cannot load ${wasmPath}: ${String(line.err)} [${String(line.code)}]`);
    return agentId;
  }

  async waitForTick(agentId: string, atLeast = 1n, timeoutMs = KIT_WAIT_MS): Promise<bigint> {
    const line = await this.daemon.waitFor((l) => l.event === "tick" && l.agent === agentId && BigInt(String(l.tick)) >= atLeast, timeoutMs);
    return BigInt(String(line.tick));
  }

  async migrate(agentId: string, to: KitNode): Promise<MigrationResult> {
    if (!this.control) throw new Error(`${this.name} is not running`);
    const path = `/v1/agents/${encodeURIComponent(agentId)}/migrate`;
    return (await controlPost(this.control, this.dataDir, path, { to: to.address }, KIT_WAIT_MS * 2)) as MigrationResult;
  }

  lease(agentId: string): Lease | undefined {
    if (!existsSync(join(this.dataDir, DB_FILE))) return undefined;
    return readStore(this.dataDir, (s) => s.lease(agentId));
  }
  lineage(agentId: string): Lineage {
    return readStore(this.dataDir, (s) => lineageOf(s, agentId));
  }
  outbox(agentId: string): OutboxMessage[] {
    return readStore(this.dataDir, (s) => outboxOf(s, agentId));
  }
  checkpoint(agentId: string): StoredCheckpoint {
    return readStore(this.dataDir, (s) => checkpointOf(s, agentId, this.name));
  }

  async stop(): Promise<void> {
    if (!this.up) return;
    this.up = false;
    this.daemon.child.kill("SIGTERM");
    const code = await this.daemon.exit;
    if (code !== 0) throw new Error(`${this.name} exited with ${String(code)} on SIGTERM`);
  }

  async kill(): Promise<void> {
    this.up = false;
    this.daemon.child.kill("SIGKILL");
    await this.daemon.exit;
  }

  async restart(): Promise<void> {
    if (this.up) await this.stop();
    await this.spawn();
  }
}

/** Waits until `check` holds, re-checking every few ms (for states seen only through the store). */
export function eventually(check: () => boolean, what: string, timeoutMs = KIT_WAIT_MS): Promise<void> {
  return waitUntil(check, { what, timeoutMs });
}
