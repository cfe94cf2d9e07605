// Target-side admission of a migration package, in the order the protocol promises, each refusal
// with its own code: format → WASM hash → manifest and migration_policy → capabilities → price
// ceiling → signature, DID and lineage → replay verification of the shipped window → ownership.
// Nothing here writes: the caller stores the result in one transaction, or nothing at all.
import { compareEpochs, type Epoch, formatEpoch, incomingLease, type Lease, transition } from "../authority/lease.js";
import { type Checkpoint, checkpointTickAndBudget, parseCheckpoint } from "../checkpoint/codec.js";
import { checkpointHash, GENESIS_PREV_HASH, versionStepProblem } from "../checkpoint/lineage.js";
import type { HistoryBase } from "../checkpoint/history-base.js";
import { commitFromBlob } from "../store/commits.js";
import { equalBytes, hex } from "../hash/bytes.js";
import { overrideSigned } from "../checkpoint/overrides.js";
import { headModule } from "../checkpoint/upgrades.js";
import { type ChainEntry, VERIFY_YIELD_EVERY, verifyChainAsync } from "../checkpoint/verify-chain.js";
import { formatUnits } from "../budget/money.js";
import { decodeReceipt } from "../budget/receipt.js";
import { ArrivingReceipts, lostPaymentDebits, type ReceiptHistory } from "../budget/receipt-check.js";
import { ErrorCode } from "../errors.js";
import { withAgentIdentity } from "../hostcalls/policy.js";
import { didFromPublicKey } from "../identity/did.js";
import { decodeIdentityFile } from "../identity/keys.js";
import { checkAgentId, moduleBytes, type PreparedAgent, prepareFromBytes } from "../loader/prepare.js";
import { sha256Hex } from "../hash/bytes.js";
import { IMPLEMENTED_CAPABILITY_VERSION } from "../hostcalls/registry.js";
import { type AgentManifest, parseManifest } from "../manifest/manifest.js";
import type { CheckpointRow, IncomingAgent, LineageEvent, SqliteStore } from "../store/sqlite-store.js";
import type { MigrationPackage } from "./package.js";
import { EarlyReplay } from "./early-replay.js";
import { type AdmissionContext, inTime, refuse, turn } from "./admission-context.js";
import { replayItems, verifyWindow } from "./admission-window.js";
import { MIGRATED_UNTOLD } from "../hostcalls/interrupted.js";

