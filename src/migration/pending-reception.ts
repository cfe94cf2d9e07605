// A pending reception: a target that is told `pendingReception` (with `durableSignal`) stores the
// package as pending as soon as it arrived matching its offer, so the row's fsync runs during
// admission's checks, the replay and the source's own fsync (a refused package's row is dropped);
// the source's `durable` then flips it into the agent's rows (receiveAgent, which deletes the row)
// and `result` goes without waiting for the flip's fsync. This module resolves the rows a crash
// leaves, and answers, on the source, a target's question about them.
//
// A pending row is never ownership: nothing ticks from it, no `result` is sent for it, and a status
// query about its agent is answered "receiving" (resolution.ts), so the source never reclaims it
// meanwhile.
//
// Why `result` may go before the flip's fsync has returned (ownership before `result`, FS-2):
//  1. `result` goes only once the pending row's fsync returned and the source's `durable` arrived,
//     which the source sends only after its HANDOFF_INITIATED of exactly this checkpoint at this
//     epoch to this node is durable; the flip is committed (not yet synced) before `result`.
//  2. After a crash of this node, the disk holds the flip (this node owns the agent) or, the flip
//     lost, the pending row. A row left is resolved here: the source, asked, answers from its
//     durable handoff "handed off to you" (it is HANDOFF_INITIATED, RECOVERY_REQUIRED or RETIRED
//     with that handoff: none of them ticks), and the row is flipped. Ownership decided by
//     (durable row + durable handoff) is as durable as the flip itself.
//  3. The source answers "not handed off" only when its lease shows no such handoff to this node:
//     its `durable` never went (it reverted, fell back to another target, or its handoff was lost
//     to a power cut before its fsync), and then no `result` was sent either; the row is dropped.
// The crash tests (test/integration/pending-reception.test.ts) kill the target at each of these
// points and check that exactly one node owns and ticks the agent.
import { compareEpochs, type Epoch, formatEpoch } from "../authority/lease.js";
import { ErrorCode, IgordError } from "../errors.js";
import { epoch as epochOf, hex32, MAX_AGENT_ID_CHARS, MAX_DID_CHARS, str } from "../p2p/frames.js";
import type { PendingReception } from "../store/sqlite-store.js";
import { asIgord, type MigrationContext, QUERY_TIMEOUT_MS, sleep, STATUS_PROTOCOL } from "./context.js";
import { askAgainDelay } from "./retry.js";

/** Listen addresses a source gives in its offer, at most, and the longest one taken. */
export const MAX_SOURCE_ADDRS = 8;
export const MAX_SOURCE_ADDR_CHARS = 256;

/**
 * The source's listen addresses from its offer: each must name the peer the offer came from (its
 * Noise-authenticated id), so a pending reception's resolution dials nobody else.
 */
export function sourceAddrsOf(offer: Record<string, unknown>, peer: string): string[] {
  const addrs = offer.sourceAddrs;
  const own = (a: unknown): a is string => typeof a === "string" && a.length <= MAX_SOURCE_ADDR_CHARS && a.startsWith("/") && a.endsWith(`/p2p/${peer}`);
  if (!Array.isArray(addrs) || addrs.length > MAX_SOURCE_ADDRS || !addrs.every(own)) {
    throw new IgordError(ErrorCode.MigrationFrameInvalid, `"offer" message: sourceAddrs must be at most ${MAX_SOURCE_ADDRS} addresses of ${peer}, each at most ${MAX_SOURCE_ADDR_CHARS} characters`);
  }
  return addrs;
}

/** The source's answer about a pending reception: its handoff to the asker is durable; it is not; ask again later. */
export type HandoffAnswer = "handed_off" | "not_handed_off" | "wait";
const ANSWERS: readonly HandoffAnswer[] = ["handed_off", "not_handed_off", "wait"];

/** Lease states in which a durable handoff stands recorded, and the agent does not tick here. */
const HANDED_OFF_STATES = new Set(["HANDOFF_INITIATED", "RECOVERY_REQUIRED", "RETIRED"]);

