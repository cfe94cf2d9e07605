// `igord inspect`, `igord verify`, `igord export` and `igord import`: an agent's provable life, from a
// node's database or from files in igor's layout (an export folder's files: export-folder.ts).
import { printable } from "../log/printable.js";
import { hexdump } from "./hexdump.js";
import { HISTORY_BASE_FILE, historyBaseFileText, OVERRIDES_FILE, overridesToJson, readHistoryBaseFile, readOverridesFile } from "./history-files.js";
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { formatUnits } from "../budget/money.js";
import { type Checkpoint, isSigned, MAX_CHECKPOINT_BYTES, parseCheckpoint } from "../checkpoint/codec.js";
import { type Epoch, formatEpoch, importedLease } from "../authority/lease.js";
import type { HistoryBase } from "../checkpoint/history-base.js";
import { checkpointHash, GENESIS_PREV_HASH, verifyCheckpointSignature } from "../checkpoint/lineage.js";
import { commitFromBlob } from "../store/commits.js";
import { equalBytes, hex } from "../hash/bytes.js";
import { overrideSigned, signBudgetOverride } from "../checkpoint/overrides.js";
import { describeUpgrade, headModule } from "../checkpoint/upgrades.js";
import { type ChainEntry, type ChainReport, chainEvents, verifyChain } from "../checkpoint/verify-chain.js";
import { ErrorCode, IgordError } from "../errors.js";
import { didFromPublicKey, publicKeyFromDid } from "../identity/did.js";
import { decodeSegment } from "../eventlog/tick-log.js";
import { accountPayments } from "../hostcalls/wallet-pay.js";
import { debit, LOST_PAYMENT_KIND, parseLostPayment } from "../budget/lost-payment.js";
import { decodeIdentityFile, type Ed25519Key, encodeIdentityFile } from "../identity/keys.js";
import { parseManifest } from "../manifest/manifest.js";
import { MAX_WASM_BYTES } from "../loader/prepare.js";
import { sha256Hex } from "../hash/bytes.js";
import { encodeSegmentFile } from "../replay/audit-plan.js";
import { sealOpenInMemory } from "../replay/run-seal.js";
import { segmentSealProblem } from "../replay/segment-seal.js";
import { lostPaymentEvents } from "../node/lost-payments.js";
import { auditHistory, namedModules, storedAudit } from "./audit.js";
import { DB_FILE, type LineageEvent, SqliteStore, type StoredSegment } from "../store/sqlite-store.js";
import { CHECKPOINTS_TOTAL_MAX_BYTES, EVENTS_DIR, ExportWriter, exportedAgentId, exportedManifest, exportFolder, IDENTITY_FILE_MAX_BYTES, lastTickFileName, lastTickFileText, MODULES_DIR, readExportFile, readFile, readFilesWithin, readLastTickAt, readModules, readReceipts, readSegments, receiptsFileBytes } from "./export-folder.js";
import { lostPaymentDebits } from "../budget/receipt-check.js";
import { openStore, openStoreReadonly, readStore } from "./data-dir-store.js";

const out = (line = ""): void => {
  process.stdout.write(`${printable(line, true)}\n`);
};

// ---- inspect ----------------------------------------------------------------------------------

export function printCheckpoint(cp: Checkpoint, source: string, wasm?: Uint8Array): boolean {
  const signed = isSigned(cp);
  const sigOk = signed && verifyCheckpointSignature(cp);
  out(`checkpoint:      ${source}`);
  out(`version:         0x0${cp.version} (header ${cp.headerSize} bytes)`);
  out(`budget:          ${formatUnits(cp.budget)} (${cp.budget} µ¢)`);
  out(`price:           ${formatUnits(cp.price)}/s (${cp.price} µ¢/s)`);
  out(`tick:            ${cp.tick}`);
  out(`wasm hash:       ${hex(cp.wasmHash)}`);
  if (wasm) out(`wasm match:      ${sha256Hex(wasm) === hex(cp.wasmHash) ? "yes" : "NO (checkpoint was made for a different binary)"}`);
  out(`epoch:           (${cp.epochMajor},${cp.epochGeneration})`);
  out(`lease expiry:    ${cp.leaseExpiry === 0n ? "none" : new Date(Number(cp.leaseExpiry / 1_000_000n)).toISOString()}`);
  if (signed) {
    out(`prev hash:       ${hex(cp.prevHash)}${cp.prevHash.every((b) => b === 0) ? " (genesis)" : ""}`);
    out(`public key:      ${hex(cp.publicKey)}`);
    out(`did:             ${didFromPublicKey(cp.publicKey)}`);
    out(`signature:       ${sigOk ? "VALID" : "INVALID"}`);
  } else {
    out("signature:       none (unsigned format)");
  }
  out(`content hash:    ${hex(checkpointHash(cp.bytes))}`);
  out(`state size:      ${cp.state.length} bytes`);
  out(`total size:      ${cp.bytes.length} bytes`);
  return !signed || sigOk;
}

