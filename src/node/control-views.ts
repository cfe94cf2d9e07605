// What the control API shows of a node: its status, its agents in every state (running,
// quarantined, in handoff, failed to load, moved away), and the backend the control server calls.
// Views over the node's services; the node itself only composes and runs them.
import { resolve } from "node:path";
import { formatEpoch } from "../authority/lease.js";
import { agentJson } from "../control/json.js";
import type { ControlBackend } from "../control/server.js";
import { agentTimeline } from "../control/timeline.js";
import { ErrorCode, IgordError } from "../errors.js";
import type { LoadFailure } from "../loader/load-failures.js";
import type { MigrationResult } from "../migration/service.js";
import { VERSION } from "../version.js";
import type { IgordNode, Quarantine } from "./node.js";
import { removeAgent, startAgent, stopAgent } from "./agent-lifecycle.js";
import { upgradeAgent } from "./code-upgrade.js";

type Listed = Record<string, unknown> & { id: string };

/**
 * One GET of an agent's outbox holds at most this many messages and bytes of them (whole ticks, at
 * least one): a reader pages on with ?after=<the last tick it got>.
 */
export const MAX_OUTBOX_PAGE_MESSAGES = 1000;
export const MAX_OUTBOX_PAGE_BYTES = 4 * 1024 * 1024;

function migrationResultJson(r: MigrationResult): Record<string, unknown> {
  return { ...r, epoch: r.epoch ? formatEpoch(r.epoch) : null };
}

function loadFailureJson(f: LoadFailure): Record<string, unknown> {
  return { id: f.agentId, status: "load_failed", reason: f.code.toLowerCase(), path: f.path, error: { code: f.code, message: f.message }, since: new Date(f.at).toISOString() };
}

function quarantineJson(id: string, q: Quarantine): Record<string, unknown> {
  return { id, status: "quarantined", reason: q.code.toLowerCase(), error: { code: q.code, message: q.message }, since: new Date(q.at).toISOString() };
}

/**
 * Quarantined agents as listed: not those whose unresolved handoff the status query is settling
 * (a start refuses to run them, LEASE_HANDOFF_UNRESOLVED, while it asks): those are listed
 * `handoff_unresolved`, with their lease, as before the restart.
 */
export function listedQuarantined(node: IgordNode): [string, Quarantine][] {
  const resolving = new Set(node.migration?.resolvingAgents() ?? []);
  return [...node.quarantined].filter(([id]) => !resolving.has(id) && !node.scheduler.has(id));
}

/** Agents handed off without a confirmation yet: the status query to their target is running. */
function unresolvedHandoffs(node: IgordNode): Listed[] {
  return (node.migration?.resolvingAgents() ?? []).map((id) => {
    const lease = node.store.lease(id);
    return {
      id,
      status: "handoff_unresolved",
      reason: "awaiting the migration target's answer",
      lease: lease ? { state: lease.state, epoch: formatEpoch(lease.epoch), target: lease.handoff?.target ?? null } : null,
    };
  });
}

/**
 * Agents detached for a hop this node sends, still under way (node.migratingAgents): listed with
 * their target, lease and migration record. Before, a hop retrying a target that stopped answering
 * (minutes at the defaults) made the agent vanish: `igord agents` did not list it and
 * `GET /v1/agents/:id` answered "no agent on this node", while it ran nowhere.
 */
function migratingAgents(node: IgordNode): Listed[] {
  return node.migratingAgents().map((id) => {
    const lease = node.store.lease(id);
    const record = node.store.migrations({ agentId: id, limit: 1 }).find((m) => m.direction === "out");
    const target = lease?.handoff?.target ?? record?.peer ?? null;
    const progress = record ? ` (${record.state}, attempt ${record.attempts})` : "";
    return {
      id,
      did: node.store.agent(id)?.did ?? null,
      status: "migrating",
      reason: `handing off to ${target ?? "its target"}${progress}; it runs nowhere until the hop ends`,
      tick: node.store.head(id)?.tick.toString() ?? null,
      target,
      lease: lease ? { state: lease.state, epoch: formatEpoch(lease.epoch), target: lease.handoff?.target ?? null } : null,
      migration: record ? { id: record.id, state: record.state, attempts: record.attempts, fallbacks: record.fallbacks, since: new Date(record.updatedAt).toISOString() } : null,
    };
  });
}

/**
 * Agents being received here (an offer taken, its package arriving, replayed or waiting for its
 * source's `durable`; or a pending reception being stored): not stored or scheduled yet, so listed
 * nowhere else. Before, `igord agents` on the target did not show them, though they count toward
 * --max-agents and an offer of the same agent is refused MIGRATION_BUSY.
 */
