// The node's SQLite database (<data-dir>/igord.db): WAL mode, forward-only migrations, and the only
// place in the code base with SQL. Checkpoint, history row, receipt and agent status commit in one
// transaction; checkpoints from many agents are group-committed in one transaction per turn of the
// event loop, so one fsync covers them all.
import Database from "better-sqlite3";
import { closeSync, openSync, rmSync } from "node:fs";
import type { Epoch, Lease, LeaseState } from "../authority/lease.js";
import type { HistoryBase } from "../checkpoint/history-base.js";
import type { BudgetOverride } from "../checkpoint/overrides.js";
import { ErrorCode, IgordError } from "../errors.js";
import type { EventLogSegment } from "../eventlog/tick-log.js";
import { peerIdFromPublicKey } from "../identity/did.js";
import { type Ed25519Key, generateKey, keyFromSeed } from "../identity/keys.js";
import { createPrivateFile } from "./data-dir.js";
import { MIGRATIONS } from "./schema.js";

export type SyncMode = "full" | "normal";
// Every write transaction is BEGIN IMMEDIATE: a compare-and-set reads then writes, and a deferred
// transaction that must upgrade its lock fails at once (SQLITE_BUSY) when another process (igord
// import, igord recover) writes meanwhile; IMMEDIATE takes the lock up front, under busy_timeout.
/** How long a writer waits for a lock held by another process (e.g. `igord import` beside a daemon). */
export const BUSY_TIMEOUT_MS = 5000;
export const DB_FILE = "igord.db";
/** Fences, and unsettled incoming handoff records, kept per peer (the oldest beyond go first). */
export const MAX_FENCES_PER_PEER = 1024;

export type { EventLogSegment };

export type AgentStatus = "active" | "stopped" | "failed";

export interface AgentRow {
  agentId: string;
  did: string;
  wasmHash: string;
  manifest: string;
  status: AgentStatus;
  reason: string | null;
}

export interface CheckpointRow {
  agentId: string;
  seq: bigint;
  tick: bigint;
  hash: Uint8Array;
  prevHash: Uint8Array;
  budget: bigint;
  reason: string;
  blob: Uint8Array;
  createdAt: number;
}

export interface ReceiptRow {
  tickStart: bigint;
  tickEnd: bigint;
  cost: bigint;
  budgetAfter: bigint;
  nodeId: string;
  blob: Uint8Array;
}

export interface LineageEvent extends BudgetOverride {
  /**
   * budget_override: a top-up or explicit budget; recovery: an operator's `igord recover`; import:
   * the agent continues here from files at a new major epoch (the last two leave the budget unchanged).
   */
  kind: "budget_override" | "recovery" | "import";
}

/** The messages one tick emitted (the emit side effect), in order, under the owner's epoch. */
export interface OutboxBatch {
  tick: bigint;
  epochMajor: bigint;
  messages: readonly Uint8Array[];
}

export interface StoredSegment extends EventLogSegment {
  checkpointHash: Uint8Array;
}

/** What a writer believes its lease is: a write is refused (LEASE_STALE) when the store says otherwise. */
/** One peer's handoff of one agent (by id and DID) at one source epoch. */
export interface HandoffKey {
  agentId: string;
  did: string;
  peer: string;
  epoch: Epoch;
}

const HANDOFF_WHERE = "agent_id = ? AND did = ? AND peer = ? AND epoch_major = ? AND epoch_generation = ?";
const handoffArgs = (h: HandoffKey): unknown[] => [h.agentId, h.did, h.peer, h.epoch.major, h.epoch.generation];

export interface LeaseBelief {
  state: LeaseState;
  epoch: Epoch;
}

export interface CheckpointCommit {
  agentId: string;
  tick: bigint;
  budget: bigint;
  hash: Uint8Array;
  prevHash: Uint8Array;
  blob: Uint8Array;
  reason: string;
  receipt: ReceiptRow | null;
  status: AgentStatus;
  statusReason: string | null;
  /** Event logs of the ticks since the previous checkpoint. */
  events?: EventLogSegment;
  /** Messages the ticks since the previous checkpoint emitted: published with it, or not at all. */
  outbox?: readonly OutboxBatch[];
  /** The manifest's max_storage_bytes: refused (STORAGE_LIMIT) when the agent's history would pass it. */
  maxStorageBytes?: bigint;
  /** History retention: checkpoints before `baseSeq` (and their event logs) go, behind this signed base. */
  prune?: { baseSeq: bigint; base: HistoryBase };
  /** The writer's lease: the checkpoint is written only if the stored lease still matches. */
  lease?: LeaseBelief;
}

export type MigrationDirection = "out" | "in";
export type MigrationState = "requested" | "transferring" | "awaiting_confirmation" | "done" | "failed" | "recovery";
export const MIGRATION_TERMINAL: readonly MigrationState[] = ["done", "failed"];

export interface MigrationRow {
  id: number;
  agentId: string;
  direction: MigrationDirection;
  /** The target (out: multiaddr or peer id being tried) or the source peer id (in). */
  peer: string | null;
  state: MigrationState;
  checkpointHash: string | null;
  epoch: Epoch | null;
  attempts: number;
  fallbacks: number;
  bytes: number;
  error: { code: string; message: string } | null;
  /** Unix ms of each state reached (absent = not reached). */
  at: Partial<Record<MigrationState, number>>;
  updatedAt: number;
}

