// What replay does and what a divergence does (pure decisions; the scheduler carries them out).

export const REPLAY_MODES = ["off", "periodic", "on-migrate", "full"] as const;
export type ReplayMode = (typeof REPLAY_MODES)[number];

export const DIVERGENCE_POLICIES = ["log", "pause", "intensify", "migrate"] as const;
export type DivergencePolicy = (typeof DIVERGENCE_POLICIES)[number];

/** Modes that verify the agent's own ticks as it runs. */
export function selfVerifies(mode: ReplayMode): boolean {
  return mode === "periodic" || mode === "full";
}

/** Modes that keep a window (for self-verification or to ship with a migration). */
export function keepsWindow(mode: ReplayMode): boolean {
  return mode !== "off";
}

/**
 * Why a diverged agent was stopped (its stored status reason). Held across restarts like an
 * operator's stop: only `igord start` runs it again, deliberately.
 */
export const REPLAY_DIVERGENCE = "replay_divergence";
/** The migrate policy found no node to move it to, so it was stopped instead; held the same way. */
export const REPLAY_DIVERGENCE_NO_MIGRATION = "replay_divergence_no_migration";

/** A stored reason that says the agent stopped because its replay diverged. */
export function stoppedByDivergence(reason: string | null): boolean {
  return reason === REPLAY_DIVERGENCE || reason === REPLAY_DIVERGENCE_NO_MIGRATION;
}

export type DivergenceAction =
  | { kind: "continue" }
  | { kind: "intensify"; ticks: number }
  | { kind: "pause"; reason: string }
  | { kind: "migrate" };

/**
 * `migrate` hands the agent to the migration service; without one it pauses and says so.
 */
export function onDivergence(policy: DivergencePolicy, windowSize: number, migrationAvailable: boolean): DivergenceAction {
  switch (policy) {
    case "log":
      return { kind: "continue" };
    case "pause":
      return { kind: "pause", reason: REPLAY_DIVERGENCE };
    case "intensify":
      return { kind: "intensify", ticks: Math.max(1, windowSize) };
    case "migrate":
      return migrationAvailable ? { kind: "migrate" } : { kind: "pause", reason: REPLAY_DIVERGENCE_NO_MIGRATION };
  }
}
