// Forward-only schema migrations. Each entry moves the database from version i to i+1; applied
// versions are recorded in schema_version. A database newer than this build is refused.
import { CHECKPOINT_KEYS_TABLES, CHECKPOINT_KEYS_TRIGGERS } from "./checkpoint-keys.js";

/** The checkpoints table's columns from schema 15 on (15 adds UNIQUE (agent_id, seq), 16 drops it). */
const CHECKPOINT_ROW_COLUMNS = `
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(agent_id),
    seq INTEGER NOT NULL,
    tick INTEGER NOT NULL,
    hash BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    budget INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    seg_from_tick INTEGER,
    seg_to_tick INTEGER,
    seg_abi_version INTEGER,
    seg_engine_version INTEGER,
    seg_signature BLOB,
    seg_recorded_unsigned INTEGER NOT NULL DEFAULT 0,
    seg_leaf BLOB,
    seg_run_proof BLOB,
    seg_post_hashes BLOB,
    -- The two that may be large, last; the state (read less often than the columns above) after all.
    seg_blob BLOB,
    blob BLOB NOT NULL`.slice(1);

export const MIGRATIONS: readonly string[] = [
  // 1: node identity, modules, agents, identities, checkpoint history, receipts, lineage events.
  `
  CREATE TABLE node_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seed BLOB NOT NULL,
    public_key BLOB NOT NULL,
    peer_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE wasm_modules (
    hash TEXT PRIMARY KEY,
    bytes BLOB NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    did TEXT NOT NULL UNIQUE,
    wasm_hash TEXT NOT NULL REFERENCES wasm_modules(hash),
    manifest TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE identities (
    agent_id TEXT PRIMARY KEY REFERENCES agents(agent_id),
    did TEXT NOT NULL UNIQUE,
    seed BLOB NOT NULL,
    public_key BLOB NOT NULL
  );
  -- A rowid table: rows carry whole checkpoint blobs, which WITHOUT ROWID tables store poorly.
  CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(agent_id),
    seq INTEGER NOT NULL,
    tick INTEGER NOT NULL,
    hash BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    budget INTEGER NOT NULL,
    reason TEXT NOT NULL,
    blob BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (agent_id, seq)
  );
  CREATE TABLE receipts (
    agent_id TEXT NOT NULL REFERENCES agents(agent_id),
    seq INTEGER NOT NULL,
    tick_start INTEGER NOT NULL,
    tick_end INTEGER NOT NULL,
    cost INTEGER NOT NULL,
    budget_after INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    checkpoint_hash BLOB NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (agent_id, seq)
  );
  CREATE TABLE lineage_events (
    agent_id TEXT NOT NULL REFERENCES agents(agent_id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    after_hash BLOB NOT NULL,
    tick INTEGER NOT NULL,
    old_budget INTEGER NOT NULL,
    new_budget INTEGER NOT NULL,
    reason TEXT NOT NULL,
    signature BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, seq)
  ) WITHOUT ROWID;
  `,
  // 2: per-checkpoint segments of tick event logs, for replay verification that survives restarts
  // and for audit replay. Each segment holds the logs of the ticks after the previous checkpoint up
  // to (and including) the checkpoint it was committed with, the SHA-256 of each tick's resulting
  // state (32 bytes per tick, in order), and the hostcall ABI and replay engine versions.
  `
  CREATE TABLE event_log_segments (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(agent_id),
    from_tick INTEGER NOT NULL,
    to_tick INTEGER NOT NULL,
    checkpoint_hash BLOB NOT NULL,
    abi_version INTEGER NOT NULL,
    engine_version INTEGER NOT NULL,
    blob BLOB NOT NULL,
    post_hashes BLOB NOT NULL
  );
  CREATE INDEX event_log_segments_by_agent ON event_log_segments(agent_id, to_tick);
  `,
  // 3: the agent's lease on this node (state, epoch, expiry, handoff in flight), written in the same
  // transaction as its checkpoints and compared-and-set by every writer.
  `
  ALTER TABLE agents ADD COLUMN lease_state TEXT NOT NULL DEFAULT 'ACTIVE_OWNER';
  ALTER TABLE agents ADD COLUMN epoch_major INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE agents ADD COLUMN epoch_generation INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE agents ADD COLUMN lease_expires_at INTEGER;
  ALTER TABLE agents ADD COLUMN handoff_target TEXT;
  ALTER TABLE agents ADD COLUMN handoff_checkpoint TEXT;
  `,
  // 4: migrations, outgoing and incoming, with a timestamp for every state they went through; and
  // fences: after this node told a source it does not hold an agent, packages for that agent at or
  // below the source's epoch are refused (the source has taken the agent back).
  `
  CREATE TABLE migrations (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    peer TEXT,
    state TEXT NOT NULL,
    checkpoint_hash TEXT,
    epoch_major INTEGER,
    epoch_generation INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    fallbacks INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    requested_at INTEGER NOT NULL,
    transferring_at INTEGER,
    awaiting_at INTEGER,
    done_at INTEGER,
    failed_at INTEGER,
    recovery_at INTEGER,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX migrations_by_agent ON migrations(agent_id, id);
  CREATE INDEX checkpoints_by_hash ON checkpoints(hash);
  CREATE TABLE outbox (
    agent_id TEXT NOT NULL,
    tick INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    epoch_major INTEGER NOT NULL,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, tick, idx)
  ) WITHOUT ROWID;
  CREATE TABLE migration_fences (
    agent_id TEXT PRIMARY KEY,
    epoch_major INTEGER NOT NULL,
    epoch_generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 5: a fence is keyed by agent id and DID and names the peer whose handoff it settled (only that
  // peer may settle it); incoming handoffs record which peer offered which agent at which epoch.
  // Fences from before carry no DID or peer ('') and apply to any DID until they are pruned.
  `
  CREATE TABLE migration_fences_v5 (
    agent_id TEXT NOT NULL,
    did TEXT NOT NULL,
    peer TEXT NOT NULL,
    epoch_major INTEGER NOT NULL,
    epoch_generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, did)
  );
  INSERT INTO migration_fences_v5 SELECT agent_id, '', '', epoch_major, epoch_generation, created_at FROM migration_fences;
  DROP TABLE migration_fences;
  ALTER TABLE migration_fences_v5 RENAME TO migration_fences;
  CREATE INDEX migration_fences_by_peer ON migration_fences(peer, created_at);
  CREATE TABLE incoming_handoffs (
    agent_id TEXT NOT NULL,
    did TEXT NOT NULL,
    peer TEXT NOT NULL,
    epoch_major INTEGER NOT NULL,
    epoch_generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, did, peer, epoch_major, epoch_generation)
  );
  CREATE INDEX incoming_handoffs_by_peer ON incoming_handoffs(peer, created_at);
  `,
  // 6: each event-log segment's signature by the agent's key, binding it to the checkpoint before it
  // (replay/segment-seal.ts); NULL on segments stored before segments were signed (marked
  // recorded_unsigned, sealed at the next start by the node that recorded them). And the signed
  // base of each history pruned by --history-retention (checkpoint/history-base.ts).
  `
  ALTER TABLE event_log_segments ADD COLUMN signature BLOB;
  -- Segments this node recorded before it signed them: sealed once, at the next start, with the
  -- agent's key (never a segment that arrives unsigned later: that one stays unverifiable).
  ALTER TABLE event_log_segments ADD COLUMN recorded_unsigned INTEGER NOT NULL DEFAULT 0;
  UPDATE event_log_segments SET recorded_unsigned = 1;
  CREATE TABLE history_bases (
    agent_id TEXT PRIMARY KEY REFERENCES agents(agent_id),
    origin_hash BLOB NOT NULL,
    base_hash BLOB NOT NULL,
    base_tick INTEGER NOT NULL,
    pruned INTEGER NOT NULL,
    signature BLOB NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 7: the payment journal. A wallet_pay receipt is journalled (durably) before its signature goes
  // back to the agent; the checkpoint that commits its tick deletes the row in the same transaction.
  // A row still here at start-up is a payment whose tick was lost: debited once, then deleted.
  `
  CREATE TABLE payment_journal (
    agent_id TEXT NOT NULL REFERENCES agents(agent_id),
    tick INTEGER NOT NULL,
    receipt_hash BLOB NOT NULL,
    amount INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    memo TEXT NOT NULL,
    receipt BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, tick, receipt_hash)
  ) WITHOUT ROWID;
  `,
  // 8: run seals (segment seal v2, replay/run-seal.ts): one agent-key signature over a run of
  // consecutive segments. A segment this node records carries its leaf (NULL signature) and is sealed
  // by the event_log_runs row whose ticks span it; one that arrives sealed carries its run's signature
  // and its inclusion proof (run_proof). Rows signed one by one (v1) keep their signatures, unchanged.
  `
  ALTER TABLE event_log_segments ADD COLUMN leaf BLOB;
  ALTER TABLE event_log_segments ADD COLUMN run_proof BLOB;
  CREATE TABLE event_log_runs (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(agent_id),
    from_tick INTEGER NOT NULL,
    to_tick INTEGER NOT NULL,
    leaves BLOB NOT NULL,
    signature BLOB NOT NULL
  );
  CREATE INDEX event_log_runs_by_agent ON event_log_runs(agent_id, to_tick);
  `,
  // 9: no index of checkpoints by hash. Its key is a random hash, so every checkpoint dirtied a random
  // page of it (a third of a group commit's WAL bytes with 1,000 agents). The lookups by hash name the
  // agent and walk its (agent_id, seq) index back from the head, where the checkpoint sought lies (a
  // returning agent's base: the history sent after it is as long; a commit just made: at the head).
  `
  DROP INDEX IF EXISTS checkpoints_by_hash;
  `,
  // 10: a segment's row id is its closing checkpoint's row id, and segments have no index of their
  // own: the checkpoints' (agent_id, seq) index finds them. Its newest leaf, one per agent once a
  // history is deep, was written twice per checkpoint (that index and segments by (agent_id,
  // to_tick)), ~40 % of a group commit's WAL pages 400 checkpoints deep. A segment no stored
  // checkpoint closes (an import's, or a second one for the same checkpoint) keeps a negative id,
  // found through a partial index of those alone. event_log_floors, per agent: no linked segment
  // closes at a checkpoint below seq (raised by pruning), so walks skip the pruned past; to_tick,
  // when known, the last tick of the segment closing at seq (the oldest; none ends before it), so a
  // prune with nothing due reads one row; unlinked: the agent may have unlinked segments.
  `
  CREATE INDEX checkpoints_by_tick_v10 ON checkpoints(agent_id, tick);
  CREATE TABLE event_log_segments_v10 (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(agent_id),
    from_tick INTEGER NOT NULL,
    to_tick INTEGER NOT NULL,
    checkpoint_hash BLOB NOT NULL,
    abi_version INTEGER NOT NULL,
    engine_version INTEGER NOT NULL,
    blob BLOB NOT NULL,
    post_hashes BLOB NOT NULL,
    signature BLOB,
    recorded_unsigned INTEGER NOT NULL DEFAULT 0,
    leaf BLOB,
    run_proof BLOB
  );
  INSERT INTO event_log_segments_v10 (id, agent_id, from_tick, to_tick, checkpoint_hash, abi_version, engine_version, blob, post_hashes, signature, recorded_unsigned, leaf, run_proof)
    SELECT CASE WHEN cid IS NOT NULL AND ROW_NUMBER() OVER (PARTITION BY cid ORDER BY id) = 1 THEN cid ELSE -id END,
      agent_id, from_tick, to_tick, checkpoint_hash, abi_version, engine_version, blob, post_hashes, signature, recorded_unsigned, leaf, run_proof
    FROM (SELECT s.*, (SELECT MIN(c.id) FROM checkpoints c WHERE c.agent_id = s.agent_id AND c.tick = s.to_tick AND c.hash = s.checkpoint_hash) AS cid FROM event_log_segments s);
  DROP TABLE event_log_segments;
  ALTER TABLE event_log_segments_v10 RENAME TO event_log_segments;
  DROP INDEX checkpoints_by_tick_v10;
  CREATE INDEX event_log_segments_unlinked ON event_log_segments(agent_id, to_tick) WHERE id < 0;
  CREATE TABLE event_log_floors (
    agent_id TEXT PRIMARY KEY REFERENCES agents(agent_id),
    seq INTEGER NOT NULL,
    to_tick INTEGER,
    unlinked INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  INSERT INTO event_log_floors (agent_id, seq, to_tick) SELECT c.agent_id, MIN(c.seq), s.to_tick FROM event_log_segments s JOIN checkpoints c ON c.id = s.id GROUP BY c.agent_id;
  INSERT INTO event_log_floors (agent_id, seq, unlinked) SELECT DISTINCT agent_id, 0, 1 FROM event_log_segments WHERE id < 0 ON CONFLICT (agent_id) DO UPDATE SET unlinked = 1;
  `,
  // 11: a linked segment is stored in its closing checkpoint's row (the seg_* columns; its agent and
  // checkpoint hash are the row's own): a checkpoint with its segment is one INSERT, not two, its
  // segment a row probe less to read (docs/BENCHMARKS.md, "the segment in its checkpoint's row").
  // Unlinked segments (negative ids) stay in event_log_segments. A linked one whose row is not its
  // checkpoint's (none is written so) would stay there too, unlinked, below every id in use. The
  // segments recorded before this node signed them, sealed at each start, are found by a partial
  // index (empty in a daemon's own history): a start does not read every checkpoint's row.
  `
  ALTER TABLE checkpoints ADD COLUMN seg_from_tick INTEGER;
  ALTER TABLE checkpoints ADD COLUMN seg_to_tick INTEGER;
  ALTER TABLE checkpoints ADD COLUMN seg_abi_version INTEGER;
  ALTER TABLE checkpoints ADD COLUMN seg_engine_version INTEGER;
  ALTER TABLE checkpoints ADD COLUMN seg_blob BLOB;
  ALTER TABLE checkpoints ADD COLUMN seg_post_hashes BLOB;
  ALTER TABLE checkpoints ADD COLUMN seg_signature BLOB;
  ALTER TABLE checkpoints ADD COLUMN seg_recorded_unsigned INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE checkpoints ADD COLUMN seg_leaf BLOB;
  ALTER TABLE checkpoints ADD COLUMN seg_run_proof BLOB;
  CREATE TEMP TABLE lowest_segment_id_v11 AS SELECT MIN(COALESCE(MIN(id), 0), 0) AS id FROM event_log_segments;
  UPDATE event_log_segments SET id = (SELECT id FROM temp.lowest_segment_id_v11) - id
    WHERE id > 0 AND NOT EXISTS (SELECT 1 FROM checkpoints c WHERE c.id = event_log_segments.id AND c.agent_id = event_log_segments.agent_id AND c.hash = event_log_segments.checkpoint_hash);
  DROP TABLE temp.lowest_segment_id_v11;
  UPDATE checkpoints SET (seg_from_tick, seg_to_tick, seg_abi_version, seg_engine_version, seg_blob, seg_post_hashes, seg_signature, seg_recorded_unsigned, seg_leaf, seg_run_proof) =
    (SELECT from_tick, to_tick, abi_version, engine_version, blob, post_hashes, signature, recorded_unsigned, leaf, run_proof FROM event_log_segments s WHERE s.id = checkpoints.id)
    WHERE id IN (SELECT id FROM event_log_segments WHERE id > 0);
  DELETE FROM event_log_segments WHERE id > 0;
  INSERT INTO event_log_floors (agent_id, seq, unlinked) SELECT DISTINCT agent_id, 0, 1 FROM event_log_segments WHERE id < 0 ON CONFLICT (agent_id) DO UPDATE SET unlinked = 1;
  CREATE INDEX checkpoints_segment_recorded_unsigned ON checkpoints(seg_recorded_unsigned) WHERE seg_recorded_unsigned = 1;
  `,
  // 12: a count of the writes, by connections other than the commit thread's, that change what a
  // checkpoint's commit reads (leases moved, statuses, agents and checkpoints added or removed), kept
  // by TEMP triggers each of those connections creates (store/head-changes.ts): lease renewals do
  // not move it, so they no longer make the commit thread read every agent's row again.
  `
  CREATE TABLE head_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
  );
  INSERT INTO head_changes (id, n) VALUES (1, 0);
  `,
  // 13: the last tick whose outbox messages --outbox-retention dropped, per agent, so a reader can
  // tell a gap from ticks that emitted nothing. A file upgraded with outbox rows cannot say what it
  // dropped before: its mark is the tick before its oldest kept message (none is promised before).
  `
  CREATE TABLE outbox_floors (
    agent_id TEXT PRIMARY KEY,
    dropped_through INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO outbox_floors (agent_id, dropped_through) SELECT agent_id, MIN(tick) - 1 FROM outbox GROUP BY agent_id HAVING MIN(tick) > 1;
  `,
  // 14: a reception whose package arrived and matches its offer, waiting for the source's `durable`
  // (migration/pending-reception.ts): stored and synced while admission, the replay and the source's fsync run,
  // never ownership; the source's `durable` flips it into the agent's rows in one transaction.
  `
  CREATE TABLE pending_receptions (
    agent_id TEXT PRIMARY KEY,
    did TEXT NOT NULL,
    peer TEXT NOT NULL,
    epoch_major INTEGER NOT NULL,
    epoch_generation INTEGER NOT NULL,
    checkpoint_hash TEXT NOT NULL,
    package BLOB NOT NULL,
    -- JSON array: the source's listen addresses as its offer gave them (the resolution dials them)
    source_addrs TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX pending_receptions_by_peer ON pending_receptions(peer);
  `,
  // 15: a checkpoint row's small columns and its segment before its state (the checkpoint blob). A
  // column stored after a blob that spills to overflow pages is read by walking the whole overflow
  // chain (a page read per 4 KiB of state), and migration 11 appended the segment's columns after
  // it: with a 1 MiB state, every read of a segment's ticks or leaf (each migration package, each
  // resume's open runs) read the state as well, ~40 % of the main thread in a hop of such an agent
  // (docs/BENCHMARKS.md, "large states"). The table is rebuilt in that order, every row and id kept.
  `
  ALTER TABLE checkpoints RENAME TO checkpoints_v14;
  DROP INDEX checkpoints_segment_recorded_unsigned;
  CREATE TABLE checkpoints (
${CHECKPOINT_ROW_COLUMNS},
    UNIQUE (agent_id, seq)
  );
  INSERT INTO checkpoints (id, agent_id, seq, tick, hash, prev_hash, budget, reason, created_at, seg_from_tick, seg_to_tick, seg_abi_version, seg_engine_version, seg_signature, seg_recorded_unsigned, seg_leaf, seg_run_proof, seg_post_hashes, seg_blob, blob)
    SELECT id, agent_id, seq, tick, hash, prev_hash, budget, reason, created_at, seg_from_tick, seg_to_tick, seg_abi_version, seg_engine_version, seg_signature, seg_recorded_unsigned, seg_leaf, seg_run_proof, seg_post_hashes, seg_blob, blob FROM checkpoints_v14;
  DROP TABLE checkpoints_v14;
  CREATE INDEX checkpoints_segment_recorded_unsigned ON checkpoints(seg_recorded_unsigned) WHERE seg_recorded_unsigned = 1;
  `,
  // 16: no (agent_id, seq) index on the checkpoints table: its keys are in checkpoint_keys and
  // checkpoint_keys_recent, kept by triggers (store/checkpoint-keys.ts says why). The table is rebuilt
  // without the UNIQUE constraint, every row and id kept; every key starts in checkpoint_keys.
  `
  ${CHECKPOINT_KEYS_TABLES}
  ALTER TABLE checkpoints RENAME TO checkpoints_v15;
  DROP INDEX checkpoints_segment_recorded_unsigned;
  CREATE TABLE checkpoints (
${CHECKPOINT_ROW_COLUMNS}
  );
  INSERT INTO checkpoint_keys (agent_id, seq, id) SELECT agent_id, seq, id FROM checkpoints_v15 ORDER BY agent_id, seq;
  INSERT INTO checkpoints (id, agent_id, seq, tick, hash, prev_hash, budget, reason, created_at, seg_from_tick, seg_to_tick, seg_abi_version, seg_engine_version, seg_signature, seg_recorded_unsigned, seg_leaf, seg_run_proof, seg_post_hashes, seg_blob, blob)
    SELECT id, agent_id, seq, tick, hash, prev_hash, budget, reason, created_at, seg_from_tick, seg_to_tick, seg_abi_version, seg_engine_version, seg_signature, seg_recorded_unsigned, seg_leaf, seg_run_proof, seg_post_hashes, seg_blob, blob FROM checkpoints_v15;
  DROP TABLE checkpoints_v15;
  CREATE INDEX checkpoints_segment_recorded_unsigned ON checkpoints(seg_recorded_unsigned) WHERE seg_recorded_unsigned = 1;
  ${CHECKPOINT_KEYS_TRIGGERS}
  `,
  // 17: the wall time (Unix ms) the checkpoint's tick committed on the node that ran it (NULL:
  // unknown: genesis, an older store's or an older peer's), so a resumed or arriving agent keeps its
  // cadence (its next tick an interval after its last one, not after the resume). Added, not a
  // rebuild: it lands after the state, so it is read only with the state (the head, at a resume or
  // a hop), never by the reads of the small columns.
  `
  ALTER TABLE checkpoints ADD COLUMN tick_at INTEGER;
  `,
];
