// A code upgrade is part of an agent's lineage: a lineage event of kind code_upgrade, recorded after
// the last checkpoint the old code wrote (tick N), saying which module continues from it. It is
// signed by the agent's key like every lineage event (checkpoint/overrides.ts); its reason carries
// both module hashes, so the signature covers them, and its budgets are equal (an upgrade moves no
// money). Checkpoints after it carry the new module's hash; a chain whose module changes without
// one does not verify.
import { hex } from "../hash/bytes.js";
import type { Ed25519Key } from "../identity/keys.js";
import { type BudgetOverride, type OverrideFields, signBudgetOverride } from "./overrides.js";

export const CODE_UPGRADE_KIND = "code_upgrade";
const REASON = /^code upgrade ([0-9a-f]{64}) -> ([0-9a-f]{64})$/;

export interface CodeUpgrade {
  /** Hash of the last checkpoint the old code wrote. */
  afterHash: Uint8Array;
  tick: bigint;
  fromWasm: string;
  toWasm: string;
}

export function upgradeFields(u: CodeUpgrade, budget: bigint): OverrideFields {
  return { afterHash: u.afterHash, tick: u.tick, oldBudget: budget, newBudget: budget, reason: `code upgrade ${u.fromWasm} -> ${u.toWasm}` };
}

export function signCodeUpgrade(key: Ed25519Key, u: CodeUpgrade, budget: bigint): BudgetOverride {
  const fields = upgradeFields(u, budget);
  return { ...fields, signature: signBudgetOverride(key, fields) };
}

/** Whether `reason` has the form of a code upgrade's (checkpoint/lineage-kind.ts: reserved to that kind). */
export function isCodeUpgradeReason(reason: string): boolean {
  return REASON.test(reason);
}

/** The upgrade a lineage event records, or null when it is not a well-formed code upgrade. */
export function parseCodeUpgrade(e: { kind?: string; afterHash: Uint8Array; tick: bigint; oldBudget: bigint; newBudget: bigint; reason: string }): CodeUpgrade | null {
  if (e.kind !== undefined && e.kind !== CODE_UPGRADE_KIND) return null;
  const m = REASON.exec(e.reason);
  if (!m || e.oldBudget !== e.newBudget) return null;
  return { afterHash: e.afterHash, tick: e.tick, fromWasm: m[1] as string, toWasm: m[2] as string };
}

type LineageFields = { kind: string; afterHash: Uint8Array; tick: bigint; oldBudget: bigint; newBudget: bigint; reason: string };

/**
 * The modules the agent's signed code upgrades name, other than `current`: code it ran before (its
 * history, wherever it was upgraded, travels with it). A file holding one of them is a rollback.
 */
export function earlierModules(events: readonly LineageFields[], current: string): Set<string> {
  const named = new Set<string>();
  for (const e of events) {
    const u = e.kind === CODE_UPGRADE_KIND ? parseCodeUpgrade(e) : null;
    if (u) named.add(u.fromWasm).add(u.toWasm);
  }
  named.delete(current);
  return named;
}

/**
 * The module the head checkpoint must name when `wasmHash` runs the agent now: the old module when a
 * signed code upgrade to `wasmHash` follows the head (the new code has not checkpointed yet).
 */
export function headModule(events: readonly LineageFields[], headHash: Uint8Array, wasmHash: string): string {
  const upgrade = events
    .filter((e) => e.kind === CODE_UPGRADE_KIND && Buffer.from(e.afterHash).equals(Buffer.from(headHash)))
    .map((e) => parseCodeUpgrade(e))
    .at(-1);
  return upgrade && upgrade.toWasm === wasmHash ? upgrade.fromWasm : wasmHash;
}

export function describeUpgrade(u: CodeUpgrade): string {
  return `tick ${u.tick}: wasm ${u.fromWasm.slice(0, 16)}… -> ${u.toWasm.slice(0, 16)}… (after checkpoint ${hex(u.afterHash).slice(0, 16)}…)`;
}
