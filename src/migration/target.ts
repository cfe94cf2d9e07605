// The target side of a migration: trust and cheap checks on the offer, the package in chunks under
// one deadline, a per-peer reservation and a node-wide cap on bytes held, admission in the documented order (admission.ts), one
// transaction, start the agent, confirm. A refusal stores nothing and says why with a stable code.
import { compareEpochs, formatEpoch } from "../authority/lease.js";
import { hex } from "../hash/bytes.js";
import { ErrorCode, IgordError } from "../errors.js";
import { checkAgentId, type PreparedAgent } from "../loader/prepare.js";
import { epoch as epochOf, type FrameChannel, hex32, jsonBytes, MAX_AGENT_ID_CHARS, MAX_DID_CHARS, MAX_EPOCH_PART, safeInt, str, uint } from "../p2p/frames.js";
import type { ReplayItem } from "../replay/engine.js";
import type { AdmissionContext } from "./admission-context.js";
import { admitPackage, checkBudget, checkManifest, checkOwnership } from "./admission.js";
import type { PendingReception } from "../store/sqlite-store.js";
import { acceptsFrom, ADMISSION_REPLAY_SHARE, asIgord, MAX_CONCURRENT_PACKAGES, MAX_MANIFEST_CHARS, MAX_REMOTE_MESSAGE_CHARS, MAX_PACKAGES_PER_PEER, MIGRATE_IDLE_MS, type MigrationContext } from "./context.js";
import { decodePackage } from "./package.js";
import { settlePendingByOffer, sourceAddrsOf } from "./pending-reception.js";
import { EAGER_PACKAGE_BYTES, TRANSFER_OK } from "./early-offer.js";
import { packageWithOfferOf, receivePackageWithOffer, rememberArrival } from "./package-with-offer.js";
import type { PreplacedAgent } from "../scheduler/preplaced.js";

export class MigrationTarget {
  /** Package bytes that have arrived and are held right now, node-wide (MAX_CONCURRENT_PACKAGES × --max-package-size). */
  private heldBytes = 0;
  /** Per peer: package bytes announced and reserved, and agents being received from it. */
  private readonly peers = new Map<string, { reserved: number; receiving: number }>();

  constructor(private readonly ctx: MigrationContext) {}

  private peer(id: string): { reserved: number; receiving: number } {
    let p = this.peers.get(id);
    if (!p) this.peers.set(id, (p = { reserved: 0, receiving: 0 }));
    return p;
  }

  private release(id: string, reserved: number, receiving: number): void {
    const p = this.peer(id);
    p.reserved -= reserved;
    p.receiving -= receiving;
    if (p.reserved <= 0 && p.receiving <= 0) this.peers.delete(id);
  }

  /**
   * Serves one incoming migrate stream: a migration, then, while each goes through, the source's
   * next migration to this node on the same stream (it waits MIGRATE_IDLE_MS for its offer).
   */
  async onMigrate(ch: FrameChannel, peer: string): Promise<void> {
    try {
      for (let first = true; await this.serveOne(ch, peer, first); first = false);
    } finally {
      await ch.close();
    }
  }

