// Verifies an agent's whole history (igor's `verify`, made stricter): every checkpoint readable,
// ticks strictly increasing, every signature valid, an unbroken prevHash chain, one key, budgets that
// never increase except through recorded (signed) overrides, epochs that never go backwards, and
// no v0x04 checkpoint after a v0x05 one (lineage.versionStepProblem).
import { verifyBytes } from "../identity/keys.js";
import { didFromPublicKey } from "../identity/did.js";
import { type Checkpoint, isSigned, parseCheckpoint } from "./codec.js";
import { checkpointHash, GENESIS_PREV_HASH, verifyCheckpointSignature, versionStepProblem } from "./lineage.js";
import { equalBytes, hex } from "../hash/bytes.js";
import { type HistoryBase, historyBaseSigningBytes } from "./history-base.js";
import { type BudgetOverride, LOST_PAYMENT_KIND, overrideSigned } from "./overrides.js";
import { CODE_UPGRADE_KIND, type CodeUpgrade, parseCodeUpgrade } from "./upgrades.js";

export type { BudgetOverride };

export interface ChainEntry {
  name: string;
  bytes: Uint8Array;
}

export interface ChainReport {
  valid: boolean;
  reasons: string[];
  notes: string[];
  checkpoints: number;
  firstTick: bigint | null;
  lastTick: bigint | null;
  did: string | null;
  /** Runs of consecutive checkpoints with the same WASM hash (code upgrades start a new segment). */
  segments: { wasmHash: string; fromTick: bigint; toTick: bigint; count: number }[];
  /** The signed code upgrades between those segments. */
  upgrades: CodeUpgrade[];
}

/**
 * The lineage events a chain is verified with: budget overrides, code upgrades and lost payments
 * (a recovery or an import moves no budget and changes no module).
 */
export function chainEvents<E extends { kind: string }>(events: readonly E[]): E[] {
  return events.filter((e) => e.kind === "budget_override" || e.kind === CODE_UPGRADE_KIND || e.kind === LOST_PAYMENT_KIND);
}

/** Checkpoints verified between two yields to the event loop in verifyChainAsync. */
export const VERIFY_YIELD_EVERY = 256;

export function verifyChain(
  entries: Iterable<ChainEntry>,
  overrides: readonly BudgetOverride[] = [],
  onProgress?: (done: number) => void,
  /** The signed base of a history pruned by --history-retention, if any. */
  base?: HistoryBase,
): ChainReport {
  const steps = chainSteps(entries, overrides, base);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (onProgress && r.value % 1000 === 0) onProgress(r.value);
  }
}

/**
 * The same verification, giving the event loop a turn every VERIFY_YIELD_EVERY checkpoints: a
 * node admitting a long history keeps ticking its other agents meanwhile.
 */
export async function verifyChainAsync(
  entries: Iterable<ChainEntry>,
  overrides: readonly BudgetOverride[] = [],
  base?: HistoryBase,
  /** Called at each turn given to the event loop: throws to end the verification (its caller's time is up). */
  inTime: () => void = () => {},
): Promise<ChainReport> {
  // It decides an admission: the first checkpoint that does not verify ends it (a peer's package of
  // many bad checkpoints costs one refusal, not a verification and a reason per checkpoint).
  const steps = chainSteps(entries, overrides, base, true);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (r.value % VERIFY_YIELD_EVERY === 0) {
      await new Promise((resolve) => setImmediate(resolve));
      inTime();
    }
  }
}