export interface Admitted {
  incoming: IncomingAgent;
  prepared: PreparedAgent;
  manifest: AgentManifest;
  head: Checkpoint;
  replayedTicks: number;
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

// admit() awaits between its steps and does none of their work itself: each step is a function of
// its own. V8 compiles a hot async function as one graph with every step inlined into it; one with
// all the checks in it took 100–475 ms of a core to compile, during a node's first hundreds of hops.

async function admit(pkg: MigrationPackage, peer: string, bytes: number, ctx: AdmissionContext, early: EarlyReplay): Promise<Admitted> {
  const agentId = checkAgentId(pkg.agentId);
  const held = heldCopy(pkg, agentId, ctx.store);
  // 1–5
  const code = checkHeadAndCode(pkg, agentId, held, ctx);
  // The worker replays the window (step 7) while step 6 runs here.
  early.start(pkg, code.head, held.head?.blob, code.prepared, ctx, replayItems);
  // 6
  const lineage = checkLineage(pkg, agentId, code.head, held, ctx);
  await verifyLineage(agentId, lineage, ctx);
  const receipts = await checkReceipts(pkg, agentId, code.head.tick, lineage, ctx);
  // 7
  const replayedTicks = await verifyWindow(pkg, lineage.storedHead?.blob ?? null, windowModules(pkg, agentId, code, lineage.did, ctx), ctx, early);
  // 8
  return admitted(pkg, peer, bytes, ctx, code, lineage, receipts, replayedTicks);
}

/** What this node holds of the agent, read once (nothing awaits before its last use, in step 6). */
interface HeldCopy {
  /** The head a package with a base continues from. */
  head: CheckpointRow | undefined;
  events: LineageEvent[];
}

function heldCopy(pkg: MigrationPackage, agentId: string, store: SqliteStore): HeldCopy {
  return { head: pkg.baseHash !== null ? store.head(agentId) : undefined, events: store.lineageEvents(agentId) };
}

interface CheckedCode {
  head: Checkpoint;
  headHash: Uint8Array;
  wasm: Uint8Array;
  manifest: AgentManifest;
  prepared: PreparedAgent;
}

/**
 * 1. format (the package decoded; its head must be the checkpoint that was offered), 2. WASM hash,
 * 3–5. manifest and migration_policy, capabilities, price.
 */
function checkHeadAndCode(pkg: MigrationPackage, agentId: string, held: HeldCopy, ctx: AdmissionContext): CheckedCode {
  const headBlob = pkg.history.at(-1) ?? held.head?.blob;
  if (!headBlob) refuse(ErrorCode.MigrationLineage, `the package has no checkpoint and this node holds none for "${agentId}"`);
  const head = parseCheckpoint(headBlob, `head checkpoint of "${agentId}"`);
  const headHash = checkpointHash(headBlob);
  if (hex(headHash) !== pkg.checkpointHash) refuse(ErrorCode.MigrationFrameInvalid, "the package's last checkpoint is not the one it names");
  checkBudget(head.budget, agentId, ctx.maxBudget);
  // A lineage event after the head sets the budget the agent resumes with (node/stored-resume.ts):
  // the last one as they will be stored is the budget it brings (its signature is checked at step 6).
  const afterHead = eventsAsStored(held.head ? held.events : [], pkg.overrides).all.filter((e) => equalBytes(e.afterHash, headHash)).at(-1);
  if (afterHead) checkBudget(afterHead.newBudget, agentId, ctx.maxBudget);
  const wasm = pkg.wasm ?? ctx.store.wasm(pkg.wasmHash);
  if (!wasm) refuse(ErrorCode.MigrationWasmHash, `the package has no WASM and this node does not hold ${pkg.wasmHash.slice(0, 16)}…`);
  if (sha256Hex(wasm) !== pkg.wasmHash) refuse(ErrorCode.MigrationWasmHash, `the WASM does not hash to ${pkg.wasmHash.slice(0, 16)}…`);
  // Right after a code upgrade the head is still the old code's; the signed upgrade event names both.
  const headWasm = headModule([...held.events, ...pkg.overrides], headHash, pkg.wasmHash);
  if (hex(head.wasmHash) !== headWasm) refuse(ErrorCode.MigrationWasmHash, `the head checkpoint was made for WASM ${hex(head.wasmHash).slice(0, 16)}…`);
  for (const m of pkg.modules ?? []) {
    if (sha256Hex(m.bytes) !== m.hash) refuse(ErrorCode.MigrationWasmHash, `a shipped earlier module does not hash to ${m.hash.slice(0, 16)}…`);
  }
  const manifest = checkManifest(pkg.manifest, agentId, ctx);
  const prepared = prepareFromBytes({
    agentId,
    bytes: moduleBytes(wasm),
    manifest,
    source: `WASM of migrating agent "${agentId}"`,
    offered: ctx.offered,
    cache: ctx.cache,
  });
  return { head, headHash, wasm, manifest, prepared };
}

interface CheckedLineage {
  identity: ReturnType<typeof decodeIdentityFile>;
  did: string;
  /** The lease this node holds for the agent (retired), if it holds a copy. */
  previous: Lease | undefined;
  /** The stored head a returning agent continues from. */
  storedHead: CheckpointRow | undefined;
  /** A retired copy whose head its owner's retention pruned, replaced by the package's history. */
  replaces: boolean;
  entries: ChainEntry[];
  /** Every lineage event of the agent, the stored ones a returning agent keeps included. */
  overrides: LineageEvent[];
  /** The package's events this node does not store yet. */
  newOverrides: LineageEvent[];
  signedBase: HistoryBase | undefined;
}

/** 6. signature, DID and lineage continuity: what can be checked without verifying a signature. */
function checkLineage(pkg: MigrationPackage, agentId: string, head: Checkpoint, held: HeldCopy, ctx: AdmissionContext): CheckedLineage {
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
  const storedHead = previous ? held.head : undefined;
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
    // A history that replaces this node's copy continues past its head: its versions never go back either.
    const stepDown = replaces && copyHead ? versionStepProblem(copyHead.blob[0] as number, first.version) : null;
    if (stepDown) refuse(ErrorCode.MigrationLineage, `the package's history may not replace this node's retired copy of "${agentId}": its first checkpoint is ${stepDown}`);
  } else if (!storedHead || hex(storedHead.hash) !== pkg.baseHash) {
    refuse(ErrorCode.MigrationLineage, `the package continues from ${pkg.baseHash.slice(0, 16)}…, which is not this node's head for "${agentId}"`);
  }
  if (copyHead) {
    const copy = parseCheckpoint(copyHead.blob);
    if (!equalBytes(copy.publicKey, identity.publicKey)) refuse(ErrorCode.MigrationLineage, `the identity ${did} is not the key this node's copy of "${agentId}" is signed with`);
  }
  const entries = [
    ...(storedHead ? [{ name: `stored head (tick ${storedHead.tick})`, bytes: storedHead.blob }] : []),
    ...pkg.history.map((b, i) => ({ name: `package checkpoint ${i}`, bytes: b })),
  ];
  const events = eventsAsStored(previous && !replaces ? held.events : [], pkg.overrides);
  // The signed base counts only for a first hop (a returning agent continues from its stored head).
  const signedBase = pkg.baseHash === null && pkg.historyBase ? pkg.historyBase : undefined;
  return { identity, did, previous, storedHead, replaces, entries, overrides: events.all, newOverrides: events.fresh, signedBase };
}

