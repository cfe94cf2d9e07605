// Turns an agent's committed state into a signed v0x04 checkpoint and a node-signed receipt, and
// hands both to the store's group commit. Keeps each agent's chain head in memory so consecutive
// checkpoints link even before the previous one is durable. A state with no tick since the head is
// never signed again (igor broke its own chain that way).
import { encodeReceipt, receiptSigningBytes } from "../budget/receipt.js";
import { encodeCheckpoint } from "../checkpoint/codec.js";
import { checkpointHash, GENESIS_PREV_HASH, signCheckpoint } from "../checkpoint/lineage.js";
import { ErrorCode, IgordError } from "../errors.js";
import { type Ed25519Key, signBytes } from "../identity/keys.js";
import type { AgentStatus, CheckpointCommit, NewAgent, ReceiptRow, SqliteStore } from "../store/sqlite-store.js";

export interface CheckpointSubject {
  agentId: string;
  tick: bigint;
  budget: bigint;
  price: bigint;
  state: Uint8Array;
  /** SHA-256 of the agent's WASM, hex. */
  wasmHash: string;
  identity: Ed25519Key;
}

interface Head {
  hash: Uint8Array;
  tick: bigint;
  /** Cost of the ticks after `tick` not yet covered by a receipt. */
  costSince: bigint;
  status: AgentStatus;
  statusReason: string | null;
}

export interface NodeSigner {
  key: Ed25519Key;
  peerId: string;
}

export class Checkpointer {
  private readonly heads = new Map<string, Head>();

  constructor(
    private readonly store: SqliteStore,
    private readonly node: NodeSigner,
  ) {}

  get nodeId(): string {
    return this.node.peerId;
  }

  track(agentId: string, head: { hash: Uint8Array; tick: bigint }): void {
    this.heads.set(agentId, { hash: head.hash, tick: head.tick, costSince: 0n, status: "active", statusReason: null });
  }

  forget(agentId: string): void {
    this.heads.delete(agentId);
  }

  addCost(agentId: string, cost: bigint): void {
    const h = this.heads.get(agentId);
    if (h) h.costSince += cost;
  }

  private encode(s: CheckpointSubject, prevHash: Uint8Array): { blob: Uint8Array; hash: Uint8Array } {
    const blob = signCheckpoint(
      encodeCheckpoint(
        {
          budget: s.budget,
          price: s.price,
          tick: s.tick,
          wasmHash: Buffer.from(s.wasmHash, "hex"),
          epochMajor: 0n,
          epochGeneration: 0n,
          leaseExpiry: 0n,
          prevHash,
          publicKey: s.identity.publicKey,
        },
        s.state,
      ),
      s.identity,
    );
    return { blob, hash: checkpointHash(blob) };
  }

  private receipt(s: CheckpointSubject, from: bigint, cost: bigint): ReceiptRow {
    const body = {
      agentId: s.agentId,
      nodeId: this.node.peerId,
      tickStart: from,
      tickEnd: s.tick,
      cost,
      budgetAfter: s.budget,
      timestampNs: BigInt(Date.now()) * 1_000_000n,
    };
    const signature = signBytes(this.node.key, receiptSigningBytes(body));
    return { ...body, blob: encodeReceipt({ ...body, signature }) };
  }

  /** Creates a new agent with its genesis checkpoint (tick 0, prevHash zeros), synchronously. */
  genesis(s: CheckpointSubject, agent: NewAgent): void {
    const { blob, hash } = this.encode(s, GENESIS_PREV_HASH);
    this.store.createAgent(agent, {
      agentId: s.agentId,
      tick: s.tick,
      budget: s.budget,
      hash,
      prevHash: GENESIS_PREV_HASH,
      blob,
      reason: "genesis",
      receipt: null,
      status: "active",
      statusReason: null,
    });
    this.track(s.agentId, { hash, tick: s.tick });
  }

  /**
   * Writes a checkpoint of the agent's committed state, or only its status when no tick happened
   * since the last checkpoint. Resolves once durable.
   */
  async checkpoint(s: CheckpointSubject, reason: string, status: AgentStatus, statusReason: string | null): Promise<"written" | "unchanged"> {
    const h = this.heads.get(s.agentId);
    if (!h) throw new IgordError(ErrorCode.StoreError, `no checkpoint chain is tracked for agent "${s.agentId}"`);
    if (s.tick === h.tick) {
      if (status !== h.status || statusReason !== h.statusReason) {
        this.store.setStatus(s.agentId, status, statusReason);
        h.status = status;
        h.statusReason = statusReason;
      }
      return "unchanged";
    }
    if (s.tick < h.tick) {
      throw new IgordError(ErrorCode.CheckpointChainBroken, `agent "${s.agentId}" tick ${s.tick} is behind its last checkpoint (${h.tick})`);
    }
    const { blob, hash } = this.encode(s, h.hash);
    const commit: CheckpointCommit = {
      agentId: s.agentId,
      tick: s.tick,
      budget: s.budget,
      hash,
      prevHash: h.hash,
      blob,
      reason,
      receipt: this.receipt(s, h.tick + 1n, h.costSince),
      status,
      statusReason,
    };
    this.heads.set(s.agentId, { hash, tick: s.tick, costSince: 0n, status, statusReason });
    await this.store.enqueue(commit);
    return "written";
  }
}
