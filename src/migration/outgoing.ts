// Builds the package for one target from the source's store: the whole history for a node that
// never held the agent, or only what follows the head the target already holds (it comes back).
import type { Epoch } from "../authority/lease.js";
import { ErrorCode, IgordError } from "../errors.js";
import { encodeIdentityFile } from "../identity/keys.js";
import type { AgentRow, CheckpointRow, SqliteStore, StoredSegment } from "../store/sqlite-store.js";
import { parseCheckpoint } from "../checkpoint/codec.js";
import { hex } from "../hash/bytes.js";
import { encodePackage } from "./package.js";
import { sealOpenRuns } from "../replay/run-seal.js";

export interface OutgoingPackageSpec {
  agentId: string;
  /** The agent's row as the migration already read it (else read here). */
  row?: AgentRow;
  epoch: Epoch;
  /** Hex hash of the head checkpoint being handed off. */
  checkpointHash: string;
  /** The target holds the module already: leave the WASM out. */
  haveWasm: boolean;
  /** The target's head for this agent (it held it before), or null. */
  baseHash: string | null;
  /** Resumed after an interruption and handed off before a tick told it (scheduler handedOffUntold). */
  interrupted?: boolean;
}

/**
 * The modules other than the current one that recorded the shipped segments (the window spans a code
 * upgrade): a segment was recorded by the module its closing checkpoint names. The target replays
 * each segment with its own module, so they travel too (counted in the package's size limit).
 */
function earlierModules(store: SqliteStore, agentId: string, current: string, segments: readonly StoredSegment[], history: readonly CheckpointRow[]): { hash: string; bytes: Uint8Array }[] {
  // A shipped segment's closing checkpoint is in the shipped history (both follow the base): found
  // there, not looked up by hash one segment at a time (the store has no index by hash).
  const shipped = new Map(history.map((c) => [hex(c.hash), c]));
  const hashes = new Set<string>();
  for (const s of segments) {
    const closing = shipped.get(hex(s.checkpointHash)) ?? store.checkpointByHash(agentId, s.checkpointHash);
    const hash = closing ? hex(parseCheckpoint(closing.blob).wasmHash) : current;
    if (hash !== current) hashes.add(hash);
  }
  return [...hashes].map((hash) => {
    const bytes = store.wasm(hash);
    if (!bytes) throw new IgordError(ErrorCode.StoreError, `WASM ${hash} that recorded part of "${agentId}"'s replay window is missing from the store`);
    return { hash, bytes };
  });
}

/** The package's lastTickAt: left out when unknown (the field is optional on the wire). */
function optionalTickAt(at: number | null): { lastTickAt?: number } {
  return at === null ? {} : { lastTickAt: at };
}

export function buildOutgoingPackage(store: SqliteStore, o: OutgoingPackageSpec): Uint8Array {
  const { agentId } = o;
  const row = o.row ?? store.agent(agentId);
  if (!row) throw new IgordError(ErrorCode.AgentNotFound, `agent "${agentId}" is not in the store`);
  // A base this history does not contain means the target's copy diverged: send everything and
  // let the target refuse the lineage.
  const baseRow = o.baseHash ? store.checkpointByHash(agentId, Buffer.from(o.baseHash, "hex")) : undefined;
  const base = baseRow ? o.baseHash : null;
  // A node that never held the agent gets the history from its signed base when retention pruned it
  // (verified from there, so the first hop costs what the kept history costs, not the whole past).
  const signedBase = baseRow ? undefined : store.historyBase(agentId);
  const baseTick = baseRow?.tick ?? signedBase?.baseTick ?? -1n;
  const history = [...store.history(agentId, baseRow?.seq ?? 0n)];
  const wasm = o.haveWasm ? null : store.wasm(row.wasmHash);
  // The agent's open run of segments is sealed first: every segment leaves sealed (replay/run-seal.ts).
  sealOpenRuns(store, agentId);
  const segments = store.eventSegments(agentId, baseTick);
  if (!o.haveWasm && !wasm) throw new IgordError(ErrorCode.StoreError, `WASM ${row.wasmHash} of "${agentId}" is missing from the store`);
  return encodePackage({
    agentId,
    did: row.did,
    manifest: row.manifest,
    wasmHash: row.wasmHash,
    wasm: wasm ?? null,
    identity: encodeIdentityFile(store.identity(agentId)),
    epoch: o.epoch,
    checkpointHash: o.checkpointHash,
    baseHash: base,
    historyBase: signedBase ?? null,
    history: history.map((c) => c.blob),
    overrides: store.lineageEvents(agentId),
    receipts: store.receipts(agentId, baseTick).map((r) => r.blob),
    segments,
    modules: earlierModules(store, agentId, row.wasmHash, segments, history),
    ...optionalTickAt(store.headTickAt(agentId)),
    ...(o.interrupted === true ? { interrupted: true } : {}),
  });
}