  /** One migration on the stream; true when it went through and the stream may carry another. */
  private async serveOne(ch: FrameChannel, peer: string, first: boolean): Promise<boolean> {
    let offer: Record<string, unknown> | null = null;
    if (!first) {
      // The source's next migration, if any: a stream it closes or leaves idle ends quietly.
      try {
        offer = await ch.receiveJson(MIGRATE_IDLE_MS, "offer");
      } catch {
        return false;
      }
    }
    const m = this.ctx.host.metrics;
    const store = this.ctx.host.store;
    const cfg = this.ctx.cfg;
    const timeout = cfg.migrationTimeoutMs;
    const started = Date.now();
    let stage: "offer_reply" | "transfer_reply" | "result" = "offer_reply";
    let reserved = 0;
    let held = 0;
    let counted = 0;
    let claimed: string | null = null;
    let committed = false;
    let agentId = "?";
    let through = false;
    let preplaced: PreplacedAgent | null = null;
    /** Pending mode: settles once the pending reception is durable (stored before the replay). */
    let pendingSynced: Promise<void> | null = null;
    let pendingHash: string | null = null;
    let releaseWal = (): void => {};
    /** Frames that go out in the same write as this migration's next answer (a deferred transfer_reply). */
    let answerWith: Uint8Array[] = [];
    const answer = (value: Record<string, unknown>): Promise<void> => ch.sendAll([...answerWith, jsonBytes(value)]);
    m.migrationAttempts.inc({ direction: "in" });
    try {
      const T = "offer";
      offer ??= await ch.receiveJson(timeout, T);
      // No WAL checkpoint inside this reception's commits: it runs after (store.deferWalCheckpoints).
      releaseWal = store.deferWalCheckpoints();
      if (this.ctx.host.stopping()) throw new IgordError(ErrorCode.NodeStopping, "this node is stopping");
      // Who is asking comes first: nothing of an untrusted peer's offer is looked at or reserved.
      if (!acceptsFrom(cfg, peer)) {
        throw new IgordError(ErrorCode.MigrationUntrustedPeer, `this node does not accept migrations from ${peer}`);
      }
      // A package sent behind the offer is read off the stream now, whatever the answer (bounded:
      // EAGER_PACKAGE_BYTES, and counted against the bytes this node holds).
      const withOffer = packageWithOfferOf(offer);
      let packageSent: Uint8Array | null = null;
      if (withOffer) {
        if (this.heldBytes + withOffer.bytes > cfg.maxPackageBytes * MAX_CONCURRENT_PACKAGES) throw new IgordError(ErrorCode.MigrationBusy, `this node is already holding ${this.heldBytes} bytes of incoming packages`);
        this.heldBytes += withOffer.bytes;
        held = withOffer.bytes;
        packageSent = await receivePackageWithOffer(ch, withOffer, timeout);
      }
      agentId = checkAgentId(str(offer, T, "agentId", MAX_AGENT_ID_CHARS));
      const did = str(offer, T, "did", MAX_DID_CHARS);
      const wasmHash = hex32(offer, T, "wasmHash");
      const checkpointHash = hex32(offer, T, "checkpointHash");
      const epoch = epochOf(offer, T);
      // The target owns the agent at major + 1, which must still be an epoch.
      if (epoch.major >= MAX_EPOCH_PART) throw new IgordError(ErrorCode.MigrationFrameInvalid, `"offer" message: epochMajor ${epoch.major} has no next epoch to own the agent at`);
      const manifestText = str(offer, T, "manifest", MAX_MANIFEST_CHARS);
      if (offer.budget !== undefined) checkBudget(uint(offer, T, "budget"), agentId, cfg.maxIncomingBudget);
      // An identical retry of a migration this node already took: answer as before, do nothing.
      // The agents row and lease, read once for the checks below (nothing awaits before the last).
      const stored = store.agentAndLease(agentId);
      const lease = stored?.lease;
      // The lease first: the record lookup walks the agent's past migrations, and only an owner one
      // major later can have taken this one already. Not while that reception is still claimed: it
      // is committed but not yet durable (or its sync failed), and "taken" would retire the source.
      if (lease?.state === "ACTIVE_OWNER" && lease.epoch.major === epoch.major + 1n && !this.ctx.receiving.has(agentId) && store.incomingDone(agentId, checkpointHash, epoch)) {
        await ch.sendJson({ type: "offer_reply", ok: true, already: true, epochMajor: lease.epoch.major, epochGeneration: lease.epoch.generation });
        this.ctx.log.info({ event: "migration_duplicate", agent: agentId, peer }, `duplicate migration of ${agentId} answered without effect`);
        return false;
      }
      if (this.ctx.receiving.has(agentId) || this.ctx.outgoing.has(agentId)) throw new IgordError(ErrorCode.MigrationBusy, `agent "${agentId}" is already moving through this node`);
      // Pending receptions a crash left count as agents being received until they are resolved.
      let leftPending = store.pendingReceptionKeys().filter((k) => !this.ctx.receiving.has(k.agentId));
      if (leftPending.some((k) => k.agentId === agentId)) {
        settlePendingByOffer(this.ctx, { agentId, peer, epoch, checkpointHash });
        leftPending = leftPending.filter((k) => k.agentId !== agentId);
      }
      const load = this.ctx.host.runningAgents() + this.ctx.receiving.size + leftPending.length;
      if (cfg.maxAgents > 0 && load >= cfg.maxAgents) {
        throw new IgordError(ErrorCode.MigrationNodeFull, `this node runs or is receiving ${load} agents, its --max-agents`);
      }
      const fromPeer = store.agentsReceivedFrom(peer) + (this.peers.get(peer)?.receiving ?? 0) + leftPending.filter((k) => k.peer === peer).length;
      if (cfg.maxAgentsPerPeer > 0 && fromPeer >= cfg.maxAgentsPerPeer) {
        throw new IgordError(ErrorCode.MigrationNodeFull, `this node runs or is receiving ${fromPeer} agents from ${peer}, its --max-agents-per-peer`);
      }
      // The same checks the package gets, on the offer alone: a refusal costs no transfer.
      const offered = this.ctx.host.capabilities.snapshot();
      checkManifest(manifestText, agentId, { offered, price: cfg.price });
      checkOwnership(store, agentId, did, epoch, stored);
      this.ctx.receiving.add(agentId);
      claimed = agentId;
      this.peer(peer).receiving++;
      counted = 1;
      // Durable before the offer is taken: only this peer may later settle (fence) this handoff.
      store.recordIncomingHandoff({ agentId, did, peer, epoch });
      const base = lease?.state === "RETIRED" ? store.head(agentId) : undefined;
      // A source that sends `durable` once its handoff is durable may send the package before: this
      // node then stores it only after that signal (below). Said back, so both sides know.
      const signal = offer.durableSignal === true;
      // With that signal, a source that says it resolves pending receptions lets this node store the
      // package as pending before `durable` (pending-reception.ts): its fsync leaves the hop's path.
      const pendingMode = signal && offer.pendingReception === true;
      const sourceAddrs = pendingMode ? sourceAddrsOf(offer, peer) : [];
      const haveWasm = store.hasWasm(wasmHash);
      const baseHash = base ? hex(base.hash) : null;
      // The package sent with the offer is taken when it was built for what this node holds, and
      // only with the durable signal (nothing of it is stored before `durable`).
      const takeSent = withOffer !== null && signal && withOffer.baseHash === baseHash && (!withOffer.haveWasm || haveWasm) && withOffer.bytes <= cfg.maxPackageBytes;
      if (withOffer && !takeSent) {
        this.heldBytes -= held;
        held = 0;
        packageSent = null;
      }
      await ch.sendJson({ type: "offer_reply", ok: true, haveWasm, baseHash, ...(signal ? { durableSignal: true } : {}), ...(pendingMode ? { pendingReception: true } : {}), ...(withOffer ? { packageAccepted: takeSent } : {}) });
      stage = "transfer_reply";
      const size = packageSent ? packageSent.length : safeInt(await ch.receiveJson(timeout, "transfer"), "transfer", "bytes");
      if (size > cfg.maxPackageBytes) throw new IgordError(ErrorCode.MigrationPackageTooLarge, `package of ${size} bytes is over this node's --max-package-size ${cfg.maxPackageBytes}`);
      const share = cfg.maxPackageBytes * MAX_PACKAGES_PER_PEER;
      const mine = this.peer(peer);
      if (mine.reserved + size > share) {
        throw new IgordError(ErrorCode.MigrationBusy, `${peer} is already sending ${mine.reserved} bytes of packages here (a peer's share is ${share})`);
      }
      mine.reserved += size;
      reserved = size;
      // A source that sends a small package right behind `transfer` (and says so) is not waiting for
      // this answer: it goes in the same write as the result, one message less per hop. Any other
      // source waits for it before its first chunk.
      if (packageSent || (offer.packageWithTransfer === true && size <= EAGER_PACKAGE_BYTES)) answerWith = [TRANSFER_OK];
      else await ch.send(TRANSFER_OK);
      stage = "result";
      const chunks: Uint8Array[] = packageSent ? [packageSent] : [];
      // The whole package must arrive within one --migration-timeout (a peer dripping bytes cannot
      // hold the agent's slot forever); bytes count against the node-wide cap as they arrive.
      const deadline = Date.now() + timeout;
      const cap = cfg.maxPackageBytes * MAX_CONCURRENT_PACKAGES;
      while (held < size) {
        const chunk = await ch.receive(Math.max(1, deadline - Date.now()), "package chunk");
        if (chunk.length === 0 || held + chunk.length > size) {
          throw new IgordError(ErrorCode.MigrationFrameInvalid, `package chunk of ${chunk.length} bytes does not fit the announced ${size} bytes`);
        }
        if (this.heldBytes + chunk.length > cap) throw new IgordError(ErrorCode.MigrationBusy, `this node is already holding ${this.heldBytes} bytes of incoming packages`);
        this.heldBytes += chunk.length;
        held += chunk.length;
        chunks.push(chunk);
      }
      // The package's bytes as they arrived, until decoded: admission holds the decoded sections
      // only (a variable of this async function that lived on across the awaits below kept the
      // whole package alive a second time).
      let buf: Buffer | null = Buffer.concat(chunks, size);
      chunks.length = 0;
      m.migrationBytes.inc({ direction: "in" }, size);
      this.ctx.hooks.afterPackage?.(agentId, (err) => ch.abort(err));
      const pkg = decodePackage(buf);
      if (pkg.agentId !== agentId || pkg.checkpointHash !== checkpointHash || pkg.did !== did || compareEpochs(pkg.epoch, epoch) !== 0 || pkg.wasmHash !== wasmHash || pkg.manifest !== manifestText) {
        throw new IgordError(ErrorCode.MigrationFrameInvalid, "the package does not match its offer");
      }
      if (pendingMode) {
        // Stored as pending before admission's checks, so its fsync runs during them and the
        // replay: a package of an accepted peer that matches its offer, bounded by its reservation,
        // and dropped below should admission refuse it.
        pendingSynced = store.recordPendingReception({ agentId, did, peer, epoch, checkpointHash, package: buf, sourceAddrs });
        pendingHash = checkpointHash;
        // Awaited before the result; a refusal before then never awaits it.
        pendingSynced.catch(() => undefined);
      }
      buf = null;
      const admitted = await admitPackage(pkg, peer, size, this.admission(offered));
      if (this.ctx.host.stopping()) throw new IgordError(ErrorCode.NodeStopping, "this node is stopping");
      // The live instance loads on a worker while the reception commits; it ticks only once the
      // resume below (after the commit) takes it over, and is unloaded if that never happens.
      preplaced = this.ctx.host.preplace({
        prepared: admitted.prepared,
        identity: admitted.incoming.agent.identity,
        head: admitted.head,
        headHash: Buffer.from(checkpointHash, "hex"),
        events: admitted.incoming.overrides,
      });
      const pendingHook = this.ctx.hooks.afterPendingStored;
      if (pendingSynced && pendingHook) {
        await pendingSynced;
        pendingHook(agentId, (err) => ch.abort(err));
      }
      if (signal) {
        // Admitted, and not stored until the source's handoff is durable: a source that loses power
        // before it is comes back as the owner, and its stream, which `durable` would come on, is gone.
        const durableAtSource = await ch.receiveJson(timeout, "durable");
        if (durableAtSource.type !== "durable") throw new IgordError(ErrorCode.MigrationFrameInvalid, `expected the source's "durable", got "${String(durableAtSource.type)}"`);
        if (this.ctx.host.stopping()) throw new IgordError(ErrorCode.NodeStopping, "this node is stopping");
      }
      this.ctx.hooks.beforeStore?.(agentId, (err) => ch.abort(err));
      // Committed here; its fsync runs off the main thread. Until it returns the agent is still
      // being received (a status query is answered "receiving"), nothing runs it and nothing is sent.
      // Pending mode: the reception is durable as pending, and the source's handoff is durable
      // (`durable`): what the flip below commits is already decided on disk (pending-reception.ts),
      // so `result` waits for the pending row's fsync, not for the flip's.
      const pendingDurable = pendingSynced;
      const { durable: flipDurable } = store.receiveAgent(admitted.incoming);
      const durable = pendingDurable ?? flipDurable;
      committed = true;
      // Loaded and scheduled during that fsync, held: its first tick waits for the fsync (then a
      // tick interval), and should the fsync fail it is withdrawn without having ticked.
      const resumed = this.ctx.host.resume(agentId, admitted.replayedTicks > 0, preplaced, flipDurable).then(
        () => null,
        (e: unknown) => e,
      );
      try {
        await durable;
      } catch (e) {
        await resumed;
        // Stored but not known to be on disk, and the store takes no durable write any more. Neither
        // a confirmation nor a refusal would be true: the stream ends unanswered, the source asks
        // for the status and is told "receiving" (the claim stays) until a restart of this node
        // reads what the disk really holds: then the agent is owned here or was never received.
        const err = asIgord(e, ErrorCode.StoreError);
        claimed = null;
        this.ctx.log.error({ event: "migration_reception_unsynced", agent: agentId, peer, code: err.code }, `received ${agentId} but could not make it durable: ${err.message}`);
        ch.abort(err);
        return false;
      }
      const owned = admitted.incoming.lease.epoch;
      this.ctx.receiving.delete(agentId);
      // Its source keeps this checkpoint as its retired copy's head: sent back there, the package can go with the offer.
      if (offer.takesPackageWithOffer === true) rememberArrival(this.ctx.arrivals, agentId, { peer, checkpointHash, wasmHash });
      else this.ctx.arrivals.delete(agentId);
      claimed = null;
      m.migrationOutcomes.inc({ direction: "in", outcome: "done" });
      m.migrationDuration.observe({ direction: "in" }, (Date.now() - started) / 1000);
      this.ctx.log.info(
        { event: "migration_received", agent: agentId, peer, tick: String(admitted.head.tick), epoch: formatEpoch(owned), bytes: size, replayed: admitted.replayedTicks },
        `received ${agentId} from ${peer} at tick ${admitted.head.tick}; owner at epoch ${formatEpoch(owned)}`,
      );
      // Loaded and scheduled before the confirmation goes out, so a source told "done" can rely on
      // the agent running here; its first tick comes a tick interval after the fsync returned.
      const failed = await resumed;
      if (failed) {
        // It is ours now (stored at the new epoch) whether or not it starts: confirm anyway, and
        // make the failure visible (quarantined, igord agents) for the operator to resume it.
        const err = asIgord(failed, ErrorCode.StoreError);
        this.ctx.host.quarantine(agentId, err);
        this.ctx.log.error({ event: "migration_resume_failed", agent: agentId, code: err.code }, `received ${agentId} but cannot start it: ${err.message}`);
      }
      try {
        this.ctx.hooks.beforeConfirm?.(agentId, (err) => ch.abort(err));
        await answer({ type: "result", ok: true, epochMajor: owned.major, epochGeneration: owned.generation, node: this.ctx.peerId });
        through = true;
      } catch (e) {
        // The agent is ours either way; the source learns it from the status query.
        this.ctx.log.warn({ event: "migration_confirm_lost", agent: agentId, err: (e as Error).message }, `could not confirm ${agentId} to ${peer}`);
      }
    } catch (e) {
      if (committed) throw e;
      // Refused (or the source never said `durable`): nothing of this reception may stay pending.
      if (pendingHash) {
        try {
          store.dropPendingReception(agentId, pendingHash);
        } catch {
          // The store is failing: a restart resolves the row with the source.
        }
      }
      // Anything not raised as a typed refusal (a store or stream failure here) is this node's
      // trouble, not the package's: the source may retry.
      const err = asIgord(e, ErrorCode.MigrationBusy);
      m.migrationRefusals.inc({ code: err.code });
      m.migrationOutcomes.inc({ direction: "in", outcome: "refused" });
      this.ctx.log.warn({ event: "migration_refused", agent: agentId, peer, code: err.code }, `refused migration of ${agentId} from ${peer}: ${err.message}`);
      try {
        await answer({ type: stage, ok: false, code: err.code, message: err.message.slice(0, MAX_REMOTE_MESSAGE_CHARS) });
      } catch {
        // The source is gone; it will ask for the status if it had sent everything.
      }
    } finally {
      releaseWal();
      preplaced?.discard();
      if (claimed) this.ctx.receiving.delete(claimed);
      this.heldBytes -= held;
      this.release(peer, reserved, counted);
    }
    return through;
  }