/** The agent's state as a hex dump (`igord inspect --state`). */
function printState(cp: Checkpoint): void {
  out(`state (${cp.state.length} bytes):`);
  for (const line of hexdump(cp.state)) out(`  ${line}`);
}

/** A command reads files or a stored agent: given both, one of them was silently left unread. */
function oneSource(agent: string | undefined, files: readonly string[], what: string): void {
  if (!agent && files.length === 0) throw new IgordError(ErrorCode.ConfigInvalid, `give ${what} or --agent <id>`);
  if (agent && files.length > 0) {
    throw new IgordError(ErrorCode.ConfigInvalid, `give ${what} or --agent <id>, not both: --agent ${agent} and ${files.join(" ")}`);
  }
}

export function inspectCommand(file: string | undefined, o: { agent?: string; dataDir: string; wasm?: string; state?: boolean }): number {
  oneSource(o.agent, file === undefined ? [] : [file], "a checkpoint file");
  const wasm = o.wasm ? readFile(o.wasm, "WASM", MAX_WASM_BYTES) : undefined;
  if (file) {
    const cp = parseCheckpoint(readFile(file, "checkpoint", MAX_CHECKPOINT_BYTES), basename(file));
    const ok = printCheckpoint(cp, file, wasm);
    if (o.state) printState(cp);
    return ok ? 0 : 1;
  }
  return readStore(o.dataDir, (store) => {
    const head = store.head(o.agent as string);
    if (!head) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${o.agent}" in ${store.path}`);
    const cp = parseCheckpoint(head.blob);
    const ok = printCheckpoint(cp, `agent ${o.agent}, history #${head.seq} (${head.reason})`, wasm);
    out(`history:         ${store.historyCount(o.agent as string)} checkpoints`);
    if (o.state) printState(cp);
    return ok ? 0 : 1;
  });
}

// ---- verify -----------------------------------------------------------------------------------


/**
 * The folder holding *.ckpt files: the folder itself, or the single agent's under <dir>/history/ (an
 * export), or under <dir> itself (an export's history/ folder given).
 */
function historyDir(dir: string): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new IgordError(ErrorCode.ConfigInvalid, `${dir} is not a directory`);
  if (readdirSync(dir).some((f) => f.endsWith(".ckpt"))) return dir;
  for (const h of [join(dir, "history"), dir]) {
    if (!existsSync(h)) continue;
    const agents = readdirSync(h).filter((f) => statSync(join(h, f)).isDirectory() && readdirSync(join(h, f)).some((c) => c.endsWith(".ckpt")));
    if (agents.length === 1) return join(h, agents[0] as string);
    if (agents.length > 1) throw new IgordError(ErrorCode.ConfigInvalid, `${h} holds the histories of several agents (${agents.join(", ")}): give one, e.g. ${join(h, agents[0] as string)}`);
  }
  throw new IgordError(ErrorCode.ConfigInvalid, `no .ckpt files in ${dir} (give an export folder, its history/<agent> folder, or a folder of .ckpt files)`);
}

