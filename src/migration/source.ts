// The source side of a migration: stop ticking, fresh checkpoint, durable HANDOFF_INITIATED, send
// the package to each target in turn with retries and backoff, then RETIRED (confirmed), ACTIVE_OWNER
// again (nothing delivered anywhere) or RECOVERY_REQUIRED (sent, unconfirmed: the resolution asks
// the target). Failures are classified by error code (retry.ts), never by message text.
import type { Logger } from "pino";
import { canTick, compareEpochs, type Epoch, formatEpoch, type Lease, transition } from "../authority/lease.js";
import { parseCheckpoint } from "../checkpoint/codec.js";
import { hex } from "../hash/bytes.js";
import { ErrorCode, IgordError } from "../errors.js";
import { parseManifest } from "../manifest/manifest.js";
import { CHUNK_BYTES, epoch as epochOf, type FrameChannel, jsonBytes } from "../p2p/frames.js";
import { AttemptError, asIgord, MIGRATE_PROTOCOL, type MigrationContext, type MigrationResult, refuseUnofferableManifest, remoteError, sleep, type Target } from "./context.js";
import { DURABLE_FRAME, EAGER_PACKAGE_BYTES, type EarlyOffer, leftOrWithheld, startEarlyOffer, withholdDurable } from "./early-offer.js";
import { basisOf, guessOf, type PackageBasis, sameBasis } from "./package-with-offer.js";
import { IdleMigrateStreams } from "./idle-streams.js";
import { buildOutgoingPackage } from "./outgoing.js";
import type { HandoffResolution } from "./resolution.js";
import type { AgentRow } from "../store/sqlite-store.js";
import { preflight, type Tally } from "./preflight.js";
import { MAX_SOURCE_ADDRS } from "./pending-reception.js";
import { backoffDelay, classifyFailure } from "./retry.js";

/** Whole ms since `t`, a performance.now() reading. */
const msSince = (t: number): number => Math.round(performance.now() - t);

/**
 * The head a handoff hands off and the lease it was handed off under, as the detach committed them:
 * read once, where they were written or checked, and passed on to the offer, the package and the
 * attempts (no read of the rows the hop itself just wrote).
 */
interface Handoff {
  head: { hash: Uint8Array; tick: bigint; budget: bigint };
  checkpointHash: string;
  lease: Lease;
}

/** Whether `lease` is the handoff of the head `checkpointHash` to `target` (as the detach or an earlier hop recorded it). */
function handedOff(lease: Lease | undefined, target: string, checkpointHash: string): lease is Lease {
  return lease?.state === "HANDOFF_INITIATED" && lease.handoff?.target === target && lease.handoff.checkpointHash === checkpointHash;
}

/**
 * Refuses at once an agent this node no longer owns (it moved on, or was removed): no peer is asked
 * and no migration record written, as they were before the detach refused it.
 */
function refuseIfRetiredHere(store: MigrationContext["host"]["store"], agentId: string): void {
  if (store.lease(agentId)?.state !== "RETIRED") return;
  const away = store.migrations({ agentId }).find((m) => m.direction === "out" && m.state === "done");
  const where = away ? `it migrated to ${away.peer ?? "another node"}` : "it was removed here";
  throw new IgordError(ErrorCode.AgentNotRunning, `agent "${agentId}" is retired on this node (${where}): only its owner can migrate it`, { details: { agentId } });
}

/** The attempt a new migration record counts: the preflight's first, which begins as it is written. */
const FIRST_ATTEMPT = 1;

export class MigrationSource {
  private readonly idle = new IdleMigrateStreams();
  private addrs: string[] | null = null;

  constructor(
    private readonly ctx: MigrationContext,
    private readonly resolution: HandoffResolution,
  ) {}