/**
 * The agent's lineage events as this node will store them: those it holds (`known`), then the
 * shipped ones it does not hold yet (`fresh`), in the package's order. A returning agent ships every
 * event this node stores already; they are told apart by signature. The budget the agent resumes
 * with is the last event after its head in this order: one shipped again after a new one is not.
 */
function eventsAsStored(known: readonly LineageEvent[], shipped: readonly LineageEvent[]): { all: LineageEvent[]; fresh: LineageEvent[] } {
  if (known.length === 0) return { all: [...shipped], fresh: [...shipped] };
  const held = new Set(known.map((k) => hex(k.signature)));
  const fresh = shipped.filter((o) => !held.has(hex(o.signature)));
  return { all: [...known, ...fresh], fresh };
}

/** 6, the signatures: every lineage event's, then the chain's from the stored head or the signed base. */
async function verifyLineage(agentId: string, lineage: CheckedLineage, ctx: AdmissionContext): Promise<void> {
  const { identity, did } = lineage;
  for (const [i, o] of lineage.overrides.entries()) {
    // ~65 µs a verification: a package may carry many (up to MAX_PACKAGE_ITEMS), so the node's other
    // work runs between them, as between receipts and checkpoints.
    if (i % VERIFY_YIELD_EVERY === VERIFY_YIELD_EVERY - 1) await turn(ctx);
    if (!overrideSigned(identity.publicKey, o)) {
      refuse(ErrorCode.MigrationLineage, `a lineage event after tick ${o.tick} is not signed by ${did}`);
    }
  }
  const report = await verifyChainAsync(lineage.entries, lineage.overrides, lineage.signedBase, () => inTime(ctx));
  if (!report.valid) refuse(ErrorCode.MigrationLineage, `the history of "${agentId}" does not verify: ${report.reasons.join("; ")}`);
  if (report.did !== did) refuse(ErrorCode.MigrationLineage, `the history is signed by ${report.did ?? "nobody"}, not ${did}`);
}

type IncomingReceipt = IncomingAgent["receipts"][number];

/**
 * The package's node execution receipts this node stores: each signed by the node that ran those
 * ticks, named by its peer id, for ticks the history holds, in order, never claiming more budget
 * than its checkpoint held (budget/receipt-check.ts); a returning agent's only past those stored.
 */
async function checkReceipts(pkg: MigrationPackage, agentId: string, headTick: bigint, lineage: CheckedLineage, ctx: AdmissionContext): Promise<IncomingReceipt[]> {
  if (pkg.receipts.length === 0) return [];
  const lastReceipt = lineage.previous !== undefined ? ctx.store.lastReceiptTick(agentId) : null;
  const arriving = new ArrivingReceipts(receiptHistory(pkg, agentId, headTick, lineage, ctx), lastReceipt);
  const receipts: IncomingReceipt[] = [];
  for (const [i, blob] of pkg.receipts.entries()) {
    if (i % VERIFY_YIELD_EVERY === VERIFY_YIELD_EVERY - 1) await turn(ctx);
    const r = receiptFrom(blob, agentId);
    if (lastReceipt !== null && r.tickEnd <= lastReceipt) continue;
    const verdict = arriving.check(r, blob);
    if (typeof verdict === "object") refuse(ErrorCode.MigrationLineage, verdict.problem);
    if (verdict === "take") receipts.push({ tickStart: r.tickStart, tickEnd: r.tickEnd, cost: r.cost, budgetAfter: r.budgetAfter, nodeId: r.nodeId, blob });
  }
  const newest = arriving.finish();
  if (newest) refuse(ErrorCode.MigrationLineage, newest);
  return receipts;
}

