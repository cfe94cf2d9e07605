// One incoming migration on a stream, from its offer to its result, as named steps: the offer's
// checks, the claim and the reply, the package, admission, the commit, the confirmation. A refusal
// at any step stores nothing and says why with a stable code; whatever happens, what the reception
// held (bytes, reservations, its claim on the agent, a preplaced instance) is given back.
//
// Why steps and not one function: V8 compiles an async function as one graph, and this one ran on
// every hop; split, each step is compiled (when it is hot) on its own, a smaller and shorter job on
// the hop's two cores (docs/BENCHMARKS.md, "Admission in steps"; the target's reception likewise).
import { compareEpochs, type Epoch, formatEpoch, type Lease } from "../authority/lease.js";
import { hex } from "../hash/bytes.js";
import { ErrorCode, IgordError } from "../errors.js";
import { checkAgentId } from "../loader/prepare.js";
import { epoch as epochOf, type FrameChannel, hex32, jsonBytes, MAX_AGENT_ID_CHARS, MAX_DID_CHARS, MAX_EPOCH_PART, safeInt, str, uint } from "../p2p/frames.js";
import type { AdmissionContext } from "./admission-context.js";
import { admitPackage, checkBudget, checkManifest, checkOwnership } from "./admission.js";
import type { AgentRow } from "../store/sqlite-store.js";
import { acceptsFrom, asIgord, MAX_CONCURRENT_PACKAGES, MAX_MANIFEST_CHARS, MAX_REMOTE_MESSAGE_CHARS, MAX_PACKAGES_PER_PEER, type MigrationContext } from "./context.js";
import { decodePackage, type MigrationPackage } from "./package.js";
import { settlePendingByOffer, sourceAddrsOf } from "./pending-reception.js";
import { EAGER_PACKAGE_BYTES, TRANSFER_OK } from "./early-offer.js";
import { type PackageWithOffer, packageWithOfferOf, receivePackageWithOffer, rememberArrival } from "./package-with-offer.js";
import type { PreplacedAgent } from "../scheduler/preplaced.js";
import type { IncomingHoldings } from "./incoming-holdings.js";

/** What a reception needs from the node's migration target. */
export interface ReceptionHost {
  ctx: MigrationContext;
  holdings: IncomingHoldings;
  /** What admission needs, its replays bounded from now. */
  admission(offered: ReadonlySet<string>): AdmissionContext;
}

/** The offer's fields, checked, with what this node holds of the agent (read once). */
interface CheckedOffer {
  raw: Record<string, unknown>;
  agentId: string;
  did: string;
  wasmHash: string;
  checkpointHash: string;
  epoch: Epoch;
  manifestText: string;
  stored: { row: AgentRow; lease: Lease } | undefined;
  lease: Lease | undefined;
  withOffer: PackageWithOffer | null;
  /** The source sends `durable` once its handoff is durable; nothing is stored before it. */
  signal: boolean;
  /** The package is stored as pending before `durable` (pending-reception.ts). */
  pendingMode: boolean;
  sourceAddrs: string[];
}

/** What the reply to the offer agreed: the mode of the rest of the hop. */
interface Agreed {
  offered: ReadonlySet<string>;
  signal: boolean;
  pendingMode: boolean;
  sourceAddrs: string[];
}

type Admitted = Awaited<ReturnType<typeof admitPackage>>;

export class Reception {
  private stage: "offer_reply" | "transfer_reply" | "result" = "offer_reply";
  private reserved = 0;
  private held = 0;
  private counted = 0;
  private claimed: string | null = null;
  private committed = false;
  private agentId = "?";
  private preplaced: PreplacedAgent | null = null;
  /** Pending mode: settles once the pending reception is durable (stored before the replay). */
  private pendingSynced: Promise<void> | null = null;
  private pendingHash: string | null = null;
  /** The package that came right behind the offer, while it is taken. */
  private packageSent: Uint8Array | null = null;
  private releaseWal = (): void => {};
  /** Frames that go out in the same write as this migration's next answer (a deferred transfer_reply). */
  private answerWith: Uint8Array[] = [];
  /** Monotonic (performance.now): the hop's duration is not the size of a wall-clock step. */
  private readonly started = performance.now();

