// Migration records, fences and incoming handoffs: what this node knows about agents moving between
// nodes. Separate from the agents themselves because these rows outlive (and predate) an agent's
// presence here, are capped per peer, and are pruned on their own schedule.
import type { Epoch } from "../authority/lease.js";
import { rowToMigration, STATE_COLUMN } from "./rows.js";
import { StoreBase } from "./store-base.js";
import { type HandoffKey, type IncomingAgent, MAX_FENCES_PER_PEER, type MigrationDirection, type MigrationRow, type MigrationState, type MigrationUpdate, type PendingReception } from "./types.js";

const HANDOFF_WHERE = "agent_id = ? AND did = ? AND peer = ? AND epoch_major = ? AND epoch_generation = ?";
const handoffArgs = (h: HandoffKey): unknown[] => [h.agentId, h.did, h.peer, h.epoch.major, h.epoch.generation];
const rowToPending = (r: Record<string, unknown>): PendingReception => ({
  agentId: r.agent_id as string,
  did: r.did as string,
  peer: r.peer as string,
  epoch: { major: r.epoch_major as bigint, generation: r.epoch_generation as bigint },
  checkpointHash: r.checkpoint_hash as string,
  package: r.package as Uint8Array,
  sourceAddrs: JSON.parse(r.source_addrs as string) as string[],
});

