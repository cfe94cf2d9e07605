// The store's commit for a checkpoint blob brought in from elsewhere (an import, a resume, a
// migration). It lives with the store, which depends on the checkpoint domain, not the reverse.
import { parseCheckpoint } from "../checkpoint/codec.js";
import { checkpointHash } from "../checkpoint/lineage.js";
import type { CheckpointCommit } from "./types.js";

export function commitFromBlob(agentId: string, blob: Uint8Array, reason: string): CheckpointCommit {
  const cp = parseCheckpoint(blob);
  return {
    agentId,
    tick: cp.tick,
    budget: cp.budget,
    hash: checkpointHash(blob),
    prevHash: cp.prevHash,
    blob,
    reason,
    receipt: null,
    status: "active",
    statusReason: null,
  };
}