function receivingAgents(node: IgordNode): Listed[] {
  return node.receivingAgents().flatMap((id) => {
    const r = node.migration?.receiving.get(id);
    return r ? [{ id, status: "receiving", reason: `being received from ${r.peer}; it runs here once stored`, source: r.peer, epoch: formatEpoch(r.epoch), since: new Date(r.since).toISOString() }] : [];
  });
}

/**
 * Agents stored here as pending receptions a crash left (migration/pending-reception.ts), not being
 * received right now: this node may be their one copy (their source retired them), they count toward
 * --max-agents, and each settles by asking its source. Not listed anywhere else.
 */
function pendingReceptions(node: IgordNode): Listed[] {
  return node.store
    .pendingReceptionSummaries()
    .filter((p) => !node.migration?.receiving.has(p.agentId) && !node.scheduler.has(p.agentId))
    .map((p) => ({
      id: p.agentId,
      did: p.did,
      status: "reception_pending",
      reason: "stored before its source said its handoff was durable; settled by asking the source",
      source: p.peer,
      epoch: formatEpoch(p.epoch),
      checkpointHash: p.checkpointHash,
      bytes: p.bytes,
      since: new Date(p.createdAt).toISOString(),
    }));
}

export function nodeStatus(node: IgordNode): Record<string, unknown> {
  const counts = Object.fromEntries(node.scheduler.statusCounts());
  counts.quarantined = listedQuarantined(node).length;
  counts.loadFailed = node.loadFailures.size;
  if (node.staleBinaries.size > 0) counts.staleBinaries = node.staleBinaries.size;
  counts.hibernated = node.scheduler.hibernatedCount();
  const pending = pendingReceptions(node).length;
  if (pending > 0) counts.receptionPending = pending;
  const migrating = node.migratingAgents().length;
  if (migrating > 0) counts.migrating = migrating;
  const receiving = node.receivingAgents().length;
  if (receiving > 0) counts.receiving = receiving;
  const pool = node.pool.stats();
  return {
    version: VERSION,
    nodeId: node.nodeId,
    pid: process.pid,
    startedAt: new Date(node.startedAt).toISOString(),
    uptimeSeconds: Math.round((Date.now() - node.startedAt) / 1000),
    agents: counts,
    workers: pool,
    capabilities: node.capabilities.list(),
    priceMicrocents: node.config.price.toString(),
    tickIntervalMs: node.config.tickIntervalMs,
    fastTickIntervalMs: node.config.fastTickIntervalMs,
    tickTimeoutMs: node.config.tickTimeoutMs,
    agentsDir: resolve(node.config.agentsDir),
    dataDir: resolve(node.config.dataDir),
    p2p: node.migration ? { peerId: node.migration.peerId, addrs: node.migration.addresses() } : null,
  };
}

/** Every agent this node knows of as the control API lists them: running, stopped, quarantined, in handoff, failed to load. */
export function agentsListing(node: IgordNode, opts: { all?: boolean } = {}): Listed[] {
  const receiving = receivingAgents(node);
  const listed: Listed[] = [
    // An agent coming back to a node it left is listed once, as being received.
    ...(opts.all ? retiredJson(node).filter((r) => !receiving.some((a) => a.id === r.id)) : []),
    ...node.scheduler.list().map((v) => ({ ...agentJson(v), id: v.id, lastDivergence: lastDivergence(node, v.id) })),
    ...listedQuarantined(node).map(([id, q]) => ({ ...quarantineJson(id, q), id })),
    ...unresolvedHandoffs(node).filter((h) => !node.scheduler.has(h.id)),
    ...migratingAgents(node),
    ...receiving,
    ...pendingReceptions(node).filter((p) => !node.quarantined.has(p.id)),
    ...node.loadFailures.list().map((f) => ({ ...loadFailureJson(f), id: f.agentId })),
    ...storedOnly(node, opts.all ?? false),
  ];
  // A file in the agents dir holding other code than the agent runs: shown with the command to run.
  return listed.map((a) => {
    const stale = a.status !== "load_failed" ? node.staleBinaries.get(a.id) : undefined;
    return stale ? { ...a, staleBinary: stale } : a;
  });
}

/**
 * Stored agents this node holds but does not run and lists nowhere else: stopped (igord stop holds
 * them across restarts), failed; with `all`, also removed ones (history kept).
 */
function storedOnly(node: IgordNode, all: boolean): Listed[] {
  const out: Listed[] = [];
  for (const row of node.store.listAgents()) {
    if (row.status === "active" || (row.status === "removed" && !all)) continue;
    if (node.scheduler.has(row.agentId) || node.quarantined.has(row.agentId)) continue;
    // Moved away: listed (with --all) as retired, where it went.
    if (row.status !== "removed" && node.store.lease(row.agentId)?.state === "RETIRED") continue;
    const head = node.store.head(row.agentId);
    out.push({ id: row.agentId, did: row.did, status: row.status, reason: row.reason, tick: head ? head.tick.toString() : null, wasmHash: row.wasmHash });
  }
  return out;
}

