// Target-side admission of a migration package, in the order the protocol promises, each refusal
// with its own code: format → WASM hash → manifest and migration_policy → capabilities → price
// ceiling → signature, DID and lineage → replay verification of the shipped window → ownership.
// Nothing here writes: the caller stores the result in one transaction, or nothing at all.
import { compareEpochs, type Epoch, formatEpoch, incomingLease, type Lease, type LeaseTiming, transition } from "../authority/lease.js";
import { type Checkpoint, parseCheckpoint } from "../checkpoint/codec.js";
import { checkpointHash, GENESIS_PREV_HASH } from "../checkpoint/lineage.js";
import type { HistoryBase } from "../checkpoint/history-base.js";
import { commitFromBlob } from "../store/commits.js";
import { equalBytes, hex } from "../hash/bytes.js";
import { overrideSigned } from "../checkpoint/overrides.js";
import { headModule } from "../checkpoint/upgrades.js";
import { VERIFY_YIELD_EVERY, verifyChainAsync } from "../checkpoint/verify-chain.js";
import { formatUnits } from "../budget/money.js";
import { decodeReceipt } from "../budget/receipt.js";
import { receiptProblem, receiptsOnce } from "../budget/receipt-check.js";
import { ErrorCode, IgordError } from "../errors.js";
import { withAgentIdentity } from "../hostcalls/policy.js";
import { didFromPublicKey } from "../identity/did.js";
import { decodeIdentityFile } from "../identity/keys.js";
import { checkAgentId, type ModuleCache, moduleBytes, type PreparedAgent, prepareFromBytes } from "../loader/prepare.js";
import { sha256Hex } from "../hash/bytes.js";
import { IMPLEMENTED_CAPABILITY_VERSION } from "../hostcalls/registry.js";
import { type AgentManifest, parseManifest } from "../manifest/manifest.js";
import type { ReplayItem } from "../replay/engine.js";
import { decodeSegment } from "../eventlog/tick-log.js";
import type { ReplayMode } from "../replay/policy.js";
import { segmentReplayItems } from "../replay/segment-items.js";
import { segmentSealProblem } from "../replay/segment-seal.js";
import type { CheckpointRow, IncomingAgent, SqliteStore, StoredSegment } from "../store/sqlite-store.js";
import type { MigrationPackage } from "./package.js";
import { EarlyReplay } from "./early-replay.js";

/** Ticks a target replays at most to admit one package (each costs a real execution). */
export const MAX_ADMISSION_REPLAY_TICKS = 100_000;

export interface AdmissionContext {
  store: SqliteStore;
  cache: ModuleCache;
  /** The node's capability set, snapshotted once for this handshake (the loader's set). */
  offered: ReadonlySet<string>;
  price: bigint;
  /** --max-incoming-budget: the most an incoming agent's head checkpoint may carry. */
  maxBudget: bigint;
  replayMode: ReplayMode;
  leaseTiming: LeaseTiming;
  /** Replays items on a fresh sandbox of the agent (strict: every tick compared). */
  replay(prepared: PreparedAgent, preState: Uint8Array, items: ReplayItem[]): Promise<{ finalState: Uint8Array | null; verifiedTicks: number }>;
  /**
   * When the lineage and seal checks must have ended (ms since the epoch; the same share of
   * --migration-timeout as the replays): past it the package is refused MIGRATION_TIMEOUT.
   */
  checksDeadline?: number;
}

export interface Admitted {
  incoming: IncomingAgent;
  prepared: PreparedAgent;
  manifest: AgentManifest;
  head: Checkpoint;
  replayedTicks: number;
}

function refuse(code: ErrorCode, message: string): never {
  throw new IgordError(code, message);
}

