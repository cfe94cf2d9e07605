// How an agent comes to be stored here: created with its genesis checkpoint, imported from files,
// or received by migration. Each is one transaction across every table family below (agent,
// identity, module, history, lineage, segments, receipts, lease, migration record), so it sits
// on top of them all.
import type { HistoryBase } from "../checkpoint/history-base.js";
import { diskFullError, ErrorCode, IgordError } from "../errors.js";
import { keyIds } from "./checkpoint-keys.js";
import { HistoryRecords } from "./history-records.js";
import { storeError } from "./rows.js";
import type { CheckpointCommit, IncomingAgent, LineageEvent, NewAgent, ReceiptRow, StoredSegment } from "./types.js";

export abstract class AgentArrival extends HistoryRecords {
  /** Creates the agent, its identity and its genesis checkpoint in one transaction. */
  createAgent(a: NewAgent, genesis: CheckpointCommit): void {
    try {
      this.db.transaction(() => {
        if (this.agent(a.agentId)) throw new IgordError(ErrorCode.AgentExists, `agent "${a.agentId}" already exists in ${this.path}`);
        this.insertAgentRows(a);
        const err = this.insertCheckpoint(genesis);
        if (err) throw err;
      }).immediate();
    } catch (e) {
      throw diskFullError(e, `cannot store agent "${a.agentId}" in ${this.path}`) ?? e;
    }
  }

  /**
   * Brings an agent in from elsewhere (an export, or a checkpoint given to `igord resume`): module,
   * identity, and its history in chain order, in one transaction. An agent id or DID this store
   * already knows is refused: nothing stored is ever overwritten.
   */
  importAgent(
    a: NewAgent,
    history: readonly CheckpointCommit[],
    overrides: readonly LineageEvent[],
    segments: readonly StoredSegment[] = [],
    /** Where a pruned history starts, signed by the agent (checked by the caller against the oldest checkpoint). */
    historyBase?: HistoryBase,
    /** Earlier modules its checkpoints name (an upgraded agent's), each checked against its hash by the caller. */
    modules: readonly { hash: string; bytes: Uint8Array }[] = [],
    /** Its node execution receipts, oldest first, each checked by the caller (budget/receipt-check.ts). */
    receipts: readonly ReceiptRow[] = [],
  ): void {
    if (history.length === 0) throw storeError(`nothing to import for agent "${a.agentId}": no checkpoints`);
    try {
      this.db.transaction(() => {
        this.refuseKnown(a);
        this.insertAgentRows(a);
        this.insertHistory(a.agentId, history, segments);
        for (const e of overrides) this.addLineageEvent(a.agentId, e);
        if (historyBase) this.putHistoryBase(a.agentId, historyBase);
        for (const m of modules) this.putWasm(m.hash, m.bytes);
        for (const r of receipts) this.insertReceipt(a.agentId, new Uint8Array(32), r);
      }).immediate();
    } catch (e) {
      throw diskFullError(e, `cannot store agent "${a.agentId}" in ${this.path}`) ?? e;
    }
  }