/** Refusals of a stored package that end its pending reception (anything else is retried). */
const TRANSIENT = new Set<string>([ErrorCode.NodeStopping, ErrorCode.StoreError, ErrorCode.MigrationBusy]);

export class PendingReceptions {
  private readonly resolving = new Map<string, Promise<void>>();

  constructor(
    private readonly ctx: MigrationContext,
    /** Admits a pending row's package again, stores it (the flip) and starts the agent. */
    private readonly flip: (p: PendingReception) => Promise<void>,
  ) {}

  /** Rows left by a crash (start-up): ask each one's source. */
  resolveAll(): void {
    for (const { agentId } of this.ctx.host.store.pendingReceptionKeys()) this.resolve(agentId);
  }

  resolve(agentId: string): void {
    if (this.resolving.has(agentId)) return;
    const p = this.loop(agentId).finally(() => this.resolving.delete(agentId));
    this.resolving.set(agentId, p);
    this.ctx.track(p);
  }

  has(agentId: string): boolean {
    return this.resolving.has(agentId);
  }

  private async loop(agentId: string): Promise<void> {
    const logger = this.ctx.log.child({ agent: agentId });
    for (let round = 1; !this.ctx.stopSignal.aborted; round++) {
      if (await this.resolveOnce(agentId, round, logger)) return;
      await sleep(askAgainDelay(this.ctx.retry, round), this.ctx.stopSignal);
    }
  }

  /** One round of the agent's resolution: true once its row is gone (flipped, dropped, or not there); false to ask again after a backoff. */
  private async resolveOnce(agentId: string, round: number, logger: MigrationContext["log"]): Promise<boolean> {
    const store = this.ctx.host.store;
    const row = store.pendingReception(agentId);
    if (!row) return true;
    // A live reception of the agent replaces the row or drops it (target.ts).
    if (this.ctx.receiving.has(agentId)) return false;
    let answer: HandoffAnswer;
    try {
      answer = await this.ask(row);
    } catch (e) {
      logger.warn({ event: "pending_reception_unreachable", peer: row.peer, round, code: asIgord(e, ErrorCode.MigrationDialFailed).code }, `cannot ask ${row.peer} about the pending reception of ${agentId} yet`);
      return false;
    }
    if (answer === "wait" || this.ctx.receiving.has(agentId)) return false;
    if (answer === "not_handed_off") {
      store.dropPendingReception(agentId, row.checkpointHash);
      logger.warn({ event: "pending_reception_resolved", outcome: "dropped", peer: row.peer, epoch: formatEpoch(row.epoch) }, `${row.peer} did not hand ${agentId} off here: its pending reception is dropped`);
      return true;
    }
    this.ctx.receiving.set(agentId, { peer: row.peer, epoch: row.epoch, since: Date.now() });
    try {
      await this.flip(row);
      this.ctx.host.metrics.migrationOutcomes.inc({ direction: "in", outcome: "done" });
      logger.warn({ event: "pending_reception_resolved", outcome: "owned", peer: row.peer, epoch: formatEpoch(row.epoch) }, `${row.peer} handed ${agentId} off here: its pending reception is now ownership`);
      return true;
    } catch (e) {
      // Never dropped once the source answered "handed off": it may have retired the agent on a
      // `result` this node sent before the crash, and then this row is the agent's only owner.
      // A refusal now (this node's config changed since, its replay ran out of time on a busy
      // restart, the package fails a check it had not reached) is retried until it passes or the
      // source's answer changes (an operator's `igord recover` there moves the epoch: the row goes).
      const err = asIgord(e, ErrorCode.StoreError);
      const level = TRANSIENT.has(err.code) ? "warn" : "error";
      logger[level]({ event: "pending_reception_flip_failed", code: err.code, round }, `could not store the pending reception of ${agentId} (its source handed it off here): ${err.message}; retrying`);
      return false;
    } finally {
      this.ctx.receiving.delete(agentId);
    }
  }