  /**
   * Migrates a running agent to the first target that takes it: explicit targets in order, or (none
   * given) the registry's candidates. Resolves when the outcome is known.
   */
  async migrate(agentId: string, targets: readonly string[] = []): Promise<MigrationResult> {
    if (!this.ctx.peerId) throw new IgordError(ErrorCode.P2pUnavailable, "the p2p service is not running (--listen off?)");
    if (this.ctx.outgoing.has(agentId)) throw new IgordError(ErrorCode.MigrationInProgress, `agent "${agentId}" is already migrating`);
    const store = this.ctx.host.store;
    const row = store.agent(agentId);
    if (!row) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${agentId}" on this node`);
    refuseIfRetiredHere(store, agentId);
    const list: Target[] = targets.map((t) => this.ctx.target(t));
    // Parsed once: the preflight asks each target for these capabilities.
    const manifest = parseManifest(row.manifest, `stored manifest of "${agentId}"`);
    refuseUnofferableManifest(agentId, row.manifest);
    const required = [...manifest.capabilities.keys()];
    if (list.length === 0) {
      for (const p of this.ctx.peers.candidates({ required, maxPrice: manifest.migrationPolicy.maxPricePerSecond, exclude: new Set([this.ctx.peerId]) })) {
        list.push({ text: p.id, peerId: p.id });
      }
      if (list.length === 0) throw new IgordError(ErrorCode.MigrationNoCandidates, `no known peer can take agent "${agentId}" (igord peers lists them)`);
    }
    this.ctx.outgoing.add(agentId);
    // Monotonic: a wall clock stepped during the hop reported it lasting the size of the step.
    const started = performance.now();
    // No WAL checkpoint inside the hop's commits: it runs after the hop (store.deferWalCheckpoints).
    const releaseWal = store.deferWalCheckpoints();
    try {
      // The preflight's first attempt begins right away: counted in the record's INSERT (one commit, not two).
      const id = store.createMigration({ agentId, direction: "out", peer: list[0]?.text ?? null, state: "requested", attempts: FIRST_ATTEMPT });
      // The agents row read above stands for the whole hop: a code upgrade (the one writer of its
      // module and manifest) refuses an agent that is migrating (node/code-upgrade.ts).
      return await this.runOutgoing(id, row, list, required, started);
    } finally {
      releaseWal();
      this.ctx.outgoing.delete(agentId);
    }
  }

  private async runOutgoing(id: number, row: AgentRow, all: Target[], required: readonly string[], started: number): Promise<MigrationResult> {
    const store = this.ctx.host.store;
    const agentId = row.agentId;
    const logger = this.ctx.log.child({ agent: agentId, migration: id });
    const { ready: list, tally, last: refused } = await preflight(this.ctx, id, agentId, all, required, logger, FIRST_ATTEMPT);
    if (list.length === 0) {
      // Nobody would take it: the agent never stopped and nothing was recorded as a handoff.
      const error = refused ? { code: refused.code, message: refused.message } : { code: ErrorCode.NodeStopping, message: "the node is stopping" };
      // With the attempts made (none if the node began stopping before the first).
      store.updateMigration(id, { state: "failed", error, attempts: tally.attempts });
      this.ctx.host.metrics.migrationOutcomes.inc({ direction: "out", outcome: "reverted" });
      logger.warn({ event: "migration_reverted", code: error.code, attempts: tally.attempts, fallbacks: tally.fallbacks, stage: "preflight" }, `no target would take ${agentId} (${error.code}); it never stopped running here`);
      return { id, agentId, outcome: "reverted", target: null, peer: null, address: null, attempts: tally.attempts, fallbacks: tally.fallbacks, epoch: null, error, durationMs: msSince(started) };
    }
    const firstTarget = list[0] as Target;
    const first = firstTarget.text;
    const pending: { early: EarlyOffer | null; handoff: Handoff | null } = { early: null, handoff: null };
    try {
      // HANDOFF_INITIATED goes in the detach checkpoint's own transaction: one fsync for both. The
      // offer goes out as soon as they commit, while that fsync runs (sendEarlyOffer).
      await this.ctx.host.detach(agentId, (head) => {
        const checkpointHash = hex(head.hash);
        this.recordHandoff(id, agentId, first, checkpointHash);
        store.afterCommit((durable) => {
          // What committed (a savepoint of the group commit may have rolled the handoff back): read
          // once here, and what the rest of the hop goes on from.
          const lease = store.lease(agentId);
          if (!handedOff(lease, first, checkpointHash)) return;
          const handoff = { head, checkpointHash, lease };
          pending.handoff = handoff;
          pending.early = this.sendEarlyOffer(id, row, firstTarget, handoff, durable);
        });
      });
    } catch (e) {
      const err = asIgord(e, ErrorCode.AgentNotRunning);
      // `durable` went as soon as the sync returned, before the rest of the detach failed: the
      // target may own the agent now, so it must not run here again. Settled as an ambiguous hop.
      if (pending.early && (await withholdDurable(pending.early))) {
        // The stream closes gracefully (what was handed to it still goes); the target's `result`, if
        // it comes, is not read: the status query asks instead.
        void pending.early.ch.close();
        return this.ambiguousAfterDurable(id, agentId, firstTarget, err, tally, started, logger);
      }
      // The early offer's stream ends here: the target, waiting for `transfer` or `durable`, stores nothing.
      if (pending.early) void pending.early.ch.close();
      try {
        // The agent stopped after its checkpoint and the handoff were stored: nothing was sent but
        // perhaps an early offer, whose stream is closed above, so no package of it can follow.
        const l = store.lease(agentId);
        if (l?.state === "HANDOFF_INITIATED" && l.handoff?.target === first) {
          store.writeLease(agentId, { state: l.state, epoch: l.epoch }, transition(l, { type: "revert_handoff" }, this.ctx.host.leaseTiming));
        }
        store.updateMigration(id, { state: "failed", error: { code: err.code, message: err.message } });
      } catch {
        // The store itself is failing; the next start resolves what is recorded.
      }
      throw err;
    }
    try {
      return await this.handOff(id, row, list, started, logger, tally, pending.early, pending.handoff);
    } catch (e) {
      // Something failed that the protocol does not cover (a store write): never leave the agent
      // running nowhere. Not handed off → it runs here again; handoff recorded → ask the target.
      const err = asIgord(e, ErrorCode.StoreError);
      logger.error({ event: "migration_failed", code: err.code }, `migration of ${agentId} failed: ${err.message}`);
      try {
        const l = store.lease(agentId);
        if (l?.handoff && (l.state === "HANDOFF_INITIATED" || l.state === "RECOVERY_REQUIRED")) this.resolution.resolveHandoff(agentId, id);
        else if (l?.state === "ACTIVE_OWNER" && !this.ctx.host.stopping()) await this.ctx.host.resume(agentId).catch(() => undefined);
        store.updateMigration(id, { state: "failed", error: { code: err.code, message: err.message } });
      } catch {
        // The store itself is failing; the next start resolves what is recorded.
      }
      throw err;
    } finally {
      if (pending.early && !pending.early.taken) {
        pending.early.withheld = true;
        void pending.early.ch.close();
      }
    }
  }

