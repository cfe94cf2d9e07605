// resume_interrupted() -> i32 (event id 20, an igord extension; no capability: it tells the agent
// only about its own previous run). Returns 1 during the first tick of a live instance resumed from
// a state after which a tick may have run without being committed — a restart after a crash or
// SIGKILL (the stored head is a checkpoint taken while the agent kept running), a tick discarded
// because its lease lapsed, a stored agent that had failed — and 0 otherwise: a clean restart after
// shutdown, an arrival by migration (the handoff checkpoint is the agent's last state), any later
// tick. The answer is recorded: replay returns it, so agent_resume can stay a pure inverse of
// agent_checkpoint and the SDK's EffectLog turns InFlight intents into Unresolved inside a tick.
// Payload: empty; result 0 or 1.
import { EMPTY } from "../eventlog/recorder.js";
import type { HostContext } from "./context.js";
import { HostcallId } from "./registry.js";

/** Head checkpoint reasons after which nothing ran: the agent stopped, shut down or moved away there. */
const CLEAN_HEAD_REASONS = new Set(["shutdown", "migrate", "migrated"]);

/**
 * The head's reason on a target whose package said `interrupted`: the agent was resumed after an
 * interruption and handed off before a tick told it, so no clean end; the target's first tick tells it.
 */
export const MIGRATED_UNTOLD = "migrated_interrupted";

/**
 * Whether an agent resumed from its stored head may have run ticks after it that were never
 * committed. Conservative: anything but a known clean end is an interruption (reconciling an intent
 * that turns out settled is cheap; acting twice is not). `stoppedCleanly`: the agent is stored
 * stopped by a stop that checkpointed it while it ran (node/agent-lifecycle.ts stoppedCleanly), not
 * merely marked stopped after its run had been thrown away.
 */
export function interruptedAfter(head: { reason: string; stoppedCleanly: boolean }): boolean {
  if (head.stoppedCleanly) return false;
  return !CLEAN_HEAD_REASONS.has(head.reason);
}

export function resumeInterrupted(ctx: HostContext): () => number {
  return () =>
    ctx.source.observe(
      HostcallId.resume_interrupted,
      () => ({ result: ctx.interrupted?.() ? 1 : 0, payload: EMPTY }),
      (rec) => (rec.payload.length === 0 && (rec.result === 0 || rec.result === 1) ? null : `result ${rec.result} with a ${rec.payload.length}-byte payload is not 0 or 1 with none`),
    ).result;
}