export abstract class MigrationRecords extends StoreBase {
  /** A new migration record; `attempts`: the attempts it starts with (the first one's, when it begins right away). */
  createMigration(m: { agentId: string; direction: MigrationDirection; peer: string | null; state: MigrationState; checkpointHash?: string; epoch?: Epoch; attempts?: number }): number {
    const now = Date.now();
    const info = this.lightly(() =>
      this.sql(
        `INSERT INTO migrations (agent_id, direction, peer, state, checkpoint_hash, epoch_major, epoch_generation, attempts, ${STATE_COLUMN[m.state]}, requested_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(m.agentId, m.direction, m.peer, m.state, m.checkpointHash ?? null, m.epoch?.major ?? null, m.epoch?.generation ?? null, m.attempts ?? 0, now, now, now),
    );
    return Number(info.lastInsertRowid);
  }

  /** The record of an agent received by migration: written in the transaction that stores the agent. */
  protected recordReceived(agentId: string, did: string, m: IncomingAgent["migration"]): number {
    const now = Date.now();
    const info = this.sql(
      "INSERT INTO migrations (agent_id, direction, peer, state, checkpoint_hash, epoch_major, epoch_generation, attempts, bytes, requested_at, transferring_at, awaiting_at, done_at, updated_at) VALUES (?, 'in', ?, 'done', ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
    ).run(agentId, m.peer, m.checkpointHash, m.sourceEpoch.major, m.sourceEpoch.generation, m.bytes, now, now, now, now, now);
    // The handoff is settled by the agent being here: its record goes in the same transaction.
    this.sql(`DELETE FROM incoming_handoffs WHERE ${HANDOFF_WHERE}`).run(...handoffArgs({ agentId, did, peer: m.peer, epoch: m.sourceEpoch }));
    // A pending reception of it is flipped by this transaction (migration/pending-reception.ts).
    this.sql("DELETE FROM pending_receptions WHERE agent_id = ?").run(agentId);
    return Number(info.lastInsertRowid);
  }

  /** Moves a migration record; the first time a state is reached its timestamp is kept. */
  updateMigration(id: number, u: MigrationUpdate): void {
    const sets: string[] = ["updated_at = ?"];
    const args: unknown[] = [Date.now()];
    if (u.state) {
      sets.push("state = ?", `${STATE_COLUMN[u.state]} = COALESCE(${STATE_COLUMN[u.state]}, ?)`);
      args.push(u.state, Date.now());
    }
    const set = (column: string, value: unknown): void => {
      sets.push(`${column} = ?`);
      args.push(value);
    };
    if (u.peer !== undefined) set("peer", u.peer);
    if (u.attempts !== undefined) set("attempts", u.attempts);
    if (u.fallbacks !== undefined) set("fallbacks", u.fallbacks);
    if (u.bytes !== undefined) set("bytes", u.bytes);
    if (u.checkpointHash !== undefined) set("checkpoint_hash", u.checkpointHash);
    if (u.epoch !== undefined) {
      set("epoch_major", u.epoch.major);
      set("epoch_generation", u.epoch.generation);
    }
    if (u.error !== undefined) {
      set("error_code", u.error?.code ?? null);
      set("error_message", u.error?.message ?? null);
    }
    args.push(id);
    // One statement per set of columns (a handful), prepared once.
    this.lightly(() => this.sql(`UPDATE migrations SET ${sets.join(", ")} WHERE id = ?`).run(...args));
  }

  migrations(o: { agentId?: string; limit?: number } = {}): MigrationRow[] {
    const rows = (
      o.agentId
        ? this.sql("SELECT * FROM migrations WHERE agent_id = ? ORDER BY id DESC LIMIT ?", true).all(o.agentId, o.limit ?? 100)
        : this.sql("SELECT * FROM migrations ORDER BY id DESC LIMIT ?", true).all(o.limit ?? 100)
    ) as Record<string, unknown>[];
    return rows.map(rowToMigration);
  }

  /** The completed incoming migration of exactly this checkpoint and source epoch, if any. */
  incomingDone(agentId: string, checkpointHash: string, epoch: Epoch): MigrationRow | undefined {
    const r = this.sql(
      "SELECT * FROM migrations WHERE agent_id = ? AND direction = 'in' AND state = 'done' AND checkpoint_hash = ? AND epoch_major = ? AND epoch_generation = ? ORDER BY id DESC LIMIT 1",
      true,
    ).get(agentId, checkpointHash, epoch.major, epoch.generation) as Record<string, unknown> | undefined;
    return r ? rowToMigration(r) : undefined;
  }

  /** Migration records in a non-terminal state not updated since `beforeMs`. */
  staleMigrations(beforeMs: number): MigrationRow[] {
    return (this.sql("SELECT * FROM migrations WHERE state NOT IN ('done', 'failed') AND updated_at < ?", true).all(beforeMs) as Record<string, unknown>[]).map(
      rowToMigration,
    );
  }

  /** Deletes finished migration records older than `beforeMs`; returns how many. */
  pruneMigrations(beforeMs: number): number {
    return this.sql("DELETE FROM migrations WHERE state IN ('done', 'failed') AND updated_at < ?").run(beforeMs).changes;
  }

  /**
   * Refuse packages for the agent (this DID) at or below this source epoch from now on (keeps the
   * highest). `peer` is the node whose handoff the fence settled; each peer's fences are capped at
   * MAX_FENCES_PER_PEER, its oldest dropped first (a peer can only crowd out its own).
   */
  fenceAgent(f: HandoffKey): void {
    this.durably(() => {
      this.sql(
        "INSERT INTO migration_fences (agent_id, did, peer, epoch_major, epoch_generation, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(agent_id, did) DO UPDATE SET peer = excluded.peer, epoch_major = excluded.epoch_major, epoch_generation = excluded.epoch_generation, created_at = excluded.created_at WHERE excluded.epoch_major > migration_fences.epoch_major OR (excluded.epoch_major = migration_fences.epoch_major AND excluded.epoch_generation > migration_fences.epoch_generation)",
      ).run(...handoffArgs(f), Date.now());
      this.capPerPeer("migration_fences", f.peer);
    });
  }

  /** The highest fenced epoch of the agent with this DID (fences from before DIDs apply to any). */
  fence(agentId: string, did: string): Epoch | undefined {
    const r = this.sql(
      "SELECT epoch_major, epoch_generation FROM migration_fences WHERE agent_id = ? AND did IN (?, '') ORDER BY epoch_major DESC, epoch_generation DESC LIMIT 1",
      true,
    ).get(agentId, did) as { epoch_major: bigint; epoch_generation: bigint } | undefined;
    return r ? { major: r.epoch_major, generation: r.epoch_generation } : undefined;
  }

  /**
   * Records that `peer` offered the agent at this epoch and the offer was taken (before the reply).
   * No fsync of its own: the record only lets that peer's status query fence the handoff, against a
   * package of that offer still arriving; a power cut that loses the record also drops the stream
   * the package could come on (a package comes only on its offer's stream, and a restarted node has
   * none from before). A killed process keeps it (WAL); the reception's durable commit carries it.
   */
  recordIncomingHandoff(h: HandoffKey): void {
    this.atomicallyUnsynced(() => {
      this.sql(
        "INSERT INTO incoming_handoffs (agent_id, did, peer, epoch_major, epoch_generation, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET created_at = excluded.created_at",
      ).run(...handoffArgs(h), Date.now());
      this.capPerPeer("incoming_handoffs", h.peer);
    });
  }

  /** Whether `peer` offered this agent at this epoch here (and the record was not settled or pruned). */
  hasIncomingHandoff(h: HandoffKey): boolean {
    return this.sql(`SELECT 1 FROM incoming_handoffs WHERE ${HANDOFF_WHERE}`, true).get(...handoffArgs(h)) !== undefined;
  }

  /** Forgets a handoff record (the agent was stored, or the handoff was fenced). */
  settleIncomingHandoff(h: HandoffKey): void {
    this.sql(`DELETE FROM incoming_handoffs WHERE ${HANDOFF_WHERE}`).run(...handoffArgs(h));
  }

  /**
   * Stores a pending reception (one per agent: a newer one of the same agent replaces it). Committed
   * on return; the promise settles once it is durable (its fsync off the main thread).
   */
  recordPendingReception(p: PendingReception): Promise<void> {
    return this.durablyOffThread(() => {
      this.sql(
        "INSERT INTO pending_receptions (agent_id, did, peer, epoch_major, epoch_generation, checkpoint_hash, package, source_addrs, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET did = excluded.did, peer = excluded.peer, epoch_major = excluded.epoch_major, epoch_generation = excluded.epoch_generation, checkpoint_hash = excluded.checkpoint_hash, package = excluded.package, source_addrs = excluded.source_addrs, created_at = excluded.created_at",
      ).run(...handoffArgs(p), p.checkpointHash, p.package, JSON.stringify(p.sourceAddrs), Date.now());
    }).durable;
  }

  /** The agent's pending reception, if one is stored. */
  pendingReception(agentId: string): PendingReception | undefined {
    const r = this.sql("SELECT * FROM pending_receptions WHERE agent_id = ?", true).get(agentId) as Record<string, unknown> | undefined;
    return r ? rowToPending(r) : undefined;
  }

  /** Whether the agent has a pending reception (without reading its package). */
  hasPendingReception(agentId: string): boolean {
    return this.sql("SELECT 1 FROM pending_receptions WHERE agent_id = ?").get(agentId) !== undefined;
  }

  /** Each pending reception's agent and source peer, oldest first (one read per offer; usually none). */
  pendingReceptionKeys(): { agentId: string; peer: string }[] {
    return (this.sql("SELECT agent_id, peer FROM pending_receptions ORDER BY created_at").all() as { agent_id: string; peer: string }[]).map((r) => ({ agentId: r.agent_id, peer: r.peer }));
  }

  /** The pending receptions, without their packages (what an operator sees of them), oldest first. */
  pendingReceptionSummaries(): { agentId: string; did: string; peer: string; epoch: Epoch; checkpointHash: string; bytes: number; createdAt: number }[] {
    const rows = this.sql("SELECT agent_id, did, peer, epoch_major, epoch_generation, checkpoint_hash, length(package) AS bytes, created_at FROM pending_receptions ORDER BY created_at", true).all() as Record<string, unknown>[];
    return rows.map((r) => ({
      agentId: r.agent_id as string,
      did: r.did as string,
      peer: r.peer as string,
      epoch: { major: r.epoch_major as bigint, generation: r.epoch_generation as bigint },
      checkpointHash: r.checkpoint_hash as string,
      bytes: Number(r.bytes),
      createdAt: Number(r.created_at),
    }));
  }

  /**
   * Forgets a pending reception that will never be flipped (refused, or its source kept the agent).
   * No fsync of its own: a row that comes back after a power cut is resolved again, to the same end.
   */
  dropPendingReception(agentId: string, checkpointHash: string): void {
    this.atomicallyUnsynced(() => this.sql("DELETE FROM pending_receptions WHERE agent_id = ? AND checkpoint_hash = ?").run(agentId, checkpointHash));
  }

  incomingHandoffCount(peer: string): number {
    return Number((this.sql("SELECT COUNT(*) AS n FROM incoming_handoffs WHERE peer = ?", true).get(peer) as { n: bigint }).n);
  }

  /** Deletes fences and handoff records older than `beforeMs`; returns how many. */
  pruneFences(beforeMs: number): number {
    return (
      this.sql("DELETE FROM migration_fences WHERE created_at < ?").run(beforeMs).changes +
      this.sql("DELETE FROM incoming_handoffs WHERE created_at < ?").run(beforeMs).changes
    );
  }

  /** Agents that run here (not retired) whose latest incoming migration came from `peer`. */
  agentsReceivedFrom(peer: string): number {
    const r = this.sql(
      "SELECT COUNT(*) AS n FROM agents a WHERE a.lease_state != 'RETIRED' AND (SELECT m.peer FROM migrations m WHERE m.agent_id = a.agent_id AND m.direction = 'in' AND m.state = 'done' ORDER BY m.id DESC LIMIT 1) = ?",
      true,
    ).get(peer) as { n: bigint };
    return Number(r.n);
  }

  private capPerPeer(table: "migration_fences" | "incoming_handoffs", peer: string): void {
    this.sql(`DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE peer = ? ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)`).run(
      peer,
      MAX_FENCES_PER_PEER,
    );
  }
}
