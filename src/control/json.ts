// JSON shapes of the control API. bigints travel as decimal strings; money also as units.
import { formatUnits } from "../budget/money.js";
import type { AgentView } from "../scheduler/scheduler.js";

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function agentJson(a: AgentView): Record<string, unknown> {
  return {
    id: a.id,
    did: a.did,
    status: a.status,
    reason: a.reason,
    error: a.error,
    tick: a.tick.toString(),
    budget: formatUnits(a.budget),
    budgetMicrocents: a.budget.toString(),
    spentMicrocents: a.spent.toString(),
    priceMicrocents: a.price.toString(),
    wasmHash: a.wasmHash,
    wasmPath: a.wasmPath,
    capabilities: a.capabilities,
    moreWork: a.more,
    lastTickAt: iso(a.lastTickAt),
    nextTickAt: iso(a.nextTickAt),
    tickIntervalMs: a.tickIntervalMs,
    lastTickNs: a.lastTickNs.toString(),
    ticksThisRun: a.ticksThisRun,
    hibernated: a.hibernated,
    stateBytes: a.stateBytes,
    lease: a.lease
      ? {
          state: a.lease.state,
          epoch: [a.lease.epoch.major.toString(), a.lease.epoch.generation.toString()],
          expiresAt: iso(a.lease.expiresAtMs),
        }
      : null,
    replayVerified: a.replayVerified,
    divergences: a.divergences,
  };
}
