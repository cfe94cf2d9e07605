// The replay of the window before the handoff, started as soon as admission knows the module (after
// its hash, manifest and capability checks) instead of after the signature checks: the worker
// instantiates and replays while the main thread checks the lineage, the seals and the receipts.
// Nothing is taken on trust and no refusal changes: admission still checks everything in its order,
// and only uses the replay's outcome at the replay step, when it asks for exactly this replay (same
// segment, same pre-window state, same module); otherwise it waits for this one to finish and
// replays as before. A package refused meanwhile has cost a replay on a sandbox, as a validly signed
// package can (any peer signs its own agents); admission waits for it to end before it answers, so
// the staging placement is gone before the source can retry.
import { type Checkpoint, parseCheckpoint } from "../checkpoint/codec.js";
import { checkpointHash } from "../checkpoint/lineage.js";
import { equalBytes, hex } from "../hash/bytes.js";
import { withAgentIdentity } from "../hostcalls/policy.js";
import { didFromPublicKey } from "../identity/did.js";
import { decodeIdentityFile } from "../identity/keys.js";
import type { PreparedAgent } from "../loader/prepare.js";
import type { ReplayItem } from "../replay/engine.js";
import type { StoredSegment } from "../store/sqlite-store.js";
import type { AdmissionContext } from "./admission-context.js";
import type { MigrationPackage } from "./package.js";

type Replayed = Awaited<ReturnType<AdmissionContext["replay"]>>;

export class EarlyReplay {
  private running: { seg: StoredSegment; preState: Uint8Array; wasmHash: string; result: Promise<Replayed> } | null = null;
  private done: Promise<void> = Promise.resolve();
  private taken = false;

  /**
   * Starts replaying the one segment that closes at the package's head, from the checkpoint before
   * it (shipped, or `heldHead`: this node's head, which the package continues from), if it has exactly
   * that and the head was made with `prepared`'s module. Does nothing otherwise; never throws.
   */
  start(pkg: MigrationPackage, head: Checkpoint, heldHead: Uint8Array | undefined, prepared: PreparedAgent, ctx: AdmissionContext, itemsOf: (seg: StoredSegment, preState: Uint8Array) => ReplayItem[]): void {
    if (ctx.replayMode !== "on-migrate" && ctx.replayMode !== "full") return;
    if (hex(head.wasmHash) !== pkg.wasmHash || pkg.history.length === 0) return;
    const closing = pkg.segments.filter((s) => s.toTick === head.tick && hex(s.checkpointHash) === pkg.checkpointHash);
    const seg = closing[0];
    if (closing.length !== 1 || !seg) return;
    let preState: Uint8Array;
    let items: ReplayItem[];
    let module: PreparedAgent;
    let stateOfOlderModule: boolean;
    try {
      const prevHash = hex(head.prevHash);
      const shipped = pkg.history.at(-2);
      const beforeBlob = shipped && hex(checkpointHash(shipped)) === prevHash ? shipped : pkg.baseHash === prevHash ? heldHead : undefined;
      if (!beforeBlob) return;
      const before = parseCheckpoint(beforeBlob);
      if (seg.fromTick !== before.tick + 1n) return;
      preState = before.state;
      // Right after a code upgrade the checkpoint before is the old module's.
      stateOfOlderModule = hex(before.wasmHash) !== pkg.wasmHash;
      items = itemsOf(seg, preState);
      // The plan admission replays with: WASI's out-of-tick random stream comes from the agent's DID.
      module = { ...prepared, plan: withAgentIdentity(prepared.plan, didFromPublicKey(decodeIdentityFile(pkg.identity).publicKey)) };
    } catch {
      // Whatever is wrong here, admission refuses in its own order.
      return;
    }
    const result = ctx.replay(module, preState, items, stateOfOlderModule);
    this.running = { seg, preState, wasmHash: pkg.wasmHash, result };
    this.done = result.then(
      () => undefined,
      () => undefined,
    );
  }

  /** The early replay's outcome, if it replays exactly `seg` from `preState` with module `wasmHash` (once). */
  take(seg: StoredSegment, preState: Uint8Array, wasmHash: string): Promise<Replayed> | null {
    const r = this.running;
    if (this.taken || !r || r.seg !== seg || r.wasmHash !== wasmHash || !equalBytes(r.preState, preState)) return null;
    this.taken = true;
    return r.result;
  }

  /** Settles once the early replay, if any, has ended (its staging placement unloaded). */
  settled(): Promise<void> {
    return this.done;
  }
}
