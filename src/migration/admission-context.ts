// What admission of a migration package runs in (the node's store, capabilities, price, budget cap,
// replay, deadline), and the refusal and time checks every admission step shares.
import type { LeaseTiming } from "../authority/lease.js";
import { ErrorCode, IgordError } from "../errors.js";
import type { ModuleCache, PreparedAgent } from "../loader/prepare.js";
import type { ReplayItem } from "../replay/engine.js";
import type { ReplayMode } from "../replay/policy.js";
import type { SqliteStore } from "../store/sqlite-store.js";

/** Ticks a target replays at most to admit one package (each costs a real execution). */
export const MAX_ADMISSION_REPLAY_TICKS = 100_000;

export interface AdmissionContext {
  store: SqliteStore;
  cache: ModuleCache;
  /** The node's capability set, snapshotted once for this handshake (the loader's set). */
  offered: ReadonlySet<string>;
  price: bigint;
  /** --max-incoming-budget: the most an incoming agent's head checkpoint may carry. */
  maxBudget: bigint;
  replayMode: ReplayMode;
  leaseTiming: LeaseTiming;
  /**
   * Replays items on a fresh sandbox of the agent (every tick compared). `stateOfOlderModule`: the
   * segment starts at a checkpoint another module made (a code upgrade between them), whose state
   * `prepared` may read into a wider layout (the replay rule is checked on what it makes of it).
   */
  replay(prepared: PreparedAgent, preState: Uint8Array, items: ReplayItem[], stateOfOlderModule: boolean): Promise<{ finalState: Uint8Array | null; verifiedTicks: number }>;
  /**
   * When the lineage and seal checks must have ended (monotonic ms, performance.now(): a wall-clock
   * step does not move it; the same share of --migration-timeout as the replays): past it the
   * package is refused MIGRATION_TIMEOUT.
   */
  checksDeadline?: number;
}

/** A refusal of the package, with the code the protocol gives it. */
export function refuse(code: ErrorCode, message: string): never {
  throw new IgordError(code, message);
}

/**
 * Past the checks' deadline: the source, which waits one --migration-timeout for the result, has
 * given up or is about to; a peer's long history is not verified to its end for nobody.
 */
export function inTime(ctx: AdmissionContext): void {
  if (ctx.checksDeadline !== undefined && performance.now() > ctx.checksDeadline) {
    refuse(ErrorCode.MigrationTimeout, "the package's lineage checks passed their share of this node's --migration-timeout; ship a shorter history (--history-retention) or give this node a longer timeout");
  }
}

/** A turn of the event loop for the node's other work, then the time check. */
export async function turn(ctx: AdmissionContext): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  inTime(ctx);
}
