// Which resume failures quarantine a stored agent (shown with the check's name, nothing stored
// changed) and which are normal states or races.
import { ErrorCode } from "../errors.js";

export interface Quarantine {
  code: string;
  message: string;
  at: number;
}

/** Error codes that mean "the stored agent is not trustworthy": quarantine, never overwrite. */
export const QUARANTINE_CODES = new Set<string>([
  ErrorCode.LeaseHandoffUnresolved,
  ErrorCode.CheckpointTruncated,
  ErrorCode.CheckpointVersion,
  ErrorCode.CheckpointInvalid,
  ErrorCode.CheckpointWasmMismatch,
  ErrorCode.CheckpointSignature,
  ErrorCode.CheckpointForeignKey,
  ErrorCode.CheckpointChainBroken,
  ErrorCode.IdentityMissing,
  ErrorCode.IdentityCorrupt,
  ErrorCode.StoreCorrupt,
  ErrorCode.AgentResumeNotInverse,
]);

/** A resume failing with these is a normal state or a race, not something to show as quarantined. */
export const NOT_QUARANTINED_CODES = new Set<string>([ErrorCode.AgentExists, ErrorCode.LeaseRetired, ErrorCode.NodeStopping, ErrorCode.AgentNotFound, ErrorCode.AgentRemoved, ErrorCode.AgentStopped]);