  constructor(
    private readonly host: ReceptionHost,
    private readonly ch: FrameChannel,
    private readonly peer: string,
  ) {}

  private get ctx(): MigrationContext {
    return this.host.ctx;
  }

  /** The migration `offer` opens (read off the stream when null); true when it went through and the stream may carry another. */
  async run(offer: Record<string, unknown> | null): Promise<boolean> {
    this.ctx.host.metrics.migrationAttempts.inc({ direction: "in" });
    try {
      const raw = offer ?? (await this.ch.receiveJson(this.ctx.cfg.migrationTimeoutMs, "offer"));
      // No WAL checkpoint inside this reception's commits: it runs after (store.deferWalCheckpoints).
      this.releaseWal = this.ctx.host.store.deferWalCheckpoints();
      const checked = await this.checkOffer(raw);
      if (await this.answeredAsDuplicate(checked)) return false;
      const agreed = await this.replyToOffer(checked);
      const pkg = await this.receivePackage(checked, agreed);
      const admitted = await this.admit(checked, agreed, pkg);
      return await this.storeAndConfirm(checked, admitted);
    } catch (e) {
      if (this.committed) throw e;
      await this.refuse(e);
      return false;
    } finally {
      this.giveBack();
    }
  }

  /**
   * Who is asking, then the offer's fields. A package sent behind the offer is read off the stream
   * whatever the answer (bounded: EAGER_PACKAGE_BYTES, and counted against the bytes this node holds).
   */
  private async checkOffer(offer: Record<string, unknown>): Promise<CheckedOffer> {
    const cfg = this.ctx.cfg;
    const T = "offer";
    if (this.ctx.host.stopping()) throw new IgordError(ErrorCode.NodeStopping, "this node is stopping");
    // Who is asking comes first: nothing of an untrusted peer's offer is looked at or reserved.
    if (!acceptsFrom(cfg, this.peer)) {
      throw new IgordError(ErrorCode.MigrationUntrustedPeer, `this node does not accept migrations from ${this.peer}`);
    }
    const withOffer = packageWithOfferOf(offer);
    if (withOffer) {
      // Announced: reserved against this peer's own share, as an announced transfer is (a peer
      // whose offers announce packages and go silent blocks only itself); held node-wide as it arrives.
      this.reserve(withOffer.bytes);
      const sent = await receivePackageWithOffer(this.ch, withOffer, cfg.migrationTimeoutMs);
      this.hold(sent.length);
      this.packageSent = sent;
    }
    const agentId = checkAgentId(str(offer, T, "agentId", MAX_AGENT_ID_CHARS));
    this.agentId = agentId;
    const did = str(offer, T, "did", MAX_DID_CHARS);
    const wasmHash = hex32(offer, T, "wasmHash");
    const checkpointHash = hex32(offer, T, "checkpointHash");
    const epoch = epochOf(offer, T);
    // The target owns the agent at major + 1, which must still be an epoch.
    if (epoch.major >= MAX_EPOCH_PART) throw new IgordError(ErrorCode.MigrationFrameInvalid, `"offer" message: epochMajor ${epoch.major} has no next epoch to own the agent at`);
    const manifestText = str(offer, T, "manifest", MAX_MANIFEST_CHARS);
    if (offer.budget !== undefined) checkBudget(uint(offer, T, "budget"), agentId, cfg.maxIncomingBudget);
    // A source that sends `durable` once its handoff is durable may send the package before: this
    // node then stores it only after that signal (admit). Said back, so both sides know.
    const signal = offer.durableSignal === true;
    // With that signal, a source that says it resolves pending receptions lets this node store the
    // package as pending before `durable` (pending-reception.ts): its fsync leaves the hop's path.
    // Every field is checked here, before the claim records the handoff (which lets this peer fence it).
    const pendingMode = signal && offer.pendingReception === true;
    const sourceAddrs = pendingMode ? sourceAddrsOf(offer, this.peer) : [];
    // The agents row and lease, read once for the checks that follow (nothing awaits before the last).
    const stored = this.ctx.host.store.agentAndLease(agentId);
    return { raw: offer, agentId, did, wasmHash, checkpointHash, epoch, manifestText, stored, lease: stored?.lease, withOffer, signal, pendingMode, sourceAddrs };
  }

