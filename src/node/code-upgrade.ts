// `igord upgrade <agent> --wasm new.wasm` on a live node: the new module continues from the old
// module's last checkpoint. Order, so that a refusal changes nothing:
//   1. the new module is prepared against the agent's stored manifest (exports, imports, memory);
//   2. the agent is stopped (tick in flight commits, checkpoint at tick N);
//   3. the new module is loaded on a staging placement from that state: the replay-rule check
//      (resume is the inverse of checkpoint) runs there, under the tick timeout;
//   4. one durable transaction stores the new module (by hash; an old version stays while a kept
//      checkpoint or agent names it: store/module-retention.ts), points the agent at it and
//      records the signed code_upgrade lineage event (old hash -> new hash at N);
//   5. the agent resumes with the new module.
// A failure at 1 leaves the old code running untouched; at 3 it resumes the old code from the very
// checkpoint it stopped at (nothing stored changed). An agent started, stopped or removed while 3 ran
// is refused before 4 and left as that command left it.
import { formatEpoch } from "../authority/lease.js";
import { parseCheckpoint } from "../checkpoint/codec.js";
import { signCodeUpgrade } from "../checkpoint/upgrades.js";
import { ErrorCode, IgordError } from "../errors.js";
import { equalBytes, hex } from "../hash/bytes.js";
import { prepareFromBytes, readWasm } from "../loader/prepare.js";
import { parseManifest } from "../manifest/manifest.js";
import { pausedByUpgrade, refuseIfHeld, UPGRADE_PAUSE, UPGRADE_PAUSE_INTERRUPTED } from "./agent-lifecycle.js";
import { agentSpec, type IgordNode } from "./node.js";

/** Suffix of the staging placement the new module is tried on (never a valid agent id character). */
const STAGING = "#upgrade";

function refused(id: string, e: unknown, running: boolean): IgordError {
  const err = e instanceof IgordError ? e : new IgordError(ErrorCode.StoreError, (e as Error).message);
  // The staging placement is the agent's own code being tried: named as the agent.
  const message = err.message.replaceAll(`"${id}${STAGING}"`, `"${id}"`);
  return new IgordError(ErrorCode.UpgradeRefused, `upgrade of "${id}" refused: [${err.code}] ${message}; ${running ? "the old code keeps running" : "nothing changed"}`, {
    details: { cause: err.code, ...err.details },
  });
}

/** Agents with an upgrade under way, per node: a second one (the CLI and the agents dir at once) waits its turn by being refused. */
const underway = new WeakMap<IgordNode, Set<string>>();

export async function upgradeAgent(node: IgordNode, id: string, wasmPath: string): Promise<Record<string, unknown>> {
  const busy = underway.get(node) ?? new Set<string>();
  underway.set(node, busy);
  if (busy.has(id)) throw new IgordError(ErrorCode.UpgradeRefused, `an upgrade of "${id}" is already under way; try again when it is done`);
  busy.add(id);
  try {
    return await upgradeOnce(node, id, wasmPath);
  } finally {
    busy.delete(id);
  }
}

