// Resolution of an unconfirmed handoff (a lost confirmation, or a crash mid-migration): ask the
// target, with a query signed by the agent's key over this node's own Noise-authenticated
// connection, until it answers — it owns the agent → RETIRED here; it does not → it fences that
// epoch (only for the peer whose offer it took) and the agent runs here again at major + 1. Also
// the answering side of that query.
import { type Epoch, formatEpoch, transition } from "../authority/lease.js";
import { hex } from "../hash/bytes.js";
import { ErrorCode, IgordError } from "../errors.js";
import { epoch as epochOf, type FrameChannel, MAX_AGENT_ID_CHARS, MAX_DID_CHARS, str } from "../p2p/frames.js";
import { asIgord, type MigrationContext, QUERY_TIMEOUT_MS, remoteError, sleep, STATUS_PROTOCOL } from "./context.js";
import { answerHandoffQuery } from "./pending-reception.js";
import { askAgainDelay } from "./retry.js";
import { signStatusQuery, verifyStatusQuery } from "./status-proof.js";

export class HandoffResolution {
  private readonly resolving = new Map<string, Promise<void>>();

  constructor(private readonly ctx: MigrationContext) {}

  /** Handoffs left unresolved by a crash or a lost confirmation: ask their targets. */
  resolvePending(): void {
    for (const row of this.ctx.host.store.listAgents()) {
      const lease = this.ctx.host.store.lease(row.agentId);
      if (lease?.handoff && (lease.state === "HANDOFF_INITIATED" || lease.state === "RECOVERY_REQUIRED")) this.resolveHandoff(row.agentId);
    }
  }

  has(agentId: string): boolean {
    return this.resolving.has(agentId);
  }

  /** Asks the handoff's target, until it answers, whether it owns the agent; acts on the answer. */
  resolveHandoff(agentId: string, migrationId?: number): void {
    if (this.resolving.has(agentId)) return;
    const p = this.resolveLoop(agentId, migrationId).finally(() => this.resolving.delete(agentId));
    this.resolving.set(agentId, p);
    this.ctx.track(p);
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
    const store = this.ctx.host.store;
    const logger = this.ctx.log.child({ agent: agentId });
    for (let round = 1; !this.ctx.stopSignal.aborted; round++) {
      const lease = store.lease(agentId);
      if (!lease?.handoff || (lease.state !== "HANDOFF_INITIATED" && lease.state !== "RECOVERY_REQUIRED")) return;
      let answer: { state: string; epoch: Epoch | null };
      try {
        answer = await this.queryStatus(lease.handoff.target, agentId, lease.epoch);
      } catch (e) {
        logger.warn({ event: "handoff_status_unreachable", target: lease.handoff.target, round, code: (e as IgordError).code }, `cannot ask ${lease.handoff.target} about ${agentId} yet`);
        await sleep(askAgainDelay(this.ctx.retry, round), this.ctx.stopSignal);
        continue;
      }
      if (answer.state === "receiving") {
        await sleep(askAgainDelay(this.ctx.retry, round), this.ctx.stopSignal);
        continue;
      }
      const belief = { state: lease.state, epoch: lease.epoch };
      const mid = migrationId ?? store.migrations({ agentId, limit: 1 }).find((m) => m.direction === "out")?.id;
      if (answer.state === "owned") {
        const retired = transition(lease, { type: "target_confirmed" }, this.ctx.host.leaseTiming);
        if (!this.settle(agentId, () => {
          store.writeLease(agentId, belief, retired);
          store.setStatus(agentId, "stopped", "migrated");
          if (mid !== undefined) store.updateMigration(mid, { state: "done", error: null });
        })) continue;
        this.ctx.host.retired(agentId);
        this.ctx.host.metrics.migrationOutcomes.inc({ direction: "out", outcome: "resolved_retired" });
        logger.warn({ event: "handoff_resolved", outcome: "retired", target: lease.handoff.target, epoch: answer.epoch ? formatEpoch(answer.epoch) : null }, `${lease.handoff.target} owns ${agentId}: retired here`);
        return;
      }
      const pending = lease.state === "HANDOFF_INITIATED" ? transition(lease, { type: "ambiguous_handoff" }, this.ctx.host.leaseTiming) : lease;
      const back = transition(pending, { type: "recover", cause: "target_denied", nowMs: Date.now() }, this.ctx.host.leaseTiming);
      const target = lease.handoff.target;
      if (!this.settle(agentId, () => {
        store.writeLease(agentId, belief, back);
        if (mid !== undefined) store.updateMigration(mid, { state: "failed", error: { code: ErrorCode.MigrationAmbiguous, message: `${target} does not hold the agent; reclaimed at epoch ${formatEpoch(back.epoch)}` } });
      })) continue;
      this.ctx.host.metrics.migrationOutcomes.inc({ direction: "out", outcome: "resolved_reclaimed" });
      logger.warn({ event: "handoff_resolved", outcome: "reclaimed", target: lease.handoff.target, epoch: formatEpoch(back.epoch) }, `${lease.handoff.target} does not hold ${agentId}: it runs here again at epoch ${formatEpoch(back.epoch)}`);
      if (!this.ctx.host.stopping()) await this.ctx.host.resume(agentId).catch(() => undefined);
      return;
    }
  }