  /**
   * An identical retry of a migration this node already took: answered as before, nothing done.
   * The lease first: the record lookup walks the agent's past migrations, and only an owner one
   * major later can have taken this one already. Not while that reception is still claimed: it is
   * committed but not yet durable (or its sync failed), and "taken" would retire the source.
   */
  private async answeredAsDuplicate(o: CheckedOffer): Promise<boolean> {
    const { lease, agentId } = o;
    if (lease?.state !== "ACTIVE_OWNER" || lease.epoch.major !== o.epoch.major + 1n || this.ctx.receiving.has(agentId)) return false;
    if (!this.ctx.host.store.incomingDone(agentId, o.checkpointHash, o.epoch)) return false;
    await this.ch.sendJson({ type: "offer_reply", ok: true, already: true, epochMajor: lease.epoch.major, epochGeneration: lease.epoch.generation });
    this.ctx.log.info({ event: "migration_duplicate", agent: agentId, peer: this.peer }, `duplicate migration of ${agentId} answered without effect`);
    return true;
  }

  /** The node's capacity and the offer's manifest and ownership checked, the agent claimed, the handoff recorded, and the reply sent. */
  private async replyToOffer(o: CheckedOffer): Promise<Agreed> {
    const offered = this.claim(o);
    const store = this.ctx.host.store;
    const cfg = this.ctx.cfg;
    const { lease, withOffer, signal, pendingMode, sourceAddrs } = o;
    const base = lease?.state === "RETIRED" ? store.head(o.agentId) : undefined;
    const haveWasm = store.hasWasm(o.wasmHash);
    const baseHash = base ? hex(base.hash) : null;
    // The package sent with the offer is taken when it was built for what this node holds, and
    // only with the durable signal (nothing of it is stored before `durable`).
    const takeSent = withOffer !== null && signal && withOffer.baseHash === baseHash && (!withOffer.haveWasm || haveWasm) && withOffer.bytes <= cfg.maxPackageBytes;
    if (withOffer && !takeSent) {
      this.host.holdings.heldBytes -= this.held;
      this.held = 0;
      this.host.holdings.release(this.peer, this.reserved, 0);
      this.reserved = 0;
      this.packageSent = null;
    }
    await this.ch.sendJson({ type: "offer_reply", ok: true, haveWasm, baseHash, ...(signal ? { durableSignal: true } : {}), ...(pendingMode ? { pendingReception: true } : {}), ...(withOffer ? { packageAccepted: takeSent } : {}) });
    this.stage = "transfer_reply";
    return { offered, signal, pendingMode, sourceAddrs };
  }

  /** The node's capacity, the offer's manifest and ownership checked; then the agent is claimed and the incoming handoff recorded. */
  private claim(o: CheckedOffer): ReadonlySet<string> {
    const { agentId, epoch } = o;
    const cfg = this.ctx.cfg;
    const store = this.ctx.host.store;
    if (this.ctx.receiving.has(agentId) || this.ctx.outgoing.has(agentId)) throw new IgordError(ErrorCode.MigrationBusy, `agent "${agentId}" is already moving through this node`);
    // Pending receptions a crash left count as agents being received until they are resolved.
    let leftPending = store.pendingReceptionKeys().filter((k) => !this.ctx.receiving.has(k.agentId));
    if (leftPending.some((k) => k.agentId === agentId)) {
      settlePendingByOffer(this.ctx, { agentId, peer: this.peer, epoch, checkpointHash: o.checkpointHash });
      leftPending = leftPending.filter((k) => k.agentId !== agentId);
    }
    const load = this.ctx.host.runningAgents() + this.ctx.receiving.size + leftPending.length;
    if (cfg.maxAgents > 0 && load >= cfg.maxAgents) {
      throw new IgordError(ErrorCode.MigrationNodeFull, `this node runs or is receiving ${load} agents, its --max-agents`);
    }
    const fromPeer = store.agentsReceivedFrom(this.peer) + this.host.holdings.receivingFrom(this.peer) + leftPending.filter((k) => k.peer === this.peer).length;
    if (cfg.maxAgentsPerPeer > 0 && fromPeer >= cfg.maxAgentsPerPeer) {
      throw new IgordError(ErrorCode.MigrationNodeFull, `this node runs or is receiving ${fromPeer} agents from ${this.peer}, its --max-agents-per-peer`);
    }
    // The same checks the package gets, on the offer alone: a refusal costs no transfer.
    const offered = this.ctx.host.capabilities.snapshot();
    checkManifest(o.manifestText, agentId, { offered, price: cfg.price });
    checkOwnership(store, agentId, o.did, epoch, o.stored);
    this.ctx.receiving.set(agentId, { peer: this.peer, epoch, since: Date.now() });
    this.claimed = agentId;
    this.host.holdings.peer(this.peer).receiving++;
    this.counted = 1;
    // Durable before the offer is taken: only this peer may later settle (fence) this handoff.
    store.recordIncomingHandoff({ agentId, did: o.did, peer: this.peer, epoch });
    return offered;
  }

