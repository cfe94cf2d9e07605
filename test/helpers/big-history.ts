// A long-lived agent's history, written fast through the daemon's own modules (the Checkpointer
// and the store) instead of ticking for hours: every checkpoint signed by the agent's key and
// hash-chained, every tick's event log in a signed segment sealed in runs, receipts on an
// interval, as the daemon writes them. The agent is a real module (a 4-byte tick counter, no
// hostcalls), so `igord verify --replay` re-executes the history and confirms every checkpoint.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { didFromPublicKey } from "../../src/identity/did.js";
import { type Ed25519Key, generateKey } from "../../src/identity/keys.js";
import { sha256, sha256Hex } from "../../src/hash/bytes.js";
import type { Lease } from "../../src/authority/lease.js";
import { type CheckpointSubject, Checkpointer } from "../../src/scheduler/checkpointer.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { watAgent, wat2wasm } from "./wat.js";

const LEASE: Lease = { state: "ACTIVE_OWNER", epoch: { major: 0n, generation: 0n }, expiresAtMs: null, handoff: null };
/** Checkpoints handed to the group commit before their promises are awaited. */
const IN_FLIGHT = 512;

/** The agent's state after `tick` ticks: its counter, little-endian. */
function counterState(tick: bigint): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, Number(tick), true);
  return b;
}

export interface LongHistory {
  agentId: string;
  dataDir: string;
  dbPath: string;
  /** The head's tick. */
  tick: bigint;
  /** SHA-256 of the agent's module, hex. */
  wasmHash: string;
}

/** Budget of the agent at genesis; each tick costs 10 µ¢. */
const GENESIS_BUDGET = 10n ** 15n;

/**
 * What the daemon checkpoints of the agent after `tick` ticks (its state, budget and lease), with
 * the logs of `ticks` (each tick reads nothing; its post-tick hash is its state's).
 */
export function longHistorySubject(h: Pick<LongHistory, "agentId" | "wasmHash">, identity: Ed25519Key, tick: bigint, ticks: readonly bigint[] = []): CheckpointSubject {
  return {
    agentId: h.agentId,
    tick,
    budget: GENESIS_BUDGET - 10n * tick,
    price: 1000n,
    state: counterState(tick),
    wasmHash: h.wasmHash,
    identity,
    lease: LEASE,
    logs: ticks.map((t) => ({ tick: t, entries: [], postHash: sha256(counterState(t)) })),
  };
}

/**
 * A data dir (created) whose database holds agent `agentId` with `checkpoints` checkpoints after its
 * genesis, `ticksPerCheckpoint` ticks each (every tick's empty log kept: no retention).
 */
export async function writeLongHistory(dataDir: string, checkpoints: number, o: { agentId?: string; ticksPerCheckpoint?: number } = {}): Promise<LongHistory> {
  const agentId = o.agentId ?? "old";
  const per = BigInt(o.ticksPerCheckpoint ?? 1);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const wasm = await wat2wasm(watAgent());
  const wasmHash = sha256Hex(wasm);
  const dbPath = join(dataDir, DB_FILE);
  const store = SqliteStore.open(dbPath, { sync: "normal" });
  let tick = 0n;
  try {
    // A receipt a minute, as --receipt-interval's default: a few in a run this fast.
    const cp = new Checkpointer(store, store.nodeKey(), 60_000, null, 0);
    const identity = generateKey();
    const h = { agentId, wasmHash };
    cp.genesis(longHistorySubject(h, identity, 0n), { agentId, did: didFromPublicKey(identity.publicKey), wasmHash, wasmBytes: wasm, manifest: "{}", identity, lease: LEASE });
    let pending: Promise<unknown>[] = [];
    for (let i = 0; i < checkpoints; i++) {
      const ticks: bigint[] = [];
      for (let k = 0n; k < per; k++) ticks.push(++tick);
      cp.addCost(agentId, 10n * per);
      pending.push(cp.checkpoint({ ...longHistorySubject(h, identity, tick, ticks), tickAt: Date.now() }, "periodic", "active", null));
      if (pending.length >= IN_FLIGHT) {
        await Promise.all(pending);
        pending = [];
      }
    }
    await Promise.all(pending);
    // Stopping: the receipt range closes at the head.
    await cp.checkpoint(longHistorySubject(h, identity, tick), "shutdown", "active", null);
  } finally {
    store.close();
  }
  return { agentId, dataDir, dbPath, tick, wasmHash };
}