  /** What admission needs from this node, its replays bounded by their share of --migration-timeout from now. */
  private admission(offered: ReadonlySet<string>): AdmissionContext {
    const cfg = this.ctx.cfg;
    const replayMs = Math.floor(cfg.migrationTimeoutMs * ADMISSION_REPLAY_SHARE);
    const replayDeadline = Date.now() + replayMs;
    return {
      store: this.ctx.host.store,
      cache: this.ctx.host.cache,
      offered,
      price: cfg.price,
      maxBudget: cfg.maxIncomingBudget,
      replayMode: cfg.replayMode,
      leaseTiming: this.ctx.host.leaseTiming,
      replay: (prepared, preState, items) => this.replayIncoming(prepared, preState, items, replayDeadline, replayMs),
      checksDeadline: replayDeadline,
    };
  }

  /**
   * The flip of a pending reception a crash left, once its source answered that it handed the agent
   * off here (pending-reception.ts): the stored package admitted again, every check and the replay
   * included, stored in one transaction that deletes the row, and the agent started once durable.
   */
  async flipStored(p: PendingReception): Promise<void> {
    const pkg = decodePackage(p.package);
    if (pkg.agentId !== p.agentId || pkg.checkpointHash !== p.checkpointHash || pkg.did !== p.did || compareEpochs(pkg.epoch, p.epoch) !== 0) {
      throw new IgordError(ErrorCode.MigrationFrameInvalid, "the pending reception's package does not match its row");
    }
    const admitted = await admitPackage(pkg, p.peer, p.package.length, this.admission(this.ctx.host.capabilities.snapshot()));
    if (this.ctx.host.stopping()) throw new IgordError(ErrorCode.NodeStopping, "this node is stopping");
    const { durable } = this.ctx.host.store.receiveAgent(admitted.incoming);
    await durable;
    this.ctx.log.info(
      { event: "migration_received", agent: p.agentId, peer: p.peer, tick: String(admitted.head.tick), epoch: formatEpoch(admitted.incoming.lease.epoch), bytes: p.package.length, replayed: admitted.replayedTicks },
      `received ${p.agentId} from ${p.peer} (a pending reception) at tick ${admitted.head.tick}; owner at epoch ${formatEpoch(admitted.incoming.lease.epoch)}`,
    );
    await this.ctx.host.resume(p.agentId, admitted.replayedTicks > 0).catch((e: unknown) => {
      const err = asIgord(e, ErrorCode.StoreError);
      this.ctx.host.quarantine(p.agentId, err);
    });
  }

