// Turns an agent's committed state into a signed v0x05 checkpoint and a node-signed receipt, and
// hands both to the store's group commit. Keeps each agent's chain head in memory so consecutive
// checkpoints link even before the previous one is durable. A state with no tick since the head is
// never signed again (igor broke its own chain that way).
import { lostPaymentEvent } from "../budget/lost-payment.js";
import { encodeReceipt, receiptFields, receiptSigningBytes } from "../budget/receipt.js";
import { CURRENT_VERSION, encodeCheckpoint, HEADER_SIZE, SIGNATURE_OFFSET } from "../checkpoint/codec.js";
import { historyBaseSigningBytes } from "../checkpoint/history-base.js";
import { checkpointHash, GENESIS_PREV_HASH, signCheckpoint, signingDomainParts } from "../checkpoint/lineage.js";
import type { SignerPool, SignMessage } from "../identity/signer-pool.js";
import type { Lease } from "../authority/lease.js";
import { encodeSegmentWithBody, type EventLogSegment, type TickLog } from "../eventlog/tick-log.js";
import { equalBytes, sha256 } from "../hash/bytes.js";
import { HOSTCALL_ABI_VERSION } from "../hostcalls/registry.js";
import { paymentsIn } from "../hostcalls/wallet-pay.js";
import { REPLAY_ENGINE_VERSION } from "../replay/engine.js";
import { LEAF_BYTES, OpenRuns, runLeafOfBody } from "../replay/run-seal.js";
import { ErrorCode, IgordError } from "../errors.js";
import { type Ed25519Key, signBytes } from "../identity/keys.js";
import type { AgentStatus, CheckpointCommit, LineageEvent, NewAgent, OutboxBatch, ReceiptRow, SqliteStore } from "../store/sqlite-store.js";
import type { PrunePlan } from "../store/history-records.js";
import { ByteSlab, carry, type Head, InFlight, type LostPayment } from "./checkpoint-in-flight.js";
import { monoNow } from "./clock.js";

export interface CheckpointSubject {
  agentId: string;
  tick: bigint;
  budget: bigint;
  price: bigint;
  state: Uint8Array;
  /** SHA-256 of the agent's WASM, hex. */
  wasmHash: string;
  identity: Ed25519Key;
  /** Event logs of the ticks since the last checkpoint (persisted with this one). */
  logs?: readonly TickLog[];
  /** Messages the ticks since the last checkpoint emitted (published with this one). */
  outbox?: readonly OutboxBatch[];
  /** The manifest's max_storage_bytes (null: no limit). */
  maxStorageBytes?: bigint | null;
  /** The agent's lease: its epoch and expiry go into the header, and the write is conditional on it. */
  lease?: Lease;
  /** Wall time (Unix ms) `tick` committed, stored with the checkpoint (null: unknown). */
  tickAt?: number | null;
}

export type { LostPayment } from "./checkpoint-in-flight.js";

export interface NodeSigner {
  key: Ed25519Key;
  peerId: string;
}

export class Checkpointer {
  private readonly heads = new Map<string, Head>();
  /** Per agent, the run of segments its next run seal signs (replay/run-seal.ts). */
  private readonly runs = new OpenRuns();