  /**
   * Writes a resolution in one transaction. False when the lease moved meanwhile (an operator's
   * igord recover, say): the loop reads it again and stops if nothing is left to resolve.
   */
  private settle(agentId: string, write: () => void): boolean {
    try {
      this.ctx.host.store.atomically(write);
      return true;
    } catch (e) {
      if (!(e instanceof IgordError) || e.code !== ErrorCode.LeaseStale) throw e;
      this.ctx.log.info({ event: "handoff_lease_moved", agent: agentId }, `the lease of ${agentId} changed while its handoff was being resolved`);
      return false;
    }
  }

  /** The migration-status query: does the target own the agent past the source's epoch? */
  async queryStatus(target: string, agentId: string, epoch: Epoch): Promise<{ state: "owned" | "not_owned" | "receiving"; epoch: Epoch | null }> {
    const t = this.ctx.target(target);
    const row = this.ctx.host.store.agent(agentId);
    if (!row) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${agentId}" on this node`);
    const signature = signStatusQuery(this.ctx.host.store.identity(agentId), agentId, row.did, epoch, t.peerId);
    const ch = await this.ctx.open(t, STATUS_PROTOCOL);
    try {
      await ch.sendJson({ type: "status", agentId, did: row.did, epochMajor: epoch.major, epochGeneration: epoch.generation, signature: hex(signature) });
      const r = await ch.receiveJson(QUERY_TIMEOUT_MS, "status_reply");
      if (r.state === "refused") throw remoteError(r, `${target} refused the status query`);
      const state = r.state === "owned" || r.state === "not_owned" || r.state === "receiving" ? r.state : null;
      if (!state) throw new IgordError(ErrorCode.MigrationFrameInvalid, `status_reply: unknown state ${JSON.stringify(r.state)}`);
      const e = typeof r.epochMajor === "string" ? epochOf(r, "status_reply") : null;
      return { state, epoch: e };
    } finally {
      await ch.close();
    }
  }

  /**
   * Answers one migration-status query from `peer` (its Noise-authenticated peer id). Only the peer
   * whose offer of this agent (id and DID) at this epoch this node took may settle that handoff,
   * i.e. make this node fence the agent; any other asker is told the truth and changes nothing.
   */
  async onStatus(ch: FrameChannel, peer: string): Promise<void> {
    try {
      const q = await ch.receiveJson(QUERY_TIMEOUT_MS, "status");
      if (q.question === "handoff") {
        // A target asks about its pending reception of an agent this node handed off (pending-reception.ts).
        let state: string;
        try {
          state = await answerHandoffQuery(this.ctx, q, peer);
        } catch (e) {
          const err = asIgord(e, ErrorCode.MigrationFrameInvalid);
          await ch.sendJson({ type: "status_reply", state: "refused", code: err.code, message: err.message });
          return;
        }
        await ch.sendJson({ type: "status_reply", agentId: q.agentId, state });
        return;
      }
      let agentId: string;
      let did: string;
      let epoch: Epoch;
      try {
        agentId = str(q, "status", "agentId", MAX_AGENT_ID_CHARS);
        did = str(q, "status", "did", MAX_DID_CHARS);
        epoch = epochOf(q, "status");
      } catch (e) {
        const err = e as IgordError;
        await ch.sendJson({ type: "status_reply", state: "refused", code: err.code, message: err.message });
        return;
      }
      const signature = typeof q.signature === "string" && /^[0-9a-f]{128}$/.test(q.signature) ? Buffer.from(q.signature, "hex") : null;
      if (!signature || !verifyStatusQuery(signature, agentId, did, epoch, this.ctx.peerId)) {
        await ch.sendJson({ type: "status_reply", agentId, state: "refused", code: ErrorCode.MigrationLineage, message: `the query is not signed by ${did}` });
        return;
      }
      const store = this.ctx.host.store;
      const row = store.agent(agentId);
      const lease = store.lease(agentId);
      const reply: Record<string, unknown> = { type: "status_reply", agentId };
      // A pending reception is not ownership, and not to be fenced: it waits for its source's word.
      if (this.ctx.receiving.has(agentId) || store.hasPendingReception(agentId)) {
        reply.state = "receiving";
      } else if (row?.did === did && lease && lease.epoch.major > epoch.major) {
        reply.state = "owned";
        Object.assign(reply, { leaseState: lease.state, epochMajor: lease.epoch.major, epochGeneration: lease.epoch.generation });
      } else {
        // The asker's handoff is settled: from now on a package for this agent at or below that
        // epoch is refused here (the asker takes the agent back). Without a handoff record this
        // peer never got an offer taken here at that epoch, so nothing of it can still arrive.
        const handoff = { agentId, did, peer, epoch };
        if (store.hasIncomingHandoff(handoff)) {
          store.atomically(() => {
            store.fenceAgent(handoff);
            store.settleIncomingHandoff(handoff);
          });
          this.ctx.log.info({ event: "handoff_fenced", agent: agentId, peer, epoch: formatEpoch(epoch) }, `told ${peer} it does not hold ${agentId}; fenced at ${formatEpoch(epoch)}`);
        }
        reply.state = "not_owned";
      }
      await ch.sendJson(reply);
    } catch (e) {
      this.ctx.log.debug({ event: "status_query_failed", err: (e as Error).message }, "status query failed");
    } finally {
      await ch.close();
    }
  }
}