/** Reads one or more history folders (the union of an agent's histories on several nodes). */
export function readHistoryDirs(dirs: readonly string[]): { entries: ChainEntry[]; overrides: LineageEvent[]; problems: string[]; base?: HistoryBase } {
  const byName = new Map<string, ChainEntry>();
  const problems: string[] = [];
  const overrides: LineageEvent[] = [];
  const bases: HistoryBase[] = [];
  for (const d of dirs.map(historyDir)) {
    const b = readHistoryBaseFile(d);
    if (b.problem) problems.push(b.problem);
    if (b.base) bases.push(b.base);
    const names = readdirSync(d).filter((x) => x.endsWith(".ckpt"));
    for (const [i, bytes] of readFilesWithin(d, names, "checkpoint", MAX_CHECKPOINT_BYTES, CHECKPOINTS_TOTAL_MAX_BYTES).entries()) {
      const f = names[i] as string;
      const seen = byName.get(f);
      if (seen && !Buffer.from(seen.bytes).equals(bytes)) problems.push(`${f}: two different checkpoints for the same tick (a fork)`);
      else byName.set(f, { name: f, bytes });
    }
    const read = readOverridesFile(d);
    problems.push(...read.problems);
    for (const e of read.events) if (!overrides.some((x) => equalBytes(x.signature, e.signature))) overrides.push(e);
  }
  const entries = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  // Folders from several nodes: the base that stands before the oldest checkpoint of their union
  // (another is checked against it all the same, and named if it does not fit).
  const first = entries[0];
  const firstHash = first ? checkpointHash(first.bytes) : null;
  const base = bases.find((b) => firstHash !== null && equalBytes(b.baseHash, firstHash)) ?? bases[0];
  return { entries, overrides, problems, ...(base ? { base } : {}) };
}

function printReport(r: ChainReport, problems: string[]): number {
  const reasons = [...problems, ...r.reasons];
  out(reasons.length === 0 ? "VALID" : "INVALID");
  out(`checkpoints: ${r.checkpoints}, ticks ${r.firstTick ?? "-"}..${r.lastTick ?? "-"}`);
  if (r.did) out(`did: ${r.did}`);
  for (const s of r.segments) out(`segment: wasm ${s.wasmHash.slice(0, 16)}… ticks ${s.fromTick}..${s.toTick} (${s.count} checkpoints)`);
  for (const u of r.upgrades) out(`upgrade: ${describeUpgrade(u)}, signed`);
  for (const n of r.notes) out(`note: ${n}`);
  for (const reason of reasons) out(`reason: ${reason}`);
  return reasons.length === 0 ? 0 : 1;
}

/**
 * The payments in the agent's stored event logs (wallet_pay): a line saying how many and how much,
 * and any receipt not signed by the agent's own key (a problem: the history is then INVALID).
 */
function storedPayments(store: SqliteStore, agentId: string, did: string | null): { line: string | null; problems: string[] } {
  // Read after the lineage events: the segments are streamed, a row at a time (the logs of a long
  // history are never all in memory).
  const events = store.lineageEvents(agentId);
  return paymentsOf(store.eachEventSegment(agentId), events, did);
}

/** The same over an agent's event-log segments and lineage events wherever they come from (a store, an export). */
function paymentsOf(segments: Iterable<{ blob: Uint8Array }>, events: readonly LineageEvent[], did: string | null): { line: string | null; problems: string[] } {
  if (did === null) return { line: null, problems: [] };
  const logs = (function* () {
    for (const seg of segments) yield* decodeSegment(seg.blob);
  })();
  const key = publicKeyFromDid(did);
  const r = accountPayments(logs, key);
  // Payments of runs that never committed (a crash, a lost worker, a lapsed lease, a failure), each
  // debited by a signed lost_payment event. Checked here, not only as a budget step between two
  // checkpoints: one after the head decides the budget the agent resumes with.
  let lost = 0;
  let lostTotal = 0n;
  for (const e of events) {
    if (e.kind !== LOST_PAYMENT_KIND) continue;
    const p = parseLostPayment(e);
    if (!p || !p.signed || !equalBytes(p.payment.publicKey, key)) {
      r.problems.push(`the lost payment debited after tick ${e.tick} does not carry a receipt signed by the agent's key`);
      continue;
    }
    if (!overrideSigned(key, e)) {
      r.problems.push(`the lost payment debited after tick ${e.tick} is not signed by the agent's key`);
      continue;
    }
    if (e.newBudget !== debit(e.oldBudget, p.payment.amount)) {
      r.problems.push(`the lost payment debited after tick ${e.tick} takes the budget from ${e.oldBudget} to ${e.newBudget}, not by its ${p.payment.amount} µ¢`);
      continue;
    }
    lost++;
    lostTotal += p.payment.amount;
  }
  const count = r.count + lost;
  const total = r.total + lostTotal;
  const lostNote = lost === 0 ? "" : ` (${lost} of them, ${lostTotal} µ¢, paid in runs that never committed, debited as lost payments)`;
  const line = count === 0 ? null : `payments: ${count}, ${total} µ¢ (${formatUnits(total)})${lostNote}, each receipt signed by the agent's key${r.problems.length > 0 ? " except those named as reasons" : ""}`;
  return { line, problems: r.problems };
}