  /**
   * Stores an agent received by migration, all or nothing: a new agent with its whole history, or
   * one this node retired earlier with the history since. The lease and the incoming migration
   * record commit in the same transaction; a refused write leaves nothing behind. Committed on
   * return, durable once `durable` resolves (its fsync runs off the main thread, durablyOffThread):
   * the target confirms, and runs the agent, only then.
   */
  receiveAgent(inc: IncomingAgent): { migrationId: number; durable: Promise<void> } {
    const a = inc.agent;
    const { value, durable } = this.durablyOffThread(() => {
      if (inc.previous) {
        const stale = this.staleLease(a.agentId, inc.previous, true);
        if (stale) throw stale;
        this.putWasm(a.wasmHash, a.wasmBytes);
        this.sql("UPDATE agents SET wasm_hash = ?, manifest = ?, status = 'active', reason = NULL, updated_at = ? WHERE agent_id = ?").run(
          a.wasmHash,
          a.manifest,
          Date.now(),
          a.agentId,
        );
        this.lastStatus.delete(a.agentId);
        if (inc.replacesHistory) this.dropRetiredHistory(a.agentId);
      } else {
        this.refuseKnown(a);
        this.insertAgentRows(a);
      }
      this.insertHistory(a.agentId, inc.history, inc.segments);
      for (const m of inc.modules ?? []) this.putWasm(m.hash, m.bytes);
      for (const e of inc.overrides) this.addLineageEvent(a.agentId, e);
      for (const r of inc.receipts) this.insertReceipt(a.agentId, new Uint8Array(32), r);
      if (inc.historyBase) this.putHistoryBase(a.agentId, inc.historyBase);
      const l = inc.lease;
      this.sql(
        "UPDATE agents SET lease_state = ?, epoch_major = ?, epoch_generation = ?, lease_expires_at = ?, handoff_target = NULL, handoff_checkpoint = NULL, updated_at = ? WHERE agent_id = ?",
      ).run(l.state, l.epoch.major, l.epoch.generation, l.expiresAtMs, Date.now(), a.agentId);
      return this.recordReceived(a.agentId, a.did, inc.migration);
    });
    return { migrationId: value, durable };
  }

  /**
   * Appends an arriving history in chain order, each checkpoint with the segment that closes it (by
   * hash and last tick) in its row: one INSERT each (schema 11). A segment takes its checkpoint once;
   * a second one for the same checkpoint, or one whose checkpoint is not in the history (a package
   * ships the segments after its base, an export those of its checkpoints), is stored unlinked.
   */
  private insertHistory(agentId: string, history: readonly CheckpointCommit[], segments: readonly StoredSegment[]): void {
    const key = (hash: Uint8Array, tick: bigint): string => `${Buffer.from(hash).toString("hex")}:${tick}`;
    const closing = new Map<string, StoredSegment>();
    for (const e of segments) {
      const k = key(e.checkpointHash, e.toTick);
      if (!closing.has(k)) closing.set(k, e);
    }
    const placed = new Set<StoredSegment>();
    for (const c of history) {
      const e = closing.get(key(c.hash, c.tick));
      const err = this.insertCheckpoint(c, e);
      if (err) throw err;
      if (e) placed.add(e);
    }
    for (const e of segments) if (!placed.has(e)) this.insertSegment(agentId, e.checkpointHash, e);
  }

  /**
   * A retired copy's history, superseded by its owner's pruned one (IncomingAgent.replacesHistory):
   * what a segment read, a chain walk or a floor would otherwise find of it. In the reception's
   * transaction, so no reader ever sees the agent without a history.
   */
  private dropRetiredHistory(agentId: string): void {
    // Its linked segments go with its checkpoints' rows (schema 11); the unlinked ones here.
    this.sql("DELETE FROM event_log_segments WHERE id < 0 AND agent_id = ?").run(agentId);
    this.sql("DELETE FROM event_log_floors WHERE agent_id = ?").run(agentId);
    this.sql("DELETE FROM event_log_runs WHERE agent_id = ?").run(agentId);
    this.sql(`DELETE FROM checkpoints WHERE id IN (${keyIds("k.agent_id = @agent")})`).run({ agent: agentId });
    this.sql("DELETE FROM history_bases WHERE agent_id = ?").run(agentId);
    this.sql("DELETE FROM lineage_events WHERE agent_id = ?").run(agentId);
  }

  /** An agent id or DID this store already knows is refused: nothing stored is ever overwritten. */
  private refuseKnown(a: NewAgent): void {
    if (this.agent(a.agentId)) throw new IgordError(ErrorCode.AgentExists, `agent "${a.agentId}" already exists in ${this.path}`);
    const sameDid = this.sql("SELECT agent_id FROM agents WHERE did = ?").get(a.did) as { agent_id: string } | undefined;
    if (sameDid) throw new IgordError(ErrorCode.AgentExists, `${a.did} already exists in ${this.path} as agent "${sameDid.agent_id}"`);
  }
}
