// Step 7 of admission: the shipped event-log segments, each sealed by the agent and covering the
// ticks between two consecutive checkpoints of the verified chain, and the window before the handoff
// replayed on a fresh sandbox (the older segments too under --replay-mode full, as time allows).
import { type Checkpoint, parseCheckpoint } from "../checkpoint/codec.js";
import { checkpointHash } from "../checkpoint/lineage.js";
import { VERIFY_YIELD_EVERY } from "../checkpoint/verify-chain.js";
import { ErrorCode, IgordError } from "../errors.js";
import { decodeSegment } from "../eventlog/tick-log.js";
import { equalBytes, hex } from "../hash/bytes.js";
import type { PreparedAgent } from "../loader/prepare.js";
import type { ReplayItem } from "../replay/engine.js";
import { segmentReplayItems } from "../replay/segment-items.js";
import { segmentSealProblem } from "../replay/segment-seal.js";
import type { StoredSegment } from "../store/sqlite-store.js";
import { type AdmissionContext, MAX_ADMISSION_REPLAY_TICKS, refuse, turn } from "./admission-context.js";
import type { EarlyReplay } from "./early-replay.js";
import type { MigrationPackage } from "./package.js";

/**
 * Replays the shipped event-log segments (on-migrate: the newest; full: all) from the checkpoint
 * before each, comparing every tick's state hash and the final state with the checkpoint the
 * segment was committed with. Returns the ticks replayed.
 */
