// Stored modules (wasm_modules) that --history-retention leaves named by nothing. Every upgrade
// stores its new module (a dev loop: one per save); once the retention pruned every checkpoint that
// ran an earlier one, nothing reads that module again: export, verify --replay and migration
// packages take only the modules an agent's row and its kept checkpoints name. A crash-left pending
// reception's package may come without its module (the target said it held it), so a module one
// names stays too.
//
// A checkpoint names its module inside its blob (no column), so only what a prune may have freed is
// looked at: the modules its pruned checkpoints ran other than the agent's own now. An agent's
// checkpoints name another module only across a signed code upgrade (checkpoint/verify-chain.ts),
// so an agent with none (most) costs one lookup of its lineage; and only the kept checkpoints of
// agents with one are searched for the candidates.
import type Database from "better-sqlite3";
import { WASM_HASH_OFFSET } from "../checkpoint/codec.js";
import { CODE_UPGRADE_KIND } from "../checkpoint/upgrades.js";
import { keyIds } from "./checkpoint-keys.js";

type Sql = (text: string) => Database.Statement;

/** A checkpoint blob's module hash, in SQL (substr counts from 1). */
const WASM_HASH_OF = (blob: string): string => `substr(${blob}, ${WASM_HASH_OFFSET + 1}, 32)`;

const UPGRADED = `SELECT 1 FROM lineage_events WHERE agent_id = ? AND kind = '${CODE_UPGRADE_KIND}' LIMIT 1`;

/**
 * The modules (hex) the agent's checkpoints below `seq` ran other than its module now: what pruning
 * them may leave named by nothing. Read before the prune deletes them.
 */
export function modulesBeingPruned(sql: Sql, agentId: string, seq: bigint): string[] {
  if (sql(UPGRADED).get(agentId) === undefined) return [];
  const rows = sql(`SELECT DISTINCT lower(hex(${WASM_HASH_OF("blob")})) AS hash FROM checkpoints WHERE id IN (${keyIds("k.agent_id = @agent AND k.seq < @seq")})`).all({ agent: agentId, seq }) as { hash: string }[];
  const own = (sql("SELECT wasm_hash FROM agents WHERE agent_id = ?").get(agentId) as { wasm_hash: string } | undefined)?.wasm_hash;
  return rows.map((r) => r.hash).filter((h) => h !== own);
}

const NAMED_BY_AGENT = "SELECT 1 FROM agents WHERE wasm_hash = ? LIMIT 1";
const NAMED_BY_KEPT_CHECKPOINT = `SELECT 1 FROM checkpoints WHERE id IN (${keyIds(`k.agent_id IN (SELECT agent_id FROM lineage_events WHERE kind = '${CODE_UPGRADE_KIND}')`)}) AND ${WASM_HASH_OF("blob")} = ? LIMIT 1`;
/** The package's header names its module's hash in hex: found as bytes (a chance match elsewhere only keeps a module). */
const NAMED_BY_PENDING_RECEPTION = "SELECT 1 FROM pending_receptions WHERE instr(package, ?) > 0 LIMIT 1";

/** Deletes the modules among `hashes` that no agent, kept checkpoint or pending reception names (after the prune, in its transaction). */
export function dropUnnamedModules(sql: Sql, hashes: readonly string[]): void {
  for (const hash of hashes) {
    if (sql(NAMED_BY_AGENT).get(hash) !== undefined) continue;
    if (sql(NAMED_BY_KEPT_CHECKPOINT).get(Buffer.from(hash, "hex")) !== undefined) continue;
    if (sql(NAMED_BY_PENDING_RECEPTION).get(Buffer.from(hash, "latin1")) !== undefined) continue;
    sql("DELETE FROM wasm_modules WHERE hash = ?").run(hash);
  }
}
