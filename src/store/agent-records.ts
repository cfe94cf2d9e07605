// Agents as this node holds them: the agents row (module, manifest, status, lease), the identity,
// and the signed lineage events (budget overrides, recoveries, imports). The lease compare-and-set
// lives here because every writer above (checkpoints, receipts, receptions) checks it first.
import Database from "better-sqlite3";
import type { Lease, LeaseState } from "../authority/lease.js";
import { ErrorCode, IgordError } from "../errors.js";
import { type Ed25519Key, keyFromSeed } from "../identity/keys.js";
import { MigrationRecords } from "./migration-records.js";
import { rowToAgent, u8 } from "./rows.js";
import { type AgentRow, type AgentStatus, BUSY_TIMEOUT_MS, type LeaseBelief, type LeaseRenewal, type LineageEvent, type NewAgent } from "./types.js";

/** The agents row's lease columns. */
type LeaseRow = {
  lease_state: LeaseState;
  epoch_major: bigint;
  epoch_generation: bigint;
  lease_expires_at: bigint | null;
  handoff_target: string | null;
  handoff_checkpoint: string | null;
};

function rowToLease(r: LeaseRow): Lease {
  return {
    state: r.lease_state,
    epoch: { major: r.epoch_major, generation: r.epoch_generation },
    expiresAtMs: r.lease_expires_at === null ? null : Number(r.lease_expires_at),
    handoff: r.handoff_target && r.handoff_checkpoint ? { target: r.handoff_target, checkpointHash: r.handoff_checkpoint } : null,
  };
}

export abstract class AgentRecords extends MigrationRecords {
  /** Last status written per agent, so a checkpoint only updates the agents row when it changes. */
  protected readonly lastStatus = new Map<string, string>();
  /** Whether a checkpoint may skip writing a status this connection itself last wrote (one writer only). */
  protected statusCached = true;

  protected insertAgentRows(a: NewAgent): void {
    this.putWasm(a.wasmHash, a.wasmBytes);
    const now = Date.now();
    const l = a.lease;
    this.sql(
      "INSERT INTO agents (agent_id, did, wasm_hash, manifest, status, reason, created_at, updated_at, lease_state, epoch_major, epoch_generation, lease_expires_at) VALUES (?, ?, ?, ?, 'active', NULL, ?, ?, ?, ?, ?, ?)",
    ).run(a.agentId, a.did, a.wasmHash, a.manifest, now, now, l?.state ?? "ACTIVE_OWNER", l?.epoch.major ?? 0n, l?.epoch.generation ?? 0n, l?.expiresAtMs ?? null);
    this.sql("INSERT INTO identities (agent_id, did, seed, public_key) VALUES (?, ?, ?, ?)").run(
      a.agentId,
      a.did,
      Buffer.from(a.identity.seed),
      Buffer.from(a.identity.publicKey),
    );
  }

  agent(agentId: string): AgentRow | undefined {
    const r = this.sql("SELECT * FROM agents WHERE agent_id = ?").get(agentId) as Record<string, unknown> | undefined;
    return r ? rowToAgent(r) : undefined;
  }

  listAgents(): AgentRow[] {
    return (this.sql("SELECT * FROM agents ORDER BY agent_id").all() as Record<string, unknown>[]).map(rowToAgent);
  }

  /** The agent's key. Missing or corrupt is an error: an identity is never silently replaced. */
  identity(agentId: string): Ed25519Key {
    const r = this.sql("SELECT did, seed, public_key FROM identities WHERE agent_id = ?").get(agentId) as
      | { did: string; seed: Buffer; public_key: Buffer }
      | undefined;
    if (!r) throw new IgordError(ErrorCode.IdentityMissing, `agent "${agentId}" has no identity in ${this.path}`);
    let key: Ed25519Key;
    try {
      key = keyFromSeed(u8(r.seed));
    } catch (e) {
      throw new IgordError(ErrorCode.IdentityCorrupt, `identity of agent "${agentId}" is corrupt: ${(e as Error).message}`);
    }
    if (!Buffer.from(key.publicKey).equals(r.public_key)) {
      throw new IgordError(ErrorCode.IdentityCorrupt, `identity of agent "${agentId}" is corrupt: its private key does not match its public key`);
    }
    return key;
  }