export interface MigrationUpdate {
  state?: MigrationState;
  peer?: string;
  attempts?: number;
  fallbacks?: number;
  bytes?: number;
  checkpointHash?: string;
  epoch?: Epoch;
  error?: { code: string; message: string } | null;
}

const STATE_COLUMN: Record<MigrationState, string> = {
  requested: "requested_at",
  transferring: "transferring_at",
  awaiting_confirmation: "awaiting_at",
  done: "done_at",
  failed: "failed_at",
  recovery: "recovery_at",
};

/** An agent arriving by migration, already checked; stored in one transaction with its new lease. */
export interface IncomingAgent {
  agent: NewAgent;
  /** Checkpoints to append (the whole history for a new agent, the part after the stored head otherwise). */
  history: readonly CheckpointCommit[];
  overrides: readonly LineageEvent[];
  segments: readonly StoredSegment[];
  receipts: readonly ReceiptRow[];
  /** The lease the agent had on this node (RETIRED) when it comes back; undefined when new here. */
  previous?: LeaseBelief;
  lease: Lease;
  migration: { peer: string; checkpointHash: string; sourceEpoch: Epoch; bytes: number };
}

export interface NewAgent {
  /** The agent's lease on this node; default ACTIVE_OWNER at (0,0) with no expiry. */
  lease?: Lease;
  agentId: string;
  did: string;
  wasmHash: string;
  wasmBytes: Uint8Array;
  manifest: string;
  identity: Ed25519Key;
}