/** The agent's most recent divergence this node remembers (the table shows it next to the count). */
function lastDivergence(node: IgordNode, id: string): { tick: string; code: string } | null {
  const d = node.divergences.of(id).at(-1);
  return d ? { tick: d.tick.toString(), code: d.code } : null;
}

/** Agents that moved away from this node: where and when they went, at which epoch. */
function retiredJson(node: IgordNode): Listed[] {
  const out: Listed[] = [];
  for (const row of node.store.listAgents()) {
    if (node.scheduler.has(row.agentId)) continue;
    if (row.status === "removed") continue; // listed as removed, not as moved away
    const lease = node.store.lease(row.agentId);
    if (lease?.state !== "RETIRED") continue;
    const moved = node.store.migrations({ agentId: row.agentId, limit: 20 }).find((m) => m.direction === "out" && m.state === "done");
    out.push({
      id: row.agentId,
      did: row.did,
      status: "retired",
      reason: "migrated",
      target: moved?.peer ?? lease.handoff?.target ?? null,
      epoch: formatEpoch(lease.epoch),
      since: moved ? new Date(moved.updatedAt).toISOString() : null,
    });
  }
  return out;
}

export function controlBackend(node: IgordNode): ControlBackend {
  const turns = node.turns;
  return {
    status: () => nodeStatus(node),
    agents: (o?: { all?: boolean }) => agentsListing(node, o),
    agent: (id: string) => {
      const v = node.scheduler.view(id);
      if (v) return agentJson(v);
      const q = listedQuarantined(node).find(([qid]) => qid === id)?.[1];
      if (q) return quarantineJson(id, q);
      // Not running here: as GET /v1/agents?all=true lists it (stopped, failed, removed, moved away,
      // its file failed to load, a handoff to settle). Such agents answered 404 while the list showed them.
      return agentsListing(node, { all: true }).find((a) => a.id === id);
    },
    metrics: async () => ({ contentType: node.metrics.contentType, body: await node.metrics.render() }),
    resume: (id: string) => turns.run(id, async () => agentJson(await node.resumeAgent(id))),
    stop: (id: string) => turns.run(id, () => stopAgent(node, id)),
    start: (id: string) => turns.run(id, () => startAgent(node, id)),
    remove: (id: string) => turns.run(id, () => removeAgent(node, id)),
    upgrade: (id: string, wasmPath: string) => turns.run(id, () => upgradeAgent(node, id, wasmPath)),
    migrate: async (id: string, targets: string[]) => migrationResultJson(await node.migrate(id, targets)),
    outbox: (id: string, after?: string) => {
      if (!node.store.agent(id)) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${id}" on this node`);
      if (after !== undefined && !/^\d+$/.test(after)) throw new IgordError(ErrorCode.ConfigInvalid, `"after" must be a tick number, got "${after}"`);
      const page = node.store.outboxPage(id, after === undefined ? -1n : BigInt(after), MAX_OUTBOX_PAGE_MESSAGES, MAX_OUTBOX_PAGE_BYTES);
      const messages = page.messages.map((m) => ({
        tick: m.tick.toString(),
        index: m.index,
        epochMajor: m.epochMajor.toString(),
        text: new TextDecoder().decode(m.payload),
        base64: Buffer.from(m.payload).toString("base64"),
        at: new Date(m.createdAt).toISOString(),
      }));
      return { messages, keptFromTick: page.keptFromTick.toString() };
    },
    peers: () => ({
      peerId: node.migration?.peerId ?? null,
      addrs: node.migration?.addresses() ?? [],
      peers: (node.migration?.peers.list() ?? []).map((p) => ({
        id: p.id,
        addrs: p.addrs,
        price: p.price === null ? null : p.price.toString(),
        capabilities: p.capabilities,
        acceptsMigrations: p.acceptsMigrations,
        lastSeen: p.lastSeen === null ? null : new Date(p.lastSeen).toISOString(),
        failures: p.failures,
        rttMs: p.rttMs,
        vouched: p.vouched,
      })),
    }),
    timeline: (id: string) => agentTimeline(node.store, node.divergences, id),
    migrations: (agentId?: string) =>
      node.store.migrations(agentId ? { agentId } : {}).map((m) => ({
        ...m,
        epoch: m.epoch ? formatEpoch(m.epoch) : null,
        at: Object.fromEntries(Object.entries(m.at).map(([k, v]) => [k, new Date(v).toISOString()])),
        updatedAt: new Date(m.updatedAt).toISOString(),
      })),
    setCapabilities: (caps: string[]) => {
      node.capabilities.replace(caps);
      node.logger.info(
        { event: "capabilities_changed", capabilities: node.capabilities.list() },
        "node capabilities changed",
      );
      return node.capabilities.list();
    },
  };
}
