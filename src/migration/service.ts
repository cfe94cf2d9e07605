// Agent migration over libp2p, both sides. Source: stop ticking, fresh checkpoint, durable
// HANDOFF_INITIATED, send the package with retries, backoff and fallback candidates, then RETIRED
// (confirmed), ACTIVE_OWNER again (nothing sent anywhere) or RECOVERY_REQUIRED (sent, unconfirmed:
// resolved by asking the target). Target: admission in order, one transaction, confirm, tick.
// Protocol schema: docs/PROTOCOL.md.
import type { Logger } from "pino";
import { canTick, compareEpochs, type Epoch, formatEpoch, type Lease, type LeaseTiming, transition } from "../authority/lease.js";
import { hex } from "../checkpoint/lineage.js";
import type { NodeConfig } from "../config/schema.js";
import { ErrorCode, IgordError } from "../errors.js";
import type { NodeCapabilities } from "../hostcalls/capabilities.js";
import type { ModuleCache, PreparedAgent } from "../loader/prepare.js";
import { parseManifest } from "../manifest/manifest.js";
import type { NodeMetrics } from "../metrics/metrics.js";
import { CHUNK_BYTES, type FrameChannel, hex32, MAX_AGENT_ID_CHARS, MAX_DID_CHARS, safeInt, str, strings, uint } from "../p2p/frames.js";
import { P2pHost, parseTarget } from "../p2p/host.js";
import { type PeerInfo, PeerRegistry } from "../p2p/peer-registry.js";
import type { ReplayItem } from "../replay/engine.js";
import type { SqliteStore } from "../store/sqlite-store.js";
import type { WorkerPool } from "../wasm/pool.js";
import { admitPackage, checkManifest, checkOwnership } from "./admission.js";
import { buildOutgoingPackage } from "./outgoing.js";
import { decodePackage } from "./package.js";
import { signStatusQuery, verifyStatusQuery } from "./status-proof.js";
import { BACKOFF_FACTOR, backoffDelay, classifyFailure, type RetryPolicy } from "./retry.js";

export const MIGRATE_PROTOCOL = "/igord/migrate/1.0.0";
/** igor's price protocol; the answer also carries the node's capability set. */
export const PRICE_PROTOCOL = "/igor/price/1.0.0";
export const STATUS_PROTOCOL = "/igord/migration-status/1.0.0";
/** A price or status query that takes longer counts as a failure of that peer. */
export const QUERY_TIMEOUT_MS = 5_000;
/** Longest manifest accepted in an offer (it travels in a control frame). */
export const MAX_MANIFEST_CHARS = 128 * 1024;
/** Concurrent incoming streams per protocol and connection. */
export const MAX_INBOUND_STREAMS = 64;
/** A peer's refusal message is cut to this length before it is logged or shown. */
const MAX_REMOTE_MESSAGE_CHARS = 2000;
/** How long stopping waits for protocol handlers still running. */
export const STOP_GRACE_MS = 5_000;
/** Incoming packages held in memory at once, in units of --max-package-size. */
export const MAX_CONCURRENT_PACKAGES = 2;
/** How often finished migration records are pruned and stuck ones timed out. */
export const MIGRATION_SWEEP_MS = 60_000;

export interface MigrationHost {
  config: NodeConfig;
  logger: Logger;
  store: SqliteStore;
  metrics: NodeMetrics;
  capabilities: NodeCapabilities;
  cache: ModuleCache;
  pool: WorkerPool;
  leaseTiming: LeaseTiming;
  nodeKey: Parameters<typeof P2pHost.start>[0]["key"];
  /** Stops ticking the agent and checkpoints it (Scheduler.detach). */
  detach(agentId: string): Promise<{ lease: Lease | null }>;
  /** Starts (or restarts) ticking a stored agent this node owns (its last window already replayed, or not). */
  resume(agentId: string, windowVerified?: boolean): Promise<void>;
  /** Forgets an agent that now lives elsewhere (quarantine entries and the like). */
  retired(agentId: string): void;
  /** Shows an agent this node owns but cannot run as quarantined, with why. */
  quarantine(agentId: string, err: IgordError): void;
  runningAgents(): number;
  stopping(): boolean;
}

/** Fault-injection points for tests of the failure paths (never set in production). */
export interface MigrationHooks {
  /** Source side: HANDOFF_INITIATED is durable, nothing sent yet. */
  afterHandoffRecorded?(agentId: string): void;
  /** Source side: the whole package is on the wire, no confirmation read yet. */
  afterPackageSent?(agentId: string): void;
  /** Source side: the target confirmed, RETIRED not yet written. */
  afterConfirmed?(agentId: string): void;
  /** Target side: called once the whole package is in, before admission (throwing = crash here). */
  afterPackage?(agentId: string, abort: (err: Error) => void): void;
  /** Target side: called after the agent is stored, before the confirmation is sent. */
  beforeConfirm?(agentId: string, abort: (err: Error) => void): void;
}

export type MigrationOutcome = "done" | "reverted" | "recovery";

export interface MigrationResult {
  id: number;
  agentId: string;
  outcome: MigrationOutcome;
  /** The target that took the agent (done) or holds the unresolved handoff (recovery). */
  target: string | null;
  attempts: number;
  fallbacks: number;
  /** The epoch the target owns the agent at (done). */
  epoch: Epoch | null;
  error: { code: string; message: string } | null;
  durationMs: number;
}

interface Target {
  text: string;
  peerId: string;
}