/** Checks that need only the offer (also run again on the full package, in order). */
export function checkManifest(text: string, agentId: string, ctx: Pick<AdmissionContext, "offered" | "price">): AgentManifest {
  const manifest = parseManifest(text, `of migrating agent "${agentId}"`);
  if (!manifest.migrationPolicy.enabled) refuse(ErrorCode.MigrationPolicyDisabled, `agent "${agentId}" has migration_policy.enabled false`);
  const missing = [...manifest.capabilities.keys()].filter((c) => !ctx.offered.has(c));
  if (missing.length > 0) {
    refuse(ErrorCode.CapabilityNotOffered, `this node does not offer ${missing.join(", ")} (agent "${agentId}" needs ${[...manifest.capabilities.keys()].join(", ")})`);
  }
  for (const [name, grant] of manifest.capabilities) {
    if (grant.version !== IMPLEMENTED_CAPABILITY_VERSION) {
      refuse(ErrorCode.CapabilityNotOffered, `agent "${agentId}" needs capability "${name}" version ${grant.version}; this node implements version ${IMPLEMENTED_CAPABILITY_VERSION}`);
    }
  }
  const max = manifest.migrationPolicy.maxPricePerSecond;
  if (max !== null && ctx.price > max) {
    refuse(ErrorCode.MigrationPriceTooHigh, `this node's price ${ctx.price} µ¢/s is above agent "${agentId}"'s max_price_per_second ${max}`);
  }
  return manifest;
}

/** An agent may not bring more budget than --max-incoming-budget (checked on the offer's claim and on the head). */
export function checkBudget(budget: bigint, agentId: string, max: bigint): void {
  if (budget > max) refuse(ErrorCode.MigrationBudgetTooHigh, `agent "${agentId}" brings a budget of ${formatUnits(budget)} units, more than this node's --max-incoming-budget ${formatUnits(max)}`);
}

/**
 * Whether this node may take the agent at the source's epoch; returns the stored lease it replaces.
 * `held`: the agent's row and lease as the caller just read them (store.agentAndLease), else read here.
 */
export function checkOwnership(store: SqliteStore, agentId: string, did: string, sourceEpoch: Epoch, held = store.agentAndLease(agentId)): Lease | undefined {
  const fence = store.fence(agentId, did);
  if (fence && compareEpochs(sourceEpoch, fence) <= 0) {
    refuse(ErrorCode.MigrationStale, `agent "${agentId}" at epoch ${formatEpoch(sourceEpoch)} was already declared not received here (fenced at ${formatEpoch(fence)})`);
  }
  if (!held) return undefined;
  const { row, lease } = held;
  if (row.did !== did) refuse(ErrorCode.MigrationOwnedHere, `agent id "${agentId}" belongs to ${row.did} on this node, not ${did}`);
  // igord remove: this node never runs it again, whoever offers it back.
  if (row.status === "removed") refuse(ErrorCode.AgentRemoved, `agent "${agentId}" was removed from this node (igord remove); it does not run here again`);
  if (lease.state !== "RETIRED") {
    refuse(ErrorCode.MigrationOwnedHere, `agent "${agentId}" is ${lease.state} on this node at epoch ${formatEpoch(lease.epoch)}`);
  }
  if (compareEpochs(sourceEpoch, lease.epoch) <= 0) {
    refuse(ErrorCode.MigrationStale, `agent "${agentId}" arrives at epoch ${formatEpoch(sourceEpoch)}, not newer than ${formatEpoch(lease.epoch)} it had here`);
  }
  return lease;
}

/**
 * A package that does not continue from this node's retired head may replace that copy only with the
 * same agent's history from past it: a base the agent signed (verified with the chain), from the
 * origin this node's copy comes from, at a tick after its head (the key is checked with a continuing
 * package's, below).
 */
function checkSupersedes(store: SqliteStore, agentId: string, base: HistoryBase | null | undefined, held: CheckpointRow | undefined): void {
  if (!base || !held) refuse(ErrorCode.MigrationLineage, `agent "${agentId}" is known here; the package must continue from its stored head or from a signed history base past it`);
  const origin = store.historyBase(agentId)?.originHash ?? firstHash(store, agentId);
  if (!origin || !equalBytes(origin, base.originHash)) {
    refuse(ErrorCode.MigrationLineage, `the package's history base descends from ${hex(base.originHash).slice(0, 16)}…, not from the origin of this node's copy of "${agentId}"`);
  }
  if (base.baseTick <= held.tick) {
    refuse(ErrorCode.MigrationLineage, `the package's history base at tick ${base.baseTick} is not past this node's retired head at tick ${held.tick}: it must continue from that head`);
  }
}

/** The hash of the oldest checkpoint stored for the agent (its genesis when nothing was pruned here). */
function firstHash(store: SqliteStore, agentId: string): Uint8Array | undefined {
  for (const c of store.history(agentId)) return c.hash;
  return undefined;
}

export async function admitPackage(pkg: MigrationPackage, peer: string, bytes: number, ctx: AdmissionContext): Promise<Admitted> {
  const early = new EarlyReplay();
  try {
    return await admit(pkg, peer, bytes, ctx, early);
  } finally {
    // A refusal is answered once the early replay has ended (its staging placement gone).
    await early.settled();
  }
}

