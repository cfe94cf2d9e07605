// Loading an agent from its .wasm file: a file whose agent this node stores resumes it (or, with
// --upgrade-agents-dir, upgrades it to the file's code); a new one is created with a fresh identity
// and a genesis checkpoint. Used by IgordNode.addAgent (the agents dir, `igord run`, the control API).
import { resolve } from "node:path";
import { genesisLease } from "../authority/lease.js";
import { earlierModules } from "../checkpoint/upgrades.js";
import { ErrorCode, IgordError } from "../errors.js";
import { didFromPublicKey } from "../identity/did.js";
import { generateKey } from "../identity/keys.js";
import { deriveAgentId, type PreparedAgent, prepareAgent } from "../loader/prepare.js";
import type { AgentView } from "../scheduler/scheduler.js";
import { refuseIfHeld, startAgent } from "./agent-lifecycle.js";
import { upgradeAgent } from "./code-upgrade.js";
import { type AddAgentOptions, agentSpec, type IgordNode } from "./node.js";
import { staleBinary } from "./stale-binary.js";
import { refuseIfRetired } from "./stored-resume.js";

/** Loads an agent from a .wasm file: resumes it when the node has it stored, else creates it. */
export async function loadAgentFile(node: IgordNode, o: AddAgentOptions): Promise<AgentView> {
  if (node.isStopping) throw new IgordError(ErrorCode.NodeStopping, "the node is stopping");
  refuseIfQuarantined(node, o.agentId ?? deriveAgentId(o.wasmPath));
  const prepared = prepareAgent({ ...o, offered: node.capabilities.snapshot(), cache: node.cache });
  const row = node.store.agent(prepared.agentId);
  if (row) {
    refuseIfHeld(row, o.wasmPath);
    // Moved away: its file here, changed or not, is one left behind (agent_file_retired), never a
    // stale binary to upgrade here; only the node it runs on may switch its code.
    refuseIfRetired(row.agentId, node.store.lease(row.agentId));
  }
  if (row && row.wasmHash !== prepared.wasmHash) {
    // Opted in: the changed file is the new code, taken as the operator's igord upgrade would be, in
    // the agent's turn: a stop or start sent meanwhile waits for it, not decides on the paused agent.
    if (node.config.upgradeAgentsDir) return node.turns.run(prepared.agentId, () => upgradeFromFile(node, prepared, o.wasmPath, o.fileChanged ?? false));
    throw staleBinary(row.agentId, row.wasmHash, prepared.wasmHash, o.wasmPath, "flag_off");
  }
  const running = node.scheduler.view(prepared.agentId);
  if (running?.status === "running") {
    if (o.budget !== undefined) throw new IgordError(ErrorCode.AgentExists, `agent "${prepared.agentId}" is already running`);
    return running;
  }
  if (row) {
    // Signed with the agent's key after its head here: only if it may run here (overrideBudget refuses one moved away or in a handoff).
    if (o.budget !== undefined) node.overrideBudget(prepared.agentId, o.budget, "budget set on load");
    return node.resumeAgent(prepared.agentId, prepared.wasmPath);
  }
  if (running) throw new IgordError(ErrorCode.AgentExists, `agent "${prepared.agentId}" was already loaded on this node`);
  refuseIfArriving(node, prepared.agentId, o.wasmPath);
  return createAgent(node, prepared, o.budget ?? node.config.budget);
}

/**
 * --upgrade-agents-dir: upgrades a running or failed agent to its file's code, decided on the agent
 * as it is once its turn came (a command before it may have stopped, removed or upgraded it). Else,
 * and for code the agent ran before found at start, the file is listed as a stale binary, not run.
 */