/** A failed attempt: the error, and whether the package had gone out or the target refused it. */
class AttemptError extends Error {
  constructor(
    readonly error: IgordError,
    readonly sent: boolean,
    readonly refused: boolean,
  ) {
    super(error.message);
  }
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

function remoteError(o: Record<string, unknown>, what: string): IgordError {
  const code = typeof o.code === "string" ? o.code : "";
  const message = typeof o.message === "string" ? o.message.slice(0, MAX_REMOTE_MESSAGE_CHARS) : "(no message)";
  return KNOWN_CODES.has(code)
    ? new IgordError(code as ErrorCode, `${what}: ${message}`, { details: { remote: true } })
    : new IgordError(ErrorCode.MigrationRefused, `${what} (${code || "no code"}): ${message}`, { details: { remote: true, remoteCode: code } });
}

function asIgord(e: unknown, fallback: ErrorCode): IgordError {
  return e instanceof IgordError ? e : new IgordError(fallback, (e as Error).message, { cause: e });
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });

export class MigrationService {
  private p2p: P2pHost | null = null;
  readonly peers = new PeerRegistry();
  private readonly outgoing = new Set<string>();
  private readonly receiving = new Set<string>();
  /** Bytes of packages being received right now (bounded by MAX_CONCURRENT_PACKAGES × --max-package-size). */
  private incomingBytes = 0;
  private readonly resolving = new Map<string, Promise<void>>();
  private readonly background = new Set<Promise<unknown>>();
  private readonly stop$ = new AbortController();
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly host: MigrationHost,
    private readonly hooks: MigrationHooks = {},
  ) {}

  private get cfg(): NodeConfig {
    return this.host.config;
  }

  private get log(): Logger {
    return this.host.logger;
  }

  get peerId(): string {
    return this.p2p?.peerId ?? "";
  }

  /** Listen addresses with /p2p/<peer id>, as other nodes dial them. */
  addresses(): string[] {
    return this.p2p?.addresses() ?? [];
  }

  private get retry(): RetryPolicy {
    return { attempts: this.cfg.migrationRetries, initialDelayMs: this.cfg.migrationRetryDelayMs, maxDelayMs: this.cfg.migrationMaxDelayMs, factor: BACKOFF_FACTOR };
  }

  /** Starts listening (before any agent runs, so a busy port fails the start with nothing running). */
  async start(): Promise<void> {
    const p2p = await P2pHost.start({ key: this.host.nodeKey, listen: this.cfg.listen, bootstrap: this.cfg.bootstrap, mdns: this.cfg.mdns });
    this.p2p = p2p;
    const opts = { maxInboundStreams: MAX_INBOUND_STREAMS, writeTimeoutMs: this.cfg.migrationTimeoutMs };
    await p2p.handle(MIGRATE_PROTOCOL, (ch, peer) => this.track(this.onMigrate(ch, peer)), opts);
    await p2p.handle(PRICE_PROTOCOL, (ch) => this.track(this.onPrice(ch)), opts);
    await p2p.handle(STATUS_PROTOCOL, (ch) => this.track(this.onStatus(ch)), opts);
    p2p.onPeerDiscovered((id, addrs) => {
      this.peers.upsert(id, addrs);
      // Dialling a discovered peer lets identify learn its protocols; the price query follows.
      this.track(this.refreshPeer(id));
    });
    p2p.onPeerConnected((id) => this.peers.upsert(id));
    if (this.cfg.peerRefreshMs > 0) {
      this.timers.push(setInterval(() => this.refreshAll(), this.cfg.peerRefreshMs));
    }
    this.timers.push(setInterval(() => this.sweep(), MIGRATION_SWEEP_MS));
    for (const t of this.timers) t.unref();
    this.sweep();
    this.log.info({ event: "p2p_listening", peerId: this.peerId, addrs: this.addresses() }, `p2p listening as ${this.peerId}`);
  }

  /** Handoffs left unresolved by a crash or a lost confirmation: ask their targets. */
  resolvePending(): void {
    for (const row of this.host.store.listAgents()) {
      const lease = this.host.store.lease(row.agentId);
      if (lease?.handoff && (lease.state === "HANDOFF_INITIATED" || lease.state === "RECOVERY_REQUIRED")) this.resolveHandoff(row.agentId);
    }
  }

  private track<T>(p: Promise<T>): void {
    const q = p.catch((e: unknown) => this.log.error({ event: "p2p_task_failed", err: (e as Error).message }, (e as Error).message));
    this.background.add(q);
    void q.finally(() => this.background.delete(q));
  }

  async stop(): Promise<void> {
    this.stop$.abort();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.p2p?.stop();
    // Handlers see the closed streams and the stopping node; an admission replay still running is
    // not waited for longer than this (its result could not be stored anyway).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.background]), new Promise((r) => (timer = setTimeout(r, STOP_GRACE_MS)))]);
    clearTimeout(timer);
    this.p2p = null;
  }

  private sweep(): void {
    const store = this.host.store;
    const now = Date.now();
    if (this.cfg.migrationRetentionMs > 0) store.pruneMigrations(now - this.cfg.migrationRetentionMs);
    // A record stuck in a non-terminal state with nothing running for it (a crash) is timed out.
    for (const m of store.staleMigrations(now - this.cfg.migrationTimeoutMs)) {
      if (m.state === "recovery" || this.outgoing.has(m.agentId) || this.receiving.has(m.agentId) || this.resolving.has(m.agentId)) continue;
      // A handoff still open in the lease is settled by the status query, which also settles its record.
      const lease = store.lease(m.agentId);
      if (m.direction === "out" && lease?.handoff && (lease.state === "HANDOFF_INITIATED" || lease.state === "RECOVERY_REQUIRED")) continue;
      store.updateMigration(m.id, { state: "failed", error: { code: ErrorCode.MigrationTimeout, message: `no progress in ${m.state} for ${this.cfg.migrationTimeoutMs}ms` } });
    }
  }

  // ---- peers ------------------------------------------------------------------------------------

  private refreshAll(): void {
    for (const p of this.peers.list()) this.track(this.refreshPeer(p.id));
  }

  /** Health (libp2p ping round trip), then price and capabilities; a failure counts against the peer. */
  private async refreshPeer(id: string): Promise<void> {
    try {
      await this.queryPrice(id);
      if (this.p2p) this.peers.succeeded(id, Date.now(), await this.p2p.ping(id, QUERY_TIMEOUT_MS));
    } catch {
      this.peers.failed(id);
    }
  }

  /** Asks a peer its price and capabilities (and records them in the registry). */
  async queryPrice(target: string): Promise<PeerInfo> {
    const t = this.target(target);
    const started = performance.now();
    const ch = await this.open(t, PRICE_PROTOCOL);
    try {
      await ch.sendJson({ type: "price" });
      const r = await ch.receiveJson(QUERY_TIMEOUT_MS, "price_reply");
      const T = "price_reply";
      this.peers.announced(
        t.peerId,
        { price: uint(r, T, "price_per_second"), capabilities: strings(r, T, "capabilities"), acceptsMigrations: r.accepts_migrations === true },
        Date.now(),
      );
      this.peers.succeeded(t.peerId, Date.now(), performance.now() - started);
      return this.peers.get(t.peerId) as PeerInfo;
    } finally {
      await ch.close();
    }
  }

  private async onPrice(ch: FrameChannel): Promise<void> {
    try {
      await ch.receiveJson(QUERY_TIMEOUT_MS, "price");
      await ch.sendJson({
        type: "price_reply",
        price_per_second: this.cfg.price,
        node_id: this.peerId,
        capabilities: this.host.capabilities.list(),
        accepts_migrations: this.cfg.acceptMigrations !== "none",
        agents: this.host.runningAgents(),
        max_agents: this.cfg.maxAgents,
      });
    } catch (e) {
      this.log.debug({ event: "price_query_failed", err: (e as Error).message }, "price query failed");
    } finally {
      await ch.close();
    }
  }

  private target(text: string): Target {
    const t = parseTarget(text);
    const peerId = t.peerId.toString();
    if (peerId === this.peerId) throw new IgordError(ErrorCode.PeerAddressInvalid, `${text} is this node itself`);
    if (t.addr) this.peers.upsert(peerId, [text]);
    return { text, peerId };
  }

  private async open(t: Target, protocol: string): Promise<FrameChannel> {
    if (!this.p2p) throw new IgordError(ErrorCode.P2pUnavailable, "the p2p service is not running (--listen off?)");
    try {
      return await this.p2p.open(t.text.startsWith("/") ? t.text : t.peerId, protocol, {
        knownAddrs: this.peers.get(t.peerId)?.addrs ?? [],
        signal: AbortSignal.any([AbortSignal.timeout(this.cfg.migrationTimeoutMs), this.stop$.signal]),
        writeTimeoutMs: this.cfg.migrationTimeoutMs,
      });
    } catch (e) {
      throw new IgordError(ErrorCode.MigrationDialFailed, `cannot reach ${t.text} (${protocol}): ${(e as Error).message}`, { cause: e });
    }
  }

  // ---- source side ------------------------------------------------------------------------------

  /**
   * Migrates a running agent to the first target that takes it: explicit targets in order, or (none
   * given) the registry's candidates. Resolves when the outcome is known.
   */
  async migrate(agentId: string, targets: readonly string[] = []): Promise<MigrationResult> {
    if (!this.p2p) throw new IgordError(ErrorCode.P2pUnavailable, "the p2p service is not running (--listen off?)");
    if (this.outgoing.has(agentId)) throw new IgordError(ErrorCode.MigrationInProgress, `agent "${agentId}" is already migrating`);
    const store = this.host.store;
    const row = store.agent(agentId);
    if (!row) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${agentId}" on this node`);
    const list: Target[] = targets.map((t) => this.target(t));
    if (list.length === 0) {
      const manifest = parseManifest(row.manifest, `stored manifest of "${agentId}"`);
      for (const p of this.peers.candidates({ required: [...manifest.capabilities.keys()], maxPrice: manifest.migrationPolicy.maxPricePerSecond, exclude: new Set([this.peerId]) })) {
        list.push({ text: p.id, peerId: p.id });
      }
      if (list.length === 0) throw new IgordError(ErrorCode.MigrationNoCandidates, `no known peer can take agent "${agentId}" (igord peers lists them)`);
    }
    this.outgoing.add(agentId);
    const started = Date.now();
    const id = store.createMigration({ agentId, direction: "out", peer: list[0]?.text ?? null, state: "requested" });
    try {
      return await this.runOutgoing(id, agentId, list, started);
    } finally {
      this.outgoing.delete(agentId);
    }
  }

  private async runOutgoing(id: number, agentId: string, list: Target[], started: number): Promise<MigrationResult> {
    const store = this.host.store;
    const logger = this.log.child({ agent: agentId, migration: id });
    let detached: { lease: Lease | null };
    try {
      detached = await this.host.detach(agentId);
    } catch (e) {
      const err = asIgord(e, ErrorCode.AgentNotRunning);
      store.updateMigration(id, { state: "failed", error: { code: err.code, message: err.message } });
      throw err;
    }
    try {
      return await this.handOff(id, agentId, list, started, detached.lease, logger);
    } catch (e) {
      // Something failed that the protocol does not cover (a store write): never leave the agent
      // running nowhere. Not handed off → it runs here again; handoff recorded → ask the target.
      const err = asIgord(e, ErrorCode.StoreError);
      logger.error({ event: "migration_failed", code: err.code }, `migration of ${agentId} failed: ${err.message}`);
      try {
        const l = store.lease(agentId);
        if (l?.handoff && (l.state === "HANDOFF_INITIATED" || l.state === "RECOVERY_REQUIRED")) this.resolveHandoff(agentId, id);
        else if (l?.state === "ACTIVE_OWNER" && !this.host.stopping()) await this.host.resume(agentId).catch(() => undefined);
        store.updateMigration(id, { state: "failed", error: { code: err.code, message: err.message } });
      } catch {
        // The store itself is failing; the next start resolves what is recorded.
      }
      throw err;
    }
  }

  private async handOff(id: number, agentId: string, list: Target[], started: number, detachedLease: Lease | null, logger: Logger): Promise<MigrationResult> {
    const store = this.host.store;
    const m = this.host.metrics;
    const head = store.head(agentId);
    const lease0 = detachedLease ?? store.lease(agentId);
    if (!head || !lease0 || !canTick(lease0)) {
      throw new IgordError(ErrorCode.LeaseTransition, `agent "${agentId}" cannot be handed off from ${lease0?.state ?? "no lease"}`);
    }
    const checkpointHash = hex(head.hash);
    let lease = transition(lease0, { type: "start_handoff", handoff: { target: (list[0] as Target).text, checkpointHash } }, this.host.leaseTiming);
    store.atomically(() => {
      store.writeLease(agentId, { state: lease0.state, epoch: lease0.epoch }, lease);
      store.updateMigration(id, { checkpointHash, epoch: lease.epoch });
    });
    this.hooks.afterHandoffRecorded?.(agentId);
    logger.info({ event: "migration_started", targets: list.map((t) => t.text), tick: String(head.tick), epoch: formatEpoch(lease.epoch) }, `migrating ${agentId}`);
    let attempts = 0;
    let fallbacks = 0;
    let last: IgordError | null = null;
    for (const [i, t] of list.entries()) {
      if (i > 0) {
        fallbacks++;
        m.migrationFallbacks.inc();
        const moved: Lease = { ...lease, handoff: { target: t.text, checkpointHash } };
        store.writeLease(agentId, { state: lease.state, epoch: lease.epoch }, moved);
        lease = moved;
        store.updateMigration(id, { peer: t.text, fallbacks });
        logger.warn({ event: "migration_fallback", target: t.text, after: last?.code }, `trying fallback ${t.text}`);
      }
      for (let attempt = 1; attempt <= this.retry.attempts; attempt++) {
        if (this.stop$.signal.aborted) break;
        attempts++;
        m.migrationAttempts.inc({ direction: "out" });
        store.updateMigration(id, { attempts });
        let epoch: Epoch;
        try {
          epoch = await this.attempt(id, agentId, t, lease, checkpointHash);
        } catch (e) {
          const f = e instanceof AttemptError ? e : new AttemptError(asIgord(e, ErrorCode.MigrationStreamClosed), false, false);
          last = f.error;
          const kind = classifyFailure(f.error.code, f.sent, f.refused);
          logger.warn({ event: "migration_attempt_failed", target: t.text, attempt, code: f.error.code, class: kind }, f.error.message);
          if (kind === "ambiguous") {
            const recovery = transition(lease, { type: "ambiguous_handoff" }, this.host.leaseTiming);
            store.writeLease(agentId, { state: lease.state, epoch: lease.epoch }, recovery);
            store.updateMigration(id, { state: "recovery", error: { code: f.error.code, message: f.error.message } });
            m.migrationAmbiguous.inc();
            m.migrationOutcomes.inc({ direction: "out", outcome: "recovery" });
            logger.error({ event: "migration_ambiguous", target: t.text }, `sent ${agentId} to ${t.text} without a confirmation: RECOVERY_REQUIRED until it answers`);
            this.resolveHandoff(agentId, id);
            return { id, agentId, outcome: "recovery", target: t.text, attempts, fallbacks, epoch: null, error: { code: f.error.code, message: f.error.message }, durationMs: Date.now() - started };
          }
          this.peers.failed(t.peerId);
          if (kind === "fatal") break;
          if (attempt < this.retry.attempts) {
            m.migrationRetries.inc();
            await sleep(backoffDelay(this.retry, attempt), this.stop$.signal);
          }
          continue;
        }
        // Confirmed: the target owns the agent. From here on nothing may fall back or revert.
        this.hooks.afterConfirmed?.(agentId);
        try {
          const retired = transition(lease, { type: "confirm_handoff" }, this.host.leaseTiming);
          const belief = { state: lease.state, epoch: lease.epoch };
          store.atomically(() => {
            store.writeLease(agentId, belief, retired);
            store.setStatus(agentId, "stopped", "migrated");
            store.updateMigration(id, { state: "done", error: null });
          });
        } catch (e) {
          // The lease stays HANDOFF_INITIATED here: the status query settles it (the target owns it).
          const err = asIgord(e, ErrorCode.StoreError);
          logger.error({ event: "migration_retire_failed", target: t.text, code: err.code }, `${t.text} took ${agentId} but RETIRED could not be written here: ${err.message}`);
          this.resolveHandoff(agentId, id);
          return { id, agentId, outcome: "recovery", target: t.text, attempts, fallbacks, epoch, error: { code: err.code, message: err.message }, durationMs: Date.now() - started };
        }
        this.host.retired(agentId);
        this.peers.succeeded(t.peerId, Date.now());
        m.migrationOutcomes.inc({ direction: "out", outcome: "done" });
        m.migrationDuration.observe({ direction: "out" }, (Date.now() - started) / 1000);
        logger.info({ event: "migration_done", target: t.text, epoch: formatEpoch(epoch), attempts }, `${agentId} now runs on ${t.text} at epoch ${formatEpoch(epoch)}`);
        return { id, agentId, outcome: "done", target: t.text, attempts, fallbacks, epoch, error: null, durationMs: Date.now() - started };
      }
    }
    // Nothing was delivered anywhere: the handoff is reverted and the agent ticks here again.
    const back = transition(lease, { type: "revert_handoff" }, this.host.leaseTiming);
    store.writeLease(agentId, { state: lease.state, epoch: lease.epoch }, back);
    const error = last ? { code: last.code, message: last.message } : { code: ErrorCode.NodeStopping, message: "the node is stopping" };
    store.updateMigration(id, { state: "failed", error });
    m.migrationOutcomes.inc({ direction: "out", outcome: "reverted" });
    m.migrationDuration.observe({ direction: "out" }, (Date.now() - started) / 1000);
    logger.warn({ event: "migration_reverted", code: error.code, attempts, fallbacks }, `migration of ${agentId} failed (${error.code}); it keeps running here`);
    if (!this.host.stopping()) await this.host.resume(agentId).catch(() => undefined);
    return { id, agentId, outcome: "reverted", target: null, attempts, fallbacks, epoch: null, error, durationMs: Date.now() - started };
  }

  /** One transfer to one target. Resolves with the epoch the target took the agent at. */
  private async attempt(id: number, agentId: string, t: Target, lease: Lease, checkpointHash: string): Promise<Epoch> {
    const store = this.host.store;
    let ch: FrameChannel;
    try {
      ch = await this.open(t, MIGRATE_PROTOCOL);
    } catch (e) {
      throw new AttemptError(asIgord(e, ErrorCode.MigrationDialFailed), false, false);
    }
    const timeout = this.cfg.migrationTimeoutMs;
    let sent = false;
    try {
      const row = store.agent(agentId);
      if (!row) throw new IgordError(ErrorCode.AgentNotFound, `agent "${agentId}" vanished from the store`);
      await ch.sendJson({
        type: "offer",
        agentId,
        did: row.did,
        wasmHash: row.wasmHash,
        checkpointHash,
        epochMajor: lease.epoch.major,
        epochGeneration: lease.epoch.generation,
        manifest: row.manifest,
      });
      const reply = await ch.receiveJson(timeout, "offer_reply");
      if (reply.ok !== true) throw new AttemptError(remoteError(reply, `${t.text} refused the offer`), false, true);
      if (reply.already === true) {
        // An identical retry of a migration the target took: it owns the agent one major later.
        const owned = { major: uint(reply, "offer_reply", "epochMajor"), generation: uint(reply, "offer_reply", "epochGeneration") };
        if (owned.major !== lease.epoch.major + 1n) throw new AttemptError(new IgordError(ErrorCode.MigrationFrameInvalid, `${t.text} claims the agent at ${formatEpoch(owned)}, not at major ${lease.epoch.major + 1n}`), false, true);
        return owned;
      }
      const baseHash = typeof reply.baseHash === "string" ? hex32(reply, "offer_reply", "baseHash") : null;
      const bytes = buildOutgoingPackage(store, { agentId, epoch: lease.epoch, checkpointHash, haveWasm: reply.haveWasm === true, baseHash });
      if (bytes.byteLength > this.cfg.maxPackageBytes) {
        throw new AttemptError(new IgordError(ErrorCode.MigrationPackageTooLarge, `package of ${bytes.byteLength} bytes is over --max-package-size ${this.cfg.maxPackageBytes}`), false, true);
      }
      store.updateMigration(id, { state: "transferring", peer: t.text });
      await ch.sendJson({ type: "transfer", bytes: bytes.byteLength });
      const go = await ch.receiveJson(timeout, "transfer_reply");
      if (go.ok !== true) throw new AttemptError(remoteError(go, `${t.text} refused the transfer`), false, true);
      for (let off = 0; off < bytes.byteLength; off += CHUNK_BYTES) {
        // Once the last chunk is handed to the stream it may arrive even if this write then fails.
        if (off + CHUNK_BYTES >= bytes.byteLength) sent = true;
        await ch.send(bytes.subarray(off, off + CHUNK_BYTES));
      }
      store.updateMigration(id, { state: "awaiting_confirmation", bytes: bytes.byteLength });
      this.hooks.afterPackageSent?.(agentId);
      this.host.metrics.migrationBytes.inc({ direction: "out" }, bytes.byteLength);
      const result = await ch.receiveJson(timeout, "result");
      if (result.ok !== true) throw new AttemptError(remoteError(result, `${t.text} refused the package`), true, true);
      return { major: uint(result, "result", "epochMajor"), generation: uint(result, "result", "epochGeneration") };
    } catch (e) {
      if (e instanceof AttemptError) throw e;
      throw new AttemptError(asIgord(e, ErrorCode.MigrationStreamClosed), sent, false);
    } finally {
      await ch.close();
    }
  }

  // ---- resolution of an unconfirmed handoff -----------------------------------------------------

  /** Asks the handoff's target, until it answers, whether it owns the agent; acts on the answer. */
  resolveHandoff(agentId: string, migrationId?: number): void {
    if (this.resolving.has(agentId)) return;
    const p = this.resolveLoop(agentId, migrationId).finally(() => this.resolving.delete(agentId));
    this.resolving.set(agentId, p);
    this.track(p);
  }

  /** Agents whose handoff is being resolved by the status query right now. */
  resolvingAgents(): string[] {
    return [...this.resolving.keys()];
  }

  /** Resolves when any resolution in progress for the agent has finished (tests, shutdown). */
  async resolved(agentId: string): Promise<void> {
    await this.resolving.get(agentId);
  }

  private async resolveLoop(agentId: string, migrationId?: number): Promise<void> {
    const store = this.host.store;
    const logger = this.log.child({ agent: agentId });
    for (let round = 1; !this.stop$.signal.aborted; round++) {
      const lease = store.lease(agentId);
      if (!lease?.handoff || (lease.state !== "HANDOFF_INITIATED" && lease.state !== "RECOVERY_REQUIRED")) return;
      let answer: { state: string; epoch: Epoch | null };
      try {
        answer = await this.queryStatus(lease.handoff.target, agentId, lease.epoch);
      } catch (e) {
        logger.warn({ event: "handoff_status_unreachable", target: lease.handoff.target, round, code: (e as IgordError).code }, `cannot ask ${lease.handoff.target} about ${agentId} yet`);
        await sleep(backoffDelay(this.retry, round), this.stop$.signal);
        continue;
      }
      if (answer.state === "receiving") {
        await sleep(backoffDelay(this.retry, round), this.stop$.signal);
        continue;
      }
      const belief = { state: lease.state, epoch: lease.epoch };
      const mid = migrationId ?? store.migrations({ agentId, limit: 1 }).find((m) => m.direction === "out")?.id;
      if (answer.state === "owned") {
        store.writeLease(agentId, belief, transition(lease, { type: "target_confirmed" }, this.host.leaseTiming));
        store.setStatus(agentId, "stopped", "migrated");
        if (mid !== undefined) store.updateMigration(mid, { state: "done", error: null });
        this.host.retired(agentId);
        this.host.metrics.migrationOutcomes.inc({ direction: "out", outcome: "resolved_retired" });
        logger.warn({ event: "handoff_resolved", outcome: "retired", target: lease.handoff.target, epoch: answer.epoch ? formatEpoch(answer.epoch) : null }, `${lease.handoff.target} owns ${agentId}: retired here`);
        return;
      }
      const pending = lease.state === "HANDOFF_INITIATED" ? transition(lease, { type: "ambiguous_handoff" }, this.host.leaseTiming) : lease;
      const back = transition(pending, { type: "recover", cause: "target_denied", nowMs: Date.now() }, this.host.leaseTiming);
      store.writeLease(agentId, belief, back);
      if (mid !== undefined) store.updateMigration(mid, { state: "failed", error: { code: ErrorCode.MigrationAmbiguous, message: `${lease.handoff.target} does not hold the agent; reclaimed at epoch ${formatEpoch(back.epoch)}` } });
      this.host.metrics.migrationOutcomes.inc({ direction: "out", outcome: "resolved_reclaimed" });
      logger.warn({ event: "handoff_resolved", outcome: "reclaimed", target: lease.handoff.target, epoch: formatEpoch(back.epoch) }, `${lease.handoff.target} does not hold ${agentId}: it runs here again at epoch ${formatEpoch(back.epoch)}`);
      if (!this.host.stopping()) await this.host.resume(agentId).catch(() => undefined);
      return;
    }
  }

  /** The migration-status query: does the target own the agent past the source's epoch? */
  async queryStatus(target: string, agentId: string, epoch: Epoch): Promise<{ state: "owned" | "not_owned" | "receiving"; epoch: Epoch | null }> {
    const t = this.target(target);
    const row = this.host.store.agent(agentId);
    if (!row) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${agentId}" on this node`);
    const signature = signStatusQuery(this.host.store.identity(agentId), agentId, row.did, epoch, t.peerId);
    const ch = await this.open(t, STATUS_PROTOCOL);
    try {
      await ch.sendJson({ type: "status", agentId, did: row.did, epochMajor: epoch.major, epochGeneration: epoch.generation, signature: hex(signature) });
      const r = await ch.receiveJson(QUERY_TIMEOUT_MS, "status_reply");
      if (r.state === "refused") throw remoteError(r, `${target} refused the status query`);
      const state = r.state === "owned" || r.state === "not_owned" || r.state === "receiving" ? r.state : null;
      if (!state) throw new IgordError(ErrorCode.MigrationFrameInvalid, `status_reply: unknown state ${JSON.stringify(r.state)}`);
      const e = typeof r.epochMajor === "string" ? { major: uint(r, "status_reply", "epochMajor"), generation: uint(r, "status_reply", "epochGeneration") } : null;
      return { state, epoch: e };
    } finally {
      await ch.close();
    }
  }

  private async onStatus(ch: FrameChannel): Promise<void> {
    try {
      const q = await ch.receiveJson(QUERY_TIMEOUT_MS, "status");
      const agentId = str(q, "status", "agentId", MAX_AGENT_ID_CHARS);
      const did = str(q, "status", "did", MAX_DID_CHARS);
      const epoch = { major: uint(q, "status", "epochMajor"), generation: uint(q, "status", "epochGeneration") };
      const signature = typeof q.signature === "string" && /^[0-9a-f]{128}$/.test(q.signature) ? Buffer.from(q.signature, "hex") : null;
      // Only the holder of the agent's key may ask (and so make this node fence the agent).
      if (!signature || !verifyStatusQuery(signature, agentId, did, epoch, this.peerId)) {
        await ch.sendJson({ type: "status_reply", agentId, state: "refused", code: ErrorCode.MigrationLineage, message: `the query is not signed by ${did}` });
        return;
      }
      const row = this.host.store.agent(agentId);
      const lease = this.host.store.lease(agentId);
      const reply: Record<string, unknown> = { type: "status_reply", agentId };
      if (this.receiving.has(agentId)) {
        reply.state = "receiving";
      } else if (row?.did === did && lease && lease.epoch.major > epoch.major) {
        reply.state = "owned";
        Object.assign(reply, { leaseState: lease.state, epochMajor: lease.epoch.major, epochGeneration: lease.epoch.generation });
      } else {
        // From now on a package for this agent at or below the asker's epoch is refused here: the
        // asker is about to take the agent back.
        if (!row || row.did === did) this.host.store.fenceAgent(agentId, epoch);
        reply.state = "not_owned";
      }
      await ch.sendJson(reply);
    } catch (e) {
      this.log.debug({ event: "status_query_failed", err: (e as Error).message }, "status query failed");
    } finally {
      await ch.close();
    }
  }

  // ---- target side ------------------------------------------------------------------------------

  private async onMigrate(ch: FrameChannel, peer: string): Promise<void> {
    const m = this.host.metrics;
    const store = this.host.store;
    const timeout = this.cfg.migrationTimeoutMs;
    const started = Date.now();
    let stage: "offer_reply" | "transfer_reply" | "result" = "offer_reply";
    let reserved = 0;
    let claimed: string | null = null;
    let committed = false;
    let agentId = "?";
    m.migrationAttempts.inc({ direction: "in" });
    try {
      const T = "offer";
      const offer = await ch.receiveJson(timeout, T);
      agentId = str(offer, T, "agentId", MAX_AGENT_ID_CHARS);
      const did = str(offer, T, "did", MAX_DID_CHARS);
      const wasmHash = hex32(offer, T, "wasmHash");
      const checkpointHash = hex32(offer, T, "checkpointHash");
      const epoch = { major: uint(offer, T, "epochMajor"), generation: uint(offer, T, "epochGeneration") };
      const manifestText = str(offer, T, "manifest", MAX_MANIFEST_CHARS);
      if (this.host.stopping()) throw new IgordError(ErrorCode.NodeStopping, "this node is stopping");
      if (this.cfg.acceptMigrations === "none" || (this.cfg.acceptMigrations === "trusted" && !this.cfg.trustedPeers.includes(peer))) {
        throw new IgordError(ErrorCode.MigrationUntrustedPeer, `this node does not accept migrations from ${peer}`);
      }
      // An identical retry of a migration this node already took: answer as before, do nothing.
      const lease = store.lease(agentId);
      if (store.incomingDone(agentId, checkpointHash, epoch) && lease?.state === "ACTIVE_OWNER" && lease.epoch.major === epoch.major + 1n) {
        await ch.sendJson({ type: "offer_reply", ok: true, already: true, epochMajor: lease.epoch.major, epochGeneration: lease.epoch.generation });
        this.log.info({ event: "migration_duplicate", agent: agentId, peer }, `duplicate migration of ${agentId} answered without effect`);
        return;
      }
      if (this.receiving.has(agentId) || this.outgoing.has(agentId)) throw new IgordError(ErrorCode.MigrationBusy, `agent "${agentId}" is already moving through this node`);
      const load = this.host.runningAgents() + this.receiving.size;
      if (this.cfg.maxAgents > 0 && load >= this.cfg.maxAgents) {
        throw new IgordError(ErrorCode.MigrationNodeFull, `this node runs or is receiving ${load} agents, its --max-agents`);
      }
      // The same checks the package gets, on the offer alone: a refusal costs no transfer.
      const offered = this.host.capabilities.snapshot();
      checkManifest(manifestText, agentId, { offered, price: this.cfg.price });
      checkOwnership(store, agentId, did, epoch);
      this.receiving.add(agentId);
      claimed = agentId;
      const base = lease?.state === "RETIRED" ? store.head(agentId) : undefined;
      await ch.sendJson({ type: "offer_reply", ok: true, haveWasm: store.wasm(wasmHash) !== undefined, baseHash: base ? hex(base.hash) : null });
      stage = "transfer_reply";
      const transfer = await ch.receiveJson(timeout, "transfer");
      const size = safeInt(transfer, "transfer", "bytes");
      if (size > this.cfg.maxPackageBytes) throw new IgordError(ErrorCode.MigrationPackageTooLarge, `package of ${size} bytes is over this node's --max-package-size ${this.cfg.maxPackageBytes}`);
      if (this.incomingBytes + size > this.cfg.maxPackageBytes * MAX_CONCURRENT_PACKAGES) {
        throw new IgordError(ErrorCode.MigrationBusy, `this node is already receiving ${this.incomingBytes} bytes of packages`);
      }
      this.incomingBytes += size;
      reserved = size;
      await ch.sendJson({ type: "transfer_reply", ok: true });
      stage = "result";
      const buf = new Uint8Array(size);
      // The whole package must arrive within one --migration-timeout (a peer dripping bytes cannot
      // hold the agent's slot forever).
      const deadline = Date.now() + timeout;
      for (let off = 0; off < size; ) {
        const chunk = await ch.receive(Math.max(1, deadline - Date.now()), "package chunk");
        if (chunk.byteLength === 0 || off + chunk.byteLength > size) {
          throw new IgordError(ErrorCode.MigrationFrameInvalid, `package chunk of ${chunk.byteLength} bytes does not fit the announced ${size} bytes`);
        }
        buf.set(chunk, off);
        off += chunk.byteLength;
      }
      m.migrationBytes.inc({ direction: "in" }, size);
      this.hooks.afterPackage?.(agentId, (err) => ch.abort(err));
      const pkg = decodePackage(buf);
      if (pkg.agentId !== agentId || pkg.checkpointHash !== checkpointHash || pkg.did !== did || compareEpochs(pkg.epoch, epoch) !== 0 || pkg.wasmHash !== wasmHash || pkg.manifest !== manifestText) {
        throw new IgordError(ErrorCode.MigrationFrameInvalid, "the package does not match its offer");
      }
      const admitted = await admitPackage(pkg, peer, size, {
        store,
        cache: this.host.cache,
        offered,
        price: this.cfg.price,
        replayMode: this.cfg.replayMode,
        leaseTiming: this.host.leaseTiming,
        replay: (prepared, preState, items) => this.replayIncoming(prepared, preState, items),
      });
      if (this.host.stopping()) throw new IgordError(ErrorCode.NodeStopping, "this node is stopping");
      store.receiveAgent(admitted.incoming);
      committed = true;
      const owned = admitted.incoming.lease.epoch;
      this.receiving.delete(agentId);
      claimed = null;
      m.migrationOutcomes.inc({ direction: "in", outcome: "done" });
      m.migrationDuration.observe({ direction: "in" }, (Date.now() - started) / 1000);
      this.log.info(
        { event: "migration_received", agent: agentId, peer, tick: String(admitted.head.tick), epoch: formatEpoch(owned), bytes: size, replayed: admitted.replayedTicks },
        `received ${agentId} from ${peer} at tick ${admitted.head.tick}; owner at epoch ${formatEpoch(owned)}`,
      );
      // Loaded and scheduled before the confirmation goes out, so a source told "done" can rely on
      // the agent running here; its first tick comes a tick interval later, after the confirmation.
      try {
        await this.host.resume(agentId, admitted.replayedTicks > 0);
      } catch (e) {
        // It is ours now (stored at the new epoch) whether or not it starts: confirm anyway, and
        // make the failure visible (quarantined, igord agents) for the operator to resume it.
        const err = asIgord(e, ErrorCode.StoreError);
        this.host.quarantine(agentId, err);
        this.log.error({ event: "migration_resume_failed", agent: agentId, code: err.code }, `received ${agentId} but cannot start it: ${err.message}`);
      }
      try {
        this.hooks.beforeConfirm?.(agentId, (err) => ch.abort(err));
        await ch.sendJson({ type: "result", ok: true, epochMajor: owned.major, epochGeneration: owned.generation, node: this.peerId });
      } catch (e) {
        // The agent is ours either way; the source learns it from the status query.
        this.log.warn({ event: "migration_confirm_lost", agent: agentId, err: (e as Error).message }, `could not confirm ${agentId} to ${peer}`);
      }
    } catch (e) {
      if (committed) throw e;
      // Anything not raised as a typed refusal (a store or stream failure here) is this node's
      // trouble, not the package's: the source may retry.
      const err = asIgord(e, ErrorCode.MigrationBusy);
      m.migrationRefusals.inc({ code: err.code });
      m.migrationOutcomes.inc({ direction: "in", outcome: "refused" });
      this.log.warn({ event: "migration_refused", agent: agentId, peer, code: err.code }, `refused migration of ${agentId} from ${peer}: ${err.message}`);
      try {
        await ch.sendJson({ type: stage, ok: false, code: err.code, message: err.message });
      } catch {
        // The source is gone; it will ask for the status if it had sent everything.
      }
    } finally {
      if (claimed) this.receiving.delete(claimed);
      this.incomingBytes -= reserved;
      await ch.close();
    }
  }

  /** Replays a shipped window on a staging placement in the worker pool (under the tick deadline). */
  private async replayIncoming(prepared: PreparedAgent, preState: Uint8Array, items: ReplayItem[]): Promise<{ finalState: Uint8Array | null; verifiedTicks: number }> {
    const stagingId = `${prepared.agentId}~incoming`;
    const pool = this.host.pool;
    await pool.place({ agentId: stagingId, module: prepared.module, plan: prepared.plan, memoryCapPages: prepared.memoryCapPages }, { state: preState, budget: 1n, price: 0n });
    try {
      const out = await pool.replay(stagingId, items, { strict: true });
      if (out.failure) throw IgordError.fromJSON(out.failure.error);
      return { finalState: out.finalState ?? null, verifiedTicks: out.verified };
    } finally {
      pool.unload(stagingId);
    }
  }
}