  /**
   * The announced size reserved against this peer's share, then the package: sent with the offer,
   * or in chunks that must all arrive within one --migration-timeout (a peer dripping bytes cannot
   * hold the agent's slot forever), counted against the node-wide cap as they arrive. Decoded, it
   * must match its offer.
   */
  private async receivePackage(o: CheckedOffer, agreed: Agreed): Promise<MigrationPackage> {
    const cfg = this.ctx.cfg;
    const timeout = cfg.migrationTimeoutMs;
    const sent = this.packageSent;
    const size = sent ? sent.length : safeInt(await this.ch.receiveJson(timeout, "transfer"), "transfer", "bytes");
    if (size > cfg.maxPackageBytes) throw new IgordError(ErrorCode.MigrationPackageTooLarge, `package of ${size} bytes is over this node's --max-package-size ${cfg.maxPackageBytes}`);
    // A package sent with the offer was reserved as it was announced.
    if (!sent) this.reserve(size);
    // A source that sends a small package right behind `transfer` (and says so) is not waiting for
    // this answer: it goes in the same write as the result, one message less per hop. Any other
    // source waits for it before its first chunk.
    // The package's chunks (up to MAX_FRAME_BYTES each) come on this channel now; only control messages did before.
    this.ch.acceptChunks();
    if (sent || (o.raw.packageWithTransfer === true && size <= EAGER_PACKAGE_BYTES)) this.answerWith = [TRANSFER_OK];
    else await this.ch.send(TRANSFER_OK);
    this.stage = "result";
    const chunks: Uint8Array[] = sent ? [sent] : [];
    this.packageSent = null;
    const deadline = performance.now() + timeout;
    while (this.held < size) {
      const chunk = await this.ch.receive(Math.max(1, deadline - performance.now()), "package chunk");
      if (chunk.length === 0 || this.held + chunk.length > size) {
        throw new IgordError(ErrorCode.MigrationFrameInvalid, `package chunk of ${chunk.length} bytes does not fit the announced ${size} bytes`);
      }
      this.hold(chunk.length);
      chunks.push(chunk);
    }
    const buf = Buffer.concat(chunks, size);
    chunks.length = 0;
    this.ctx.host.metrics.migrationBytes.inc({ direction: "in" }, size);
    this.ctx.hooks.afterPackage?.(o.agentId, (err) => this.ch.abort(err));
    const pkg = decodePackage(buf);
    if (pkg.agentId !== o.agentId || pkg.checkpointHash !== o.checkpointHash || pkg.did !== o.did || compareEpochs(pkg.epoch, o.epoch) !== 0 || pkg.wasmHash !== o.wasmHash || pkg.manifest !== o.manifestText) {
      throw new IgordError(ErrorCode.MigrationFrameInvalid, "the package does not match its offer");
    }
    if (agreed.pendingMode) {
      // Stored as pending before admission's checks, so its fsync runs during them and the
      // replay: a package of an accepted peer that matches its offer, bounded by its reservation,
      // and dropped (refuse) should admission refuse it. The package's bytes live on only in that
      // row's write: admission holds the decoded sections.
      this.pendingSynced = this.ctx.host.store.recordPendingReception({ agentId: o.agentId, did: o.did, peer: this.peer, epoch: o.epoch, checkpointHash: o.checkpointHash, package: buf, sourceAddrs: agreed.sourceAddrs });
      this.pendingHash = o.checkpointHash;
      // Awaited before the result; a refusal before then never awaits it.
      this.pendingSynced.catch(() => undefined);
    }
    return pkg;
  }