async function admit(pkg: MigrationPackage, peer: string, bytes: number, ctx: AdmissionContext, early: EarlyReplay): Promise<Admitted> {
  const agentId = checkAgentId(pkg.agentId);
  // 1. format (the package decoded; its head must be the checkpoint that was offered)
  // The head this node holds, which a package with a base continues from (read once: nothing here
  // awaits before step 6 uses it).
  const heldHead = pkg.baseHash !== null ? ctx.store.head(agentId) : undefined;
  // The lineage events this node holds for the agent, read once (nothing here awaits before the
  // last use below, at the override checks).
  const storedEvents = ctx.store.lineageEvents(agentId);
  const headBlob = pkg.history.at(-1) ?? heldHead?.blob;
  if (!headBlob) refuse(ErrorCode.MigrationLineage, `the package has no checkpoint and this node holds none for "${agentId}"`);
  const head = parseCheckpoint(headBlob, `head checkpoint of "${agentId}"`);
  const headHash = checkpointHash(headBlob);
  if (hex(headHash) !== pkg.checkpointHash) refuse(ErrorCode.MigrationFrameInvalid, "the package's last checkpoint is not the one it names");
  checkBudget(head.budget, agentId, ctx.maxBudget);
  // A lineage event after the head sets the budget the agent resumes with (node/stored-resume.ts):
  // that is the budget it brings (its signature is checked at step 6).
  const afterHead = [...(heldHead ? storedEvents : []), ...pkg.overrides].filter((e) => equalBytes(e.afterHash, headHash)).at(-1);
  if (afterHead) checkBudget(afterHead.newBudget, agentId, ctx.maxBudget);
  // 2. WASM hash
  const wasm = pkg.wasm ?? ctx.store.wasm(pkg.wasmHash);
  if (!wasm) refuse(ErrorCode.MigrationWasmHash, `the package has no WASM and this node does not hold ${pkg.wasmHash.slice(0, 16)}…`);
  if (sha256Hex(wasm) !== pkg.wasmHash) refuse(ErrorCode.MigrationWasmHash, `the WASM does not hash to ${pkg.wasmHash.slice(0, 16)}…`);
  // Right after a code upgrade the head is still the old code's; the signed upgrade event names both.
  const headWasm = headModule([...storedEvents, ...pkg.overrides], headHash, pkg.wasmHash);
  if (hex(head.wasmHash) !== headWasm) refuse(ErrorCode.MigrationWasmHash, `the head checkpoint was made for WASM ${hex(head.wasmHash).slice(0, 16)}…`);
  for (const m of pkg.modules ?? []) {
    if (sha256Hex(m.bytes) !== m.hash) refuse(ErrorCode.MigrationWasmHash, `a shipped earlier module does not hash to ${m.hash.slice(0, 16)}…`);
  }
  // 3–5. manifest and migration_policy, capabilities, price
  const manifest = checkManifest(pkg.manifest, agentId, ctx);
  const prepared = prepareFromBytes({
    agentId,
    bytes: moduleBytes(wasm),
    manifest,
    source: `WASM of migrating agent "${agentId}"`,
    offered: ctx.offered,
    cache: ctx.cache,
  });
  // The worker replays the window (step 7) while step 6 runs here.
  early.start(pkg, head, heldHead?.blob, prepared, ctx, replayItems);
  // 6. signature, DID and lineage continuity
  let identity: ReturnType<typeof decodeIdentityFile>;
  try {
    identity = decodeIdentityFile(pkg.identity);
  } catch (e) {
    refuse(ErrorCode.IdentityCorrupt, `identity of "${agentId}": ${(e as Error).message}`);
  }
  const did = didFromPublicKey(identity.publicKey);
  if (did !== pkg.did) refuse(ErrorCode.MigrationLineage, `the identity is ${did}, but the package claims ${pkg.did}`);
  // The head was written at the source's epoch or before it (an agent that moves on before its
  // next checkpoint still carries the epoch of the node before).
  if (compareEpochs({ major: head.epochMajor, generation: head.epochGeneration }, pkg.epoch) > 0) {
    refuse(ErrorCode.MigrationLineage, `the head checkpoint carries epoch (${head.epochMajor},${head.epochGeneration}), newer than the package's ${formatEpoch(pkg.epoch)}`);
  }
  const previous = checkOwnership(ctx.store, agentId, did, pkg.epoch);
  // A returning agent: the stored history was verified when it was stored; the package must
  // continue from its head, so the chain is checked from that head on.
  // (A package without a base is refused below when the agent is known here.)
  const storedHead = previous ? heldHead : undefined;
  // A retired copy whose head its owner's retention pruned: the package comes from the owner's signed
  // base instead, and replaces the copy if it is the same agent's history from past that head.
  const replaces = previous !== undefined && pkg.baseHash === null;
  // The head of the copy this node holds: continued from, or replaced (read here only for that).
  const copyHead = storedHead ?? (replaces ? ctx.store.head(agentId) : undefined);
  if (pkg.baseHash === null) {
    if (replaces) checkSupersedes(ctx.store, agentId, pkg.historyBase, copyHead);
    if (pkg.history.length === 0) refuse(ErrorCode.MigrationLineage, "the package has no checkpoints");
    const first = parseCheckpoint(pkg.history[0] as Uint8Array, "first checkpoint");
    // Not from genesis: only from a base the agent signed (a history pruned by its owner's retention).
    if (!equalBytes(first.prevHash, GENESIS_PREV_HASH) && !pkg.historyBase) {
      refuse(ErrorCode.MigrationLineage, "the history does not start at the agent's genesis checkpoint and ships no signed history base");
    }
  } else if (!storedHead || hex(storedHead.hash) !== pkg.baseHash) {
    refuse(ErrorCode.MigrationLineage, `the package continues from ${pkg.baseHash.slice(0, 16)}…, which is not this node's head for "${agentId}"`);
  }
  if (copyHead) {
    const held = parseCheckpoint(copyHead.blob);
    if (!equalBytes(held.publicKey, identity.publicKey)) refuse(ErrorCode.MigrationLineage, `the identity ${did} is not the key this node's copy of "${agentId}" is signed with`);
  }
  const entries = [
    ...(storedHead ? [{ name: `stored head (tick ${storedHead.tick})`, bytes: storedHead.blob }] : []),
    ...pkg.history.map((b, i) => ({ name: `package checkpoint ${i}`, bytes: b })),
  ];
  const knownOverrides = previous && !replaces ? storedEvents : [];
  // By signature, in a set: a returning agent ships every event this node stores already.
  const known = new Set(knownOverrides.map((k) => hex(k.signature)));
  const newOverrides = pkg.overrides.filter((o) => !known.has(hex(o.signature)));
  const allOverrides = [...knownOverrides, ...newOverrides];
  for (const [i, o] of allOverrides.entries()) {
    // ~65 µs a verification: a package may carry many (up to MAX_PACKAGE_ITEMS), so the node's other
    // work runs between them, as between receipts and checkpoints.
    if (i % VERIFY_YIELD_EVERY === VERIFY_YIELD_EVERY - 1) await turn(ctx);
    if (!overrideSigned(identity.publicKey, o)) {
      refuse(ErrorCode.MigrationLineage, `a lineage event after tick ${o.tick} is not signed by ${did}`);
    }
  }
  // The signed base counts only for a first hop (a returning agent continues from its stored head).
  const signedBase = pkg.baseHash === null && pkg.historyBase ? pkg.historyBase : undefined;
  const report = await verifyChainAsync(entries, allOverrides, signedBase, () => inTime(ctx));
  if (!report.valid) refuse(ErrorCode.MigrationLineage, `the history of "${agentId}" does not verify: ${report.reasons.join("; ")}`);
  if (report.did !== did) refuse(ErrorCode.MigrationLineage, `the history is signed by ${report.did ?? "nobody"}, not ${did}`);
  const lastReceipt = previous ? ctx.store.lastReceiptTick(agentId) : null;
  const receipts: IncomingAgent["receipts"][number][] = [];
  const once = receiptsOnce();
  for (const [i, blob] of pkg.receipts.entries()) {
    if (i % VERIFY_YIELD_EVERY === VERIFY_YIELD_EVERY - 1) await turn(ctx);
    let r: ReturnType<typeof decodeReceipt>;
    try {
      r = decodeReceipt(blob);
    } catch (e) {
      return refuse(ErrorCode.MigrationFrameInvalid, `a receipt of "${agentId}" is unreadable: ${(e as Error).message}`);
    }
    if (lastReceipt !== null && r.tickEnd <= lastReceipt) continue;
    // Signed by the node that ran those ticks, named by its peer id, for ticks the history holds.
    const problem = receiptProblem(r, agentId, head.tick);
    if (problem) refuse(ErrorCode.MigrationLineage, problem);
    if (once(blob)) receipts.push({ tickStart: r.tickStart, tickEnd: r.tickEnd, cost: r.cost, budgetAfter: r.budgetAfter, nodeId: r.nodeId, blob });
  }
  // 7. replay verification of the shipped window, each segment with the module that recorded it
  const modules = new Map<string, PreparedAgent>([[pkg.wasmHash, prepared]]);
  const moduleFor = (hash: string): PreparedAgent => {
    const known = modules.get(hash);
    if (known) return known;
    const bytes = pkg.modules?.find((m) => m.hash === hash)?.bytes ?? ctx.store.wasm(hash);
    if (!bytes) return refuse(ErrorCode.MigrationWasmHash, `the replay window was recorded with WASM ${hash.slice(0, 16)}…, which the package does not ship`);
    const p = prepareFromBytes({ agentId, bytes: moduleBytes(bytes), manifest, source: `WASM ${hash.slice(0, 16)}… of migrating agent "${agentId}"`, offered: ctx.offered, cache: ctx.cache });
    modules.set(hash, p);
    return p;
  };
  // WASI's out-of-tick random stream is derived from the agent's DID (src/wasi/host.ts).
  const runnable = (hash: string): PreparedAgent => {
    const p = moduleFor(hash);
    return { ...p, plan: withAgentIdentity(p.plan, did) };
  };
  const replayedTicks = await verifyWindow(pkg, storedHead?.blob ?? null, runnable, ctx, early);
  // 8. ownership (checked again: nothing may have changed while the replay ran)
  const previousNow = checkOwnership(ctx.store, agentId, did, pkg.epoch);
  if ((previousNow === undefined) !== (previous === undefined)) refuse(ErrorCode.MigrationBusy, `agent "${agentId}" changed on this node during admission`);
  let lease: Lease = previousNow ? transition({ ...previousNow }, { type: "receive", sourceEpoch: pkg.epoch }, ctx.leaseTiming) : incomingLease(pkg.epoch);
  lease = transition(lease, { type: "assume", nowMs: Date.now() }, ctx.leaseTiming);
  const history = pkg.history.map((blob) => commitFromBlob(agentId, blob, "migrated"));
  return {
    incoming: {
      agent: { agentId, did, wasmHash: pkg.wasmHash, wasmBytes: wasm, manifest: pkg.manifest, identity },
      history,
      overrides: newOverrides,
      segments: pkg.segments,
      modules: pkg.modules ?? [],
      receipts,
      ...(signedBase ? { historyBase: signedBase } : {}),
      ...(previous ? { previous: { state: previous.state, epoch: previous.epoch } } : {}),
      ...(replaces ? { replacesHistory: true } : {}),
      lease,
      migration: { peer, checkpointHash: pkg.checkpointHash, sourceEpoch: pkg.epoch, bytes },
    },
    prepared,
    manifest,
    head,
    replayedTicks,
  };
}

/**
 * Replays the shipped event-log segments (on-migrate: the newest; full: all) from the checkpoint
 * before each, comparing every tick's state hash and the final state with the checkpoint the
 * segment was committed with. Returns the ticks replayed.
 */
async function verifyWindow(pkg: MigrationPackage, storedHead: Uint8Array | null, moduleFor: (wasmHash: string) => PreparedAgent, ctx: AdmissionContext, early: EarlyReplay): Promise<number> {
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
      out = ctx.replay(module, before.state, items);
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


function replayItems(seg: StoredSegment, preState: Uint8Array): ReplayItem[] {
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

/**
 * Past the checks' deadline: the source, which waits one --migration-timeout for the result, has
 * given up or is about to; a peer's long history is not verified to its end for nobody.
 */
function inTime(ctx: AdmissionContext): void {
  if (ctx.checksDeadline !== undefined && Date.now() > ctx.checksDeadline) {
    refuse(ErrorCode.MigrationTimeout, "the package's lineage checks passed their share of this node's --migration-timeout; ship a shorter history (--history-retention) or give this node a longer timeout");
  }
}

/** A turn of the event loop for the node's other work, then the time check. */
async function turn(ctx: AdmissionContext): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  inTime(ctx);
}
