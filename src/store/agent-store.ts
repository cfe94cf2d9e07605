// Where agent checkpoints go. The scheduler writes through this interface only; the in-memory store
// serves the single-process runtime, and the SQLite store (durability issue) plugs in behind it.

export interface StoredCheckpoint {
  agentId: string;
  wasmHash: string;
  tick: bigint;
  budget: bigint;
  price: bigint;
  state: Uint8Array;
  /** Why it was written: "shutdown", "budget_exhausted", "failed", "periodic"… */
  reason: string;
  savedAtMs: number;
}

export interface AgentStore {
  latest(agentId: string): StoredCheckpoint | undefined;
  save(cp: StoredCheckpoint): void;
  close(): void;
}

export class MemoryAgentStore implements AgentStore {
  private readonly latestByAgent = new Map<string, StoredCheckpoint>();
  private readonly historyByAgent = new Map<string, StoredCheckpoint[]>();

  latest(agentId: string): StoredCheckpoint | undefined {
    return this.latestByAgent.get(agentId);
  }

  history(agentId: string): readonly StoredCheckpoint[] {
    return this.historyByAgent.get(agentId) ?? [];
  }

  save(cp: StoredCheckpoint): void {
    const copy = { ...cp, state: cp.state.slice() };
    this.latestByAgent.set(cp.agentId, copy);
    const h = this.historyByAgent.get(cp.agentId) ?? [];
    h.push(copy);
    this.historyByAgent.set(cp.agentId, h);
  }

  close(): void {}
}
