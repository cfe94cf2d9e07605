// The preflight of an outgoing migration: before the agent stops, each target in turn is asked
// whether it would take the agent (reachable, the agent's capabilities, trust, room), with the same
// retries and backoff as a transfer, so an unreachable target never freezes a running agent.
import type { Logger } from "pino";
import { ErrorCode, IgordError } from "../errors.js";
import { asIgord, type MigrationContext, sleep, type Target } from "./context.js";
import { backoffDelay, classifyFailure } from "./retry.js";

/** A target's answer this recent (with its connection still open) stands in for asking again before a migration. */
export const PREFLIGHT_FRESH_MS = 10_000;

/** Attempts and fallbacks of one migration so far (the preflight's count on into the transfer's). */
export interface Tally {
  attempts: number;
  fallbacks: number;
  /** The attempt count the migration record holds (the preflight's goes on as the transfer's: not written twice). */
  recorded: number;
}

/**
 * Before the agent stops: each target in turn is asked (price protocol) whether it is reachable,
 * offers the agent's capabilities, takes agents from this node and has room, with the same
 * retries and backoff as a transfer. The agent keeps ticking meanwhile, so an unreachable target
 * never freezes it. Returns the targets from the first one that answered yes.
 */
export async function preflight(
  ctx: MigrationContext,
  id: number,
  agentId: string,
  list: Target[],
  required: readonly string[],
  logger: Logger,
  /** The attempts the migration record holds already (its INSERT counted the first one). */
  recorded: number,
): Promise<{ ready: Target[]; tally: Tally; last: IgordError | null }> {
  const store = ctx.host.store;
  const m = ctx.host.metrics;
  const tally: Tally = { attempts: 0, fallbacks: 0, recorded };
  let last: IgordError | null = null;
  for (const [i, t] of list.entries()) {
    if (i > 0) {
      tally.fallbacks++;
      m.migrationFallbacks.inc();
      store.updateMigration(id, { peer: t.text, fallbacks: tally.fallbacks });
      logger.warn({ event: "migration_fallback", target: t.text, after: last?.code }, `trying fallback ${t.text}`);
    }
    for (let attempt = 1; attempt <= ctx.retry.attempts; attempt++) {
      if (ctx.stopSignal.aborted) return { ready: [], tally, last };
      tally.attempts++;
      m.migrationAttempts.inc({ direction: "out" });
      if (tally.attempts !== tally.recorded) store.updateMigration(id, { attempts: tally.attempts });
      tally.recorded = tally.attempts;
      const refusal = knownReady(ctx, t, required) ? null : await probe(ctx, t, required).catch((e: unknown) => asIgord(e, ErrorCode.MigrationDialFailed));
      if (refusal === null) {
        logger.info({ event: "migration_target_ready", target: t.text, peer: t.peerId, address: ctx.addressOf(t.peerId) }, `${t.text} answers and would take ${agentId}`);
        // This attempt goes on as the transfer: counted once.
        tally.attempts--;
        return { ready: list.slice(i), tally, last };
      }
      last = refusal;
      // Asked, not sent: a "no" is final for this target, silence is retried.
      const kind = classifyFailure(refusal.code, false, refusal.details.remote === true);
      logger.warn({ event: "migration_attempt_failed", target: t.text, attempt, code: refusal.code, class: kind, stage: "preflight" }, refusal.message);
      ctx.peers.failed(t.peerId);
      if (kind !== "retriable") break;
      if (attempt < ctx.retry.attempts) {
        m.migrationRetries.inc();
        await sleep(backoffDelay(ctx.retry, attempt), ctx.stopSignal);
      }
    }
  }
  return { ready: [], tally, last };
}

/**
 * Whether the target answered recently (PREFLIGHT_FRESH_MS) that it takes agents from this node and
 * offers what the agent needs, and is connected now: then asking again would only cost a round trip.
 */
function knownReady(ctx: MigrationContext, t: Target, required: readonly string[]): boolean {
  const p = ctx.peers.get(t.peerId);
  if (!p || p.acceptsMigrations !== true || p.capabilities === null || p.failures > 0) return false;
  if (p.lastSeen === null || Date.now() - p.lastSeen > PREFLIGHT_FRESH_MS) return false;
  return ctx.addressOf(t.peerId) !== null && required.every((c) => p.capabilities?.includes(c));
}

/** Null when the target would take the agent; else why not, as the target itself would refuse it. */
async function probe(ctx: MigrationContext, t: Target, required: readonly string[]): Promise<IgordError | null> {
  const info = await ctx.probe(t);
  const remote = { details: { remote: true } };
  if (info.acceptsMigrations === false) return new IgordError(ErrorCode.MigrationUntrustedPeer, `${t.text} does not accept migrations from this node (add this node's peer id to its --trusted-peer)`, remote);
  const missing = required.filter((c) => !(info.capabilities ?? []).includes(c));
  if (missing.length > 0) return new IgordError(ErrorCode.CapabilityNotOffered, `${t.text} does not offer ${missing.join(", ")}`, remote);
  if (info.maxAgents !== null && info.maxAgents > 0 && info.agents !== null && info.agents >= info.maxAgents) {
    return new IgordError(ErrorCode.MigrationNodeFull, `${t.text} runs ${info.agents} agents, its --max-agents`, remote);
  }
  return null;
}