/** The checkpoints the arriving receipts are checked against: the package's, and the stored head's chain it continues. */
function receiptHistory(pkg: MigrationPackage, agentId: string, headTick: bigint, lineage: CheckedLineage, ctx: AdmissionContext): ReceiptHistory {
  // From the headers of the checkpoints verified at step 6, read in place (a hop's receipts are
  // checked against a few; a 1 MiB state's checkpoint is not copied for its budget).
  let budgets: Map<bigint, bigint> | null = null;
  const shipped = (tick: bigint): bigint | undefined => {
    if (budgets === null) {
      budgets = new Map();
      for (const blob of pkg.history) {
        const cp = checkpointTickAndBudget(blob);
        budgets.set(cp.tick, cp.budget);
      }
    }
    return budgets.get(tick);
  };
  const stored = lineage.storedHead;
  const first = pkg.history[0];
  return {
    agentId,
    headTick,
    // Continuing from the stored head: the stored chain holds what precedes the package's.
    firstTick: stored || !first ? -1n : checkpointTickAndBudget(first).tick,
    budgetAt: (tick) => shipped(tick) ?? (stored && tick <= stored.tick ? ctx.store.checkpointAtTick(agentId, tick)?.budget : undefined),
    lostPayments: lostPaymentDebits(lineage.overrides),
  };
}

function receiptFrom(blob: Uint8Array, agentId: string): ReturnType<typeof decodeReceipt> {
  try {
    return decodeReceipt(blob);
  } catch (e) {
    return refuse(ErrorCode.MigrationFrameInvalid, `a receipt of "${agentId}" is unreadable: ${(e as Error).message}`);
  }
}

/** 7's modules: each segment is replayed with the module that recorded it, prepared once. */
function windowModules(pkg: MigrationPackage, agentId: string, code: CheckedCode, did: string, ctx: AdmissionContext): (wasmHash: string) => PreparedAgent {
  const modules = new Map<string, PreparedAgent>([[pkg.wasmHash, code.prepared]]);
  const moduleFor = (hash: string): PreparedAgent => {
    const known = modules.get(hash);
    if (known) return known;
    const bytes = pkg.modules?.find((m) => m.hash === hash)?.bytes ?? ctx.store.wasm(hash);
    if (!bytes) return refuse(ErrorCode.MigrationWasmHash, `the replay window was recorded with WASM ${hash.slice(0, 16)}…, which the package does not ship`);
    const p = prepareFromBytes({ agentId, bytes: moduleBytes(bytes), manifest: code.manifest, source: `WASM ${hash.slice(0, 16)}… of migrating agent "${agentId}"`, offered: ctx.offered, cache: ctx.cache });
    modules.set(hash, p);
    return p;
  };
  // WASI's out-of-tick random stream is derived from the agent's DID (src/wasi/host.ts).
  return (hash) => {
    const p = moduleFor(hash);
    return { ...p, plan: withAgentIdentity(p.plan, did) };
  };
}

/** 8. ownership (checked again: nothing may have changed while the replay ran), and what is stored. */
function admitted(pkg: MigrationPackage, peer: string, bytes: number, ctx: AdmissionContext, code: CheckedCode, lineage: CheckedLineage, receipts: IncomingReceipt[], replayedTicks: number): Admitted {
  const { did, previous, replaces, signedBase } = lineage;
  const agentId = pkg.agentId;
  const previousNow = checkOwnership(ctx.store, agentId, did, pkg.epoch);
  if ((previousNow === undefined) !== (previous === undefined)) refuse(ErrorCode.MigrationBusy, `agent "${agentId}" changed on this node during admission`);
  let lease: Lease = previousNow ? transition({ ...previousNow }, { type: "receive", sourceEpoch: pkg.epoch }, ctx.leaseTiming) : incomingLease(pkg.epoch);
  lease = transition(lease, { type: "assume", nowMs: Date.now() }, ctx.leaseTiming);
  const history = pkg.history.map((blob) => commitFromBlob(agentId, blob, "migrated"));
  // When the head's tick ran on the source: the agent keeps its cadence here (scheduler.resumedDue).
  const head = history.at(-1);
  if (head && pkg.lastTickAt !== undefined) head.tickAt = pkg.lastTickAt;
  // Not told yet that its last run was interrupted: its first tick here must be (stored-resume.ts).
  if (head && pkg.interrupted === true) head.reason = MIGRATED_UNTOLD;
  return {
    incoming: {
      agent: { agentId, did, wasmHash: pkg.wasmHash, wasmBytes: code.wasm, manifest: pkg.manifest, identity: lineage.identity },
      history,
      overrides: lineage.newOverrides,
      segments: pkg.segments,
      modules: pkg.modules ?? [],
      receipts,
      ...(signedBase ? { historyBase: signedBase } : {}),
      ...(previous ? { previous: { state: previous.state, epoch: previous.epoch } } : {}),
      ...(replaces ? { replacesHistory: true } : {}),
      lease,
      migration: { peer, checkpointHash: pkg.checkpointHash, sourceEpoch: pkg.epoch, bytes },
    },
    prepared: code.prepared,
    manifest: code.manifest,
    head: code.head,
    replayedTicks,
  };
}

