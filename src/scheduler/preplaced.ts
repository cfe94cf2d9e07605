// The live instance of an agent being admitted by migration, placed in the worker pool from its head
// state as soon as admission has passed, so the worker instantiates it while the main thread commits
// the reception (that fsync and this load used to run one after the other on a hop's critical path).
// The resume that follows the commit takes it over only if it was placed with exactly what the resume
// computes from the stored rows (module, state, budget, price, interrupted flag, key); anything else
// is unloaded and the agent placed anew, as before. Placing it runs no tick: ticks come from the
// scheduler once it holds the agent, so an instance that is never taken over never ran.
import { equalBytes } from "../hash/bytes.js";
import type { LogEntry } from "../eventlog/tick-log.js";
import type { Ed25519Key } from "../identity/keys.js";
import type { PreparedAgent } from "../loader/prepare.js";
import type { AgentSpec, WorkerPool } from "../wasm/pool.js";

/** What the live instance was loaded with; the resume compares it with its own. */
export interface PlacementInit {
  wasmHash: string;
  state: Uint8Array;
  budget: bigint;
  price: bigint;
  interrupted: boolean;
  publicKey: Uint8Array;
  /** The state was checkpointed by an older module (AgentInit.stateOfOlderModule). */
  stateOfOlderModule?: boolean;
}

type Placed = Promise<{ state: Uint8Array; events: LogEntry[] }>;

/**
 * What admission read and verified for the reception the instance was placed for: the module
 * prepared from the package, the agent's key, and the hash of the head whose signature it checked.
 * The resume uses them rather than reading, parsing and verifying them again from the rows the
 * reception just stored (the same bytes).
 */
export interface AdmittedAgent {
  prepared: PreparedAgent;
  identity: Ed25519Key;
  headHash: Uint8Array;
}

export class PreplacedAgent {
  /** Taken over by the resume, or unloaded: either way settled once. */
  private settled = false;

  private constructor(
    private readonly pool: WorkerPool,
    private readonly spec: AgentSpec,
    readonly agentId: string,
    private readonly init: PlacementInit,
    private readonly placed: Placed,
    readonly admitted: AdmittedAgent | null,
  ) {}

  /** Loads `spec` from `init.state` on a worker now (the pool's first-load checks, replay rule included). */
  static place(pool: WorkerPool, spec: AgentSpec, init: PlacementInit, admitted: AdmittedAgent | null = null): PreplacedAgent {
    const placed = pool.place(spec, { state: init.state, budget: init.budget, price: init.price, interrupted: init.interrupted, stateOfOlderModule: init.stateOfOlderModule ?? false });
    // Whoever takes it over awaits it; one that is discarded is not waited for.
    placed.catch(() => undefined);
    return new PreplacedAgent(pool, spec, spec.agentId, init, placed, admitted);
  }

  /**
   * The placement for a resume that computed `want`, or undefined (then it is unloaded) when it was
   * placed with anything else or is no longer in the pool. At most once.
   */
  take(want: PlacementInit): Placed | undefined {
    if (this.settled) return undefined;
    const same =
      want.wasmHash === this.init.wasmHash &&
      want.budget === this.init.budget &&
      want.price === this.init.price &&
      want.interrupted === this.init.interrupted &&
      (want.stateOfOlderModule ?? false) === (this.init.stateOfOlderModule ?? false) &&
      equalBytes(want.publicKey, this.init.publicKey) &&
      equalBytes(want.state, this.init.state);
    if (!same || !this.pool.placedWith(this.spec)) {
      this.discard();
      return undefined;
    }
    this.settled = true;
    return this.placed;
  }

  /**
   * Unloads it unless it was taken over (admission failed after it was placed, or the resume did not
   * take it). Only its own placement: the pool refuses a second one for an id it holds, so another
   * holder of the id (a local agent created meanwhile) keeps its instance.
   */
  discard(): void {
    if (this.settled) return;
    this.settled = true;
    if (this.pool.placedWith(this.spec)) this.pool.unload(this.agentId);
  }
}