  /**
   * @param receiptIntervalMs a receipt is signed with a checkpoint when this long has passed since
   *   the agent's last receipt, and always when the agent stops (0 = with every checkpoint). Each
   *   node signature costs ~50 µs, so signing one per periodic checkpoint halves checkpoint throughput.
   */
  /** Per agent, the checkpoint in progress: the next one waits for it, so the chain never forks. */
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: SqliteStore,
    private readonly node: NodeSigner,
    private readonly receiptIntervalMs = 0,
    private readonly signer: SignerPool | null = null,
    /** Checkpoints kept per agent, the newest, behind a signed base (0 keeps all). */
    private readonly historyRetention = 0,
  ) {}

  get nodeId(): string {
    return this.node.peerId;
  }

  /**
   * Starts tracking an agent's chain at its head. `receipt` says where its receipts stopped: the
   * last tick covered and the cost of the ticks after it up to the head (on a fresh agent, none).
   */
  track(agentId: string, head: { hash: Uint8Array; tick: bigint; budget: bigint }, receipt?: { tick: bigint; costSince: bigint }): void {
    this.heads.set(agentId, {
      hash: head.hash,
      tick: head.tick,
      budget: head.budget,
      costTotal: receipt?.costSince ?? 0n,
      receiptCostTotal: 0n,
      receiptTick: receipt?.tick ?? head.tick,
      receiptAt: monoNow(),
      status: "active",
      statusReason: null,
      carriedLogs: [],
      carriedOutbox: [],
      lostPayments: [],
      pruneDueIn: 0,
    });
    this.runs.adopt(agentId, this.store.openEventRuns(agentId)[0]);
  }

  /**
   * Payments a run of `tick` made before it was thrown away (its lease lapsed, its worker was lost,
   * it failed or the agent stopped with it in flight), already debited from the budget the agent
   * goes on with: the next checkpoint writes them as signed lost_payment lineage events and settles
   * their journal rows, in its transaction (with no tick since, on their own after the head).
   */
  addLostPayments(agentId: string, payments: readonly LostPayment[]): void {
    this.heads.get(agentId)?.lostPayments.push(...payments);
  }

  /**
   * The payments journalled for a run of `tick` that was thrown away without its observations (its
   * worker was lost, the agent stopped or failed with it): those no checkpoint settled and not
   * already debited.
   */
  abandonedPayments(agentId: string, tick: bigint): Uint8Array[] {
    const pending = this.heads.get(agentId)?.lostPayments ?? [];
    return this.store
      .unsettledPayments(agentId)
      .filter((p) => p.tick === tick && !pending.some((l) => equalBytes(sha256(l.receipt), p.receiptHash)))
      .map((p) => p.receipt);
  }

  /** The receipts of those payments not yet stored, newest first. */
  lostReceipts(agentId: string): Uint8Array[] {
    return (this.heads.get(agentId)?.lostPayments ?? []).map((p) => p.receipt).reverse();
  }

  forget(agentId: string): void {
    this.heads.delete(agentId);
    this.runs.forget(agentId);
  }

  /** Whether the agent's last checkpoint (written or being written last) is behind `tick`. */
  behind(agentId: string, tick: bigint): boolean {
    const h = this.heads.get(agentId);
    return h !== undefined && h.tick < tick;
  }

  addCost(agentId: string, cost: bigint): void {
    const h = this.heads.get(agentId);
    if (h) h.costTotal += cost;
  }

  private encode(s: CheckpointSubject, prevHash: Uint8Array): { blob: Uint8Array; hash: Uint8Array } {
    const blob = signCheckpoint(this.unsigned(s, prevHash), s.identity);
    return { blob, hash: checkpointHash(blob) };
  }

  /** The last module hash's bytes (a node runs few modules; parsing hex showed per checkpoint). */
  private wasmHashCache: { hex: string; bytes: Uint8Array } | null = null;

  private wasmHashBytes(hex: string): Uint8Array {
    const c = this.wasmHashCache;
    if (c?.hex === hex) return c.bytes;
    const bytes = Buffer.from(hex, "hex");
    this.wasmHashCache = { hex, bytes };
    return bytes;
  }

  /** A checkpoint's blob and segment body are carved from shared buffers (see ByteSlab). */
  private readonly slab = new ByteSlab();
  private readonly take = (n: number): Uint8Array => this.slab.take(n);

  private unsigned(s: CheckpointSubject, prevHash: Uint8Array): Uint8Array {
    return encodeCheckpoint(
      {
        budget: s.budget,
        price: s.price,
        tick: s.tick,
        wasmHash: this.wasmHashBytes(s.wasmHash),
        epochMajor: s.lease?.epoch.major ?? 0n,
        epochGeneration: s.lease?.epoch.generation ?? 0n,
        leaseExpiry: s.lease?.expiresAtMs ? BigInt(s.lease.expiresAtMs) * 1_000_000n : 0n,
        prevHash,
        publicKey: s.identity.publicKey,
      },
      s.state,
      this.slab.take(HEADER_SIZE[CURRENT_VERSION] + s.state.length),
    );
  }

  /**
   * What history retention prunes with the agent's next checkpoint. The store's plan is read once a
   * step (it says how many checkpoints until one can prune), not with every checkpoint: ~7–10 µs of
   * main-thread SQL each, with retention on by default.
   */
  private prunePlan(h: Head, agentId: string): PrunePlan | null {
    if (h.pruneDueIn > 1) {
      h.pruneDueIn--;
      return null;
    }
    const { plan, dueIn } = this.store.prunePlan(agentId, this.historyRetention);
    h.pruneDueIn = dueIn;
    return plan;
  }

  private async signAsync(key: Ed25519Key, message: SignMessage): Promise<Uint8Array> {
    return this.signer ? this.signer.sign(key, message) : signBytes(key, message instanceof Uint8Array ? message : Buffer.concat(message));
  }

  /** Takes the body, not the subject: an async frame keeps its parameters until it returns. */
  private async receiptAsync(body: ReturnType<Checkpointer["receiptBody"]>): Promise<ReceiptRow> {
    const signature = await this.signAsync(this.node.key, receiptSigningBytes(body));
    return { ...body, blob: encodeReceipt({ ...body, signature }) };
  }

  /** `budgetAfter`: the budget of the checkpoint at `s.tick` (see Head.budget). */
  private receiptBody(s: CheckpointSubject, from: bigint, cost: bigint, budgetAfter: bigint) {
    return receiptFields({ agentId: s.agentId, nodeId: this.node.peerId, tickStart: from, tickEnd: s.tick, cost, budgetAfter, timestampNs: BigInt(Date.now()) * 1_000_000n });
  }

  private receipt(s: CheckpointSubject, from: bigint, cost: bigint, budgetAfter: bigint): ReceiptRow {
    const body = this.receiptBody(s, from, cost, budgetAfter);
    const signature = signBytes(this.node.key, receiptSigningBytes(body));
    return { ...body, blob: encodeReceipt({ ...body, signature }) };
  }

  /** Creates a new agent with its genesis checkpoint (tick 0, prevHash zeros), synchronously. */
  genesis(s: CheckpointSubject, agent: NewAgent): void {
    const { blob, hash } = this.encode(s, GENESIS_PREV_HASH);
    this.store.createAgent(agent, {
      agentId: s.agentId,
      tick: s.tick,
      budget: s.budget,
      hash,
      prevHash: GENESIS_PREV_HASH,
      blob,
      reason: "genesis",
      receipt: null,
      status: "active",
      statusReason: null,
    });
    this.track(s.agentId, { hash, tick: s.tick, budget: s.budget });
  }

  /**
   * Writes a checkpoint of the agent's committed state, or only its status when no tick happened
   * since the last checkpoint. Resolves once durable.
   */
  checkpoint(
    s: CheckpointSubject,
    reason: string,
    status: AgentStatus,
    statusReason: string | null,
    /** Written in the checkpoint's own transaction (CheckpointCommit.alsoWrite); not run when nothing new is written ("unchanged"). */
    alsoWrite?: CheckpointCommit["alsoWrite"],
  ): Promise<"written" | "unchanged"> {
    const agentId = s.agentId;
    // The cost of the ticks up to s.tick, taken now, with the subject: ticks that commit while an
    // earlier checkpoint of this agent is still being written must not be billed to this receipt.
    const costTotal = this.heads.get(agentId)?.costTotal ?? 0n;
    const previous = this.chains.get(agentId);
    if (previous === undefined) {
      // Nothing of this agent's is in flight: the checkpoint starts now, with no promise to wait on.
      let started: ReturnType<Checkpointer["checkpointNow"]>;
      try {
        started = this.checkpointNow(s, reason, status, statusReason, costTotal, alsoWrite);
      } catch (e) {
        return Promise.reject(e);
      }
      if (started === "unchanged") return Promise.resolve(started);
      if (started instanceof InFlight) {
        // It leaves the chain itself when it settles.
        this.chains.set(agentId, started.promise);
        started.sign(this.signer as SignerPool);
        return started.promise;
      }
      this.chains.set(agentId, started);
      const leave = (): void => {
        if (this.chains.get(agentId) === started) this.chains.delete(agentId);
      };
      started.then(leave, leave);
      return started;
    }
    // Held only until the checkpoint starts: its state and tick logs (the largest objects a
    // checkpoint touches) are encoded then, and must not live on in this closure's context until
    // the checkpoint is durable (~300 ms under load: long enough to be promoted by the GC).
    let subject: CheckpointSubject | null = s;
    // After the previous checkpoint of this agent settles, whichever way (one promise per link: this
    // runs for every agent on every periodic round).
    const next = (): Promise<"written" | "unchanged"> | "unchanged" => {
      const t = subject!;
      subject = null;
      const started = this.checkpointNow(t, reason, status, statusReason, costTotal, alsoWrite);
      if (!(started instanceof InFlight)) return started;
      started.sign(this.signer as SignerPool);
      return started.promise;
    };
    const run = previous.then(next, next);
    this.chains.set(agentId, run);
    const done = (): void => {
      if (this.chains.get(agentId) === run) this.chains.delete(agentId);
    };
    run.then(done, done);
    return run;
  }

  /**
   * Starts a checkpoint: everything that needs the subject's state and tick logs happens here,
   * synchronously (encoding, the segment, the signing requests); what is awaited (`finish`) holds
   * only the commit, so the logs and the state die young. Throws instead of rejecting (it runs
   * inside `checkpoint`'s `then`, which turns a throw into the rejection).
   */
  private checkpointNow(
    s: CheckpointSubject,
    reason: string,
    status: AgentStatus,
    statusReason: string | null,
    costTotal: bigint,
    alsoWrite?: CheckpointCommit["alsoWrite"],
  ): Promise<"written" | "unchanged"> | "unchanged" | InFlight {
    const h = this.heads.get(s.agentId);
    if (!h) throw new IgordError(ErrorCode.StoreError, `no checkpoint chain is tracked for agent "${s.agentId}"`);
    if (s.tick === h.tick) {
      // Written under the same lease check as a checkpoint: a writer whose lease moved writes nothing.
      const lease = s.lease ? { state: s.lease.state, epoch: s.lease.epoch } : undefined;
      // Stopping closes the receipt range even when no tick happened since the last checkpoint. It
      // ends at the head's budget, not the subject's: the lost payments debited since (written just
      // below, after the head) are not the cost of these ticks, and a restart counts them from there.
      if (!RECEIPT_ON_INTERVAL.has(reason) && h.receiptTick < h.tick) {
        this.store.addReceipt(s.agentId, h.hash, this.receipt(s, h.receiptTick + 1n, costTotal - h.receiptCostTotal, h.budget), lease);
        h.receiptTick = h.tick;
        h.receiptCostTotal = costTotal;
        h.receiptAt = monoNow();
      }
      // Payments debited since the head with no tick after them (the agent stops or leaves now).
      if (h.lostPayments.length > 0) {
        this.store.writeLostPayments(s.agentId, lostPaymentEvents(s, h.hash, h.tick, h.lostPayments), lease);
        h.lostPayments = [];
      }
      if (status !== h.status || statusReason !== h.statusReason) {
        this.store.setStatus(s.agentId, status, statusReason, lease);
        h.status = status;
        h.statusReason = statusReason;
      }
      return "unchanged";
    }
    if (s.tick < h.tick) {
      throw new IgordError(ErrorCode.CheckpointChainBroken, `agent "${s.agentId}" tick ${s.tick} is behind its last checkpoint (${h.tick})`);
    }
    // Monotonic: a wall clock stepped back would hold receipts off for the size of the step.
    const now = monoNow();
    const withReceipt = !RECEIPT_ON_INTERVAL.has(reason) || now - h.receiptAt >= this.receiptIntervalMs;
    // The receipt covers exactly the cost of the ticks up to s.tick (captured with the subject).
    const covered = costTotal - h.receiptCostTotal;
    // The subject's arrays are the caller's to give (the scheduler hands fresh ones): copied only to
    // put carried entries before them.
    const logs = s.logs && h.carriedLogs.length > 0 ? [...h.carriedLogs, ...s.logs] : s.logs;
    const outbox = h.carriedOutbox.length > 0 ? [...h.carriedOutbox, ...(s.outbox ?? [])] : (s.outbox ?? NO_OUTBOX);
    h.carriedLogs = NO_LOGS;
    h.carriedOutbox = NO_OUTBOX;
    const lost = h.lostPayments.length > 0 ? h.lostPayments.slice() : NO_LOST;
    let started: Started;
    try {
      started = this.prepare(s, h, { reason, status, statusReason, withReceipt, covered, logs, outbox, lost, alone: alsoWrite === undefined });
      if (alsoWrite) started.commit.alsoWrite = alsoWrite;
    } catch (e) {
      // Whatever fails before the store has them, these ticks' logs and messages go with the next
      // checkpoint: a segment always holds every logged tick of its range.
      if (logs) h.carriedLogs = logs;
      h.carriedOutbox = outbox;
      throw e;
    }
    if (started.signing === null) return new InFlight(h, started.commit, s.identity, logs !== undefined, this.store, this.chains, this.runs);
    return this.finish(h, started, costTotal, withReceipt, now, logs !== undefined);
  }

  /** Awaits a started checkpoint's signatures and its durability; moves the head. */
  private async finish(h: Head, p: Started, costTotal: bigint, withReceipt: boolean, now: number, hadLogs: boolean): Promise<"written"> {
    const { commit } = p;
    try {
      commit.blob.set(await (p.signing as Promise<Uint8Array>), SIGNATURE_OFFSET);
      if (p.receipting) commit.receipt = await p.receipting;
      const seal = p.sealing ? await p.sealing : null;
      const baseSignature = p.basing ? await p.basing : null;
      commit.hash = checkpointHash(commit.blob);
      // Built field by field: a spread of the run gave every seal a shape of its own, and the commit
      // codec's reads of it went megamorphic (an inline-cache miss a field, a seal).
      const run = p.closing?.run;
      if (run && seal && commit.events) commit.runSeal = { fromTick: run.fromTick, toTick: run.toTick, leaves: run.leaves, signature: seal };
      if (p.plan && baseSignature) commit.prune = { baseSeq: p.plan.baseSeq, base: { ...p.plan.fields, signature: baseSignature } };
    } catch (e) {
      carry(h, commit, hadLogs);
      throw e;
    }
    // What a refused write puts back (only these move below; the carried lists are empty now).
    const { hash, tick, budget, status, statusReason, receiptCostTotal, receiptTick, receiptAt } = h;
    h.hash = commit.hash;
    h.tick = commit.tick;
    h.budget = commit.budget;
    h.status = commit.status;
    h.statusReason = commit.statusReason;
    if (withReceipt) {
      h.receiptCostTotal = costTotal;
      h.receiptTick = commit.tick;
      h.receiptAt = now;
    }
    try {
      await this.store.enqueue(commit);
    } catch (e) {
      // Refused (stale lease, broken chain): the stored head did not move, so neither does ours; the
      // next checkpoint (this agent's checkpoints run one at a time) links to what is really stored.
      Object.assign(h, { hash, tick, budget, status, statusReason, receiptCostTotal, receiptTick, receiptAt });
      carry(h, commit, hadLogs);
      throw e;
    }
    if (p.lostCount > 0) h.lostPayments.splice(0, p.lostCount);
    this.runs.committed(commit.agentId, commit);
    return "written";
  }

  /**
   * Builds the store's commit of the checkpoint and requests its signatures (and its receipt's, its
   * run seal's, its history base's); the segment is encoded here, in the body form its seal hashes.
   */
  private prepare(
    s: CheckpointSubject,
    h: Head,
    o: {
      reason: string;
      status: AgentStatus;
      statusReason: string | null;
      withReceipt: boolean;
      covered: bigint;
      logs: readonly TickLog[] | undefined;
      outbox: readonly OutboxBatch[];
      lost: readonly LostPayment[];
      /** Nothing is written with it (no alsoWrite): it may go as an InFlight. */
      alone: boolean;
    },
  ): Started {
    const { logs } = o;
    const blob = this.unsigned(s, h.hash);
    // The first tick the segment covers (one bigint for the segment, the run and the commit).
    const fromTick = h.tick + 1n;
    // Covers every tick since the previous checkpoint; ticks without a log observed nothing. Encoded
    // once, in the body form its seal hashes (blob and post hashes are views into it).
    const segment = logs
      ? encodeSegmentWithBody(logs, { fromTick, toTick: s.tick, abiVersion: HOSTCALL_ABI_VERSION, engineVersion: REPLAY_ENGINE_VERSION }, this.take)
      : undefined;
    // What history retention prunes with this checkpoint (the store checks the plan still holds).
    const plan = this.historyRetention > 0 ? this.prunePlan(h, s.agentId) : null;
    // The segment joins the agent's run (over the checkpoint it follows); the one that fills the run
    // seals it, with this checkpoint's signature. A segment without observations is neither
    // (replay/segment-seal.ts says why).
    const leaf = segment && logs && logs.length > 0 ? runLeafOfBody(h.hash, segment.body, this.take(LEAF_BYTES)) : null;
    const closing = leaf ? this.runs.next(s.agentId, fromTick, s.tick, leaf) : null;
    // One signature only, nothing written beside it (most periodic checkpoints): it goes as an
    // InFlight, the signer pool's target and the store's queued commit itself (no promise chain).
    const plain = this.signer !== null && o.alone && !o.withReceipt && !closing && !plan && o.lost.length === 0;
    // Every signature is requested before the first is awaited, so they are made together (one
    // message to a signer thread carries many); only those asked for are awaited.
    // The domain is a constant prefix and two slices of the blob, copied once, into the message to a signer thread.
    const signing = plain ? null : this.signAsync(s.identity, signingDomainParts(blob));
    const receipting = o.withReceipt ? this.receiptAsync(this.receiptBody(s, h.receiptTick + 1n, o.covered, s.budget)) : null;
    const sealing = closing ? this.signAsync(s.identity, closing.signingBytes) : null;
    const basing = plan ? this.signAsync(s.identity, historyBaseSigningBytes(s.identity.publicKey, plan.fields)) : null;
    // Awaited in turn: one that fails while another is awaited must not go unhandled.
    receipting?.catch(ignore);
    sealing?.catch(ignore);
    basing?.catch(ignore);
    const commit: CheckpointCommit = {
      agentId: s.agentId,
      tick: s.tick,
      budget: s.budget,
      hash: GENESIS_PREV_HASH, // set once signed
      prevHash: h.hash,
      blob,
      reason: o.reason,
      receipt: null,
      status: o.status,
      statusReason: o.statusReason,
    };
    if (s.lease) commit.lease = { state: s.lease.state, epoch: s.lease.epoch };
    if (s.tickAt != null) commit.tickAt = s.tickAt;
    if (segment && logs) {
      const events: EventLogSegment = { fromTick, toTick: s.tick, abiVersion: HOSTCALL_ABI_VERSION, engineVersion: REPLAY_ENGINE_VERSION, blob: segment.blob, postHashes: segment.postHashes };
      if (leaf) events.leaf = leaf;
      commit.events = events;
      // Settled by receipt hash: a payment of a discarded run of one of these ticks stays journalled.
      commit.settledPayments = settledPayments(logs);
    }
    if (o.outbox.length > 0) commit.outbox = o.outbox;
    if (o.lost.length > 0) commit.lostPayments = lostPaymentEvents(s, h.hash, h.tick, o.lost);
    if (s.maxStorageBytes != null) commit.maxStorageBytes = s.maxStorageBytes;
    return { commit, lostCount: o.lost.length, signing, receipting, sealing, basing, closing, plan };
  }
}