  /**
   * Admission (admission.ts), then the live instance loaded on a worker while the reception
   * commits (it ticks only once the resume after the commit takes it over, and is unloaded if that
   * never happens); with the durable signal, nothing is stored until the source's handoff is
   * durable: a source that loses power before it is comes back as the owner, and its stream, which
   * `durable` would come on, is gone.
   */
  private async admit(o: CheckedOffer, agreed: Agreed, pkg: MigrationPackage): Promise<Admitted> {
    const admitted = await admitPackage(pkg, this.peer, this.reserved, this.host.admission(agreed.offered));
    if (this.ctx.host.stopping()) throw new IgordError(ErrorCode.NodeStopping, "this node is stopping");
    this.preplaced = this.ctx.host.preplace({
      prepared: admitted.prepared,
      identity: admitted.incoming.agent.identity,
      head: admitted.head,
      headHash: Buffer.from(o.checkpointHash, "hex"),
      events: admitted.incoming.overrides,
      interrupted: pkg.interrupted === true,
    });
    const pendingHook = this.ctx.hooks.afterPendingStored;
    if (this.pendingSynced && pendingHook) {
      await this.pendingSynced;
      pendingHook(o.agentId, (err) => this.ch.abort(err));
    }
    if (agreed.signal) {
      const durableAtSource = await this.ch.receiveJson(this.ctx.cfg.migrationTimeoutMs, "durable");
      if (durableAtSource.type !== "durable") throw new IgordError(ErrorCode.MigrationFrameInvalid, `expected the source's "durable", got "${String(durableAtSource.type)}"`);
      if (this.ctx.host.stopping()) throw new IgordError(ErrorCode.NodeStopping, "this node is stopping");
    }
    return admitted;
  }

  /**
   * The reception committed here, its fsync off the main thread. Until it returns the agent is
   * still being received (a status query is answered "receiving"), nothing runs it and nothing is
   * sent. Pending mode: the reception is durable as pending, and the source's handoff is durable
   * (`durable`): what the flip commits is already decided on disk (pending-reception.ts), so
   * `result` waits for the pending row's fsync, not for the flip's. Then the confirmation.
   */
  private async storeAndConfirm(o: CheckedOffer, admitted: Admitted): Promise<boolean> {
    const { agentId } = o;
    this.ctx.hooks.beforeStore?.(agentId, (err) => this.ch.abort(err));
    const pendingDurable = this.pendingSynced;
    const { durable: flipDurable } = this.ctx.host.store.receiveAgent(admitted.incoming);
    const durable = pendingDurable ?? flipDurable;
    this.committed = true;
    // Loaded and scheduled during that fsync, held: its first tick waits for the fsync (then a
    // tick interval), and should the fsync fail it is withdrawn without having ticked.
    const resumed = this.ctx.host.resume(agentId, admitted.replayedTicks > 0, this.preplaced ?? undefined, flipDurable).then(
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
      this.claimed = null;
      this.ctx.log.error({ event: "migration_reception_unsynced", agent: agentId, peer: this.peer, code: err.code }, `received ${agentId} but could not make it durable: ${err.message}`);
      this.ch.abort(err);
      return false;
    }
    this.received(o, admitted);
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
    return this.confirm(agentId, admitted.incoming.lease.epoch);
  }

  /** Reserves `size` announced bytes against this peer's share (MAX_PACKAGES_PER_PEER × --max-package-size). */
  private reserve(size: number): void {
    const share = this.ctx.cfg.maxPackageBytes * MAX_PACKAGES_PER_PEER;
    const mine = this.host.holdings.peer(this.peer);
    if (mine.reserved + size > share) {
      throw new IgordError(ErrorCode.MigrationBusy, `${this.peer} is already sending ${mine.reserved} bytes of packages here (a peer's share is ${share})`);
    }
    mine.reserved += size;
    this.reserved += size;
  }

