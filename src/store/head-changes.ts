// What the commit connection's known heads (history-records.ts, `heads`) rest on: a count, in the
// one row of `head_changes` (schema 12), of every write by another of igord's connections that
// changes what a checkpoint's commit reads — an agent's lease state or epoch major (or a generation
// lowered), its status or reason, an agent row added or removed, a checkpoint row added, removed or
// re-keyed, and any change to an agent's stored bytes (a checkpoint's blob or segment, an unlinked
// segment), on which the commit connection's running storage totals rest (store/storage-totals.ts). A lease renewal (generation + 1, a new expiry) is not counted: a checkpoint accepts a
// renewed generation anyway, so the commit connection only reads the row again for a checkpoint
// that carries a generation newer than the one it knows. Renewals are ~33/s for 1,000 agents at the
// default 60-s lease; with any other connection's commit counted (`PRAGMA data_version`) they made
// the commit thread read every agent's row again every few commits.
//
// The triggers are TEMP: each writable connection but the commit connection creates its own when it
// opens, so the commit connection's own inserts pay for none. A writer that is not igord's store (the
// sqlite3 shell) counts nothing; its checkpoint appended at an agent's head still collides with the
// (agent_id, seq) key of the commit connection's next one, which rolls the batch back and reads
// every row again.

/** The trigger bodies' one statement. */
const COUNT = "UPDATE head_changes SET n = n + 1;";

/** Created on every writable connection of igord's store except the commit connection's. */
export const HEAD_CHANGE_TRIGGERS = `
  CREATE TEMP TRIGGER IF NOT EXISTS head_changes_agent_update AFTER UPDATE ON main.agents
    WHEN OLD.agent_id IS NOT NEW.agent_id OR OLD.lease_state IS NOT NEW.lease_state OR OLD.epoch_major IS NOT NEW.epoch_major
      OR NEW.epoch_generation < OLD.epoch_generation OR OLD.status IS NOT NEW.status OR OLD.reason IS NOT NEW.reason
    BEGIN ${COUNT} END;
  CREATE TEMP TRIGGER IF NOT EXISTS head_changes_agent_insert AFTER INSERT ON main.agents BEGIN ${COUNT} END;
  CREATE TEMP TRIGGER IF NOT EXISTS head_changes_agent_delete AFTER DELETE ON main.agents BEGIN ${COUNT} END;
  CREATE TEMP TRIGGER IF NOT EXISTS head_changes_checkpoint_insert AFTER INSERT ON main.checkpoints BEGIN ${COUNT} END;
  CREATE TEMP TRIGGER IF NOT EXISTS head_changes_checkpoint_delete AFTER DELETE ON main.checkpoints BEGIN ${COUNT} END;
  CREATE TEMP TRIGGER IF NOT EXISTS head_changes_checkpoint_update AFTER UPDATE OF agent_id, seq, hash, blob, seg_blob, seg_post_hashes ON main.checkpoints BEGIN ${COUNT} END;
  CREATE TEMP TRIGGER IF NOT EXISTS head_changes_segment_insert AFTER INSERT ON main.event_log_segments BEGIN ${COUNT} END;
  CREATE TEMP TRIGGER IF NOT EXISTS head_changes_segment_delete AFTER DELETE ON main.event_log_segments BEGIN ${COUNT} END;
  CREATE TEMP TRIGGER IF NOT EXISTS head_changes_segment_update AFTER UPDATE OF id, agent_id, blob, post_hashes ON main.event_log_segments BEGIN ${COUNT} END;
`;

/** The count the commit connection compares, read inside its write transaction. */
export const HEAD_CHANGES_COUNT = "SELECT n FROM head_changes";