  /** Asks the row's source whether its handoff of that checkpoint at that epoch to this node stands. */
  private async ask(row: PendingReception): Promise<HandoffAnswer> {
    // Where it said it listens (a restarted node knows no other address of it, unless it calls).
    this.ctx.peers.upsert(row.peer, row.sourceAddrs);
    const ch = await this.ctx.open(this.ctx.target(row.peer), STATUS_PROTOCOL, QUERY_TIMEOUT_MS);
    try {
      await ch.sendJson({ type: "status", question: "handoff", agentId: row.agentId, did: row.did, epochMajor: row.epoch.major, epochGeneration: row.epoch.generation, checkpointHash: row.checkpointHash });
      const r = await ch.receiveJson(QUERY_TIMEOUT_MS, "status_reply");
      const state = ANSWERS.find((a) => a === r.state);
      if (!state) throw new IgordError(ErrorCode.MigrationFrameInvalid, `status_reply: unknown state ${JSON.stringify(r.state)}`);
      return state;
    } finally {
      await ch.close();
    }
  }
}

/**
 * An offer of an agent that has a pending reception here, left by a crash and not yet resolved:
 * the same peer offering another checkpoint at the same epoch has reverted that handoff (it ticked
 * since; a handoff whose `durable` went is never reverted), so the row can never be flipped and
 * goes; the same handoff offered again is received again (the row is replaced); any other offer
 * waits for the row's resolution (MIGRATION_BUSY).
 */
export function settlePendingByOffer(ctx: MigrationContext, offer: { agentId: string; peer: string; epoch: Epoch; checkpointHash: string }): void {
  const store = ctx.host.store;
  const { agentId, peer } = offer;
  const row = store.pendingReception(agentId);
  if (!row) return;
  const samePeerAndEpoch = row.peer === peer && compareEpochs(row.epoch, offer.epoch) === 0;
  if (samePeerAndEpoch && row.checkpointHash !== offer.checkpointHash) {
    store.dropPendingReception(agentId, row.checkpointHash);
    ctx.log.info({ event: "pending_reception_resolved", outcome: "dropped", agent: agentId, peer }, `${peer} offers ${agentId} from another checkpoint at the same epoch: its pending reception is dropped`);
  } else if (!samePeerAndEpoch) {
    throw new IgordError(ErrorCode.MigrationBusy, `agent "${agentId}" has a pending reception from ${row.peer} at epoch ${formatEpoch(row.epoch)} here, not resolved yet`);
  }
}

/**
 * The source's answer to a target's status query of question "handoff" about a pending reception: whether this node
 * handed exactly that checkpoint of the agent off to the asker (its Noise-authenticated peer id)
 * at that epoch. It changes nothing here and tells the asker only about itself, so it needs no
 * proof from the asker. During a hop of the agent ("wait") the handoff may not be durable yet; a
 * handoff found is made durable (a WAL sync) before it is answered.
 */
export async function answerHandoffQuery(ctx: MigrationContext, q: Record<string, unknown>, asker: string): Promise<HandoffAnswer> {
  const T = "status";
  const agentId = str(q, T, "agentId", MAX_AGENT_ID_CHARS);
  const did = str(q, T, "did", MAX_DID_CHARS);
  const epoch: Epoch = epochOf(q, T);
  const checkpointHash = hex32(q, T, "checkpointHash");
  if (ctx.outgoing.has(agentId)) return "wait";
  const store = ctx.host.store;
  const row = store.agent(agentId);
  const lease = store.lease(agentId);
  if (row?.did !== did || !lease?.handoff || !HANDED_OFF_STATES.has(lease.state)) return "not_handed_off";
  if (compareEpochs(lease.epoch, epoch) !== 0 || lease.handoff.checkpointHash !== checkpointHash) return "not_handed_off";
  let target: string;
  try {
    target = ctx.target(lease.handoff.target).peerId;
  } catch {
    return "not_handed_off";
  }
  if (target !== asker) return "not_handed_off";
  // The handoff read here may be one a killed process committed and never synced (this node was
  // restarted before its detach's fsync returned): a power cut now could still lose it, and the
  // asker would then own the agent beside this node. "handed_off" only once it is durable.
  const synced = store.syncWalNow();
  if (!synced) return "wait";
  try {
    await synced;
  } catch {
    return "wait";
  }
  return "handed_off";
}
