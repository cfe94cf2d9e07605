// An agent's checkpoint chain as the checkpointer holds it (its in-memory head), and a plain
// checkpoint in flight (InFlight): one object from its signing request to its durability, for the
// periodic checkpoints that need one signature and nothing beside it (scheduler/checkpointer.ts).
import { SIGNATURE_OFFSET } from "../checkpoint/codec.js";
import { checkpointHash, signingDomainParts } from "../checkpoint/lineage.js";
import { logsOfSegment, type TickLog } from "../eventlog/tick-log.js";
import type { Ed25519Key } from "../identity/keys.js";
import type { SignerPool, SignMessage, SignTarget } from "../identity/signer-pool.js";
import type { OpenRuns } from "../replay/run-seal.js";
import type { QueuedCommit } from "../store/commit-thread.js";
import type { AgentStatus, CheckpointCommit, OutboxBatch, SqliteStore } from "../store/sqlite-store.js";

export interface Head {
  hash: Uint8Array;
  tick: bigint;
  /**
   * The budget the checkpoint at `hash` stores: what a receipt ending at `tick` says is left, never
   * one moved by lineage events after it (lost payments, overrides), which are counted on their own.
   */
  budget: bigint;
  /** Cost of every tick added since tracking began (plus what was owed then); only grows. */
  costTotal: bigint;
  /** `costTotal` as it was at the last tick covered by a receipt. */
  receiptCostTotal: bigint;
  /** Last tick covered by a receipt. */
  receiptTick: bigint;
  /** When its last receipt was signed, on the monotonic clock (scheduler/clock.ts monoNow). */
  receiptAt: number;
  status: AgentStatus;
  statusReason: string | null;
  /**
   * Event logs of ticks after `tick` that a refused checkpoint carried: they go with the next one,
   * so a segment always holds every logged tick of the range it claims.
   */
  carriedLogs: readonly TickLog[];
  /** Likewise the emitted messages of those ticks. */
  carriedOutbox: readonly OutboxBatch[];
  /**
   * Payments of runs of ticks after `tick` that were thrown away (the scheduler took them from the
   * budget): written as lost_payment events with the next checkpoint, listed to the agent until then.
   */
  lostPayments: LostPayment[];
  /** Checkpoints until history retention's next plan read (store.prunePlan's dueIn; 0: read at the next). */
  pruneDueIn: number;
}

/** A payment of a thrown-away run of `tick`, with the budget before and after its debit as it happened. */
export interface LostPayment {
  tick: bigint;
  receipt: Uint8Array;
  oldBudget: bigint;
  newBudget: bigint;
}

/**
 * A plain checkpoint in flight (one signature, no receipt, run seal, history base, lost payment or
 * alsoWrite: most periodic checkpoints), from its signing request to its durability, as one object:
 * the signer pool's target, the store's queued commit and the holder of the caller's promise. What
 * `finish` does with awaits it does in callbacks, in the same order, with the same failure paths;
 * a checkpoint in flight ~300 ms under load outlives several scavenges, so every promise, async
 * frame and closure it no longer holds is one the GC no longer copies and promotes.
 */
export class InFlight implements SignTarget, QueuedCommit {
  readonly promise: Promise<"written">;
  private settleWritten!: (v: "written") => void;
  private settleFailed!: (e: unknown) => void;
  // The head's fields a refused write puts back (only these move: no receipt goes with it); the
  // hash it puts back is the commit's prevHash.
  private moved = false;
  private tickBefore = 0n;
  private budgetBefore = 0n;
  private statusBefore: AgentStatus = "active";
  private statusReasonBefore: string | null = null;

  constructor(
    private readonly h: Head,
    readonly commit: CheckpointCommit,
    readonly key: Ed25519Key,
    private readonly hadLogs: boolean,
    private readonly store: SqliteStore,
    private readonly chains: Map<string, Promise<unknown>>,
    private readonly runs: OpenRuns,
  ) {
    this.promise = new Promise((written, failed) => {
      this.settleWritten = written;
      this.settleFailed = failed;
    });
  }

  /**
   * The signing domain: a constant prefix and two slices of the blob, copied once, into the message to a signer thread.
   * Made when the signer pool reads it (its views die at once), not kept from construction until
   * signed: with every agent's checkpoint in flight, what an InFlight holds is what each scavenge
   * copies.
   */
  get message(): SignMessage {
    return signingDomainParts(this.commit.blob);
  }