const u8 = (b: Buffer | Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();

function storeError(message: string, cause?: unknown): IgordError {
  return new IgordError(ErrorCode.StoreError, message, cause === undefined ? {} : { cause });
}

/** SQLite's own word that the file is damaged (a page, a row): STORE_CORRUPT naming `what`; else null. */
export function corruptionError(e: unknown, what: string): IgordError | null {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== "string" || !(code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB")) return null;
  return new IgordError(ErrorCode.StoreCorrupt, `${what}: ${(e as Error).message} (${code})`, { cause: e });
}

/** Problems PRAGMA quick_check lists at most before the message stops naming them. */
export const QUICK_CHECK_MAX_ERRORS = 10;

export class SqliteStore {
  readonly path: string;
  private readonly db: Database.Database;
  private queue: { commit: CheckpointCommit; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private flushScheduled = false;
  private closed = false;
  private readonly statements = new Map<string, Database.Statement>();
  /** Last status written per agent, so a checkpoint only updates the agents row when it changes. */
  private readonly lastStatus = new Map<string, string>();
  /** --sync: the level of ordinary commits (ownership commits are always FULL, see durably()). */
  private sync: SyncMode = "full";

  private constructor(path: string, db: Database.Database) {
    this.path = path;
    this.db = db;
  }

  /** Prepared statements are cached: preparing costs more than running a small insert. */
  private sql(text: string, safeIntegers = false): Database.Statement {
    const key = `${safeIntegers ? "1" : "0"}${text}`;
    let st = this.statements.get(key);
    if (!st) {
      st = this.db.prepare(text);
      if (safeIntegers) st.safeIntegers(true);
      this.statements.set(key, st);
    }
    return st;
  }

  /** Per agent, segments older than this many ticks (0 = keep all) or beyond this many bytes are pruned. */
  eventLogRetention: { ticks: bigint } | { bytes: number } = { ticks: 0n };

  static open(
    path: string,
    opts: { sync?: SyncMode; readonly?: boolean; eventLogRetention?: { ticks: bigint } | { bytes: number } } = {},
  ): SqliteStore {
    let db: Database.Database;
    try {
      // The database holds private keys: created owner-only (its WAL and shm files inherit the mode).
      if (!opts.readonly) createPrivateFile(path);
      db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    } catch (e) {
      throw storeError(`cannot open database ${path}: ${(e as Error).message}`, e);
    }
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // A writer proves the file sound first: a damaged page must not start a node that looks
    // healthy and empty (its agents unreadable), nor take imports on top of it.
    if (!opts.readonly) quickCheck(path, db);
    if (!opts.readonly) {
      db.pragma("journal_mode = WAL");
      db.pragma(`synchronous = ${opts.sync === "normal" ? "NORMAL" : "FULL"}`);
      db.pragma("foreign_keys = ON");
    }
    const store = new SqliteStore(path, db);
    store.sync = opts.sync ?? "full";
    store.eventLogRetention = opts.eventLogRetention ?? { ticks: 0n };
    store.migrate(opts.readonly ?? false);
    return store;
  }

  private migrate(readonly: boolean): void {
    const has = this.sql("SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'").get();
    if (!has && readonly) throw new IgordError(ErrorCode.StoreSchema, `${this.path} is not an igord database`);
    if (!has) this.db.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
    const row = this.sql("SELECT MAX(version) AS v FROM schema_version").get() as { v: number | null };
    const current = row.v ?? 0;
    if (current > MIGRATIONS.length) {
      throw new IgordError(
        ErrorCode.StoreSchema,
        `database ${this.path} has schema version ${current}, newer than this igord (${MIGRATIONS.length}); upgrade igord`,
      );
    }
    if (readonly) return;
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v] as string);
        this.sql("INSERT INTO schema_version (version) VALUES (?)").run(v + 1);
      }).immediate();
    }
  }

  schemaVersion(): number {
    return (this.sql("SELECT MAX(version) AS v FROM schema_version").get() as { v: number }).v;
  }

  /** The node's persistent key (its future libp2p peer id), created on first use. */
  nodeKey(): { key: Ed25519Key; peerId: string } {
    const row = this.sql("SELECT seed, public_key FROM node_identity WHERE id = 1").get() as
      | { seed: Buffer; public_key: Buffer }
      | undefined;
    if (row) {
      const key = keyFromSeed(u8(row.seed));
      if (!Buffer.from(key.publicKey).equals(row.public_key)) {
        throw new IgordError(ErrorCode.IdentityCorrupt, `the node key in ${this.path} does not match its public key`);
      }
      return { key, peerId: peerIdFromPublicKey(key.publicKey) };
    }
    const key = generateKey();
    const peerId = peerIdFromPublicKey(key.publicKey);
    this.sql("INSERT INTO node_identity (id, seed, public_key, peer_id, created_at) VALUES (1, ?, ?, ?, ?)")
      .run(Buffer.from(key.seed), Buffer.from(key.publicKey), peerId, Date.now());
    return { key, peerId };
  }

  putWasm(hash: string, bytes: Uint8Array): void {
    this.sql("INSERT OR IGNORE INTO wasm_modules (hash, bytes, size, created_at) VALUES (?, ?, ?, ?)")
      .run(hash, Buffer.from(bytes), bytes.byteLength, Date.now());
  }

  wasm(hash: string): Uint8Array | undefined {
    const row = this.sql("SELECT bytes FROM wasm_modules WHERE hash = ?").get(hash) as { bytes: Buffer } | undefined;
    return row ? u8(row.bytes) : undefined;
  }

  private insertAgentRows(a: NewAgent): void {
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

  /** Creates the agent, its identity and its genesis checkpoint in one transaction. */
  createAgent(a: NewAgent, genesis: CheckpointCommit): void {
    this.db.transaction(() => {
      if (this.agent(a.agentId)) throw new IgordError(ErrorCode.AgentExists, `agent "${a.agentId}" already exists in ${this.path}`);
      this.insertAgentRows(a);
      const err = this.insertCheckpoint(genesis);
      if (err) throw err;
    }).immediate();
  }

  /**
   * Brings an agent in from elsewhere (an export, or a checkpoint given to `igord resume`): module,
   * identity, and its history in chain order, in one transaction. An agent id or DID this store
   * already knows is refused: nothing stored is ever overwritten.
   */
  importAgent(
    a: NewAgent,
    history: readonly CheckpointCommit[],
    overrides: readonly LineageEvent[],
    segments: readonly StoredSegment[] = [],
  ): void {
    if (history.length === 0) throw storeError(`nothing to import for agent "${a.agentId}": no checkpoints`);
    this.db.transaction(() => {
      if (this.agent(a.agentId)) throw new IgordError(ErrorCode.AgentExists, `agent "${a.agentId}" already exists in ${this.path}`);
      const sameDid = this.sql("SELECT agent_id FROM agents WHERE did = ?").get(a.did) as { agent_id: string } | undefined;
      if (sameDid) throw new IgordError(ErrorCode.AgentExists, `${a.did} already exists in ${this.path} as agent "${sameDid.agent_id}"`);
      this.insertAgentRows(a);
      for (const c of history) {
        const err = this.insertCheckpoint(c);
        if (err) throw err;
      }
      for (const e of overrides) this.addLineageEvent(a.agentId, e);
      for (const e of segments) this.insertSegment(a.agentId, e.checkpointHash, e);
    }).immediate();
  }

  /**
   * Stores an agent received by migration, all or nothing: a new agent with its whole history, or
   * one this node retired earlier with the history since. The lease and the incoming migration
   * record commit in the same transaction; a refused write leaves nothing behind.
   */
  receiveAgent(inc: IncomingAgent): number {
    const a = inc.agent;
    return this.durably(() => {
      if (inc.previous) {
        const stale = this.staleLease(a.agentId, inc.previous, true);
        if (stale) throw stale;
        this.putWasm(a.wasmHash, a.wasmBytes);
        this.sql("UPDATE agents SET wasm_hash = ?, manifest = ?, status = 'active', reason = NULL, updated_at = ? WHERE agent_id = ?").run(
          a.wasmHash,
          a.manifest,
          Date.now(),
          a.agentId,
        );
        this.lastStatus.delete(a.agentId);
      } else {
        if (this.agent(a.agentId)) throw new IgordError(ErrorCode.AgentExists, `agent "${a.agentId}" already exists in ${this.path}`);
        const sameDid = this.sql("SELECT agent_id FROM agents WHERE did = ?").get(a.did) as { agent_id: string } | undefined;
        if (sameDid) throw new IgordError(ErrorCode.AgentExists, `${a.did} already exists in ${this.path} as agent "${sameDid.agent_id}"`);
        this.insertAgentRows(a);
      }
      for (const c of inc.history) {
        const err = this.insertCheckpoint(c);
        if (err) throw err;
      }
      for (const e of inc.overrides) this.addLineageEvent(a.agentId, e);
      for (const e of inc.segments) this.insertSegment(a.agentId, e.checkpointHash, e);
      for (const r of inc.receipts) this.insertReceipt(a.agentId, new Uint8Array(32), r);
      const l = inc.lease;
      this.sql(
        "UPDATE agents SET lease_state = ?, epoch_major = ?, epoch_generation = ?, lease_expires_at = ?, handoff_target = NULL, handoff_checkpoint = NULL, updated_at = ? WHERE agent_id = ?",
      ).run(l.state, l.epoch.major, l.epoch.generation, l.expiresAtMs, Date.now(), a.agentId);
      const now = Date.now();
      const m = inc.migration;
      const info = this.sql(
        "INSERT INTO migrations (agent_id, direction, peer, state, checkpoint_hash, epoch_major, epoch_generation, attempts, bytes, requested_at, transferring_at, awaiting_at, done_at, updated_at) VALUES (?, 'in', ?, 'done', ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
      ).run(a.agentId, m.peer, m.checkpointHash, m.sourceEpoch.major, m.sourceEpoch.generation, m.bytes, now, now, now, now, now);
      // The handoff is settled by the agent being here: its record goes in the same transaction.
      this.sql(`DELETE FROM incoming_handoffs WHERE ${HANDOFF_WHERE}`).run(...handoffArgs({ agentId: a.agentId, did: a.did, peer: m.peer, epoch: m.sourceEpoch }));
      return Number(info.lastInsertRowid);
    });
  }

  /**
   * Runs several writes that decide who owns an agent in one durable transaction (one fsync): a
   * lease change and its migration record, a handoff, a retirement, an operator's recovery.
   */
  atomically<T>(fn: () => T): T {
    return this.durably(fn);
  }

  /**
   * A transaction committed with synchronous=FULL whatever --sync says: handoffs, retirements,
   * receptions, recoveries and fences decide who owns an agent, and losing one to a power cut could
   * leave two owners. --sync normal applies to the rest (periodic checkpoints, renewals). SQLite
   * refuses to change the level inside a transaction, so a nested call joins its outer transaction
   * (every ownership write nests only inside another durable one).
   */
  private durably<T>(fn: () => T): T {
    if (this.sync === "full" || this.db.inTransaction) return this.db.transaction(fn).immediate();
    this.db.pragma("synchronous = FULL");
    try {
      return this.db.transaction(fn).immediate();
    } finally {
      this.db.pragma("synchronous = NORMAL");
    }
  }

  /** The newest receipt's last tick for the agent (receipts arriving by migration continue after it). */
  lastReceiptTick(agentId: string): bigint | null {
    const r = this.sql("SELECT MAX(tick_end) AS t FROM receipts WHERE agent_id = ?", true).get(agentId) as { t: bigint | null };
    return r.t;
  }

  // ---- outbox (the emit side effect) ------------------------------------------------------------

  /**
   * Publishes the messages of checkpointed ticks, inside the checkpoint's transaction: only ticks the
   * history contains ever publish, and (agent, tick, index) is written once — a tick re-run after a
   * crash was never published, and a duplicate is an error, not a silent extra row.
   */
  private insertOutbox(agentId: string, batches: readonly OutboxBatch[]): void {
    for (const b of batches) {
      b.messages.forEach((m, i) => {
        this.sql("INSERT INTO outbox (agent_id, tick, idx, epoch_major, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)").run(agentId, b.tick, i, b.epochMajor, m, Date.now());
      });
    }
  }

  outbox(agentId: string, afterTick = -1n, limit = 1000): { tick: bigint; index: number; epochMajor: bigint; payload: Uint8Array; createdAt: number }[] {
    return (
      this.sql("SELECT * FROM outbox WHERE agent_id = ? AND tick > ? ORDER BY tick, idx LIMIT ?", true).all(agentId, afterTick, limit) as Record<string, unknown>[]
    ).map((r) => ({ tick: r.tick as bigint, index: Number(r.idx), epochMajor: r.epoch_major as bigint, payload: u8(r.payload as Buffer), createdAt: Number(r.created_at) }));
  }

  // ---- migrations -------------------------------------------------------------------------------

  createMigration(m: { agentId: string; direction: MigrationDirection; peer: string | null; state: MigrationState; checkpointHash?: string; epoch?: Epoch }): number {
    const now = Date.now();
    const info = this.sql(
      `INSERT INTO migrations (agent_id, direction, peer, state, checkpoint_hash, epoch_major, epoch_generation, ${STATE_COLUMN[m.state]}, requested_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(m.agentId, m.direction, m.peer, m.state, m.checkpointHash ?? null, m.epoch?.major ?? null, m.epoch?.generation ?? null, now, now, now);
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
    this.db.prepare(`UPDATE migrations SET ${sets.join(", ")} WHERE id = ?`).run(...args);
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

  /** Records that `peer` offered the agent at this epoch and the offer was taken (durable before the reply). */
  recordIncomingHandoff(h: HandoffKey): void {
    this.durably(() => {
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

  /** Appends a checkpoint that continues the stored head (used by `igord resume`). */
  appendCheckpoint(c: CheckpointCommit): void {
    const err = this.db.transaction(() => this.insertCheckpoint(c)).immediate();
    if (err) throw err;
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

  head(agentId: string): CheckpointRow | undefined {
    const r = this.sql("SELECT * FROM checkpoints WHERE agent_id = ? ORDER BY seq DESC LIMIT 1", true)
      .get(agentId) as Record<string, unknown> | undefined;
    return r ? rowToCheckpoint(r) : undefined;
  }

  checkpointByHash(agentId: string, hash: Uint8Array): CheckpointRow | undefined {
    const r = this.sql("SELECT * FROM checkpoints WHERE agent_id = ? AND hash = ? ORDER BY seq DESC LIMIT 1", true).get(agentId, hash) as
      | Record<string, unknown>
      | undefined;
    return r ? rowToCheckpoint(r) : undefined;
  }

  checkpointAt(agentId: string, seq: bigint): CheckpointRow | undefined {
    const r = this.sql("SELECT * FROM checkpoints WHERE agent_id = ? AND seq = ?", true)
      .get(agentId, seq) as Record<string, unknown> | undefined;
    return r ? rowToCheckpoint(r) : undefined;
  }

  /** The agent's checkpoints in chain order (after sequence number `afterSeq`, if given). */
  *history(agentId: string, afterSeq = 0n): IterableIterator<CheckpointRow> {
    const it = this.sql("SELECT * FROM checkpoints WHERE agent_id = ? AND seq > ? ORDER BY seq", true)
      .iterate(agentId, afterSeq) as IterableIterator<Record<string, unknown>>;
    for (const r of it) yield rowToCheckpoint(r);
  }

  /** Where a pruned history now starts, signed by the agent (none: nothing was pruned here). */
  historyBase(agentId: string): HistoryBase | undefined {
    const r = this.sql("SELECT * FROM history_bases WHERE agent_id = ?", true).get(agentId) as Record<string, unknown> | undefined;
    if (!r) return undefined;
    return {
      originHash: u8(r.origin_hash as Buffer),
      baseHash: u8(r.base_hash as Buffer),
      baseTick: r.base_tick as bigint,
      pruned: r.pruned as bigint,
      signature: u8(r.signature as Buffer),
    };
  }

  /**
   * What keeping the newest `keep` checkpoints (counting one about to be appended) would prune: the
   * checkpoint that becomes the base and the fields of its signed record; null when nothing would go.
   */
  prunePlan(agentId: string, keep: number): { baseSeq: bigint; fields: Omit<HistoryBase, "signature"> } | null {
    if (keep < 2) return null;
    // The appended checkpoint takes one of the `keep` places.
    const base = this.sql("SELECT seq, tick, hash FROM checkpoints WHERE agent_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?", true).get(agentId, keep - 2) as
      | { seq: bigint; tick: bigint; hash: Buffer }
      | undefined;
    if (!base) return null;
    const older = this.sql("SELECT COUNT(*) AS n, MIN(seq) AS first FROM checkpoints WHERE agent_id = ? AND seq < ?", true).get(agentId, base.seq) as {
      n: bigint;
      first: bigint | null;
    };
    if (older.n === 0n || older.first === null) return null;
    const previous = this.historyBase(agentId);
    const origin = previous?.originHash ?? this.hashAt(agentId, older.first);
    if (!origin) return null;
    return { baseSeq: base.seq, fields: { originHash: u8(origin), baseHash: u8(base.hash), baseTick: base.tick, pruned: (previous?.pruned ?? 0n) + older.n } };
  }

  private hashAt(agentId: string, seq: bigint): Buffer | undefined {
    return (this.sql("SELECT hash FROM checkpoints WHERE agent_id = ? AND seq = ?").get(agentId, seq) as { hash: Buffer } | undefined)?.hash;
  }

  private bytesBefore(agentId: string, seq: bigint, tick: bigint): number {
    const r = this.sql(
      "SELECT (SELECT COALESCE(SUM(length(blob)), 0) FROM checkpoints WHERE agent_id = ? AND seq < ?) + (SELECT COALESCE(SUM(length(blob) + length(post_hashes)), 0) FROM event_log_segments WHERE agent_id = ? AND to_tick <= ?) AS n",
    ).get(agentId, seq, agentId, tick) as { n: number };
    return r.n;
  }

  private pruneHistory(agentId: string, baseSeq: bigint, base: HistoryBase): void {
    this.sql("DELETE FROM checkpoints WHERE agent_id = ? AND seq < ?").run(agentId, baseSeq);
    // Logs of ticks up to the base replay from nothing that is kept.
    this.sql("DELETE FROM event_log_segments WHERE agent_id = ? AND to_tick <= ?").run(agentId, base.baseTick);
    this.sql(
      "INSERT OR REPLACE INTO history_bases (agent_id, origin_hash, base_hash, base_tick, pruned, signature, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ).run(agentId, base.originHash, base.baseHash, base.baseTick, base.pruned, base.signature, Date.now());
  }

  /** Bytes of the agent's stored history: checkpoint blobs and event-log segments (what max_storage_bytes bounds). */
  storedBytes(agentId: string): number {
    const r = this.sql(
      "SELECT (SELECT COALESCE(SUM(length(blob)), 0) FROM checkpoints WHERE agent_id = ?) + (SELECT COALESCE(SUM(length(blob) + length(post_hashes)), 0) FROM event_log_segments WHERE agent_id = ?) AS n",
    ).get(agentId, agentId) as { n: number };
    return r.n;
  }

  historyCount(agentId: string): number {
    return (this.sql("SELECT COUNT(*) AS n FROM checkpoints WHERE agent_id = ?").get(agentId) as { n: number }).n;
  }

  /** The agent's receipts in order (those ending after `afterTick`, if given). */
  receipts(agentId: string, afterTick = -1n): ReceiptRow[] {
    return (this.sql("SELECT * FROM receipts WHERE agent_id = ? AND tick_end > ? ORDER BY seq", true).all(agentId, afterTick) as Record<string, unknown>[]).map(
      (r) => ({
        tickStart: r.tick_start as bigint,
        tickEnd: r.tick_end as bigint,
        cost: r.cost as bigint,
        budgetAfter: r.budget_after as bigint,
        nodeId: r.node_id as string,
        blob: u8(r.blob as Buffer),
      }),
    );
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

  /** Writes the agent's status; with `lease`, only if the stored lease still matches (like a checkpoint). */
  setStatus(agentId: string, status: AgentStatus, reason: string | null, lease?: LeaseBelief): void {
    this.db.transaction(() => {
      this.checkLease(agentId, lease);
      this.sql("UPDATE agents SET status = ?, reason = ?, updated_at = ? WHERE agent_id = ?").run(status, reason, Date.now(), agentId);
    }).immediate();
    this.lastStatus.set(agentId, `${status}:${reason ?? ""}`);
  }

  /** Throws LEASE_STALE when a writer's lease is no longer the stored one (renewals allowed). */
  private checkLease(agentId: string, lease: LeaseBelief | undefined): void {
    if (!lease) return;
    const stale = this.staleLease(agentId, lease, false);
    if (stale) throw stale;
  }

  /**
   * Appends a checkpoint to the agent's history. Compare-and-set on the chain: the checkpoint's
   * prevHash must be the current head's hash (or the agent must have no history), so a stale or
   * duplicate writer can never fork or overwrite the history. A refused checkpoint is returned as an
   * error before anything is written; an unexpected failure throws.
   */
  private insertCheckpoint(c: CheckpointCommit): IgordError | null {
    if (c.lease) {
      // A checkpoint is captured before it commits; its owner may renew (generation + 1) meanwhile.
      // Authority moves only with a new major or state, so those must match exactly.
      const stale = this.staleLease(c.agentId, c.lease, false);
      if (stale) return stale;
    }
    const head = this.sql("SELECT seq, hash FROM checkpoints WHERE agent_id = ? ORDER BY seq DESC LIMIT 1", true).get(c.agentId) as
      | { seq: bigint; hash: Buffer }
      | undefined;
    if (head && !head.hash.equals(c.prevHash)) {
      return new IgordError(
        ErrorCode.CheckpointChainBroken,
        `checkpoint for agent "${c.agentId}" at tick ${c.tick} does not extend the stored head (seq ${head.seq})`,
      );
    }
    // Pruning happens only when the stored base is still the checkpoint it was planned on.
    const plannedBase = c.prune ? this.hashAt(c.agentId, c.prune.baseSeq) : undefined;
    const prune = c.prune && plannedBase?.equals(c.prune.base.baseHash) ? c.prune : undefined;
    if (c.maxStorageBytes !== undefined) {
      const added = c.blob.byteLength + (c.events ? c.events.blob.byteLength + c.events.postHashes.byteLength : 0);
      const after = this.storedBytes(c.agentId) - (prune ? this.bytesBefore(c.agentId, prune.baseSeq, prune.base.baseTick) : 0) + added;
      if (BigInt(after) > c.maxStorageBytes) {
        return new IgordError(
          ErrorCode.StorageLimit,
          `agent "${c.agentId}": its stored history would grow to ${after} bytes, over the manifest's max_storage_bytes of ${c.maxStorageBytes} (keep fewer checkpoints with --history-retention)`,
          { details: { agentId: c.agentId, bytes: after, limit: String(c.maxStorageBytes) } },
        );
      }
    }
    const seq = (head?.seq ?? 0n) + 1n;
    this.sql("INSERT INTO checkpoints (agent_id, seq, tick, hash, prev_hash, budget, reason, blob, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)").run(
      c.agentId,
      seq,
      c.tick,
      c.hash,
      c.prevHash,
      c.budget,
      c.reason,
      c.blob,
      Date.now(),
    );
    if (c.receipt) this.insertReceipt(c.agentId, c.hash, c.receipt);
    if (c.outbox) this.insertOutbox(c.agentId, c.outbox);
    if (prune) this.pruneHistory(c.agentId, prune.baseSeq, prune.base);
    if (c.events) {
      const e = c.events;
      this.insertSegment(c.agentId, c.hash, e);
      this.pruneSegments(c.agentId, e.toTick);
    }
    const statusKey = `${c.status}:${c.statusReason ?? ""}`;
    if (this.lastStatus.get(c.agentId) !== statusKey) {
      this.sql("UPDATE agents SET status = ?, reason = ?, updated_at = ? WHERE agent_id = ?").run(c.status, c.statusReason, Date.now(), c.agentId);
      this.lastStatus.set(c.agentId, statusKey);
    }
    return null;
  }

  private insertSegment(agentId: string, checkpointHash: Uint8Array, e: EventLogSegment): void {
    this.sql(
      "INSERT INTO event_log_segments (agent_id, from_tick, to_tick, checkpoint_hash, abi_version, engine_version, blob, post_hashes, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ).run(agentId, e.fromTick, e.toTick, checkpointHash, e.abiVersion, e.engineVersion, e.blob, e.postHashes, e.signature ?? null);
  }

  private insertReceipt(agentId: string, checkpointHash: Uint8Array, r: ReceiptRow): void {
    this.sql(
      "INSERT INTO receipts (agent_id, seq, tick_start, tick_end, cost, budget_after, node_id, checkpoint_hash, blob) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM receipts WHERE agent_id = ?), ?, ?, ?, ?, ?, ?, ?)",
    ).run(agentId, agentId, r.tickStart, r.tickEnd, r.cost, r.budgetAfter, r.nodeId, checkpointHash, r.blob);
  }

  /** A receipt for ticks already checkpointed (closing the range when an agent stops); with `lease`, compare-and-set. */
  addReceipt(agentId: string, checkpointHash: Uint8Array, r: ReceiptRow, lease?: LeaseBelief): void {
    this.db.transaction(() => {
      this.checkLease(agentId, lease);
      this.insertReceipt(agentId, checkpointHash, r);
    }).immediate();
  }

  private pruneSegments(agentId: string, newestTick: bigint): void {
    const r = this.eventLogRetention;
    if ("ticks" in r) {
      if (r.ticks > 0n && newestTick > r.ticks) {
        this.sql("DELETE FROM event_log_segments WHERE agent_id = ? AND to_tick <= ?").run(agentId, newestTick - r.ticks);
      }
      return;
    }
    // Size limit: keep the newest segments whose total fits, drop the rest — but never the segment
    // just written, even when it alone is over the limit (the newest ticks must stay verifiable).
    const rows = this.sql(
      "SELECT id, length(blob) + length(post_hashes) AS n FROM event_log_segments WHERE agent_id = ? ORDER BY to_tick DESC",
    ).all(agentId) as { id: number; n: number }[];
    let total = 0;
    for (const [i, row] of rows.entries()) {
      total += row.n;
      if (i > 0 && total > r.bytes) this.sql("DELETE FROM event_log_segments WHERE id = ?").run(row.id);
    }
  }

  private staleLease(agentId: string, belief: LeaseBelief, exact: boolean): IgordError | null {
    const r = this.sql("SELECT lease_state, epoch_major, epoch_generation FROM agents WHERE agent_id = ?", true).get(agentId) as
      | { lease_state: string; epoch_major: bigint; epoch_generation: bigint }
      | undefined;
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
    ).get(agentId) as
      | {
          lease_state: LeaseState;
          epoch_major: bigint;
          epoch_generation: bigint;
          lease_expires_at: bigint | null;
          handoff_target: string | null;
          handoff_checkpoint: string | null;
        }
      | undefined;
    if (!r) return undefined;
    return {
      state: r.lease_state,
      epoch: { major: r.epoch_major, generation: r.epoch_generation },
      expiresAtMs: r.lease_expires_at === null ? null : Number(r.lease_expires_at),
      handoff: r.handoff_target && r.handoff_checkpoint ? { target: r.handoff_target, checkpointHash: r.handoff_checkpoint } : null,
    };
  }

  /**
   * Compare-and-set of the agent's lease: refused with LEASE_STALE unless `expected` is what is
   * stored. Durable whatever --sync says unless it only renews (or sets the expiry of) an owner's lease.
   */
  writeLease(agentId: string, expected: LeaseBelief, next: Lease): void {
    const renewal = expected.state === "ACTIVE_OWNER" && next.state === "ACTIVE_OWNER" && next.epoch.major === expected.epoch.major;
    const write = renewal ? (fn: () => void) => this.db.transaction(fn).immediate() : (fn: () => void) => this.durably(fn);
    write(() => {
      const stale = this.staleLease(agentId, expected, true);
      if (stale) throw stale;
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
    });
  }

  /** The agent's stored event-log segments, oldest first. */
  /** The agent's stored event-log segments, oldest first (those starting after `afterTick`, if given). */
  eventSegments(agentId: string, afterTick = -1n): StoredSegment[] {
    return (
      this.sql("SELECT * FROM event_log_segments WHERE agent_id = ? AND from_tick > ? ORDER BY to_tick", true).all(agentId, afterTick) as Record<string, unknown>[]
    ).map(rowToSegment);
  }

  /** Segments this node recorded before it signed segments (schema 6), not yet sealed. */
  segmentsRecordedUnsigned(): (StoredSegment & { id: number; agentId: string })[] {
    return (this.sql("SELECT * FROM event_log_segments WHERE recorded_unsigned = 1 AND signature IS NULL ORDER BY agent_id, to_tick", true).all() as Record<string, unknown>[]).map((r) => ({
      ...rowToSegment(r),
      id: Number(r.id),
      agentId: String(r.agent_id),
    }));
  }

  /** Seals a segment recorded before segments were signed (see segmentsRecordedUnsigned). */
  sealRecordedSegment(id: number, signature: Uint8Array): void {
    this.sql("UPDATE event_log_segments SET signature = ?, recorded_unsigned = 0 WHERE id = ? AND recorded_unsigned = 1 AND signature IS NULL").run(signature, id);
  }

  /** The agent's newest stored event-log segment. */
  lastEventSegment(agentId: string): StoredSegment | undefined {
    const r = this.sql("SELECT * FROM event_log_segments WHERE agent_id = ? ORDER BY to_tick DESC LIMIT 1", true).get(agentId) as
      | Record<string, unknown>
      | undefined;
    return r ? rowToSegment(r) : undefined;
  }

  /** The agent's checkpoint taken at exactly this tick, if any. */
  checkpointAtTick(agentId: string, tick: bigint): CheckpointRow | undefined {
    const r = this.sql("SELECT * FROM checkpoints WHERE agent_id = ? AND tick = ? ORDER BY seq DESC LIMIT 1", true).get(agentId, tick) as
      | Record<string, unknown>
      | undefined;
    return r ? rowToCheckpoint(r) : undefined;
  }

  /** Where an agent's receipts stop: the last receipt, or (none yet) its first checkpoint here. */
  receiptBase(agentId: string): { tick: bigint; budget: bigint } | undefined {
    const r = this.sql("SELECT tick_end, budget_after FROM receipts WHERE agent_id = ? ORDER BY seq DESC LIMIT 1", true).get(agentId) as
      | { tick_end: bigint; budget_after: bigint }
      | undefined;
    if (r) return { tick: r.tick_end, budget: r.budget_after };
    const first = this.sql("SELECT tick, budget FROM checkpoints WHERE agent_id = ? ORDER BY seq LIMIT 1", true).get(agentId) as
      | { tick: bigint; budget: bigint }
      | undefined;
    return first ? { tick: first.tick, budget: first.budget } : undefined;
  }

  /**
   * Commits checkpoints now, each atomically (checkpoint + history + receipt + status), all in one
   * transaction: one fsync covers the batch. A checkpoint refused by the chain check does not undo
   * the others.
   */
  commitNow(commits: readonly CheckpointCommit[]): (IgordError | null)[] {
    try {
      return this.db.transaction(() => commits.map((c) => this.insertCheckpoint(c))).immediate();
    } catch {
      // Something unexpected failed mid-batch (the batch rolled back): isolate it with a savepoint
      // per checkpoint so the others still commit.
      this.lastStatus.clear();
      const results: (IgordError | null)[] = [];
      this.db.transaction(() => {
        for (const c of commits) {
          try {
            results.push(this.db.transaction(() => this.insertCheckpoint(c))());
          } catch (e) {
            results.push(storeError(`cannot store checkpoint of "${c.agentId}": ${(e as Error).message}`, e));
          }
        }
      }).immediate();
      return results;
    }
  }

  /** Queues a checkpoint for the next group commit; resolves once it is durable. */
  enqueue(commit: CheckpointCommit): Promise<void> {
    if (this.closed) return Promise.reject(storeError("the store is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ commit, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    let results: (IgordError | null)[];
    try {
      results = this.commitNow(batch.map((b) => b.commit));
    } catch (e) {
      for (const b of batch) b.reject(storeError(`checkpoint transaction failed: ${(e as Error).message}`, e));
      return;
    }
    batch.forEach((b, i) => {
      const err = results[i];
      if (err) b.reject(err);
      else b.resolve();
    });
  }

  /**
   * Writes a consistent copy of the whole database to `dest` (which must not exist) while other
   * processes keep writing: VACUUM INTO reads one snapshot. The copy holds private keys: 0600.
   */
  backupTo(dest: string): void {
    let fd: number;
    try {
      fd = openSync(dest, "wx", 0o600);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new IgordError(ErrorCode.StoreError, code === "EEXIST" ? `${dest} already exists; a backup never overwrites a file` : `cannot create ${dest}: ${code ?? (e as Error).message}`);
    }
    closeSync(fd);
    try {
      this.db.prepare("VACUUM INTO ?").run(dest);
    } catch (e) {
      rmSync(dest, { force: true });
      throw new IgordError(ErrorCode.StoreError, `backup of ${this.path} to ${dest} failed: ${(e as Error).message}`);
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.db.close();
  }
}

function quickCheck(path: string, db: Database.Database): void {
  let problems: string[];
  try {
    problems = (db.pragma(`quick_check(${QUICK_CHECK_MAX_ERRORS})`) as { quick_check: string }[]).map((r) => r.quick_check);
  } catch (e) {
    db.close();
    throw corruptionError(e, `${path} is corrupt (PRAGMA quick_check failed); restore it from a backup`) ?? storeError(`cannot check ${path}: ${(e as Error).message}`, e);
  }
  if (problems.length === 1 && problems[0] === "ok") return;
  db.close();
  throw new IgordError(ErrorCode.StoreCorrupt, `${path} is corrupt (PRAGMA quick_check: ${problems.join("; ")}); restore it from a backup`);
}

function rowToAgent(r: Record<string, unknown>): AgentRow {
  return {
    agentId: r.agent_id as string,
    did: r.did as string,
    wasmHash: r.wasm_hash as string,
    manifest: r.manifest as string,
    status: r.status as AgentStatus,
    reason: (r.reason as string | null) ?? null,
  };
}

function rowToMigration(r: Record<string, unknown>): MigrationRow {
  const at: Partial<Record<MigrationState, number>> = {};
  for (const [state, col] of Object.entries(STATE_COLUMN)) if (r[col] !== null && r[col] !== undefined) at[state as MigrationState] = Number(r[col]);
  return {
    id: Number(r.id),
    agentId: r.agent_id as string,
    direction: r.direction as MigrationDirection,
    peer: (r.peer as string | null) ?? null,
    state: r.state as MigrationState,
    checkpointHash: (r.checkpoint_hash as string | null) ?? null,
    epoch: r.epoch_major === null ? null : { major: r.epoch_major as bigint, generation: r.epoch_generation as bigint },
    attempts: Number(r.attempts),
    fallbacks: Number(r.fallbacks),
    bytes: Number(r.bytes),
    error: r.error_code ? { code: r.error_code as string, message: (r.error_message as string | null) ?? "" } : null,
    at,
    updatedAt: Number(r.updated_at),
  };
}

function rowToSegment(r: Record<string, unknown>): StoredSegment {
  return {
    fromTick: r.from_tick as bigint,
    toTick: r.to_tick as bigint,
    checkpointHash: u8(r.checkpoint_hash as Buffer),
    abiVersion: Number(r.abi_version),
    engineVersion: Number(r.engine_version),
    blob: u8(r.blob as Buffer),
    postHashes: u8(r.post_hashes as Buffer),
    ...(r.signature ? { signature: u8(r.signature as Buffer) } : {}),
  };
}

function rowToCheckpoint(r: Record<string, unknown>): CheckpointRow {
  return {
    agentId: r.agent_id as string,
    seq: r.seq as bigint,
    tick: r.tick as bigint,
    hash: u8(r.hash as Buffer),
    prevHash: u8(r.prev_hash as Buffer),
    budget: r.budget as bigint,
    reason: r.reason as string,
    blob: u8(r.blob as Buffer),
    createdAt: Number(r.created_at),
  };
}
