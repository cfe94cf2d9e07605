// A Checkpointer on a real store with one agent "a" at genesis (tick 0), and a tick's log to
// checkpoint: for tests of what the checkpoint path writes, without a node.
import { randomBytes } from "node:crypto";
import { didFromPublicKey, peerIdFromPublicKey } from "../../src/identity/did.js";
import { generateKey } from "../../src/identity/keys.js";
import { sha256Hex } from "../../src/hash/bytes.js";
import { HostcallId } from "../../src/hostcalls/registry.js";
import type { SignerPool } from "../../src/identity/signer-pool.js";
import { Checkpointer } from "../../src/scheduler/checkpointer.js";
import type { SqliteStore } from "../../src/store/sqlite-store.js";

/**
 * With `signer` and a `receiptIntervalMs` not yet elapsed, a periodic checkpoint goes as one object in
 * flight; `historyRetention` is the node's --history-retention (0: keep everything).
 */
export function agentOnCheckpointer(store: SqliteStore, opts: { signer?: SignerPool; receiptIntervalMs?: number; historyRetention?: number } = {}) {
  const nodeKey = generateKey();
  const cp = new Checkpointer(store, { key: nodeKey, peerId: peerIdFromPublicKey(nodeKey.publicKey) }, opts.receiptIntervalMs ?? 0, opts.signer ?? null, opts.historyRetention);
  const identity = generateKey();
  const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
  const base = { agentId: "a", budget: 100n, price: 1n, wasmHash: sha256Hex(wasm), identity };
  cp.genesis({ ...base, tick: 0n, state: new Uint8Array([0]) }, { agentId: "a", did: didFromPublicKey(identity.publicKey), wasmHash: base.wasmHash, wasmBytes: wasm, manifest: "{}", identity });
  return { cp, identity, base };
}

/** One tick's observations: its clock reading and a log line, with a random post-tick hash. */
export function tickLog(tick: bigint) {
  const clock = Buffer.alloc(8);
  clock.writeBigInt64LE(tick);
  return {
    tick,
    entries: [
      { id: HostcallId.clock_now, result: 0, payload: clock },
      { id: HostcallId.log_emit, result: 0, payload: Buffer.from(`tick ${tick}`) },
    ],
    postHash: randomBytes(32),
  };
}
