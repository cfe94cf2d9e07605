// The migration service: owns the p2p host, serves the migrate, price and migration-status
// protocols, keeps the peer registry fresh and the migration records tidy, and composes the source
// side (source.ts), the target side (target.ts) and the resolution of unconfirmed handoffs
// (resolution.ts). Protocol schema: docs/PROTOCOL.md.
import type { Logger } from "pino";
import { type Epoch, formatEpoch } from "../authority/lease.js";
import type { NodeConfig } from "../config/schema.js";
import { ErrorCode, IgordError } from "../errors.js";
import { type FrameChannel, strings, uint } from "../p2p/frames.js";
import type { P2pHost } from "../p2p/host.js";
import { type PeerInfo, PeerRegistry } from "../p2p/peer-registry.js";
import {
  acceptsFrom,
  boundedSignal,
  MAX_INBOUND_STREAMS,
  MIGRATE_PROTOCOL,
  type MigrationContext,
  type Receiving,
  type MigrationHooks,
  type MigrationHost,
  type MigrationResult,
  MIGRATION_SWEEP_MS,
  PRICE_PROTOCOL,
  type ProbeAnswer,
  QUERY_TIMEOUT_MS,
  STATUS_PROTOCOL,
  STOP_GRACE_MS,
  type Target,
} from "./context.js";
import { HandoffResolution } from "./resolution.js";
import { PendingReceptions } from "./pending-reception.js";
import { BACKOFF_FACTOR, type RetryPolicy } from "./retry.js";
import { MigrationSource } from "./source.js";
import type { Arrival } from "./package-with-offer.js";
import { MigrationTarget } from "./target.js";

export { MIGRATE_PROTOCOL, type MigrationHooks, type MigrationResult, STATUS_PROTOCOL } from "./context.js";

/**
 * Capabilities a peer's price answer may list, each at most MAX_CAPABILITY_NAME_CHARS: the registry
 * keeps them for every peer it remembers (a 256 KiB answer each, times MAX_KNOWN_PEERS, otherwise).
 */
export const MAX_ANNOUNCED_CAPABILITIES = 64;
export const MAX_CAPABILITY_NAME_CHARS = 64;

export class MigrationService implements MigrationContext {
  private p2p: P2pHost | null = null;
  /** The libp2p host's module, once start() has loaded it. */
  private host$: typeof import("../p2p/host.js") | null = null;
  readonly peers = new PeerRegistry();
  readonly outgoing = new Set<string>();
  readonly receiving = new Map<string, Receiving>();
  readonly arrivals = new Map<string, Arrival>();
  private readonly background = new Set<Promise<unknown>>();
  private readonly stop$ = new AbortController();
  private timers: NodeJS.Timeout[] = [];
  private readonly resolution: HandoffResolution;
  private readonly source: MigrationSource;
  private readonly incoming: MigrationTarget;
  private readonly pending: PendingReceptions;

  constructor(
    readonly host: MigrationHost,
    readonly hooks: MigrationHooks = {},
  ) {
    this.resolution = new HandoffResolution(this);
    this.source = new MigrationSource(this, this.resolution);
    this.incoming = new MigrationTarget(this);
    this.pending = new PendingReceptions(this, (p) => this.incoming.flipStored(p));
  }

  /**
   * Whether a hop of the agent is under way here (sent, received, or its handoff being settled):
   * what the operator's stop, start and remove wait for, since the hop decides where it runs.
   */
  moving(agentId: string): boolean {
    return this.outgoing.has(agentId) || this.receiving.has(agentId) || this.resolution.has(agentId) || this.pending.has(agentId);
  }

  get cfg(): NodeConfig {
    return this.host.config;
  }

  get log(): Logger {
    return this.host.logger;
  }

  get stopSignal(): AbortSignal {
    return this.stop$.signal;
  }

  get peerId(): string {
    return this.p2p?.peerId ?? "";
  }

  /** Listen addresses with /p2p/<peer id>, as other nodes dial them. */
  addresses(): string[] {
    return this.p2p?.addresses() ?? [];
  }

  get retry(): RetryPolicy {
    return { attempts: this.cfg.migrationRetries, initialDelayMs: this.cfg.migrationRetryDelayMs, maxDelayMs: this.cfg.migrationMaxDelayMs, factor: BACKOFF_FACTOR };
  }