async function upgradeOnce(node: IgordNode, id: string, wasmPath: string): Promise<Record<string, unknown>> {
  const row = node.store.agent(id);
  if (!row) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${id}" on this node`);
  if (row.status === "removed") refuseIfHeld(row, "igord upgrade");
  // Only the owner speaks for the agent: an upgrade signs a lineage event with its key. A node it
  // moved away from signed one after its old head there, which the agent's real continuation contradicts.
  const lease = node.store.lease(id);
  if (lease && lease.state !== "ACTIVE_OWNER") {
    throw new IgordError(ErrorCode.UpgradeRefused, `upgrade of "${id}" refused: this node does not own it (lease ${lease.state} at epoch ${formatEpoch(lease.epoch)}); upgrade it where it runs`, {
      details: { lease: lease.state },
    });
  }
  if (node.migration?.outgoing.has(id) || node.migration?.receiving.has(id)) {
    throw new IgordError(ErrorCode.UpgradeRefused, `upgrade of "${id}" refused: it is moving through this node; try again once the migration is done`);
  }
  const wasRunning = node.scheduler.view(id)?.status === "running";
  const before = { status: row.status, reason: row.reason, view: node.scheduler.view(id)?.status };
  let prepared: ReturnType<typeof prepareFromBytes>;
  try {
    const manifest = parseManifest(row.manifest, `stored manifest of agent "${id}"`);
    prepared = prepareFromBytes({ agentId: id, bytes: readWasm(wasmPath), manifest, source: wasmPath, offered: node.capabilities.snapshot(), cache: node.cache });
  } catch (e) {
    throw refused(id, e, wasRunning);
  }
  if (prepared.wasmHash === row.wasmHash) throw new IgordError(ErrorCode.UpgradeRefused, `agent "${id}" already runs ${wasmPath} (WASM ${row.wasmHash.slice(0, 16)}…)`);

  // A tick in flight is thrown away (as by a stop): whichever code resumes is told its last run was interrupted.
  if (wasRunning) await node.scheduler.pause(id, UPGRADE_PAUSE, UPGRADE_PAUSE_INTERRUPTED);
  const head = node.store.head(id);
  if (!head) throw new IgordError(ErrorCode.CheckpointInvalid, `agent "${id}" has no checkpoint in the store`);
  const cp = parseCheckpoint(head.blob);
  const identity = node.store.identity(id);
  const staging = { ...agentSpec(prepared, identity), agentId: `${id}${STAGING}` };
  try {
    // The new code reads the old code's state (it may extend its layout); the replay rule is checked on what it makes of it.
    await node.pool.place(staging, { state: cp.state, budget: cp.budget, price: node.config.price, stateOfOlderModule: true });
  } catch (e) {
    node.pool.unload(staging.agentId);
    const err = refused(id, e, wasRunning);
    node.logger.error({ event: "code_upgrade_refused", agent: id, code: (e as IgordError).code, to: prepared.wasmHash }, err.message);
    if (wasRunning) await restart(node, id);
    throw err;
  }
  node.pool.unload(staging.agentId);
  refuseIfChangedSince(node, id, wasRunning, before);

  const override = node.store.lineageEvents(id).filter((e) => equalBytes(e.afterHash, head.hash)).at(-1);
  const budget = override ? override.newBudget : cp.budget;
  // From the module the head was made with: after an upgrade whose code has not checkpointed yet
  // (two upgrades within a tick interval, or of a stopped agent), that is not the module stored now,
  // and a chain from the head's module to this one through the upgrade in between does not verify.
  const upgrade = { afterHash: head.hash, tick: head.tick, fromWasm: hex(cp.wasmHash), toWasm: prepared.wasmHash };
  node.store.recordUpgrade(id, prepared.wasmHash, prepared.bytes, { kind: "code_upgrade", ...signCodeUpgrade(identity, upgrade, budget) });
  node.staleBinaries.delete(id);
  node.logger.info(
    { event: "code_upgraded", agent: id, tick: String(head.tick), from: row.wasmHash, to: prepared.wasmHash, path: wasmPath },
    `agent ${id} upgraded at tick ${head.tick}: ${row.wasmHash.slice(0, 16)}… -> ${prepared.wasmHash.slice(0, 16)}…`,
  );
  if (wasRunning) await restart(node, id, wasmPath);
  return { id, tick: head.tick.toString(), fromWasm: row.wasmHash, toWasm: prepared.wasmHash, status: node.scheduler.view(id)?.status ?? row.status };
}

type Before = { status: string; reason: string | null; view: string | undefined };

/**
 * Refuses to record the upgrade when, while the new code was tried, the agent stopped being what the
 * upgrade paused (or found): started, stopped or removed by a command that did not wait its turn
 * (the control API's and the agents dir's take turns, node/agent-turns.ts; a direct caller may not).
 * Its code_upgrade would be signed over a head the new code no longer continues from (the old code,
 * started, checkpoints on under the old hash), or resume an agent the operator had just stopped.
 */
function refuseIfChangedSince(node: IgordNode, id: string, wasRunning: boolean, before: Before): void {
  const row = node.store.agent(id);
  const view = node.scheduler.view(id)?.status;
  const same = row !== undefined && (wasRunning ? pausedByUpgrade(row) && view !== "running" : row.status === before.status && row.reason === before.reason && view === before.view);
  if (same) return;
  const now = row ? `${view ?? row.status}${row.reason ? ` (${row.reason})` : ""}` : "gone";
  throw new IgordError(ErrorCode.UpgradeRefused, `upgrade of "${id}" refused: the agent changed while its new code was tried (now ${now}); nothing changed, try again`, {
    details: { cause: "AGENT_CHANGED", status: row?.status ?? null, reason: row?.reason ?? null },
  });
}

/**
 * Resumes the agent the upgrade stopped (still stored stopped: a clean end, resume_interrupted 0),
 * then stores it active. Only while it is still the upgrade's pause: an agent stopped, removed or
 * started since is the other command's, not resumed over it.
 */
async function restart(node: IgordNode, id: string, wasmPath?: string): Promise<void> {
  const row = node.store.agent(id);
  if (!row || !pausedByUpgrade(row) || node.scheduler.view(id)?.status === "running") return;
  await node.resumeAgent(id, wasmPath);
  node.store.setStatus(id, "active", null);
}
