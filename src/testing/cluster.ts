// The test kit's cluster: N real igord nodes on free loopback ports with temp data dirs, either in this
// process (fast; observed through the scheduler's events) or as child processes (a real SIGKILL and
// restart), behind one interface for what a multi-node test does: load an agent, wait for ticks,
// migrate, kill, restart, read the lineage and the outbox, check that exactly one node owns the agent.
import type { MigrationHooks } from "../migration/context.js";
import { InProcessNode } from "./in-process-node.js";
import { type InProcessKitNode, KIT_WAIT_MS, type KitNode, type NodeMode } from "./kit-node.js";
import { stopAllNodes } from "./node.js";
import { killAll } from "./process.js";
import { ProcessNode, removeProcessDirs } from "./process-node.js";
import { removeDir } from "./temp-dirs.js";
import { waitUntil } from "./wait.js";

export { type AgentInfo, type InProcessKitNode, KIT_WAIT_MS, type KitNode, type Lineage, type NodeMode, type OutboxMessage, type StoredCheckpoint } from "./kit-node.js";

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

export interface ClusterOptions {
  /** "in-process" (the default: an IgordNode in this process) or "process" (a real igord child; kill() is SIGKILL). */
  mode?: NodeMode;
  /** igord flags for every node, as on the command line without "--" (`{ price: "0.002" }`); they override KIT_FLAGS. */
  flags?: Record<string, string>;
  /** Fault injection inside the migration protocol (in-process nodes only). */
  migrationHooks?: MigrationHooks;
}

export interface Cluster<N extends KitNode = KitNode> {
  readonly nodes: N[];
  /** Node i (throws when there is none). */
  at(i: number): N;
  /** The nodes on which the agent's lease is ACTIVE_OWNER. */
  owners(agentId: string): N[];
  /** The one node that owns the agent; throws naming every owner when there is not exactly one. */
  owner(agentId: string): N;
  /** Stops every node of the cluster (SIGTERM for a process node, as stop() does) and removes their dirs. */
  stop(): Promise<void>;
}

const clusters = new Set<Cluster>();
/** Counts stopAll() calls: a cluster whose start began before one belongs to a torn-down test. */
let generation = 0;

/** Stops a node and removes its dir: a process node with SIGKILL (a teardown's, its state is of no interest). */
async function discard(node: KitNode): Promise<void> {
  await (node.mode === "process" ? node.kill() : node.stop());
  removeDir(node.dir);
}

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
      // An in-process node's stop is idempotent: it also waits for one under way before its dir goes.
      await Promise.all(nodes.map((x) => (x.running || x.mode === "in-process" ? x.stop() : Promise.resolve())));
      for (const x of nodes) removeDir(x.dir);
    },
  };
  clusters.add(cluster);
  // A test that timed out while its cluster was starting has had its teardown (stopAll) already: the
  // nodes it stopped stay stopped, the start stops the one it was starting and starts no more.
  const gen = generation;
  const tornDown = (i: number): Error => new Error(`stopAll() ran while startCluster was starting node${i}: its nodes are stopped and their dirs removed`);
  for (let i = 0; i < n; i++) {
    if (gen !== generation) throw tornDown(i);
    const start = mode === "process" ? ProcessNode.start(`node${i}`, flags) : InProcessNode.start(`node${i}`, flags, opts.migrationHooks);
    const node = await start.catch((e: unknown) => {
      throw gen !== generation ? tornDown(i) : e;
    });
    if (gen !== generation) {
      await discard(node);
      throw tornDown(i);
    }
    nodes.push(node);
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
  generation++;
  for (const c of clusters) clusters.delete(c);
  await killAll();
  await stopAllNodes();
  removeProcessDirs();
}
/** Waits until `check` holds, re-checking every few ms (for states seen only through the store). */
export function eventually(check: () => boolean, what: string, timeoutMs = KIT_WAIT_MS): Promise<void> {
  return waitUntil(check, { what, timeoutMs });
}