  /** Holds `bytes` that arrived, against the node-wide cap (MAX_CONCURRENT_PACKAGES × --max-package-size). */
  private hold(bytes: number): void {
    const holdings = this.host.holdings;
    const cap = this.ctx.cfg.maxPackageBytes * MAX_CONCURRENT_PACKAGES;
    if (holdings.heldBytes + bytes > cap) throw new IgordError(ErrorCode.MigrationBusy, `this node is already holding ${holdings.heldBytes} bytes of incoming packages`);
    holdings.heldBytes += bytes;
    this.held += bytes;
  }

  /** The reception is durable: the claim ends, the arrival is remembered, counted and logged. */
  private received(o: CheckedOffer, admitted: Admitted): void {
    const { agentId } = o;
    const m = this.ctx.host.metrics;
    const owned = admitted.incoming.lease.epoch;
    this.ctx.receiving.delete(agentId);
    // Its source keeps this checkpoint as its retired copy's head: sent back there, the package can go with the offer.
    if (o.raw.takesPackageWithOffer === true) rememberArrival(this.ctx.arrivals, agentId, { peer: this.peer, checkpointHash: o.checkpointHash, wasmHash: o.wasmHash });
    else this.ctx.arrivals.delete(agentId);
    this.claimed = null;
    m.migrationOutcomes.inc({ direction: "in", outcome: "done" });
    m.migrationDuration.observe({ direction: "in" }, (performance.now() - this.started) / 1000);
    this.ctx.log.info(
      { event: "migration_received", agent: agentId, peer: this.peer, tick: String(admitted.head.tick), epoch: formatEpoch(owned), bytes: this.reserved, replayed: admitted.replayedTicks },
      `received ${agentId} from ${this.peer} at tick ${admitted.head.tick}; owner at epoch ${formatEpoch(owned)}`,
    );
  }

  /** The result, with a deferred transfer_reply in the same write; true when it went out (the stream may carry another migration). */
  private async confirm(agentId: string, owned: Epoch): Promise<boolean> {
    try {
      this.ctx.hooks.beforeConfirm?.(agentId, (err) => this.ch.abort(err));
      await this.answer({ type: "result", ok: true, epochMajor: owned.major, epochGeneration: owned.generation, node: this.ctx.peerId });
      return true;
    } catch (e) {
      // The agent is ours either way; the source learns it from the status query.
      this.ctx.log.warn({ event: "migration_confirm_lost", agent: agentId, err: (e as Error).message }, `could not confirm ${agentId} to ${this.peer}`);
      return false;
    }
  }

  private answer(value: Record<string, unknown>): Promise<void> {
    return this.ch.sendAll([...this.answerWith, jsonBytes(value)]);
  }

  /** Refused (or the source never said `durable`): nothing of this reception may stay pending, and the source is told why at the stage it waits at. */
  private async refuse(e: unknown): Promise<void> {
    if (this.pendingHash) {
      try {
        this.ctx.host.store.dropPendingReception(this.agentId, this.pendingHash);
      } catch {
        // The store is failing: a restart resolves the row with the source.
      }
    }
    // Anything not raised as a typed refusal (a store or stream failure here) is this node's
    // trouble, not the package's: the source may retry.
    const err = asIgord(e, ErrorCode.MigrationBusy);
    const m = this.ctx.host.metrics;
    m.migrationRefusals.inc({ code: err.code });
    m.migrationOutcomes.inc({ direction: "in", outcome: "refused" });
    this.ctx.log.warn({ event: "migration_refused", agent: this.agentId, peer: this.peer, code: err.code }, `refused migration of ${this.agentId} from ${this.peer}: ${err.message}`);
    try {
      await this.answer({ type: this.stage, ok: false, code: err.code, message: err.message.slice(0, MAX_REMOTE_MESSAGE_CHARS) });
    } catch {
      // The source is gone; it will ask for the status if it had sent everything.
    }
  }

  /** What this reception held, given back however it ended. */
  private giveBack(): void {
    this.releaseWal();
    this.preplaced?.discard();
    if (this.claimed) this.ctx.receiving.delete(this.claimed);
    this.host.holdings.heldBytes -= this.held;
    this.host.holdings.release(this.peer, this.reserved, this.counted);
  }
}