  /**
   * Sends the offer to the first target on the stream kept from the last migration to it (none
   * kept: the first attempt opens one as usual), right after the detach checkpoint and
   * HANDOFF_INITIATED committed and before their fsync has returned, so the offer's round trip runs
   * during that fsync. Only the offer: the package, the one message a target can take the agent
   * from, still goes only once the handoff is durable (the detach resolves then, and the attempt
   * runs after it).
   *
   * Why an offer may leave before the handoff is durable: an offer moves no ownership. The target
   * only checks it and writes its incoming-handoff record (unsynced by design), which lets this node
   * alone fence that epoch there, and only when this node asks for the status of an unresolved
   * handoff. A killed process loses nothing once the commit returned. A power cut before the fsync
   * returned brings this node back as ACTIVE_OWNER at the same epoch with its previous head and no
   * handoff, so it asks nothing, and the target, whose stream is gone, never gets a package of that
   * offer: it holds at most the record, exactly as after an offer this node retried. A failed fsync
   * fails the detach, and the stream is closed before anything else is sent.
   */
  private sendEarlyOffer(id: number, row: AgentRow, t: Target, handoff: Handoff, synced: Promise<void>): EarlyOffer | null {
    const store = this.ctx.host.store;
    const { checkpointHash, lease } = handoff;
    const ch = this.idle.take(t.peerId);
    if (!ch) return null;
    const offer = this.offer(row, handoff);
    const guessed = this.packageForGuess(id, row, t, handoff);
    const small = guessed && guessed.bytes.length <= EAGER_PACKAGE_BYTES ? guessed : null;
    return startEarlyOffer({
      ch,
      peerId: t.peerId,
      offer,
      withOffer: small ? { bytes: small.bytes, announce: { bytes: small.bytes.length, ...small.guess } } : null,
      checkpointHash,
      epoch: lease.epoch,
      timeoutMs: this.ctx.cfg.migrationTimeoutMs,
      synced,
      // A package built for the guess but too large to go with the offer is the one the reply asks
      // for when the guess was right: it is not built twice.
      build: (reply, eager) =>
        guessed && !small && sameBasis(basisOf(reply), guessed.guess)
          ? guessed.bytes
          : this.packageFor(row, lease, checkpointHash, reply, (b) => {
              if (eager(b)) store.updateMigration(id, { state: "transferring", peer: t.text });
            }),
      transferAccepted: (timeout) => this.transferAccepted(ch, t, timeout),
      handoffDurable: () => this.ctx.hooks.afterHandoffRecorded?.(row.agentId),
    });
  }