  lineageEvents(agentId: string): LineageEvent[] {
    return (
      this.sql("SELECT * FROM lineage_events WHERE agent_id = ? ORDER BY seq", true).all(agentId) as Record<string, unknown>[]
    ).map((r) => ({
      kind: r.kind as LineageEvent["kind"],
      afterHash: u8(r.after_hash as Buffer),
      tick: r.tick as bigint,
      oldBudget: r.old_budget as bigint,
      newBudget: r.new_budget as bigint,
      reason: r.reason as string,
      signature: u8(r.signature as Buffer),
    }));
  }

  addLineageEvent(agentId: string, e: LineageEvent): void {
    const next = (this.sql("SELECT COALESCE(MAX(seq), 0) + 1 AS s FROM lineage_events WHERE agent_id = ?").get(agentId) as { s: number }).s;
    this.sql("INSERT INTO lineage_events (agent_id, seq, kind, after_hash, tick, old_budget, new_budget, reason, signature, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .run(agentId, next, e.kind, Buffer.from(e.afterHash), e.tick, e.oldBudget, e.newBudget, e.reason, Buffer.from(e.signature), Date.now());
  }

  /** A code upgrade, in one durable transaction: the new module (kept by hash beside every earlier one), the agent's module, the signed lineage event. */
  recordUpgrade(agentId: string, wasmHash: string, bytes: Uint8Array, event: LineageEvent): void {
    this.durably(() => {
      this.putWasm(wasmHash, bytes);
      this.sql("UPDATE agents SET wasm_hash = ?, updated_at = ? WHERE agent_id = ?").run(wasmHash, Date.now(), agentId);
      this.addLineageEvent(agentId, event);
    });
  }

  /** Writes the agent's status; with `lease`, only if the stored lease still matches (like a checkpoint). */
  setStatus(agentId: string, status: AgentStatus, reason: string | null, lease?: LeaseBelief): void {
    this.db.transaction(() => {
      this.checkLease(agentId, lease);
      this.sql("UPDATE agents SET status = ?, reason = ?, updated_at = ? WHERE agent_id = ?").run(status, reason, Date.now(), agentId);
    }).immediate();
    this.lastStatus.set(agentId, `${status}:${reason ?? ""}`);
  }

  /** Throws LEASE_STALE when a writer's lease is no longer the stored one (renewals allowed). */
  protected checkLease(agentId: string, lease: LeaseBelief | undefined): void {
    if (!lease) return;
    const stale = this.staleLease(agentId, lease, false);
    if (stale) throw stale;
  }

  protected staleLease(agentId: string, belief: LeaseBelief, exact: boolean): IgordError | null {
    const r = this.sql("SELECT lease_state, epoch_major, epoch_generation FROM agents WHERE agent_id = ?", true).get(agentId) as LeaseColumns | undefined;
    return this.leaseMismatch(agentId, belief, exact, r);
  }

  /** staleLease on the agent's lease columns already read (undefined: no such agent). */
  protected leaseMismatch(agentId: string, belief: LeaseBelief, exact: boolean, r: LeaseColumns | undefined): IgordError | null {
    const generationOk = exact ? r?.epoch_generation === belief.epoch.generation : (r?.epoch_generation ?? -1n) >= belief.epoch.generation;
    if (r && r.lease_state === belief.state && r.epoch_major === belief.epoch.major && generationOk) return null;
    return new IgordError(
      ErrorCode.LeaseStale,
      `agent "${agentId}": the writer holds ${belief.state} (${belief.epoch.major},${belief.epoch.generation}) but the store has ${r ? `${r.lease_state} (${r.epoch_major},${r.epoch_generation})` : "no agent"}; write refused`,
      { details: { agentId } },
    );
  }

  lease(agentId: string): Lease | undefined {
    const r = this.sql(
      "SELECT lease_state, epoch_major, epoch_generation, lease_expires_at, handoff_target, handoff_checkpoint FROM agents WHERE agent_id = ?",
      true,
    ).get(agentId) as LeaseRow | undefined;
    return r ? rowToLease(r) : undefined;
  }

  /** The agent's row and its lease, from one read of the agents row (as agent() and lease() would return them). */
  agentAndLease(agentId: string): { row: AgentRow; lease: Lease } | undefined {
    // Epochs as bigints, as lease() reads them.
    const r = this.sql("SELECT * FROM agents WHERE agent_id = ?", true).get(agentId) as (Record<string, unknown> & LeaseRow) | undefined;
    return r ? { row: rowToAgent(r), lease: rowToLease(r) } : undefined;
  }

  /**
   * Compare-and-set of the agent's lease: refused with LEASE_STALE unless `expected` is what is
   * stored. Durable whatever --sync says unless it only renews (or sets the expiry of) an owner's
   * lease: a renewal has no fsync of its own even under --sync full (it ran on the main thread at
   * every renewal, ~33/s for 1,000 agents). Lost to a power cut, the lease on disk is the one before
   * it, as on a node that was down that long: an earlier expiry, settled by the lease fence at
   * restart; the next durable commit (a checkpoint's, under --sync full) makes it durable in WAL order.
   */
  writeLease(agentId: string, expected: LeaseBelief, next: Lease): void {
    const write = isRenewal(expected, next) ? (fn: () => void) => this.atomicallyUnsynced(fn) : (fn: () => void) => this.durably(fn);
    write(() => {
      const stale = this.swapLease(agentId, expected, next);
      if (stale) throw stale;
    });
  }

  /** The compare-and-set itself, inside the caller's transaction: the error that refuses it, or null once written. */
  private swapLease(agentId: string, expected: LeaseBelief, next: Lease): IgordError | null {
    const stale = this.staleLease(agentId, expected, true);
    if (stale) return stale;
    this.sql(
      "UPDATE agents SET lease_state = ?, epoch_major = ?, epoch_generation = ?, lease_expires_at = ?, handoff_target = ?, handoff_checkpoint = ?, updated_at = ? WHERE agent_id = ?",
    ).run(
      next.state,
      next.epoch.major,
      next.epoch.generation,
      next.expiresAtMs,
      next.handoff?.target ?? null,
      next.handoff?.checkpointHash ?? null,
      Date.now(),
      agentId,
    );
    return null;
  }

  /**
   * Renewals (writeLease's compare-and-set) in one transaction that does not wait for the write lock:
   * null, with nothing written, when another connection holds it — under load the commit thread
   * does, through each group commit, and waiting put the main thread to sleep in SQLite's busy
   * handler (a mean 7 ms a renewal, up to ~115, in the checkpoint bench); the lease fence tries again
   * while the leases have time to spare. Else, per renewal in order, null once written or the error
   * that refused it (LEASE_STALE: the others are still written). Each transaction of another connection
   * drops the commit thread's page cache, which it then reads back page by page: the lease fence
   * renews the agents that came due since its last sweep together, not one transaction each (~33
   * a second for 1,000 agents at the defaults; docs/BENCHMARKS.md, "lease renewals together").
   * Not a renewal (another state or major): LEASE_TRANSITION, before anything is written.
   */
  tryRenewLeases(renewals: readonly LeaseRenewal[]): (IgordError | null)[] | null {
    for (const r of renewals) {
      if (!isRenewal(r.expected, r.next)) throw new IgordError(ErrorCode.LeaseTransition, `agent "${r.agentId}": ${r.expected.state} to ${r.next.state} is not a renewal`);
    }
    if (renewals.length === 0) return [];
    // exec, not pragma(): no Statement object a flip (as StoreBase.lightly).
    this.db.exec("PRAGMA busy_timeout = 0");
    try {
      return this.atomicallyUnsynced(() => renewals.map((r) => this.swapLease(r.agentId, r.expected, r.next)));
    } catch (e) {
      if (e instanceof Database.SqliteError && e.code === "SQLITE_BUSY") return null;
      throw e;
    } finally {
      this.db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  }
}

/** Only extends an owner's lease (a new generation and expiry): no fsync of its own (writeLease). */
function isRenewal(expected: LeaseBelief, next: Lease): boolean {
  return expected.state === "ACTIVE_OWNER" && next.state === "ACTIVE_OWNER" && next.epoch.major === expected.epoch.major;
}

/** An agent's lease columns as stored. */
export interface LeaseColumns {
  lease_state: string;
  epoch_major: bigint;
  epoch_generation: bigint;
}
