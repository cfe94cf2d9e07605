// What a test sees of a kit node, in-process or a process: the KitNode interface, the records it
// returns, and how they are read from a node's SQLite file.
import type { Lease } from "../authority/lease.js";
import { parseCheckpoint } from "../checkpoint/codec.js";
import { type ChainReport, chainEvents, verifyChain } from "../checkpoint/verify-chain.js";
import type { NodeConfig } from "../config/schema.js";
import type { MigrationResult } from "../migration/context.js";
import type { IgordNode } from "../node/node.js";
import { DB_FILE, SqliteStore } from "../store/sqlite-store.js";
import type { LineageEvent } from "../store/types.js";
import { basename, join } from "node:path";
import type { LogCapture, TestNode } from "./node.js";

/** How long a kit node waits for a tick, a load or a start before failing the test. */
export const KIT_WAIT_MS = 15_000;

export type NodeMode = "in-process" | "process";

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

/** An agent as the control API shows it. */
export interface AgentInfo {
  status: string;
  reason: string | null;
  tick: bigint;
  error: { code: string; message: string } | null;
}

/** The control API's JSON of one agent, as an AgentInfo. */
export function agentInfo(json: Record<string, unknown> | undefined): AgentInfo | undefined {
  if (!json) return undefined;
  const error = json.error as { code: string; message: string } | null | undefined;
  return { status: String(json.status), reason: (json.reason as string | null | undefined) ?? null, tick: BigInt(String(json.tick ?? "0")), error: error ?? null };
}

/** How often waitForStatus asks again: a state has no event a process node could push. */
export const KIT_POLL_MS = 25;

/** Asks `node.agent()` until the agent's status is `status`. */
export async function waitForStatus(node: KitNode, agentId: string, status: string, timeoutMs = KIT_WAIT_MS): Promise<AgentInfo> {
  const deadline = Date.now() + timeoutMs;
  let last: AgentInfo | undefined;
  for (;;) {
    last = await node.agent(agentId);
    if (last?.status === status) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for "${agentId}" to be ${status} on ${node.name} (it is ${last ? `${last.status}${last.reason ? `: ${last.reason}` : ""}` : "not there"})`);
    }
    await new Promise((r) => setTimeout(r, KIT_POLL_MS));
  }
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
  /**
   * The agent as `igord agents` shows it here (status, reason, tick, error), or undefined when this node
   * does not hold it or was stopped or killed; throws when a process node's daemon died by itself.
   */
  agent(agentId: string): Promise<AgentInfo | undefined>;
  /** Resolves with the agent once its status here is `status` (running, stopped, failed, quarantined...). */
  waitForStatus(agentId: string, status: string, timeoutMs?: number): Promise<AgentInfo>;
  /** Stops the node cleanly (agents checkpointed). */
  stop(): Promise<void>;
  /** SIGKILL: the process dies mid-whatever (mode "process" only). */
  kill(): Promise<void>;
  /** Starts the node again on the same data dir; the agents it owned resume from their last checkpoint. */
  restart(): Promise<void>;
  /** False once it was stopped (by stop() or a teardown), killed, or its daemon died. */
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

export function readStore<T>(dataDir: string, read: (store: SqliteStore) => T): T {
  const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
  try {
    return read(store);
  } finally {
    store.close();
  }
}

export function lineageOf(store: SqliteStore, agentId: string): Lineage {
  const rows = [...store.history(agentId)];
  const checkpoints = rows.map((r) => ({ seq: r.seq, tick: r.tick, epochMajor: parseCheckpoint(r.blob).epochMajor, reason: r.reason }));
  const events = store.lineageEvents(agentId);
  const entries = rows.map((r) => ({ name: `seq ${r.seq}`, bytes: r.blob }));
  // Every kind verify checks: an upgraded agent was reported INVALID here ("WASM changed … without a signed code upgrade").
  const report = verifyChain(entries, chainEvents(events), undefined, store.historyBase(agentId));
  return { checkpoints, events, report };
}

export function checkpointOf(store: SqliteStore, agentId: string, node: string): StoredCheckpoint {
  const head = store.head(agentId);
  if (!head) throw new Error(`${node} has no checkpoint of "${agentId}"`);
  const cp = parseCheckpoint(head.blob);
  return { tick: cp.tick, epochMajor: cp.epochMajor, budget: cp.budget, state: cp.state };
}

export function outboxOf(store: SqliteStore, agentId: string): OutboxMessage[] {
  const text = new TextDecoder();
  return store.outbox(agentId).map((m) => ({ tick: m.tick, epochMajor: m.epochMajor, text: text.decode(m.payload) }));
}

export function agentIdOf(wasmPath: string): string {
  return basename(wasmPath).replace(/\.wasm$/, "");
}
