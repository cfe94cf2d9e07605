// A .wasm in the agents dir that is not the code its stored agent runs: not loaded, reported with
// the command that would switch the agent to it (igord upgrade).
import { resolve } from "node:path";
import { ErrorCode, IgordError } from "../errors.js";

export interface StaleBinary {
  path: string;
  wasmHash: string;
  /** What the operator runs to switch the agent to it. */
  command: string;
}

export function staleBinary(agentId: string, storedWasm: string, fileWasm: string, path: string, upgradesAgentsDir = false): IgordError {
  const command = `igord upgrade ${agentId} --wasm ${resolve(path)}`;
  // --upgrade-agents-dir takes the file of a running or failed agent only: a stopped one is the operator's to start.
  const or = upgradesAgentsDir ? `, then igord start ${agentId} (--upgrade-agents-dir upgrades only a running or failed agent)` : " (or start the daemon with --upgrade-agents-dir true)";
  return new IgordError(
    ErrorCode.AgentStaleBinary,
    `stale binary: ${path} (WASM ${fileWasm.slice(0, 16)}…) is not the code agent "${agentId}" runs (${storedWasm.slice(0, 16)}…); it is not loaded. To switch the agent to it: ${command}${or}`,
    { details: { agentId, storedWasm, fileWasm, command } },
  );
}