  /** Starts listening (before any agent runs, so a busy port fails the start with nothing running). */
  async start(): Promise<void> {
    // libp2p (~550 modules) loads here, not with the node: a node with --listen off never loads it.
    this.host$ = await import("../p2p/host.js");
    const p2p = await this.host$.P2pHost.start({ key: this.host.nodeKey, listen: this.cfg.listen, bootstrap: this.cfg.bootstrap, mdns: this.cfg.mdns, onLocalPeer: (id) => this.peers.vouch(id) });
    this.p2p = p2p;
    // The peers the operator named are the candidates for a migration without --to (peer-registry.ts).
    for (const text of this.cfg.bootstrap) this.peers.vouch(this.host$.parseTarget(text).peerId.toString(), [text]);
    for (const id of this.cfg.trustedPeers) this.peers.vouch(id);
    const opts = { maxInboundStreams: MAX_INBOUND_STREAMS, writeTimeoutMs: this.cfg.migrationTimeoutMs };
    // A peer this node takes agents from, or one the operator vouched for, is trusted with its
    // frames; any other peer's unfinished frames count against a node-wide bound (unfinished-frames.ts).
    const trusting = (serve: (ch: FrameChannel, peer: string) => Promise<void>) => (ch: FrameChannel, peer: string) => {
      if (acceptsFrom(this.cfg, peer) || this.peers.get(peer)?.vouched === true) ch.trust();
      this.track(serve(ch, peer));
    };
    await p2p.handle(MIGRATE_PROTOCOL, trusting((ch, peer) => this.incoming.onMigrate(ch, peer)), opts);
    await p2p.handle(PRICE_PROTOCOL, trusting((ch, peer) => this.onPrice(ch, peer)), opts);
    await p2p.handle(STATUS_PROTOCOL, trusting((ch, peer) => this.resolution.onStatus(ch, peer)), opts);
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
    const trust = { acceptMigrations: this.cfg.acceptMigrations, trustedPeers: this.cfg.trustedPeers };
    this.log.info({ event: "p2p_listening", peerId: this.peerId, addrs: this.addresses(), ...trust }, `p2p listening as ${this.peerId}`);
    if (this.cfg.acceptMigrations === "trusted") {
      const who = this.cfg.trustedPeers.length > 0 ? `only from ${this.cfg.trustedPeers.join(", ")}` : "from no peer yet";
      const level = this.cfg.trustedPeers.length > 0 ? "info" : "warn";
      this.log[level](
        { event: "migrations_trusted_only", ...trust },
        `accepting migrations ${who} (--accept-migrations trusted); add a peer with --trusted-peer <peer-id>, or open up with --accept-migrations any`,
      );
    }
  }

  /** Handoffs left unresolved by a crash or a lost confirmation: ask their targets. */
  resolvePending(): void {
    this.resolution.resolvePending();
    this.pending.resolveAll();
  }

  /**
   * Migrates a running agent to the first target that takes it: explicit targets in order, or (none
   * given) the registry's candidates. Resolves when the outcome is known.
   */
  migrate(agentId: string, targets: readonly string[] = []): Promise<MigrationResult> {
    return this.source.migrate(agentId, targets);
  }

  /** The migration-status query: does the target own the agent past this node's epoch? */
  queryStatus(target: string, agentId: string, epoch: Epoch): ReturnType<HandoffResolution["queryStatus"]> {
    return this.resolution.queryStatus(target, agentId, epoch);
  }

  /** Agents whose handoff is being resolved by the status query right now. */
  resolvingAgents(): string[] {
    return this.resolution.resolvingAgents();
  }

  /**
   * Agents this node is sending in a hop still under way (preflight, handoff, attempts, retries,
   * fallbacks), not yet settled by the status query: past the preflight they run nowhere until the
   * hop ends, which against a target that stopped answering takes up to --migration-retries ×
   * --migration-timeout (and backoff) per candidate.
   */
  sendingAgents(): string[] {
    return [...this.outgoing].filter((id) => !this.resolution.has(id));
  }

  /** Resolves when any resolution in progress for the agent has finished (tests, shutdown). */
  resolved(agentId: string): Promise<void> {
    return this.resolution.resolved(agentId);
  }

  track<T>(p: Promise<T>): void {
    const q = p.catch((e: unknown) => this.log.error({ event: "p2p_task_failed", err: (e as Error).message }, (e as Error).message));
    this.background.add(q);
    void q.finally(() => this.background.delete(q));
  }