async function upgradeFromFile(node: IgordNode, prepared: PreparedAgent, wasmPath: string, fileChanged: boolean): Promise<AgentView> {
  const id = prepared.agentId;
  const row = node.store.agent(id);
  if (!row) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${id}" on this node`);
  refuseIfHeld(row, wasmPath);
  const view = node.scheduler.view(id);
  // An igord upgrade to this very file came first.
  if (row.wasmHash === prepared.wasmHash) return view ?? node.resumeAgent(id, wasmPath);
  const status = view?.status;
  if (status !== "running" && status !== "failed") throw staleBinary(id, row.wasmHash, prepared.wasmHash, wasmPath, "not_running");
  // Found at start, a file the agent's history names is old code, not a new build: the agent may
  // have come back upgraded elsewhere to find its first file here untouched. Switching back is the
  // operator's call. A write seen while watching is one (the dev loop's undo): taken.
  if (!fileChanged && earlierModules(node.store.lineageEvents(id), row.wasmHash).has(prepared.wasmHash)) {
    throw staleBinary(id, row.wasmHash, prepared.wasmHash, wasmPath, "rollback");
  }
  await upgradeAgent(node, id, wasmPath);
  // An agent its code failed (a trap, an abort: the dev loop's broken save) starts again with the
  // fixed code, as igord upgrade then igord start would.
  if (status === "failed") await startAgent(node, id);
  return node.scheduler.view(id) as AgentView;
}

/**
 * A stored agent whose resume failed in this run (a load check, guest code that hung, a capability
 * this node lacks) is not loaded again from its file: a hang would hold a worker for the tick
 * timeout once more, and the agent would be listed twice (quarantined, failed to load). It stays
 * listed as quarantined with its reason; igord start retries it.
 */
function refuseIfQuarantined(node: IgordNode, agentId: string): void {
  const q = node.quarantined.get(agentId);
  if (!q || !node.store.agent(agentId)) return;
  throw new IgordError(ErrorCode.AgentQuarantined, `agent "${agentId}" is quarantined (${q.code}: ${q.message}); igord start ${agentId} retries it`, {
    details: { agentId, code: q.code },
  });
}

/**
 * An id an agent arriving by migration holds (a reception under way, or a pending reception a crash
 * left, waiting for its source's word) is not a new agent's: created under it, the arriving agent
 * could never be stored (AGENT_EXISTS at every flip of a pending row whose source has retired it,
 * while its status query is answered "receiving"), and ran nowhere.
 */
function refuseIfArriving(node: IgordNode, agentId: string, source: string): void {
  const pending = node.store.pendingReception(agentId);
  if (!pending && !node.migration?.receiving.has(agentId)) return;
  const from = pending ? ` from ${pending.peer} (a pending reception, waiting for that node's word)` : "";
  throw new IgordError(ErrorCode.MigrationInProgress, `agent "${agentId}" is arriving here by migration${from}; ${source} does not create a new agent under its id`, {
    details: { agentId },
  });
}

/** A new agent: a fresh identity, a genesis lease and checkpoint, then its first placement. */
async function createAgent(node: IgordNode, prepared: PreparedAgent, budget: bigint): Promise<AgentView> {
  const identity = generateKey();
  const did = didFromPublicKey(identity.publicKey);
  const spec = agentSpec(prepared, identity);
  const meta = {
    wasmHash: prepared.wasmHash,
    wasmPath: resolve(prepared.wasmPath),
    capabilities: [...prepared.manifest.capabilities.keys()].sort(),
    did,
    identity,
    limits: prepared.manifest.resourceLimits,
    tickIntervalMs: prepared.manifest.tickIntervalMs,
  };
  const lease = genesisLease(node.leaseTiming, Date.now());
  const init = { tick: 0n, budget, price: node.config.price, state: null, lease };
  return node.scheduler.add(spec, meta, init, (genesis) =>
    node.checkpointer.genesis(genesis, {
      lease,
      agentId: prepared.agentId,
      did,
      wasmHash: prepared.wasmHash,
      wasmBytes: prepared.bytes,
      manifest: prepared.manifest.source,
      identity,
    }),
  );
}
