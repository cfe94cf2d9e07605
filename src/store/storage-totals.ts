// Each agent's stored bytes (checkpoint blobs, event-log segments and its outbox's messages: what a
// manifest's max_storage_bytes bounds), kept by the connection that commits its checkpoints as a running
// total, so a commit does not sum the agent's history: with the default --history-retention (4,096
// checkpoints) and event-log retention the sum read thousands of rows per commit.
//
// The total lives in a TEMP table on this connection and TEMP triggers on the tables that hold the
// bytes keep it: every insert, delete and update of a checkpoint's blob or segment, and of an unlinked
// segment, made on this connection moves it, whichever code path wrote (append, history pruning,
// event-log pruning by ticks or bytes, an arrival). The TEMP schema is part of the connection's
// transactions, so a rolled-back batch or savepoint takes its changes back with it. Writes by other
// connections are not seen by the triggers: the owner forgets every total when another connection
// may have changed what is stored (`forget`), and the next commit sums the agent afresh.
//
// Only agents with a limit are kept: the table holds a row per such agent, and the triggers are made
// on first use, so a node with no limited agent pays nothing on its commit path.
import type Database from "better-sqlite3";
import { keyed } from "./checkpoint-keys.js";
import { OUTBOX_MESSAGE_OVERHEAD_BYTES } from "./tick-records.js";

/** Bytes of a checkpoints row: its state blob and its linked segment's (schema 11: in the row). */
const ROW_BYTES = (r: "NEW" | "OLD"): string => `length(${r}.blob) + COALESCE(length(${r}.seg_blob), 0) + COALESCE(length(${r}.seg_post_hashes), 0)`;
/** Bytes of an unlinked segment (event_log_segments rows with id < 0; schema 11 keeps linked ones in rows). */
const SEGMENT_BYTES = (r: "NEW" | "OLD"): string => `length(${r}.blob) + length(${r}.post_hashes)`;
/** Bytes an outbox row counts: the message and the row's overhead. */
const MESSAGE_BYTES = (r: "NEW" | "OLD"): string => `length(${r}.payload) + ${OUTBOX_MESSAGE_OVERHEAD_BYTES}`;
const move = (agent: string, delta: string): string => `UPDATE temp.storage_totals SET bytes = bytes + (${delta}) WHERE agent_id = ${agent};`;

const SCHEMA = `
  CREATE TEMP TABLE IF NOT EXISTS storage_totals (agent_id TEXT PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TEMP TRIGGER IF NOT EXISTS storage_totals_checkpoint_insert AFTER INSERT ON main.checkpoints
    BEGIN ${move("NEW.agent_id", ROW_BYTES("NEW"))} END;
  CREATE TEMP TRIGGER IF NOT EXISTS storage_totals_checkpoint_delete AFTER DELETE ON main.checkpoints
    BEGIN ${move("OLD.agent_id", `-(${ROW_BYTES("OLD")})`)} END;
  CREATE TEMP TRIGGER IF NOT EXISTS storage_totals_checkpoint_update AFTER UPDATE OF agent_id, blob, seg_blob, seg_post_hashes ON main.checkpoints
    BEGIN ${move("OLD.agent_id", `-(${ROW_BYTES("OLD")})`)} ${move("NEW.agent_id", ROW_BYTES("NEW"))} END;
  CREATE TEMP TRIGGER IF NOT EXISTS storage_totals_segment_insert AFTER INSERT ON main.event_log_segments WHEN NEW.id < 0
    BEGIN ${move("NEW.agent_id", SEGMENT_BYTES("NEW"))} END;
  CREATE TEMP TRIGGER IF NOT EXISTS storage_totals_segment_delete AFTER DELETE ON main.event_log_segments WHEN OLD.id < 0
    BEGIN ${move("OLD.agent_id", `-(${SEGMENT_BYTES("OLD")})`)} END;
  CREATE TEMP TRIGGER IF NOT EXISTS storage_totals_outbox_insert AFTER INSERT ON main.outbox
    BEGIN ${move("NEW.agent_id", MESSAGE_BYTES("NEW"))} END;
  CREATE TEMP TRIGGER IF NOT EXISTS storage_totals_outbox_delete AFTER DELETE ON main.outbox
    BEGIN ${move("OLD.agent_id", `-(${MESSAGE_BYTES("OLD")})`)} END;
  CREATE TEMP TRIGGER IF NOT EXISTS storage_totals_outbox_update AFTER UPDATE OF agent_id, payload ON main.outbox
    BEGIN ${move("OLD.agent_id", `-(${MESSAGE_BYTES("OLD")})`)} ${move("NEW.agent_id", MESSAGE_BYTES("NEW"))} END;
  CREATE TEMP TRIGGER IF NOT EXISTS storage_totals_segment_update AFTER UPDATE OF id, agent_id, blob, post_hashes ON main.event_log_segments
    BEGIN
      UPDATE temp.storage_totals SET bytes = bytes - (${SEGMENT_BYTES("OLD")}) WHERE agent_id = OLD.agent_id AND OLD.id < 0;
      UPDATE temp.storage_totals SET bytes = bytes + (${SEGMENT_BYTES("NEW")}) WHERE agent_id = NEW.agent_id AND NEW.id < 0;
    END;
`;