  /**
   * The detach failed after its sync returned and `durable` had gone on the early stream: the agent
   * is handed off (HANDOFF_INITIATED is durable) and may be owned by the target; never reverted
   * here. RECOVERY_REQUIRED, and the status query settles it (resolution.ts), as after any hop sent
   * without a confirmation.
   */
  private ambiguousAfterDurable(id: number, agentId: string, t: Target, err: IgordError, tally: Tally, started: number, logger: Logger): MigrationResult {
    const store = this.ctx.host.store;
    const m = this.ctx.host.metrics;
    const error = { code: err.code, message: err.message };
    try {
      const l = store.lease(agentId);
      if (l?.state === "HANDOFF_INITIATED") store.writeLease(agentId, { state: l.state, epoch: l.epoch }, transition(l, { type: "ambiguous_handoff" }, this.ctx.host.leaseTiming));
      store.updateMigration(id, { state: "recovery", error });
    } catch {
      // The store itself is failing: the lease stays HANDOFF_INITIATED, which the next start resolves.
    }
    m.migrationAmbiguous.inc();
    m.migrationOutcomes.inc({ direction: "out", outcome: "recovery" });
    logger.error({ event: "migration_ambiguous", target: t.text, code: err.code }, `the handoff of ${agentId} to ${t.text} failed here after \`durable\` went (${err.message}): RECOVERY_REQUIRED until it answers`);
    this.resolution.resolveHandoff(agentId, id);
    return { id, agentId, outcome: "recovery", target: t.text, peer: t.peerId, address: this.ctx.addressOf(t.peerId), attempts: tally.attempts, fallbacks: tally.fallbacks, epoch: null, error, durationMs: msSince(started) };
  }

  /**
   * The package for what `t` is known to hold of the agent (guessOf), with that guess; null when
   * nothing is known. When small (EAGER_PACKAGE_BYTES) it goes behind the offer (package-with-offer.ts),
   * and the record says `transferring` in the same commit; else it waits for the reply to the offer.
   */
  private packageForGuess(id: number, row: AgentRow, t: Target, handoff: Handoff): { bytes: Uint8Array; guess: PackageBasis } | null {
    const store = this.ctx.host.store;
    const guess = guessOf(this.ctx.arrivals, row.agentId, row.wasmHash, t.peerId, (hash) => store.checkpointByHash(row.agentId, Buffer.from(hash, "hex")) !== undefined);
    if (!guess) return null;
    try {
      const bytes = this.packageFor(row, handoff.lease, handoff.checkpointHash, guess, (b) => {
        if (b.length <= EAGER_PACKAGE_BYTES) store.updateMigration(id, { state: "transferring", peer: t.text });
      });
      return { bytes, guess };
    } catch {
      // Not built (the store is failing): the offer goes alone, and the attempt builds the package or fails.
      return null;
    }
  }

  /** The package for a target that answered the offer with `reply` (ok): its run seal committed unsynced. */
  private packageFor(row: AgentRow, lease: Lease, checkpointHash: string, reply: Record<string, unknown>, alsoWrite?: (bytes: Uint8Array) => void): Uint8Array {
    const store = this.ctx.host.store;
    const { baseHash, haveWasm } = basisOf(reply);
    return store.atomicallyUnsynced(() => {
      const interrupted = this.ctx.host.handedOffUntold(row.agentId);
      const b = buildOutgoingPackage(store, { agentId: row.agentId, row, epoch: lease.epoch, checkpointHash, haveWasm, baseHash, interrupted });
      alsoWrite?.(b);
      return b;
    });
  }

  /** The offer of the handed-off head at the handoff's epoch. */
  private offer(row: AgentRow, handoff: Handoff): Record<string, unknown> {
    const { lease } = handoff;
    return {
      type: "offer",
      agentId: row.agentId,
      did: row.did,
      wasmHash: row.wasmHash,
      checkpointHash: handoff.checkpointHash,
      epochMajor: lease.epoch.major,
      epochGeneration: lease.epoch.generation,
      manifest: row.manifest,
      // This node sends `durable` once its handoff is durable, so a package may go before (PROTOCOL.md).
      durableSignal: true,
      // A target may store the package as pending before `durable` (pending-reception.ts): this node
      // answers its status query (handed off to it, or owned here) and resolves such a reception.
      pendingReception: true,
      // Where this node listens: a target left with a pending reception by a crash asks it there.
      sourceAddrs: this.listenAddrs(),
      // A package of at most EAGER_PACKAGE_BYTES goes right behind `transfer`: the target may answer
      // `transfer` together with its result (PROTOCOL.md).
      packageWithTransfer: true,
      // This node, sending the agent back here later, may send its package with the offer
      // (package-with-offer.ts): it takes one so too.
      takesPackageWithOffer: true,
      // What the agent brings: a target with a lower --max-incoming-budget refuses before the transfer.
      budget: handoff.head.budget,
    };
  }