export async function verifyWindow(pkg: MigrationPackage, storedHead: Uint8Array | null, moduleFor: (wasmHash: string) => PreparedAgent, ctx: AdmissionContext, early: EarlyReplay): Promise<number> {
  const byHash = new Map<string, Checkpoint>();
  for (const [i, blob] of [...(storedHead ? [storedHead] : []), ...pkg.history].entries()) {
    if (i % VERIFY_YIELD_EVERY === VERIFY_YIELD_EVERY - 1) await turn(ctx);
    byHash.set(hex(checkpointHash(blob)), parseCheckpoint(blob));
  }
  // Every shipped segment, whatever the replay mode (it is stored, and audited later): it must cover
  // exactly the ticks between two consecutive checkpoints of the verified chain, whose ticks are signed.
  const placed: { seg: StoredSegment; before: Checkpoint; after: Checkpoint }[] = [];
  // One segment per closing checkpoint: a second would be stored (unlinked) and shipped on again.
  const closed = new Set<string>();
  for (const [i, seg] of pkg.segments.entries()) {
    // A seal costs a verification (~65 µs): the node's other work runs between them.
    if (i % VERIFY_YIELD_EVERY === VERIFY_YIELD_EVERY - 1) await turn(ctx);
    const closing = hex(seg.checkpointHash);
    const after = byHash.get(closing);
    const before = after ? byHash.get(hex(after.prevHash)) : undefined;
    if (!after || !before || seg.fromTick !== before.tick + 1n || seg.toTick !== after.tick) {
      refuse(ErrorCode.MigrationLineage, `event-log segment ${seg.fromTick}..${seg.toTick} does not cover the ticks between two consecutive shipped checkpoints`);
    }
    if (closed.has(closing)) refuse(ErrorCode.MigrationLineage, `event-log segment ${seg.fromTick}..${seg.toTick} is shipped twice`);
    closed.add(closing);
    // Stored and audited later even when not replayed now: it must be the agent's own record.
    const forged = segmentSealProblem(seg, after);
    if (forged) refuse(ErrorCode.EventLogForged, forged);
    placed.push({ seg, before, after });
  }
  // A shipped module must be one that recorded a shipped segment (outgoing.ts ships exactly those,
  // each once, the current module aside): the target stores what it admits, and keeps nothing for nothing.
  const recordedWith = new Set(placed.map((p) => hex(p.after.wasmHash)));
  const shipped = new Set<string>();
  for (const m of pkg.modules ?? []) {
    if (m.hash === pkg.wasmHash || shipped.has(m.hash)) refuse(ErrorCode.MigrationWasmHash, `WASM ${m.hash.slice(0, 16)}… is shipped twice`);
    if (!recordedWith.has(m.hash)) refuse(ErrorCode.MigrationWasmHash, `the package ships WASM ${m.hash.slice(0, 16)}…, which recorded none of its segments`);
    shipped.add(m.hash);
  }
  if (ctx.replayMode !== "on-migrate" && ctx.replayMode !== "full") return 0;
  const head = parseCheckpoint(pkg.history.at(-1) ?? (storedHead as Uint8Array));
  const headPrev = byHash.get(hex(head.prevHash));
  const newest = placed.filter((p) => p.after.tick === head.tick);
  if (pkg.history.length > 0 && headPrev && head.tick > headPrev.tick && newest.length === 0) {
    refuse(ErrorCode.MigrationLineage, `no replay window ships for ticks ${headPrev.tick + 1n}..${head.tick} before the handoff`);
  }
  // on-migrate: the window before the handoff. full: as much of the shipped history as this node
  // replays at admission, newest first (the window before the handoff always, or refused).
  const span = (p: (typeof placed)[number]): bigint => p.seg.toTick - p.seg.fromTick + 1n;
  const cap = BigInt(MAX_ADMISSION_REPLAY_TICKS);
  const newestSpan = newest.reduce((n, p) => n + span(p), 0n);
  if (newestSpan > cap) {
    refuse(ErrorCode.ReplayWindowTooLarge, `the replay window before the handoff spans ${newestSpan} ticks, more than this node replays at admission (${MAX_ADMISSION_REPLAY_TICKS}); checkpoint more often`);
  }
  const older: typeof placed = [];
  if (ctx.replayMode === "full") {
    let budget = cap - newestSpan;
    for (const p of [...placed].filter((x) => !newest.includes(x)).sort((x, y) => (x.seg.toTick > y.seg.toTick ? -1 : 1))) {
      if (span(p) > budget) break;
      budget -= span(p);
      older.push(p);
    }
  }
  const replayOne = async ({ seg, before, after }: (typeof placed)[number]): Promise<number> => {
    let out = early.take(seg, before.state, hex(after.wasmHash));
    if (!out) {
      const items = replayItems(seg, before.state);
      const module = moduleFor(hex(after.wasmHash));
      // One staging placement at a time: an early replay not taken ends first.
      await early.settled();
      out = ctx.replay(module, before.state, items, hex(before.wasmHash) !== hex(after.wasmHash));
    }
    const replayed = await out;
    // Compared byte for byte, not by their hashes: a large state costs a memcmp, not two SHA-256 passes.
    if (!replayed.finalState || !equalBytes(replayed.finalState, after.state)) {
      refuse(ErrorCode.ReplayStateMismatch, `replaying ticks ${seg.fromTick}..${seg.toTick} does not reproduce the checkpoint at tick ${after.tick}`);
    }
    return replayed.verifiedTicks;
  };
  // The window before the handoff first: it must replay, within the time admission's replays have.
  let ticks = 0;
  for (const p of newest) ticks += await replayOne(p);
  // Then older segments, newest first, while that time lasts: they are replayed as far as it goes
  // (each is still checked for its seal above, and stored for audits), never refused for the time.
  for (const p of older) {
    try {
      ticks += await replayOne(p);
    } catch (e) {
      if (e instanceof IgordError && e.code === ErrorCode.MigrationReplayTimeout) break;
      throw e;
    }
  }
  return ticks;
}


export function replayItems(seg: StoredSegment, preState: Uint8Array): ReplayItem[] {
  // One item per tick of the range, laid out on the main thread and cloned to a worker: the early
  // replay asks for them before the replay step's own bound on the window, so the bound is here too.
  const span = seg.toTick - seg.fromTick + 1n;
  if (span > BigInt(MAX_ADMISSION_REPLAY_TICKS)) {
    refuse(ErrorCode.ReplayWindowTooLarge, `the replay window ${seg.fromTick}..${seg.toTick} spans ${span} ticks, more than this node replays at admission (${MAX_ADMISSION_REPLAY_TICKS})`);
  }
  let decoded: ReturnType<typeof decodeSegment>;
  try {
    decoded = decodeSegment(seg.blob);
  } catch (e) {
    return refuse(ErrorCode.MigrationFrameInvalid, `replay window ${seg.fromTick}..${seg.toTick} is unreadable: ${(e as Error).message}`);
  }
  if (decoded.length * 32 !== seg.postHashes.length) refuse(ErrorCode.MigrationFrameInvalid, `replay window ${seg.fromTick}..${seg.toTick} has ${decoded.length} logs but ${seg.postHashes.length / 32} state hashes`);
  return segmentReplayItems(seg, decoded, preState);
}

