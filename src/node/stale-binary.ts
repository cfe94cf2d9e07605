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

/**
 * Why --upgrade-agents-dir did not take the file: it is off; the agent is not running or failed (a
 * stopped one is the operator's to start); or the file, found at start, holds code the agent ran
 * before (a rollback).
 */
export type NotTaken = "flag_off" | "not_running" | "rollback";

const ADVICE: Record<NotTaken, (agentId: string) => string> = {
  flag_off: () => " (or start the daemon with --upgrade-agents-dir true)",
  not_running: (agentId) => `, then igord start ${agentId} (--upgrade-agents-dir upgrades only a running or failed agent)`,
  rollback: () => " (it is code the agent ran before, found at start: --upgrade-agents-dir does not roll an agent back to it by itself)",
};

export function staleBinary(agentId: string, storedWasm: string, fileWasm: string, path: string, why: NotTaken): IgordError {
  const command = `igord upgrade ${agentId} --wasm ${resolve(path)}`;
  return new IgordError(
    ErrorCode.AgentStaleBinary,
    `stale binary: ${path} (WASM ${fileWasm.slice(0, 16)}…) is not the code agent "${agentId}" runs (${storedWasm.slice(0, 16)}…); it is not loaded. To switch the agent to it: ${command}${ADVICE[why](agentId)}`,
    { details: { agentId, storedWasm, fileWasm, command, why } },
  );
}