/** Verifies one checkpoint per step; yields the count so far, returns the report. */
function* chainSteps(entries: Iterable<ChainEntry>, overrides: readonly BudgetOverride[], base?: HistoryBase, stopAtFirstFailure = false): Generator<number, ChainReport> {
  const report: ChainReport = { valid: true, reasons: [], notes: [], checkpoints: 0, firstTick: null, lastTick: null, did: null, segments: [], upgrades: [] };
  const fail = (msg: string): void => {
    report.valid = false;
    report.reasons.push(msg);
  };
  // Each checkpoint's overrides, looked up by its hash: filtering them all at every checkpoint cost
  // checkpoints × overrides comparisons (seconds for a package carrying many of both).
  const byAfter = new Map<string, BudgetOverride[]>();
  for (const o of overrides) {
    const k = hex(o.afterHash);
    const list = byAfter.get(k);
    if (list) list.push(o);
    else byAfter.set(k, [o]);
  }
  const after = (h: Uint8Array): BudgetOverride[] => byAfter.get(hex(h)) ?? [];
  let prev: Checkpoint | null = null;
  let prevName = "";
  let prevHash: Uint8Array | null = null;
  let key: Uint8Array | null = null;
  for (const e of entries) {
    if (stopAtFirstFailure && !report.valid) return report;
    report.checkpoints++;
    let cp: Checkpoint;
    try {
      cp = parseCheckpoint(e.bytes, e.name);
    } catch (err) {
      fail(`${e.name}: unreadable: ${(err as Error).message}`);
      prev = null;
      prevHash = null;
      continue;
    }
    report.firstTick ??= cp.tick;
    report.lastTick = cp.tick;
    const wasm = hex(cp.wasmHash);
    const seg = report.segments.at(-1);
    if (seg && seg.wasmHash === wasm) {
      seg.toTick = cp.tick;
      seg.count++;
    } else report.segments.push({ wasmHash: wasm, fromTick: cp.tick, toTick: cp.tick, count: 1 });

    if (!isSigned(cp)) {
      if (prev !== null) fail(`${e.name}: v0x0${cp.version} checkpoint inside a signed chain`);
      else report.notes.push(`${e.name}: v0x0${cp.version} (unsigned) start of history`);
    } else {
      const stepDown = prev === null ? null : versionStepProblem(prev.version, cp.version);
      if (stepDown) fail(`${e.name}: ${stepDown}`);
      if (!verifyCheckpointSignature(cp)) fail(`${e.name}: signature INVALID`);
      if (key === null) {
        key = cp.publicKey;
        report.did = didFromPublicKey(key);
      } else if (!equalBytes(key, cp.publicKey)) {
        fail(`${e.name}: signed by a different key (${didFromPublicKey(cp.publicKey)})`);
      }
    }
    if (prev === null && prevHash === null) {
      if (base && report.checkpoints === 1) {
        const problem = historyBaseProblem(base, cp, e.bytes);
        if (problem) fail(`the signed history base (tick ${base.baseTick}) ${problem}`);
        else report.notes.push(`history pruned before tick ${cp.tick}: ${base.pruned} earlier checkpoints removed by retention (signed base; origin ${hex(base.originHash).slice(0, 16)}…)`);
      } else if (isSigned(cp) && !equalBytes(cp.prevHash, GENESIS_PREV_HASH)) {
        report.notes.push(`${e.name}: history starts after genesis (prevHash ${hex(cp.prevHash).slice(0, 16)}…)`);
      }
    } else if (prev !== null && prevHash !== null) {
      if (cp.tick <= prev.tick) fail(`${e.name}: tick ${cp.tick} does not increase (previous ${prevName} is tick ${prev.tick})`);
      if (isSigned(cp) && !equalBytes(cp.prevHash, prevHash)) {
        fail(`${e.name}: prevHash does not match ${prevName} (chain broken: a checkpoint is missing or altered)`);
      }
      const lastHash = prevHash;
      const topUps = after(lastHash);
      for (const o of topUps) {
        const signed = key !== null && overrideSigned(key, o);
        if (!signed) fail(`${e.name}: budget override after ${prevName} has an invalid signature`);
      }
      const fromWasm = hex(prev.wasmHash);
      if (fromWasm !== wasm) {
        // The module may change only where a signed code upgrade says so, from this module to that one.
        const upgrade = topUps.map((o) => parseCodeUpgrade(o)).find((u) => u !== null && u.fromWasm === fromWasm && u.toWasm === wasm);
        if (!upgrade) fail(`${e.name}: WASM changed from ${fromWasm.slice(0, 16)}… to ${wasm.slice(0, 16)}… without a signed code upgrade after ${prevName}`);
        else report.upgrades.push(upgrade);
      }
      const allowed = topUps.length > 0 ? (topUps.at(-1) as BudgetOverride).newBudget : prev.budget;
      if (cp.budget > allowed) fail(`${e.name}: budget increased from ${prev.budget} to ${cp.budget} without a recorded top-up`);
      const epochBack =
        cp.epochMajor < prev.epochMajor || (cp.epochMajor === prev.epochMajor && cp.epochGeneration < prev.epochGeneration);
      if (epochBack) {
        fail(`${e.name}: epoch went back from (${prev.epochMajor},${prev.epochGeneration}) to (${cp.epochMajor},${cp.epochGeneration})`);
      }
    }
    prev = cp;
    prevName = e.name;
    prevHash = checkpointHash(e.bytes);
    yield report.checkpoints;
  }
  if (report.checkpoints === 0) fail("no checkpoints to verify");
  // An override after the head has no checkpoint yet to bound it, and it sets the budget (or the
  // module) the agent resumes with: its signature is checked all the same.
  const headHash = prevHash;
  if (headHash !== null) {
    for (const o of after(headHash)) {
      const signed = key !== null && overrideSigned(key, o);
      if (!signed) fail(`budget override after ${prevName} (the head) has an invalid signature`);
    }
  }
  return report;
}

function historyBaseProblem(base: HistoryBase, first: Checkpoint, bytes: Uint8Array): string | null {
  if (!isSigned(first)) return "starts at an unsigned checkpoint";
  if (!equalBytes(base.baseHash, checkpointHash(bytes)) || base.baseTick !== first.tick) return `is not the oldest stored checkpoint (tick ${first.tick})`;
  if (!verifyBytes(first.publicKey, historyBaseSigningBytes(first.publicKey, base), base.signature)) return "signature INVALID";
  return null;
}