  async stop(): Promise<void> {
    this.stop$.abort();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.source.closeIdle();
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
    if (this.cfg.migrationRetentionMs > 0) {
      store.pruneMigrations(now - this.cfg.migrationRetentionMs);
      store.pruneFences(now - this.cfg.migrationRetentionMs);
    }
    // A record stuck in a non-terminal state with nothing running for it (a crash) is timed out.
    for (const m of store.staleMigrations(now)) {
      if (this.outgoing.has(m.agentId) || this.receiving.has(m.agentId) || this.resolution.has(m.agentId)) continue;
      // A handoff still open in the lease is settled by the status query, which also settles its record.
      const lease = store.lease(m.agentId);
      const open = m.direction === "out" && lease?.handoff && (lease.state === "HANDOFF_INITIATED" || lease.state === "RECOVERY_REQUIRED") ? lease.handoff : null;
      if (m.state === "recovery") {
        // Only the status query settles it, and it asks only while the lease holds this hop's
        // handoff: once it does not (an igord recover took the agent back), nothing else would.
        if (open?.checkpointHash === m.checkpointHash) continue;
        const where = lease ? `${lease.state} at ${formatEpoch(lease.epoch)}` : "no longer held here";
        store.updateMigration(m.id, { state: "failed", error: { code: ErrorCode.MigrationAmbiguous, message: `the handoff was settled without this hop (the agent is ${where})` } });
        continue;
      }
      if (open || m.updatedAt >= now - this.cfg.migrationTimeoutMs) continue;
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
    await this.probe(t);
    return this.peers.get(t.peerId) as PeerInfo;
  }

  /** One price query: what the peer says of itself, recorded in the registry. */
  async probe(t: Target): Promise<ProbeAnswer> {
    const started = performance.now();
    // A probe before a migration waits no longer than a migration step would.
    const timeout = Math.min(QUERY_TIMEOUT_MS, this.cfg.migrationTimeoutMs);
    const ch = await this.open(t, PRICE_PROTOCOL, timeout);
    try {
      await ch.sendJson({ type: "price" });
      const r = await ch.receiveJson(timeout, "price_reply");
      const T = "price_reply";
      const answer: ProbeAnswer = {
        price: uint(r, T, "price_per_second"),
        capabilities: announcedCapabilities(strings(r, T, "capabilities")),
        acceptsMigrations: r.accepts_migrations === true,
        agents: typeof r.agents === "number" && Number.isSafeInteger(r.agents) ? r.agents : null,
        maxAgents: typeof r.max_agents === "number" && Number.isSafeInteger(r.max_agents) ? r.max_agents : null,
      };
      this.peers.announced(t.peerId, answer, Date.now());
      this.peers.succeeded(t.peerId, Date.now(), performance.now() - started);
      return answer;
    } finally {
      await ch.close();
    }
  }

  addressOf(peerId: string): string | null {
    return this.p2p?.remoteAddress(peerId) ?? null;
  }

  private async onPrice(ch: FrameChannel, peer: string): Promise<void> {
    try {
      await ch.receiveJson(QUERY_TIMEOUT_MS, "price");
      await ch.sendJson({
        type: "price_reply",
        price_per_second: this.cfg.price,
        node_id: this.peerId,
        capabilities: this.host.capabilities.list(),
        // Whether this node would take an agent from the asker (so it is not offered one in vain).
        accepts_migrations: acceptsFrom(this.cfg, peer),
        agents: this.host.runningAgents(),
        max_agents: this.cfg.maxAgents,
      });
    } catch (e) {
      this.log.debug({ event: "price_query_failed", err: (e as Error).message }, "price query failed");
    } finally {
      await ch.close();
    }
  }

  target(text: string): Target {
    if (!this.host$) throw new IgordError(ErrorCode.P2pUnavailable, "the p2p service is not running (--listen off?)");
    const t = this.host$.parseTarget(text);
    const peerId = t.peerId.toString();
    if (peerId === this.peerId) throw new IgordError(ErrorCode.PeerAddressInvalid, `${text} is this node itself`);
    if (t.addr) this.peers.upsert(peerId, [text]);
    return { text, peerId };
  }

  async open(t: Target, protocol: string, timeoutMs = this.cfg.migrationTimeoutMs): Promise<FrameChannel> {
    if (!this.p2p) throw new IgordError(ErrorCode.P2pUnavailable, "the p2p service is not running (--listen off?)");
    // The signal bounds the dial only: the channel's reads and writes have timeouts of their own.
    const dial = boundedSignal(this.stop$.signal, timeoutMs);
    try {
      return await this.p2p.open(t.text.startsWith("/") ? t.text : t.peerId, protocol, {
        knownAddrs: this.peers.get(t.peerId)?.addrs ?? [],
        signal: dial.signal,
        writeTimeoutMs: this.cfg.migrationTimeoutMs,
      });
    } catch (e) {
      throw new IgordError(ErrorCode.MigrationDialFailed, `cannot reach ${t.text} (${protocol}): ${(e as Error).message}`, { cause: e });
    } finally {
      dial.clear();
    }
  }
}

function announcedCapabilities(caps: string[]): string[] {
  if (caps.length > MAX_ANNOUNCED_CAPABILITIES || caps.some((c) => c.length > MAX_CAPABILITY_NAME_CHARS)) {
    throw new IgordError(ErrorCode.MigrationFrameInvalid, `"price_reply" message: more than ${MAX_ANNOUNCED_CAPABILITIES} capabilities, or a name over ${MAX_CAPABILITY_NAME_CHARS} characters`);
  }
  return caps;
}