/** A checkpoint whose commit is built and whose signatures are requested, not yet awaited. */
interface Started {
  commit: CheckpointCommit;
  /** How many of the head's lost payments it writes. */
  lostCount: number;
  /** Null: a plain checkpoint, signed as an InFlight. */
  signing: Promise<Uint8Array> | null;
  receipting: Promise<ReceiptRow> | null;
  sealing: Promise<Uint8Array> | null;
  basing: Promise<Uint8Array> | null;
  closing: ReturnType<OpenRuns["next"]>;
  plan: PrunePlan | null;
}

const ignore = (): void => undefined;
/**
 * The reason of a checkpoint a payment waits for (Scheduler.checkpointBeforeAct): the state the
 * paying tick started from, made durable before the payment is signed.
 */
export const PAYMENT_CHECKPOINT_REASON = "before_payment";
/** The same, before an HTTP request that acts on the world (any method but GET and HEAD) is sent. */
export const HTTP_ACT_CHECKPOINT_REASON = "before_http_act";
/** Reasons whose checkpoints get a receipt only every --receipt-interval (the others always close one). */
const RECEIPT_ON_INTERVAL: ReadonlySet<string> = new Set(["periodic", PAYMENT_CHECKPOINT_REASON, HTTP_ACT_CHECKPOINT_REASON]);
const NO_LOGS: readonly TickLog[] = [];
const NO_OUTBOX: readonly OutboxBatch[] = [];
const NO_PAYMENTS: readonly Uint8Array[] = [];
const NO_LOST: readonly LostPayment[] = [];

/** SHA-256 of the payment receipts the logs hold (most hold none: no array is built for them). */
function settledPayments(logs: readonly TickLog[]): readonly Uint8Array[] {
  let hashes: Uint8Array[] | null = null;
  for (const l of logs) {
    for (const r of paymentsIn(l.entries).receipts) (hashes ??= []).push(sha256(r));
  }
  return hashes ?? NO_PAYMENTS;
}

/**
 * The lost_payment events of payments debited while the agent ran on, after the checkpoint the new
 * one follows: their budget steps end at the new checkpoint's budget, which already lacks them.
 */
function lostPaymentEvents(s: CheckpointSubject, afterHash: Uint8Array, tick: bigint, lost: readonly LostPayment[]): { event: LineageEvent; receiptHash: Uint8Array }[] {
  return lost.map((p) => {
    // The budget steps as the debits made them (ticks committed since do not move them).
    return { event: lostPaymentEvent(s.identity, { afterHash, tick, oldBudget: p.oldBudget, newBudget: p.newBudget }, p), receiptHash: sha256(p.receipt) };
  });
}
