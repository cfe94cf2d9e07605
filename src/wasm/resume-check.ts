// The replay rule checked before an agent first ticks: agent_resume is the exact inverse of
// agent_checkpoint. Replay, evacuation, restarts and migration all rebuild an agent as a fresh
// instance + agent_resume(state); if that does not give back the very state it was given, every
// replay diverges and the agent cannot move. Checked at load, it fails where the author can see it.
import { ErrorCode, IgordError } from "../errors.js";
import { equalBytes } from "../hash/bytes.js";

/** Where the rules are written down (named in every refusal). */
export const REPLAY_RULES_DOC = "docs/AGENT_ABI.md, section \"Replay rules\"";

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/**
 * Null when `after` (agent_checkpoint right after agent_resume(`given`) in a fresh instance) is
 * `given` byte for byte; else the AGENT_RESUME_NOT_INVERSE refusal naming the rule and the fix.
 */
export function resumeRuleViolation(agentId: string, given: Uint8Array, after: Uint8Array): IgordError | null {
  if (equalBytes(given, after)) return null;
  const at = firstDifference(given, after);
  return new IgordError(
    ErrorCode.AgentResumeNotInverse,
    `agent "${agentId}" breaks a replay rule: agent_resume must be the exact inverse of agent_checkpoint, ` +
      `but a fresh instance given a ${given.length}-byte state by agent_resume checkpoints ${after.length} bytes ` +
      `that differ from it at byte ${at}. Restore exactly what agent_checkpoint wrote: bump no counter on resume, ` +
      `derive no state from the instance (memory addresses, time, randomness), and do start-up work in agent_tick ` +
      `(its observations are then recorded); see ${REPLAY_RULES_DOC}`,
    { details: { rule: "resume_inverse_of_checkpoint", givenBytes: given.length, checkpointBytes: after.length, firstDifference: at } },
  );
}