const progress = (n: number): void => {
  process.stderr.write(`verified ${n} checkpoints…\n`);
};

export async function verifyCommand(dirs: string[], o: { agent?: string; dataDir: string; replay?: boolean }): Promise<number> {
  oneSource(o.agent, dirs, "one or more history directories");
  if (o.agent) {
    const agentId = o.agent;
    // The chain, the payments and what a replay needs, from one moment of the store: a retention
    // prune committed between reading the signed base and the history made a sound history INVALID.
    const { chain, audit } = readStore(o.dataDir, (store) => {
      store.requireHistoryReadable("verify");
      if (!store.agent(agentId)) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${agentId}" in ${store.path}`);
      const entries = (function* () {
        for (const row of store.history(agentId)) yield { name: `#${row.seq} (tick ${row.tick})`, bytes: row.blob };
      })();
      const overrides = chainEvents(store.lineageEvents(agentId));
      const report = verifyChain(entries, overrides, progress, store.historyBase(agentId));
      const paid = storedPayments(store, agentId, report.did);
      const chain = printReport(report, paid.problems);
      if (paid.line) out(paid.line);
      return { chain, audit: o.replay ? storedAudit(store, agentId) : null };
    });
    if (!audit) return chain;
    const replayed = await auditHistory(audit);
    return chain === 0 && replayed === 0 ? 0 : 1;
  }
  if (o.replay) return verifyExportWithReplay(dirs);
  const { entries, overrides, problems, base } = readHistoryDirs(dirs);
  return printWithPayments(verifyChain(entries, overrides, progress, base), problems, overrides, dirs.map(historyDir));
}

