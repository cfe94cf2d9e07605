// Builds the package for one target from the source's store: the whole history for a node that
// never held the agent, or only what follows the head the target already holds (it comes back).
import type { Epoch } from "../authority/lease.js";
import { ErrorCode, IgordError } from "../errors.js";
import { encodeIdentityFile } from "../identity/keys.js";
import type { SqliteStore } from "../store/sqlite-store.js";
import { encodePackage } from "./package.js";

export interface OutgoingPackageSpec {
  agentId: string;
  epoch: Epoch;
  /** Hex hash of the head checkpoint being handed off. */
  checkpointHash: string;
  /** The target holds the module already: leave the WASM out. */
  haveWasm: boolean;
  /** The target's head for this agent (it held it before), or null. */
  baseHash: string | null;
}

export function buildOutgoingPackage(store: SqliteStore, o: OutgoingPackageSpec): Uint8Array {
  const { agentId } = o;
  const row = store.agent(agentId);
  if (!row) throw new IgordError(ErrorCode.AgentNotFound, `agent "${agentId}" is not in the store`);
  // A base this history does not contain means the target's copy diverged: send everything and
  // let the target refuse the lineage.
  const baseRow = o.baseHash ? store.checkpointByHash(agentId, Buffer.from(o.baseHash, "hex")) : undefined;
  const base = baseRow ? o.baseHash : null;
  const baseTick = baseRow?.tick ?? -1n;
  const history = [...store.history(agentId, baseRow?.seq ?? 0n)];
  const wasm = o.haveWasm ? null : store.wasm(row.wasmHash);
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
    history: history.map((c) => c.blob),
    overrides: store.lineageEvents(agentId),
    receipts: store.receipts(agentId, baseTick).map((r) => r.blob),
    segments: store.eventSegments(agentId, baseTick),
  });
}
