// Where an agent's checkpoints are found by seq (schema 16). The checkpoints table has no index led
// by the agent: such an index has one insertion point per agent, and once an agent's entries fill a
// leaf of their own (a few hundred checkpoints deep, with 1,000 agents), every checkpoint wrote its
// own 4-KiB index page to the WAL and back (1.18 index pages a checkpoint at 600 deep, against 0.51
// for the row itself: docs/BENCHMARKS.md, "Checkpoints onto a deeper history"). Instead a
// checkpoint's key (agent_id, seq, id) goes into checkpoint_keys_recent, a small table whose leaves
// every agent shares, and an agent's recent keys move into checkpoint_keys, the large one, 16 at a
// time: one page of the large table written per 16 checkpoints of an agent. Triggers keep both
// (every writer's rows get keys, every deleted row loses its key; the move fires on the recent
// table, after the key that makes it due is in), and refuse a second row for an agent's seq, as the
// UNIQUE constraint did.
//
// A read by agent and seq reads both tables, merged by seq (keyed below): SQLite merges the two arms'
// ordered index walks (MERGE (UNION ALL)), so a head read or a walk from the head reads only what it
// returns, however long the history.

/** An agent's recent keys move into checkpoint_keys when it stores a checkpoint whose seq is a multiple of this (frozen into schema 16's trigger). */
export const CHECKPOINT_KEYS_MOVE_EVERY = 16;

/** The first schema whose checkpoints are found through checkpoint_keys. */
export const CHECKPOINT_KEYS_SCHEMA = 16;

/** Schema 16: the key tables and the triggers that keep them. */
export const CHECKPOINT_KEYS_TABLES = `
  CREATE TABLE checkpoint_keys (
    agent_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (agent_id, seq)
  ) WITHOUT ROWID;
  CREATE TABLE checkpoint_keys_recent (
    agent_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (agent_id, seq)
  ) WITHOUT ROWID;
`;

export const CHECKPOINT_KEYS_TRIGGERS = `
  CREATE TRIGGER checkpoint_keys_insert AFTER INSERT ON checkpoints BEGIN
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: checkpoints.agent_id, checkpoints.seq')
      WHERE EXISTS (SELECT 1 FROM checkpoint_keys WHERE agent_id = NEW.agent_id AND seq = NEW.seq);
    INSERT INTO checkpoint_keys_recent (agent_id, seq, id) VALUES (NEW.agent_id, NEW.seq, NEW.id);
  END;
  CREATE TRIGGER checkpoint_keys_move AFTER INSERT ON checkpoint_keys_recent WHEN NEW.seq % ${CHECKPOINT_KEYS_MOVE_EVERY} = 0 BEGIN
    INSERT INTO checkpoint_keys (agent_id, seq, id) SELECT agent_id, seq, id FROM checkpoint_keys_recent WHERE agent_id = NEW.agent_id;
    DELETE FROM checkpoint_keys_recent WHERE agent_id = NEW.agent_id;
  END;
  CREATE TRIGGER checkpoint_keys_delete AFTER DELETE ON checkpoints BEGIN
    DELETE FROM checkpoint_keys WHERE agent_id = OLD.agent_id AND seq = OLD.seq;
    DELETE FROM checkpoint_keys_recent WHERE agent_id = OLD.agent_id AND seq = OLD.seq;
  END;
  CREATE TRIGGER checkpoint_keys_fixed BEFORE UPDATE OF id, agent_id, seq ON checkpoints BEGIN
    SELECT RAISE(ABORT, 'a checkpoint row''s id, agent_id and seq do not change');
  END;
`;

/**
 * An older file read as it is (read-only, below schema 16): the same names over its checkpoints'
 * UNIQUE (agent_id, seq) index, as temporary views, so every read below runs on it unchanged.
 */
export const CHECKPOINT_KEYS_VIEWS_OF_OLDER_FILE = `
  CREATE TEMP VIEW IF NOT EXISTS checkpoint_keys AS SELECT agent_id, seq, id FROM main.checkpoints;
  CREATE TEMP VIEW IF NOT EXISTS checkpoint_keys_recent AS SELECT agent_id, seq, id FROM main.checkpoints WHERE 0;
`;

/**
 * A read of checkpoints by key: `cols` of `k` (the key: agent_id, seq, id) and `c` (its checkpoints
 * row, joined by id), where `where` holds (it names the agent: `k.agent_id = @agent`), over both key
 * tables; in seq order when `order` is given (`cols` must then name a column `seq`, or
 * `orderBy` the one to order by). Parameters are named (each arm reads them).
 */
export function keyed(cols: string, where: string, order?: "ASC" | "DESC", opts: { orderBy?: string; limit?: number; rows?: boolean } = {}): string {
  const join = opts.rows === false ? "" : " CROSS JOIN checkpoints c ON c.id = k.id";
  const arm = (table: string): string => `SELECT ${cols} FROM ${table} k${join} WHERE ${where}`;
  const tail = `${order ? ` ORDER BY ${opts.orderBy ?? "seq"} ${order}` : ""}${opts.limit !== undefined ? ` LIMIT ${opts.limit}` : ""}`;
  return `${arm("checkpoint_keys")} UNION ALL ${arm("checkpoint_keys_recent")}${tail}`;
}

/** The row ids of the checkpoints whose keys match `where` (over `k`), in no order: for `id IN (…)` or `id = (…)`. */
export function keyIds(where: string): string {
  return keyed("k.id", where, undefined, { rows: false });
}

/**
 * A column of the key at the end of the agent's history (`DESC`: the head; `ASC`: the oldest), read
 * from the keys alone, as a scalar subquery; `agent`: the SQL naming the agent.
 */
export function endKey(column: "id" | "seq", agent: string, order: "ASC" | "DESC"): string {
  return `(SELECT ${column} FROM (${keyed("k.seq AS seq, k.id AS id", `k.agent_id = ${agent}`, order, { limit: 1, rows: false })}))`;
}