  /** This node's listen addresses, read once (formatting them costs ~0.15 ms, on every hop's path). */
  private listenAddrs(): string[] {
    if (this.addrs === null || this.addrs.length === 0) this.addrs = this.ctx.addresses().slice(0, MAX_SOURCE_ADDRS);
    return this.addrs;
  }

  /**
   * Records HANDOFF_INITIATED to `target` for the head `checkpointHash`, with the migration record,
   * inside the caller's transaction (the detach checkpoint's, or its own). Returns the lease written.
   */
  private recordHandoff(id: number, agentId: string, target: string, checkpointHash: string): Lease {
    const store = this.ctx.host.store;
    const lease0 = store.lease(agentId);
    if (!lease0 || !canTick(lease0)) {
      throw new IgordError(ErrorCode.LeaseTransition, `agent "${agentId}" cannot be handed off from ${lease0?.state ?? "no lease"}`);
    }
    const lease = transition(lease0, { type: "start_handoff", handoff: { target, checkpointHash } }, this.ctx.host.leaseTiming);
    store.writeLease(agentId, { state: lease0.state, epoch: lease0.epoch }, lease);
    store.updateMigration(id, { checkpointHash, epoch: lease.epoch });
    return lease;
  }

  private async handOff(id: number, row: AgentRow, list: Target[], started: number, logger: Logger, tally: Tally, early: EarlyOffer | null, detached: Handoff | null): Promise<MigrationResult> {
    const store = this.ctx.host.store;
    const m = this.ctx.host.metrics;
    const agentId = row.agentId;
    // Recorded with the detach checkpoint (as it committed), unless that wrote nothing new (no tick
    // since the last one): then in a transaction of its own, from the stored head.
    const handoff = detached ?? (await this.handOffStoredHead(id, agentId, (list[0] as Target).text));
    const { head, checkpointHash } = handoff;
    let lease = handoff.lease;
    // The crash point after the durable handoff, unless the early chain ran it before its `durable`.
    if (!early?.hookRan) {
      if (early) early.hookRan = true;
      this.ctx.hooks.afterHandoffRecorded?.(agentId);
    }
    logger.info({ event: "migration_started", targets: list.map((t) => t.text), tick: String(head.tick), epoch: formatEpoch(lease.epoch) }, `migrating ${agentId}`);
    let attempts = tally.attempts;
    let fallbacks = tally.fallbacks;
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
      for (let attempt = 1; attempt <= this.ctx.retry.attempts; attempt++) {
        if (this.ctx.stopSignal.aborted) break;
        attempts++;
        // The preflight's attempt that found the target ready goes on here: counted and recorded once.
        if (attempts !== tally.recorded) {
          m.migrationAttempts.inc({ direction: "out" });
          store.updateMigration(id, { attempts });
        }
        tally.recorded = -1;
        let epoch: Epoch;
        try {
          epoch = await this.attempt(id, row, t, { ...handoff, lease }, i === 0 && attempt === 1 ? early : null);
        } catch (e) {
          const f = e instanceof AttemptError ? e : new AttemptError(asIgord(e, ErrorCode.MigrationStreamClosed), false, false);
          last = f.error;
          const kind = classifyFailure(f.error.code, f.sent, f.refused);
          logger.warn({ event: "migration_attempt_failed", target: t.text, attempt, code: f.error.code, class: kind }, f.error.message);
          if (kind === "ambiguous") {
            const recovery = transition(lease, { type: "ambiguous_handoff" }, this.ctx.host.leaseTiming);
            store.writeLease(agentId, { state: lease.state, epoch: lease.epoch }, recovery);
            store.updateMigration(id, { state: "recovery", error: { code: f.error.code, message: f.error.message } });
            m.migrationAmbiguous.inc();
            m.migrationOutcomes.inc({ direction: "out", outcome: "recovery" });
            logger.error({ event: "migration_ambiguous", target: t.text }, `sent ${agentId} to ${t.text} without a confirmation: RECOVERY_REQUIRED until it answers`);
            this.resolution.resolveHandoff(agentId, id);
            return { id, agentId, outcome: "recovery", target: t.text, peer: t.peerId, address: this.ctx.addressOf(t.peerId), attempts, fallbacks, epoch: null, error: { code: f.error.code, message: f.error.message }, durationMs: msSince(started) };
          }
          this.ctx.peers.failed(t.peerId);
          if (kind === "fatal") break;
          if (attempt < this.ctx.retry.attempts) {
            m.migrationRetries.inc();
            await sleep(backoffDelay(this.ctx.retry, attempt), this.ctx.stopSignal);
          }
          continue;
        }
        // Confirmed: the target owns the agent. From here on nothing may fall back or revert.
        this.ctx.hooks.afterConfirmed?.(agentId);
        try {
          const retired = transition(lease, { type: "confirm_handoff" }, this.ctx.host.leaseTiming);
          const belief = { state: lease.state, epoch: lease.epoch };
          // No fsync of its own: HANDOFF_INITIATED is durable and never runs the agent, so a power
          // cut that loses RETIRED leaves the handoff open, which the status query settles as
          // RETIRED (the target owns it) — the state crash point source-after-confirm leaves
          // (migration-crash.test.ts). The next durable commit (a checkpoint, a return) carries it.
          store.atomicallyUnsynced(() => {
            store.writeLease(agentId, belief, retired);
            store.setStatus(agentId, "stopped", "migrated");
            store.updateMigration(id, { state: "done", error: null });
          });
        } catch (e) {
          // The lease stays HANDOFF_INITIATED here: the status query settles it (the target owns it).
          const err = asIgord(e, ErrorCode.StoreError);
          logger.error({ event: "migration_retire_failed", target: t.text, code: err.code }, `${t.text} took ${agentId} but RETIRED could not be written here: ${err.message}`);
          this.resolution.resolveHandoff(agentId, id);
          return { id, agentId, outcome: "recovery", target: t.text, peer: t.peerId, address: this.ctx.addressOf(t.peerId), attempts, fallbacks, epoch, error: { code: err.code, message: err.message }, durationMs: msSince(started) };
        }
        this.ctx.host.retired(agentId);
        this.ctx.peers.succeeded(t.peerId, Date.now());
        m.migrationOutcomes.inc({ direction: "out", outcome: "done" });
        const durationMs = msSince(started);
        m.migrationDuration.observe({ direction: "out" }, durationMs / 1000);
        const address = this.ctx.addressOf(t.peerId);
        logger.info({ event: "migration_done", target: t.text, peer: t.peerId, address, epoch: formatEpoch(epoch), attempts }, `${agentId} now runs on ${t.peerId} (${address ?? t.text}) at epoch ${formatEpoch(epoch)}`);
        return { id, agentId, outcome: "done", target: t.text, peer: t.peerId, address, attempts, fallbacks, epoch, error: null, durationMs };
      }
    }
    // The early stream's `durable` went though no attempt took it up (the node is stopping): the
    // target may own the agent, so nothing is reverted.
    if (early && !early.taken && (await withholdDurable(early))) {
      return this.ambiguousAfterDurable(id, agentId, list[0] as Target, new IgordError(ErrorCode.NodeStopping, "the node is stopping"), { ...tally, attempts, fallbacks }, started, logger);
    }
    // Nothing was delivered anywhere: the handoff is reverted and the agent ticks here again.
    const back = transition(lease, { type: "revert_handoff" }, this.ctx.host.leaseTiming);
    store.writeLease(agentId, { state: lease.state, epoch: lease.epoch }, back);
    const error = last ? { code: last.code, message: last.message } : { code: ErrorCode.NodeStopping, message: "the node is stopping" };
    store.updateMigration(id, { state: "failed", error });
    m.migrationOutcomes.inc({ direction: "out", outcome: "reverted" });
    m.migrationDuration.observe({ direction: "out" }, msSince(started) / 1000);
    logger.warn({ event: "migration_reverted", code: error.code, attempts, fallbacks }, `migration of ${agentId} failed (${error.code}); it keeps running here`);
    if (!this.ctx.host.stopping()) await this.ctx.host.resume(agentId).catch(() => undefined);
    return { id, agentId, outcome: "reverted", target: null, peer: null, address: null, attempts, fallbacks, epoch: null, error, durationMs: msSince(started) };
  }

  /** Closes the migrate streams kept open for later migrations (the node is stopping). */
  closeIdle(): void {
    this.idle.closeAll();
  }

  private async openMigrate(t: Target): Promise<FrameChannel> {
    try {
      return await this.ctx.open(t, MIGRATE_PROTOCOL);
    } catch (e) {
      throw new AttemptError(asIgord(e, ErrorCode.MigrationDialFailed), false, false);
    }
  }

  /** The target's answer to `transfer`; a refusal means it reads and admits nothing of this package. */
  private async transferAccepted(ch: FrameChannel, t: Target, timeout: number): Promise<void> {
    const go = await ch.receiveJson(timeout, "transfer_reply");
    if (go.ok !== true) throw new AttemptError(remoteError(go, `${t.text} refused the transfer`), false, true);
  }

  /**
   * HANDOFF_INITIATED for the stored head when the detach wrote no checkpoint (no tick since the
   * last one), in a durable transaction of its own; resolves once it is durable (no offer goes out before).
   */
  private async handOffStoredHead(id: number, agentId: string, first: string): Promise<Handoff> {
    const store = this.ctx.host.store;
    const stored = store.head(agentId);
    if (!stored) throw new IgordError(ErrorCode.LeaseTransition, `agent "${agentId}" has no checkpoint to hand off`);
    const checkpointHash = hex(stored.hash);
    const head = { hash: stored.hash, tick: stored.tick, budget: parseCheckpoint(stored.blob).budget };
    const lease = store.lease(agentId);
    if (handedOff(lease, first, checkpointHash)) return { head, checkpointHash, lease };
    const recorded = store.atomicallyOffThread(() => this.recordHandoff(id, agentId, first, checkpointHash));
    await recorded.durable;
    return { head, checkpointHash, lease: recorded.value };
  }

  /** One transfer to one target. Resolves with the epoch the target took the agent at. */
  private async attempt(id: number, row: AgentRow, t: Target, handoff: Handoff, early: EarlyOffer | null): Promise<Epoch> {
    const store = this.ctx.host.store;
    const { lease, checkpointHash } = handoff;
    // The offer already sent on this target's kept stream while the handoff synced, if it is this one.
    const pre = early && early.peerId === t.peerId && early.checkpointHash === checkpointHash && compareEpochs(early.epoch, lease.epoch) === 0 ? early : null;
    if (pre) pre.taken = true;
    // The stream of the last migration to this peer, when it is still open; else a new one.
    let reused = pre ? pre.ch : this.idle.take(t.peerId);
    let ch = reused ?? (await this.openMigrate(t));
    const timeout = this.ctx.cfg.migrationTimeoutMs;
    /** Where the frame that lets the target take the agent ends in the stream's bytes, once the stream took it. */
    let sentEnd: number | null = null;
    let done = false;
    try {
      let reply: Record<string, unknown>;
      let built: Promise<Uint8Array | null> | null = null;
      let wrote: Promise<boolean> | null = null;
      let shipped: Promise<boolean> | null = null;
      try {
        if (pre) {
          reply = await pre.reply;
          built = pre.built;
          wrote = pre.wrote;
          shipped = pre.shipped;
        } else {
          await ch.sendJson(this.offer(row, handoff));
          reply = await ch.receiveJson(timeout, "offer_reply");
        }
      } catch (e) {
        // A kept stream the target closed meanwhile (its idle wait ran out, or it serves one
        // migration per stream): only the offer went out, so ask again on a new stream.
        if (!reused || (e instanceof IgordError && e.code !== ErrorCode.MigrationStreamClosed)) throw e;
        reused = null;
        void ch.close();
        ch = await this.openMigrate(t);
        await ch.sendJson(this.offer(row, handoff));
        reply = await ch.receiveJson(timeout, "offer_reply");
      }
      if (reply.ok !== true) throw new AttemptError(remoteError(reply, `${t.text} refused the offer`), false, true);
      if (reply.already === true) {
        // An identical retry of a migration the target took: it owns the agent one major later.
        const owned = epochOf(reply, "offer_reply");
        if (owned.major !== lease.epoch.major + 1n) throw new AttemptError(new IgordError(ErrorCode.MigrationFrameInvalid, `${t.text} claims the agent at ${formatEpoch(owned)}, not at major ${lease.epoch.major + 1n}`), false, true);
        return owned;
      }
      // A target that takes the durable signal stores nothing before `durable`: the package alone
      // moves nothing there, and the handoff counts as sent only once `durable` has gone.
      const signal = reply.durableSignal === true;
      const transferring = (b: Uint8Array): void => {
        if (b.length <= this.ctx.cfg.maxPackageBytes) store.updateMigration(id, { state: "transferring", peer: t.text });
      };
      // Built during the handoff's fsync (the early offer's reply came then), or now: the run seal
      // (if its newest segments' run was open) and the record's progress in one unsynced commit.
      const early = built ? await built : null;
      // Sent during the fsync (the record said transferring then); its announcement's answer is
      // read below, with the result it may come with.
      const wentEarly = wrote ? await wrote : false;
      if (early && !wentEarly) transferring(early);
      const bytes = early ?? this.packageFor(row, lease, checkpointHash, reply, transferring);
      if (bytes.length > this.ctx.cfg.maxPackageBytes) {
        throw new AttemptError(new IgordError(ErrorCode.MigrationPackageTooLarge, `package of ${bytes.length} bytes is over --max-package-size ${this.ctx.cfg.maxPackageBytes}`), false, true);
      }
      const transfer = jsonBytes({ type: "transfer", bytes: bytes.length });
      // With the durable signal a small package's write carries `durable` too: this attempt runs
      // once the handoff is durable, and a target that refuses the announcement reads nothing after it.
      let durableWithPackage = false;
      if (wentEarly) {
        // On the wire and announced; the handoff is durable now (this attempt runs after the fsync).
      } else if (bytes.length <= EAGER_PACKAGE_BYTES) {
        // A small package goes right behind its announcement, in the same write, one round trip
        // sooner: the target holds it in the stream's read buffer until it has answered the
        // announcement, and reads it only if it said yes. A refusal there is a refusal: such a
        // target never reads or admits the package. Once the stream took it, it may arrive even if
        // the write then fails (a stream that refused the write outright sent nothing).
        durableWithPackage = signal;
        const before = ch.bytesSent;
        try {
          await ch.sendAll(signal ? [transfer, bytes, DURABLE_FRAME] : [transfer, bytes]);
        } finally {
          if (ch.bytesSent > before) sentEnd = ch.bytesSent;
        }
      } else {
        await ch.send(transfer);
        await this.transferAccepted(ch, t, timeout);
        for (let off = 0; off < bytes.length; off += CHUNK_BYTES) {
          const before = ch.bytesSent;
          try {
            await ch.send(bytes.subarray(off, off + CHUNK_BYTES));
          } finally {
            // Without the signal the package's last chunk is what lets the target take the agent.
            if (!signal && off + CHUNK_BYTES >= bytes.length && ch.bytesSent > before) sentEnd = ch.bytesSent;
          }
        }
      }
      if (signal && wentEarly && pre) {
        // Sent by the early chain as soon as the fsync returned (or being sent).
        try {
          if (!(await pre.durableSent)) throw new IgordError(ErrorCode.MigrationStreamClosed, "`durable` was not sent on the early stream");
        } finally {
          sentEnd = pre.durableEnd;
        }
      } else if (signal && !durableWithPackage) {
        // HANDOFF_INITIATED is durable (the detach resolved after its fsync): the target may store it.
        const before = ch.bytesSent;
        try {
          await ch.send(DURABLE_FRAME);
        } finally {
          if (ch.bytesSent > before) sentEnd = ch.bytesSent;
        }
      }
      store.updateMigration(id, { state: "awaiting_confirmation", bytes: bytes.length });
      this.ctx.hooks.afterPackageSent?.(row.agentId);
      this.ctx.host.metrics.migrationBytes.inc({ direction: "out" }, bytes.length);
      // The answer to a small package's announcement, which the target may send with its result.
      if (wentEarly) await shipped;
      else if (bytes.length <= EAGER_PACKAGE_BYTES) await this.transferAccepted(ch, t, timeout);
      const result = await ch.receiveJson(timeout, "result");
      if (result.ok !== true) throw new AttemptError(remoteError(result, `${t.text} refused the package`), true, true);
      const owned = epochOf(result, "result");
      done = true;
      return owned;
    } catch (e) {
      // A refusal is the target's word (it stores nothing of this stream), whatever went.
      if (e instanceof AttemptError) throw e;
      // The early stream's `durable` may have gone with the package, before this attempt knew it.
      const gone = pre ? await withholdDurable(pre) : false;
      // Sent only if the frame that lets the target take the agent left this node (else it is
      // withheld: the stream is reset before its buffer drains), so the hop may fall back or revert.
      throw new AttemptError(asIgord(e, ErrorCode.MigrationStreamClosed), gone || leftOrWithheld(ch, sentEnd), false);
    } finally {
      // Through: the stream carries the next migration to this peer. Anything else: closed.
      if (done) this.idle.keep(t.peerId, ch);
      else await ch.close();
    }
  }
}