/** The chain report and, from the folders' event-log segments and lineage events, the payments line. */
function printWithPayments(report: ChainReport, problems: string[], events: readonly LineageEvent[], historyDirs: readonly string[]): number {
  const seen = new Set<string>();
  const segments = historyDirs.flatMap(readSegments).filter((seg) => {
    const k = `${seg.fromTick}-${seg.toTick}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
  const paid = paymentsOf(segments, events, report.did);
  const code = printReport(report, [...problems, ...paid.problems]);
  if (paid.line) out(paid.line);
  return code;
}

/** An export's `history/<agent>/`, refused if either folder is a link or not a folder (exportFolder); a missing one is read as before. */
function exportHistoryDir(dir: string, agentId: string): string {
  const h = join(dir, "history");
  const d = join(h, agentId);
  if (exportFolder(h)) exportFolder(d);
  return d;
}

/** `igord verify --replay <export dir>`: chain checks, then audit replay with the export's WASM and logs. */
async function verifyExportWithReplay(dirs: string[]): Promise<number> {
  if (dirs.length !== 1) throw new IgordError(ErrorCode.ConfigInvalid, "--replay audits one export directory (written by igord export)");
  const dir = dirs[0] as string;
  const agentId = exportedAgentId(dir);
  const hist = exportHistoryDir(dir, agentId);
  const { entries, overrides, problems, base } = readHistoryDirs([hist]);
  const chain = printWithPayments(verifyChain(entries, overrides, progress, base), problems, overrides, [hist]);
  const wasm = readExportFile(join(dir, `${agentId}.wasm`), "WASM", MAX_WASM_BYTES);
  const earlier = readModules(hist, namedModules(entries.map((e) => e.bytes)));
  const replayed = await auditHistory({
    agentId,
    // The current module, and the earlier ones of a history that spans an upgrade.
    wasm: (hash) => (sha256Hex(wasm) === hash ? wasm : earlier.get(hash)),
    manifest: exportedManifest(dir, agentId),
    checkpoints: entries.map((e) => e.bytes),
    segments: readSegments(hist),
  });
  return chain === 0 && replayed === 0 ? 0 : 1;
}

/**
 * The signed lineage record of an agent continuing here from files at a new major epoch. Its budget
 * is the one in force after the head (a top-up recorded on the head stays in force).
 */
export function importRecord(
  identity: Ed25519Key,
  head: { hash: Uint8Array; tick: bigint; budget: bigint },
  prior: readonly LineageEvent[],
  from: Epoch,
  to: Epoch,
  how: string,
): LineageEvent {
  const budget = prior.filter((e) => equalBytes(e.afterHash, head.hash)).at(-1)?.newBudget ?? head.budget;
  const fields = {
    afterHash: head.hash,
    tick: head.tick,
    oldBudget: budget,
    newBudget: budget,
    reason: `${how}: continues at epoch ${formatEpoch(to)} after ${formatEpoch(from)}; the copy it came from is not fenced`,
  };
  return { kind: "import", ...fields, signature: signBudgetOverride(identity, fields) };
}

// ---- export / import --------------------------------------------------------------------------

export function exportCommand(agentId: string, o: { out: string; dataDir: string }): number {
  // One moment of the store, beside a daemon that keeps committing: read at several, the head, the
  // history, the lineage and the segments did not fit together, and import refused the export. The
  // files are written while the snapshot is held: the history is streamed, never all in memory.
  return readStore(o.dataDir, (store) => {
    store.requireHistoryReadable("export");
    const row = store.agent(agentId);
    if (!row) throw new IgordError(ErrorCode.AgentNotFound, `no agent "${agentId}" in ${store.path}`);
    const head = store.head(agentId);
    const identity = store.identity(agentId);
    const wasm = store.wasm(row.wasmHash);
    if (!head || !wasm) throw new IgordError(ErrorCode.StoreError, `agent "${agentId}" is incomplete in ${store.path}`);
    // A failure part way (a full disk, a damaged page) removes what was written: no half export is left.
    return ExportWriter.into(o.out, (w) => {
      const hist = ["history", agentId];
      w.dir(["history"]);
      w.dir(hist);
      w.file([`${agentId}.checkpoint`], head.blob);
      w.file([`${agentId}.identity`], encodeIdentityFile(identity), 0o600);
      w.file([`${agentId}.wasm`], wasm);
      w.file([`${agentId}.manifest.json`], row.manifest);
      w.file([`${agentId}.receipts`], receiptsFileBytes(store.receipts(agentId)));
      // When the head's tick committed: the importing node ticks it when its cadence says.
      const tickAt = store.headTickAt(agentId);
      if (tickAt !== null) w.file([lastTickFileName(agentId)], lastTickFileText(head.tick, tickAt));
      let n = 0;
      const made = new Set<string>();
      for (const c of store.history(agentId)) {
        w.file([...hist, `${c.tick.toString().padStart(10, "0")}.ckpt`], c.blob);
        made.add(hex(parseCheckpoint(c.blob).wasmHash));
        n++;
      }
      // The earlier code of an upgraded agent: what audits and ships the segments it recorded.
      made.delete(row.wasmHash);
      let modulesDir = false;
      for (const hash of made) {
        const bytes = store.wasm(hash);
        if (!bytes) continue;
        if (!modulesDir) w.dir([...hist, MODULES_DIR]);
        modulesDir = true;
        w.file([...hist, MODULES_DIR, `${hash}.wasm`], bytes);
      }
      const base = store.historyBase(agentId);
      if (base) w.file([...hist, HISTORY_BASE_FILE], historyBaseFileText(base));
      // Payments journalled for ticks no checkpoint committed (the node died after paying): debited in
      // the export, signed with the agent's key, as the node debits them at its next start.
      const recorded = store.lineageEvents(agentId);
      const overrides = [...recorded, ...lostPaymentEvents(identity, head, recorded, store.unsettledPayments(agentId))];
      if (overrides.length > 0) w.file([...hist, OVERRIDES_FILE], overridesToJson(overrides));
      // Written as they are read, a segment at a time. The open run (this reader may not write the
      // store) is sealed in memory with the agent's key once all its segments are read.
      let eventsDir = false;
      const writeSegment = (seg: StoredSegment): void => {
        if (!eventsDir) w.dir([...hist, EVENTS_DIR]);
        eventsDir = true;
        const name = `${seg.fromTick.toString().padStart(10, "0")}-${seg.toTick.toString().padStart(10, "0")}.seg`;
        w.file([...hist, EVENTS_DIR, name], encodeSegmentFile(seg));
      };
      const open: StoredSegment[] = [];
      for (const seg of store.eachEventSegment(agentId)) {
        if (seg.leaf && !seg.runProof && !seg.signature) open.push(seg);
        else writeSegment(seg);
      }
      for (const seg of sealOpenInMemory(open, identity)) writeSegment(seg);
      out(`exported ${agentId} (${row.did}): ${n} checkpoints, head tick ${head.tick}, to ${o.out}`);
      return 0;
    });
  });
}

/** Imports an export into the database; returns the agent id. */
export function importCommand(dir: string, o: { dataDir: string }): string {
  const agentId = exportedAgentId(dir);
  // A file that cannot be read says so with its own code; one that does not decode is IDENTITY_CORRUPT.
  const identityBytes = readExportFile(join(dir, `${agentId}.identity`), "identity", IDENTITY_FILE_MAX_BYTES);
  let identity: ReturnType<typeof decodeIdentityFile>;
  try {
    identity = decodeIdentityFile(identityBytes);
  } catch (e) {
    throw new IgordError(ErrorCode.IdentityCorrupt, `${agentId}.identity: ${(e as Error).message}`);
  }
  const wasm = readExportFile(join(dir, `${agentId}.wasm`), "WASM", MAX_WASM_BYTES);
  const manifestText = exportedManifest(dir, agentId);
  parseManifest(manifestText, `${agentId}.manifest.json`);
  const hist = exportHistoryDir(dir, agentId);
  const { entries, overrides, problems, base } = readHistoryDirs([hist]);
  const report = verifyChain(entries, overrides, undefined, base);
  if (!report.valid || problems.length > 0) {
    throw new IgordError(ErrorCode.CheckpointChainBroken, `history of ${agentId} does not verify: ${[...problems, ...report.reasons].join("; ")}`);
  }
  // An export holds the agent's whole history, or the part its owner's retention kept behind a
  // signed base: a signed chain that starts later was cut by someone (as migration refuses it).
  const oldest = entries[0] ? parseCheckpoint(entries[0].bytes) : null;
  if (oldest && isSigned(oldest) && !equalBytes(oldest.prevHash, GENESIS_PREV_HASH) && !base) {
    throw new IgordError(ErrorCode.CheckpointChainBroken, `history of ${agentId} starts at tick ${oldest.tick}, after its genesis, and carries no signed history base (${HISTORY_BASE_FILE})`);
  }
  const did = didFromPublicKey(identity.publicKey);
  if (report.did !== did) throw new IgordError(ErrorCode.CheckpointForeignKey, `history is signed by ${report.did}, but the identity is ${did}`);
  // Every lineage event, those after no checkpoint of this history included (verifyChain checks
  // only those it meets), must be the agent's: admission refuses a package carrying one that is not.
  const unsigned = overrides.find((e) => !overrideSigned(identity.publicKey, e));
  if (unsigned) throw new IgordError(ErrorCode.CheckpointChainBroken, `history of ${agentId} does not verify: a lineage event after tick ${unsigned.tick} is not signed by ${did}`);
  const head = parseCheckpoint(readExportFile(join(dir, `${agentId}.checkpoint`), "checkpoint", MAX_CHECKPOINT_BYTES));
  const last = entries.at(-1) as ChainEntry;
  if (!Buffer.from(last.bytes).equals(Buffer.from(head.bytes))) {
    throw new IgordError(ErrorCode.CheckpointChainBroken, `${agentId}.checkpoint is not the last checkpoint of its history`);
  }
  if (headModule(overrides, checkpointHash(head.bytes), sha256Hex(wasm)) !== hex(head.wasmHash)) {
    throw new IgordError(ErrorCode.CheckpointWasmMismatch, `${agentId}.wasm does not match the checkpoint's WASM hash`);
  }
  const atTick = new Map(
    entries.map((e) => {
      const checkpoint = parseCheckpoint(e.bytes);
      return [checkpoint.tick, { checkpoint, hash: checkpointHash(e.bytes) }] as const;
    }),
  );
  // The earlier modules its checkpoints name (an upgraded agent's), and no other.
  const named = new Set([...atTick.values()].map((c) => hex(c.checkpoint.wasmHash)));
  const modules = [...readModules(hist, named)].map(([hash, bytes]) => ({ hash, bytes }));
  // Every segment stored must be the agent's own record of its ticks, as migration admits them.
  const segments = readSegments(hist);
  for (const seg of segments) {
    const forged = segmentSealProblem(seg, atTick.get(seg.toTick)?.checkpoint);
    if (forged) throw new IgordError(ErrorCode.EventLogForged, `history of ${agentId}: ${forged}`);
  }
  const receipts = readReceipts(join(dir, `${agentId}.receipts`), {
    agentId,
    headTick: head.tick,
    firstTick: oldest?.tick ?? head.tick,
    budgetAt: (tick) => atTick.get(tick)?.checkpoint.budget,
    lostPayments: lostPaymentDebits(overrides),
  });
  const lastTickAt = readLastTickAt(dir, agentId, head.tick);
  // Verified above: epochs never go back, so the head's is the newest the history reached.
  const seen = { major: head.epochMajor, generation: head.epochGeneration };
  const lease = importedLease(seen);
  const record = importRecord(identity, { hash: checkpointHash(head.bytes), tick: head.tick, budget: head.budget }, overrides, seen, lease.epoch, "import");
  const store = openStore(o.dataDir);
  try {
    store.importAgent(
      { agentId, did, wasmHash: sha256Hex(wasm), wasmBytes: wasm, manifest: manifestText, identity, lease },
      entries.map((e, i) => ({ ...commitFromBlob(agentId, e.bytes, "imported"), ...(i === entries.length - 1 && lastTickAt !== null ? { tickAt: lastTickAt } : {}) })),
      [...overrides, record],
      // Each segment was committed with the checkpoint at its last tick.
      segments.map((seg) => ({ ...seg, checkpointHash: atTick.get(seg.toTick)?.hash ?? new Uint8Array(32) })),
      base,
      modules,
      receipts,
    );
  } finally {
    store.close();
  }
  out(
    `imported ${agentId} (${did}) at tick ${head.tick} into ${join(o.dataDir, DB_FILE)}; it continues at epoch ${formatEpoch(lease.epoch)} ` +
      "(an export fences nothing: stop the agent on the node it came from)",
  );
  return agentId;
}

// ---- backup -----------------------------------------------------------------------------------

/** `igord backup <file>`: a consistent online copy of the node's database, checked before it is reported. */
export function backupCommand(dest: string, o: { dataDir: string }): number {
  const store = openStoreReadonly(o.dataDir);
  const started = Date.now();
  try {
    store.backupTo(dest);
  } finally {
    store.close();
  }
  const copy = SqliteStore.open(dest, { readonly: true });
  try {
    const agents = copy.listAgents();
    out(`backup:          ${dest} (${statSync(dest).size} bytes, ${Date.now() - started} ms)`);
    out(`agents:          ${agents.length}`);
    out(`checkpoints:     ${agents.reduce((n, a) => n + copy.historyCount(a.agentId), 0)}`);
  } finally {
    copy.close();
  }
  return 0;
}