/** An agent's stored bytes as the triggers count them: every checkpoints row, unlinked segment and outbox message. */
const SUM = `SELECT (SELECT COALESCE(SUM(n), 0) FROM (${keyed("length(c.blob) + COALESCE(length(c.seg_blob), 0) + COALESCE(length(c.seg_post_hashes), 0) AS n", "k.agent_id = @agent")}))
  + (SELECT COALESCE(SUM(length(blob) + length(post_hashes)), 0) FROM main.event_log_segments WHERE id < 0 AND agent_id = @agent)
  + (SELECT COALESCE(SUM(length(payload) + ${OUTBOX_MESSAGE_OVERHEAD_BYTES}), 0) FROM main.outbox WHERE agent_id = @agent)`;

/** The running totals of one connection (a store on schema 11 or later, writable). */
export class StorageTotals {
  private made: Database.Statement | null = null;
  private read: Database.Statement | null = null;
  private insert: Database.Statement | null = null;
  private sum: Database.Statement | null = null;

  constructor(private readonly db: Database.Database) {}

  /**
   * The agent's stored bytes, as this connection's writes have left them: summed the first time (and
   * after `forget`), then kept by the triggers. Called inside the commit's write transaction, so no
   * other connection writes between the sum and its use.
   */
  bytes(agentId: string): number {
    // Made inside a transaction, the table and its triggers go together if it rolls back: made again then.
    if (!this.exists()) {
      this.db.exec(SCHEMA);
      this.read = this.db.prepare("SELECT bytes FROM temp.storage_totals WHERE agent_id = ?").pluck();
      this.insert = this.db.prepare("INSERT INTO temp.storage_totals (agent_id, bytes) VALUES (?, ?)");
      this.sum = this.db.prepare(SUM).pluck();
    }
    const known = this.read!.get(agentId) as number | undefined;
    if (known !== undefined) return known;
    const n = this.sum!.get({ agent: agentId }) as number;
    this.insert!.run(agentId, n);
    return n;
  }

  /** Forgets every total (another connection may have changed what is stored, or a transaction rolled back): each is summed again at its next use. */
  forget(): void {
    if (this.made && this.exists()) this.db.exec("DELETE FROM temp.storage_totals");
  }

  private exists(): boolean {
    this.made ??= this.db.prepare("SELECT COUNT(*) FROM temp.sqlite_master WHERE type = 'table' AND name = 'storage_totals'").pluck();
    return (this.made.get() as number) > 0;
  }
}