  /**
   * Replays a shipped window on a staging placement in the worker pool: each tick under the tick
   * timeout, the whole by `deadline` (admission's share of --migration-timeout; a tick not started by
   * then refuses the package with MIGRATION_REPLAY_TIMEOUT). The placement only replays: the replay
   * rule is checked from the pre-window state on a replay instance, which the replay then takes up
   * again, and no live instance is built for it.
   */
  private async replayIncoming(prepared: PreparedAgent, preState: Uint8Array, items: ReplayItem[], deadline: number, replayMs: number): Promise<{ finalState: Uint8Array | null; verifiedTicks: number }> {
    const stagingId = `${prepared.agentId}~incoming`;
    const pool = this.ctx.host.pool;
    const placed = pool.place({ agentId: stagingId, module: prepared.module, plan: prepared.plan, memoryCapPages: prepared.memoryCapPages }, { state: preState, budget: 1n, price: 0n, replayOnly: true });
    // Sent behind the load without waiting for it (one worker round trip for both); a load that
    // fails (the replay rule, a trap, the deadline) is the refusal, whatever the replay answered.
    const replayed = pool.replay(stagingId, items, { strict: true, deadline }).then(
      (outcome) => ({ outcome, error: null }),
      (error: unknown) => ({ outcome: null, error }),
    );
    try {
      await placed;
      const r = await replayed;
      if (!r.outcome) throw r.error;
      const out = r.outcome;
      if (out.failure?.error.code === ErrorCode.ReplayDeadline) {
        throw new IgordError(
          ErrorCode.MigrationReplayTimeout,
          `replaying the shipped window of "${prepared.agentId}" took over ${replayMs} ms, the share of --migration-timeout this node gives it (${out.verified} of ${items.length} ticks replayed); the source can checkpoint more often, or this node can raise --migration-timeout`,
          { details: { replayMs, verified: out.verified, ticks: items.length } },
        );
      }
      if (out.failure) throw IgordError.fromJSON(out.failure.error);
      return { finalState: out.finalState ?? null, verifiedTicks: out.verified };
    } finally {
      pool.unload(stagingId);
    }
  }
}
