// The target side of a migration: each incoming migrate stream served one reception after another
// (reception.ts: trust and cheap checks on the offer, the package in chunks under one deadline, a
// per-peer reservation and a node-wide cap on bytes held, admission in the documented order
// (admission.ts), one transaction, start the agent, confirm); what admission needs from this node;
// the flip of a pending reception a crash left; the replay of a shipped window.
import { compareEpochs, formatEpoch } from "../authority/lease.js";
import { ErrorCode, IgordError } from "../errors.js";
import type { PreparedAgent } from "../loader/prepare.js";
import type { FrameChannel } from "../p2p/frames.js";
import type { ReplayItem } from "../replay/engine.js";
import type { AdmissionContext } from "./admission-context.js";
import { admitPackage } from "./admission.js";
import type { PendingReception } from "../store/sqlite-store.js";
import { ADMISSION_REPLAY_SHARE, asIgord, MIGRATE_IDLE_MS, type MigrationContext } from "./context.js";
import { decodePackage } from "./package.js";
import { IncomingHoldings } from "./incoming-holdings.js";
import { Reception, type ReceptionHost } from "./reception.js";

export class MigrationTarget implements ReceptionHost {
  /** Package bytes and agents this node's receptions hold right now. */
  readonly holdings = new IncomingHoldings();

  constructor(readonly ctx: MigrationContext) {}

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

  /** One migration on the stream (reception.ts); true when it went through and the stream may carry another. */
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
    return new Reception(this, ch, peer).run(offer);
  }

  /** What admission needs from this node, its replays bounded by their share of --migration-timeout from now. */
  admission(offered: ReadonlySet<string>): AdmissionContext {
    const cfg = this.ctx.cfg;
    const replayMs = Math.floor(cfg.migrationTimeoutMs * ADMISSION_REPLAY_SHARE);
    // Monotonic: a wall-clock step (NTP, a resumed VM) neither refuses every arriving package at
    // once nor lets one's checks run for the length of the step. The replays' deadline is on
    // process.hrtime's clock, which the workers read too.
    const checksDeadline = performance.now() + replayMs;
    const replayDeadlineNs = process.hrtime.bigint() + BigInt(replayMs) * 1_000_000n;
    return {
      store: this.ctx.host.store,
      cache: this.ctx.host.cache,
      offered,
      price: cfg.price,
      maxBudget: cfg.maxIncomingBudget,
      replayMode: cfg.replayMode,
      leaseTiming: this.ctx.host.leaseTiming,
      replay: (prepared, preState, items, stateOfOlderModule) => this.replayIncoming(prepared, { state: preState, stateOfOlderModule }, items, replayDeadlineNs, replayMs),
      checksDeadline,
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
   * timeout, the whole by `deadlineNs` (process.hrtime) (admission's share of --migration-timeout; a tick not started by
   * then refuses the package with MIGRATION_REPLAY_TIMEOUT). The placement only replays: the replay
   * rule is checked from the pre-window state on a replay instance, which the replay then takes up
   * again, and no live instance is built for it.
   */
  private async replayIncoming(
    prepared: PreparedAgent,
    pre: { state: Uint8Array; stateOfOlderModule: boolean },
    items: ReplayItem[],
    deadlineNs: bigint,
    replayMs: number,
  ): Promise<{ finalState: Uint8Array | null; verifiedTicks: number }> {
    const stagingId = `${prepared.agentId}~incoming`;
    const pool = this.ctx.host.pool;
    const init = { state: pre.state, budget: 1n, price: 0n, replayOnly: true, stateOfOlderModule: pre.stateOfOlderModule };
    const placed = pool.place({ agentId: stagingId, module: prepared.module, plan: prepared.plan, memoryCapPages: prepared.memoryCapPages }, init);
    // Sent behind the load without waiting for it (one worker round trip for both); a load that
    // fails (the replay rule, a trap, the deadline) is the refusal, whatever the replay answered.
    const replayed = pool.replay(stagingId, items, { deadlineNs }).then(
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
