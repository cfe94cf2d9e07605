// One error type for the whole daemon. Retry, rejection and reporting logic switch on `code`, never
// on message text; messages name the thing that is wrong.

export const ErrorCode = {
  ConfigInvalid: "CONFIG_INVALID",
  ManifestInvalid: "MANIFEST_INVALID",
  ManifestNotFound: "MANIFEST_NOT_FOUND",
  WasmNotFound: "WASM_NOT_FOUND",
  WasmMalformed: "WASM_MALFORMED",
  WasmMissingExport: "WASM_MISSING_EXPORT",
  WasmBadExport: "WASM_BAD_EXPORT",
  WasmMemoryLimit: "WASM_MEMORY_LIMIT",
  WasmTableLimit: "WASM_TABLE_LIMIT",
  WasmLink: "WASM_LINK",
  /** The module uses an instruction igord refuses: relaxed SIMD (results the CPU decides), or one it does not know. */
  WasmInstructionRefused: "WASM_INSTRUCTION_REFUSED",
  ImportRefused: "IMPORT_REFUSED",
  CapabilityNotGranted: "CAPABILITY_NOT_GRANTED",
  CapabilityNotOffered: "CAPABILITY_NOT_OFFERED",
  CapabilityUnknown: "CAPABILITY_UNKNOWN",
  AgentIdInvalid: "AGENT_ID_INVALID",
  AgentExists: "AGENT_EXISTS",
  AgentNotFound: "AGENT_NOT_FOUND",
  AgentTrap: "AGENT_TRAP",
  AgentAbort: "AGENT_ABORT",
  AgentBadState: "AGENT_BAD_STATE",
  /** The agent called WASI proc_exit: exit code 0 stops it cleanly, any other code fails it. */
  AgentExit: "AGENT_EXIT",
  TickTimeout: "TICK_TIMEOUT",
  WorkerCrashed: "WORKER_CRASHED",
  BudgetExhausted: "BUDGET_EXHAUSTED",
  ControlUnauthorized: "CONTROL_UNAUTHORIZED",
  ControlUnavailable: "CONTROL_UNAVAILABLE",
  /** A control request whose Host header does not name the control endpoint (DNS rebinding): answered 403. */
  ControlHostRefused: "CONTROL_HOST_REFUSED",
  /** A control request that cannot be understood: bad JSON, bad %-escapes, numbers out of range (HTTP 400). */
  ControlBadRequest: "CONTROL_BAD_REQUEST",
  ControlBodyTooLarge: "CONTROL_BODY_TOO_LARGE",
  ControlMethodNotAllowed: "CONTROL_METHOD_NOT_ALLOWED",
  /** An agent's HTTP request would connect to a non-public address the operator has not opened (--http-private-networks); the agent gets -3. */
  HttpDestinationRefused: "HTTP_DESTINATION_REFUSED",
  NodeStopping: "NODE_STOPPING",
  /** The node stopped, but some agents' last state could not be checkpointed (they resume from an earlier one). */
  ShutdownCheckpointFailed: "SHUTDOWN_CHECKPOINT_FAILED",
  CheckpointTruncated: "CHECKPOINT_TRUNCATED",
  CheckpointVersion: "CHECKPOINT_VERSION",
  CheckpointInvalid: "CHECKPOINT_INVALID",
  CheckpointWasmMismatch: "CHECKPOINT_WASM_MISMATCH",
  CheckpointSignature: "CHECKPOINT_SIGNATURE",
  CheckpointForeignKey: "CHECKPOINT_FOREIGN_KEY",
  CheckpointChainBroken: "CHECKPOINT_CHAIN_BROKEN",
  IdentityMissing: "IDENTITY_MISSING",
  IdentityCorrupt: "IDENTITY_CORRUPT",
  StoreError: "STORE_ERROR",
  StoreSchema: "STORE_SCHEMA",
  /** The database failed its integrity check (PRAGMA quick_check) or a row could not be read. */
  StoreCorrupt: "STORE_CORRUPT",
  /** The database file was deleted or replaced while the node held it open (written back to its path as the node stops). */
  StoreRemoved: "STORE_REMOVED",
  /** A write found no room (SQLite's SQLITE_FULL, the OS's ENOSPC): the message names the file. */
  DiskFull: "DISK_FULL",
  /** Another live process runs agents from this data dir. */
  DataDirLocked: "DATA_DIR_LOCKED",
  LeaseTransition: "LEASE_TRANSITION",
  LeaseStale: "LEASE_STALE",
  LeaseHandoffUnresolved: "LEASE_HANDOFF_UNRESOLVED",
  LeaseRetired: "LEASE_RETIRED",
  ReplayHostcallMismatch: "REPLAY_HOSTCALL_MISMATCH",
  ReplayPayloadMismatch: "REPLAY_PAYLOAD_MISMATCH",
  ReplayLogExhausted: "REPLAY_LOG_EXHAUSTED",
  ReplayUnconsumed: "REPLAY_UNCONSUMED",
  ReplayStateMismatch: "REPLAY_STATE_MISMATCH",
  ReplayWindowTooLarge: "REPLAY_WINDOW_TOO_LARGE",
  /** A replay ran past the deadline its caller gave it (checked between ticks). */
  ReplayDeadline: "REPLAY_DEADLINE",
  P2pUnavailable: "P2P_UNAVAILABLE",
  PeerAddressInvalid: "PEER_ADDRESS_INVALID",
  PeerUnknown: "PEER_UNKNOWN",
  MigrationDialFailed: "MIGRATION_DIAL_FAILED",
  MigrationTimeout: "MIGRATION_TIMEOUT",
  MigrationStreamClosed: "MIGRATION_STREAM_CLOSED",
  MigrationFrameInvalid: "MIGRATION_FRAME_INVALID",
  MigrationFrameTooLarge: "MIGRATION_FRAME_TOO_LARGE",
  MigrationPackageTooLarge: "MIGRATION_PACKAGE_TOO_LARGE",
  MigrationUntrustedPeer: "MIGRATION_UNTRUSTED_PEER",
  MigrationNodeFull: "MIGRATION_NODE_FULL",
  MigrationWasmHash: "MIGRATION_WASM_HASH",
  MigrationPolicyDisabled: "MIGRATION_POLICY_DISABLED",
  MigrationPriceTooHigh: "MIGRATION_PRICE_TOO_HIGH",
  MigrationBudgetTooHigh: "MIGRATION_BUDGET_TOO_HIGH",
  MigrationLineage: "MIGRATION_LINEAGE",
  MigrationOwnedHere: "MIGRATION_OWNED_HERE",
  MigrationStale: "MIGRATION_STALE",
  /** Admission's replay of a package's window did not finish within its share of --migration-timeout. */
  MigrationReplayTimeout: "MIGRATION_REPLAY_TIMEOUT",
  MigrationBusy: "MIGRATION_BUSY",
  MigrationAmbiguous: "MIGRATION_AMBIGUOUS",
  MigrationNoCandidates: "MIGRATION_NO_CANDIDATES",
  MigrationInProgress: "MIGRATION_IN_PROGRESS",
  /** A refusal whose code this node does not know (a newer peer); the peer's code is in details. */
  MigrationRefused: "MIGRATION_REFUSED",
  AgentNotRunning: "AGENT_NOT_RUNNING",
  /** An event-log segment whose signature does not bind it to the agent's signed lineage. */
  EventLogForged: "EVENT_LOG_FORGED",
  /** A tick log or event-log segment whose bytes do not decode (cut short, trailing bytes, counts past their bounds). */
  EventLogInvalid: "EVENT_LOG_INVALID",
  /** A node execution receipt that is unreadable, not signed by the node it names, or for ticks its history does not hold; or one this node would sign with a negative cost. */
  ReceiptInvalid: "RECEIPT_INVALID",
  /** An export or history folder holds more than the CLI reads into memory (its event-log segments, checkpoints or modules past their *_TOTAL_MAX_BYTES). */
  ExportTooLarge: "EXPORT_TOO_LARGE",
  /** Something (a file, a link) appeared where `igord export` was about to create a file or folder in the folder it checked was empty. */
  ExportPathTaken: "EXPORT_PATH_TAKEN",
  /** A folder inside an export (history/, history/<agent>/, events/, modules/) is a symbolic link or not a folder: never followed. */
  ExportFolderInvalid: "EXPORT_FOLDER_INVALID",
  /** A tick's event log grew past MAX_TICK_EVENT_BYTES. */
  TickLogTooLarge: "TICK_LOG_TOO_LARGE",
  /** The agent is at MAX_TICK, the largest tick a node stores: it runs no further tick. */
  TickLimit: "TICK_LIMIT",
  /** A tick ran longer than the manifest's resource_limits.max_cpu_millis. */
  TickCpuExceeded: "TICK_CPU_EXCEEDED",
  /** An agent's stored bytes (history, event logs, outbox) would pass the manifest's resource_limits.max_storage_bytes. */
  StorageLimit: "STORAGE_LIMIT",
  /** agent_checkpoint after agent_resume(state) in a fresh instance is not that state (a replay rule). */
  AgentResumeNotInverse: "AGENT_RESUME_NOT_INVERSE",
  /** The operator stopped the agent (igord stop); only igord start runs it again. */
  AgentStopped: "AGENT_STOPPED",
  /** A stored agent this node could not resume (quarantined with the reason); its file does not retry it, igord start does. */
  AgentQuarantined: "AGENT_QUARANTINED",
  /** The operator removed the agent (igord remove): its history is kept, it never runs here again. */
  AgentRemoved: "AGENT_REMOVED",
  /** igord upgrade refused the new module (it does not load, or breaks a replay rule); the old code runs on. */
  UpgradeRefused: "UPGRADE_REFUSED",
  /** A .wasm whose agent is stored with other code: not run; igord upgrade switches to it. */
  AgentStaleBinary: "AGENT_STALE_BINARY",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class IgordError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "IgordError";
    this.code = code;
    this.details = options.details ?? {};
  }

  /** Plain-data form that survives postMessage and JSON. */
  toJSON(): SerializedError {
    return { code: this.code, message: this.message, details: { ...this.details } };
  }

  static fromJSON(e: SerializedError): IgordError {
    return new IgordError(e.code, e.message, { details: e.details });
  }
}

export interface SerializedError {
  code: ErrorCode;
  message: string;
  details: Record<string, unknown>;
}

export function isIgordError(e: unknown, code?: ErrorCode): e is IgordError {
  return e instanceof IgordError && (code === undefined || e.code === code);
}

/**
 * SQLite's or the OS's word that there is no room: SQLITE_FULL, ENOSPC, or SQLITE_IOERR_SHMSIZE (the
 * WAL's shared-memory file could not be extended, which on a disk with room for the database alone is
 * the first write to fail). DISK_FULL naming `what`; else null.
 */
export function diskFullError(e: unknown, what: string): IgordError | null {
  const code = (e as { code?: unknown } | null)?.code;
  if (code !== "SQLITE_FULL" && code !== "ENOSPC" && code !== "SQLITE_IOERR_SHMSIZE") return null;
  return new IgordError(ErrorCode.DiskFull, `${what}: the disk is full (${code})`, { cause: e });
}