  /** Requests the signature (once the caller has put the promise in the agent's chain). */
  sign(signer: SignerPool): void {
    signer.signFor(this);
  }

  signed(sig: Uint8Array): void {
    const { h, commit } = this;
    try {
      commit.blob.set(sig, SIGNATURE_OFFSET);
      commit.hash = checkpointHash(commit.blob);
    } catch (e) {
      this.signFailed(e as Error);
      return;
    }
    this.moved = true;
    this.tickBefore = h.tick;
    this.budgetBefore = h.budget;
    this.statusBefore = h.status;
    this.statusReasonBefore = h.statusReason;
    h.hash = commit.hash;
    h.tick = commit.tick;
    h.budget = commit.budget;
    h.status = commit.status;
    h.statusReason = commit.statusReason;
    this.store.enqueueQueued(this);
  }

  signFailed(e: Error): void {
    carry(this.h, this.commit, this.hadLogs);
    this.leave();
    this.settleFailed(e);
  }

  /** Durable. */
  resolve(): void {
    this.runs.committed(this.commit.agentId, this.commit);
    this.leave();
    this.settleWritten("written");
  }

  /** Refused (stale lease, broken chain): the stored head did not move, so neither does ours. */
  reject(e: unknown): void {
    const h = this.h;
    if (this.moved) {
      h.hash = this.commit.prevHash;
      h.tick = this.tickBefore;
      h.budget = this.budgetBefore;
      h.status = this.statusBefore;
      h.statusReason = this.statusReasonBefore;
    }
    carry(this.h, this.commit, this.hadLogs);
    this.leave();
    this.settleFailed(e);
  }

  /** Out of the agent's chain before the caller's continuation runs (as `checkpoint`'s `done` is). */
  private leave(): void {
    const agentId = this.commit.agentId;
    if (this.chains.get(agentId) === this.promise) this.chains.delete(agentId);
  }
}

/**
 * A checkpoint that failed after its segment was encoded (signing failed, the store refused it):
 * its ticks' logs and messages go with the next checkpoint, so a segment always holds every logged
 * tick of its range. The logs are decoded from the encoded segment (what this rare path costs lets
 * every checkpoint drop its tick logs once encoded); they encode back to the same bytes.
 */
export function carry(h: Head, commit: CheckpointCommit, hadLogs: boolean): void {
  if (hadLogs && commit.events) h.carriedLogs = logsOfSegment(commit.events);
  h.carriedOutbox = commit.outbox ?? NO_OUTBOX;
}

const NO_OUTBOX: readonly OutboxBatch[] = [];

/** Bytes of the shared buffers ByteSlab carves arrays from. */
export const BYTE_SLAB_BYTES = 32 * 1024;
/** Arrays larger than this get a buffer of their own (a large state's checkpoint). */
export const BYTE_SLAB_TAKE_MAX = 8 * 1024;

/**
 * Byte arrays carved one after another from shared ArrayBuffers (each taken once, never reused, so
 * fresh zeros): a checkpoint's blob and its segment's body, ~1.7 KiB together, each its own
 * ArrayBuffer before. An ArrayBuffer costs its allocation, an object V8 tracks outside its heap and
 * a free when the GC sweeps it: two per checkpoint cost 3.2–3.5 µs of CPU over all threads, carved
 * from a shared one 0.35–0.46 (a scratch benchmark keeping 1,000 alive, as the checkpoints in flight
 * are; docs/BENCHMARKS.md, "CPU per checkpoint over all threads"). A buffer lives as long as any
 * array carved from it: the checkpoints in flight, which are durable or refused within a commit.
 * Nothing transfers these arrays' buffers, and none is structured-cloned (the commit thread's batch
 * copies their bytes).
 */
export class ByteSlab {
  private buffer: ArrayBuffer | null = null;
  private used = 0;

  take(n: number): Uint8Array {
    if (n > BYTE_SLAB_TAKE_MAX) return new Uint8Array(n);
    if (this.buffer === null || this.used + n > BYTE_SLAB_BYTES) {
      this.buffer = new ArrayBuffer(BYTE_SLAB_BYTES);
      this.used = 0;
    }
    const out = new Uint8Array(this.buffer, this.used, n);
    // Each array starts 8-byte aligned.
    this.used += (n + 7) & ~7;
    return out;
  }
}
