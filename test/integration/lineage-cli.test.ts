// The acceptance scenarios for durable agents, through the real igord binary: fresh run, restart,
// portable resume across two nodes, refused checkpoints, golden vectors, tampered histories, import.
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { encodeCheckpoint, MAX_CHECKPOINT_BYTES, parseCheckpoint } from "../../src/checkpoint/codec.js";
import { GENESIS_PREV_HASH, signCheckpoint } from "../../src/checkpoint/lineage.js";
import { hex, sha256 } from "../../src/hash/bytes.js";
import { decodeSegment, encodeSegment } from "../../src/eventlog/tick-log.js";
import { HostcallId } from "../../src/hostcalls/registry.js";
import { decodeSegmentFile, encodeSegmentFile } from "../../src/replay/audit-plan.js";
import { CHECKPOINTS_TOTAL_MAX_BYTES, SEGMENTS_TOTAL_MAX_BYTES } from "../../src/cli/export-folder.js";
import { decodeIdentityFile, generateKey } from "../../src/identity/keys.js";
import { EXAMPLES, ROOT, tempDir } from "../helpers/node.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { type Daemon, igord, killAll, startDaemon } from "../helpers/process.js";

afterEach(killAll);

const HEARTBEAT = join(EXAMPLES, "heartbeat.wasm");
const FAST = ["--tick-interval", "100ms", "--checkpoint-interval", "300ms"];
const tickLogged = (n: number) => (l: Record<string, unknown>) => l.event === "tick" || (l.event === "agent_log" && new RegExp(`tick ${n} `).test(String(l.msg)));

async function stop(d: Daemon): Promise<void> {
  d.child.kill("SIGINT");
  expect(await d.exit).toBe(0);
}

function inspectField(out: string, field: string): string {
  const m = new RegExp(`^${field}:\\s+(.*)$`, "m").exec(out);
  if (!m) throw new Error(`no ${field} in:\n${out}`);
  return m[1] as string;
}

/** The export exportedHistory copies, made once for the file (a daemon run, an export and a verify: ~3 s). */
let pristine: Promise<string> | null = null;
const pristineRoots: string[] = [];
afterAll(() => {
  for (const d of pristineRoots) rmSync(d, { recursive: true, force: true });
});

/** Runs heartbeat to tick 20 with a checkpoint every 60 ms and exports it: a valid history of ≥ 4 checkpoints. */
async function exportOnce(): Promise<string> {
  const root = tempDir();
  pristineRoots.push(root);
  const A = join(root, "A");
  const a = startDaemon(["run", HEARTBEAT, "--data-dir", A, "--tick-interval", "20ms", "--checkpoint-interval", "60ms"]);
  await a.waitFor((l) => l.event === "checkpoint_saved" && l.reason === "periodic");
  await a.waitFor((l) => l.event === "agent_log" && /tick 20 /.test(String(l.msg)));
  await stop(a);
  const ex = join(root, "ex");
  expect(igord(["export", "heartbeat", "--out", ex, "--data-dir", A]).status).toBe(0);
  const hist = join(ex, "history", "heartbeat");
  expect(readdirSync(hist).filter((f) => f.endsWith(".ckpt")).length).toBeGreaterThanOrEqual(4);
  expect(igord(["verify", hist]).status).toBe(0);
  return ex;
}

/** A copy, in `root/ex`, of a valid exported history of ≥ 4 checkpoints (exportOnce), for the test to alter. */
async function exportedHistory(root: string): Promise<{ ex: string; hist: string; files: string[] }> {
  pristine ??= exportOnce();
  const ex = join(root, "ex");
  cpSync(await pristine, ex, { recursive: true });
  const hist = join(ex, "history", "heartbeat");
  const files = readdirSync(hist).filter((f) => f.endsWith(".ckpt")).sort();
  return { ex, hist, files };
}

/** An exported history (exportedHistory) and its receipts file: path, bytes and the count it starts with. */
async function exportedReceipts(): Promise<{ root: string; ex: string; file: string; honest: Buffer; count: number }> {
  const root = tempDir();
  const { ex } = await exportedHistory(root);
  const file = join(ex, "heartbeat.receipts");
  const honest = readFileSync(file);
  return { root, ex, file, honest, count: honest.readUInt32LE(0) };
}

/** A file of `bytes` that takes no disk (sparse). */
function sparseFile(path: string, bytes: number): void {
  writeFileSync(path, "");
  truncateSync(path, bytes);
}

/** Imports `<root>/ex` into `<root>/C`: refused with each of `said` on stderr, and nothing stored. */
function expectImportRefused(root: string, ...said: string[]): void {
  const C = join(root, "C");
  const imp = igord(["import", join(root, "ex"), "--data-dir", C]);
  for (const s of said) expect(imp.stderr).toContain(s);
  expect(imp.status).toBe(1);
  expect(existsSync(join(C, "igord.db"))).toBe(false);
}

/** expectImportRefused with EXPORT_TOO_LARGE, from the files' sizes (fast, not after reading a gigabyte). */
function expectImportTooLarge(root: string): void {
  const started = Date.now();
  expectImportRefused(root, "EXPORT_TOO_LARGE");
  expect(Date.now() - started).toBeLessThan(10_000);
}

describe("durable agents through the CLI", () => {
  // Acceptance 1: igord run --budget 10, SIGINT → exit 0; agent id, did:key and budget shown; head v0x05, signed, tick ≥ 2, 0 < budget < 10.
  // Acceptance 2: the same data dir again → first tick N+1, same DID, budget only decreased.
  it("a fresh run persists signed v0x05 checkpoints; a restart continues at N+1 with the same DID", async () => {
    const A = join(tempDir(), "A");
    const d = startDaemon(["run", HEARTBEAT, "--budget", "10", "--data-dir", A, ...FAST]);
    const started = await d.waitFor((l) => l.event === "run_started");
    expect(started.agent).toBe("heartbeat");
    expect(String(started.did)).toMatch(/^did:key:z6Mk/);
    expect(started.budget).toBe("10.000000");
    await d.waitFor(tickLogged(3));
    await stop(d);

    const ins = igord(["inspect", "--agent", "heartbeat", "--data-dir", A]);
    expect(ins.status).toBe(0);
    expect(inspectField(ins.stdout, "version")).toBe("0x05 (header 209 bytes)");
    expect(inspectField(ins.stdout, "signature")).toBe("VALID");
    expect(inspectField(ins.stdout, "did")).toBe(started.did);
    const tick = BigInt(inspectField(ins.stdout, "tick"));
    expect(tick).toBeGreaterThanOrEqual(3n);
    const budget = BigInt(/\((\d+) µ¢\)/.exec(inspectField(ins.stdout, "budget"))?.[1] ?? "-1");
    expect(budget).toBeLessThan(10_000_000n);
    expect(budget).toBeGreaterThan(0n);

    const again = startDaemon(["run", HEARTBEAT, "--data-dir", A, ...FAST, "--log-level", "debug"]);
    const resumed = await again.waitFor((l) => l.event === "run_started");
    expect(resumed.did).toBe(started.did);
    expect(BigInt(String(resumed.tick))).toBe(tick);
    const firstTick = await again.waitFor((l) => l.event === "tick");
    expect(BigInt(String(firstTick.tick))).toBe(tick + 1n);
    expect(BigInt(String(firstTick.budget))).toBeLessThanOrEqual(budget);
    await stop(again);
    expect(igord(["verify", "--agent", "heartbeat", "--data-dir", A]).stdout).toMatch(/^VALID/);
  });

  // Acceptance 3: export from A, resume into B, run, verify the union → VALID, one DID, ticks 0..N, exit 0.
  it("portable: export from A, resume on B, run, and the union of both histories verifies", async () => {
    const root = tempDir();
    const [A, B] = [join(root, "A"), join(root, "B")];
    const a = startDaemon(["run", HEARTBEAT, "--data-dir", A, ...FAST]);
    const born = await a.waitFor((l) => l.event === "run_started");
    await a.waitFor(tickLogged(3));
    await stop(a);
    expect(igord(["export", "heartbeat", "--out", join(root, "expA"), "--data-dir", A]).status).toBe(0);
    const ex = join(root, "expA");
    expect(readdirSync(ex).sort()).toEqual(["heartbeat.checkpoint", "heartbeat.identity", "heartbeat.last-tick.json", "heartbeat.manifest.json", "heartbeat.receipts", "heartbeat.wasm", "history"]);

    const b = startDaemon([
      "resume", "--checkpoint", join(ex, "heartbeat.checkpoint"), "--wasm", join(ex, "heartbeat.wasm"),
      "--identity", join(ex, "heartbeat.identity"), "--data-dir", B, ...FAST,
    ]);
    const onB = await b.waitFor((l) => l.event === "run_started");
    expect(onB.did).toBe(born.did);
    await b.waitFor((l) => l.event === "checkpoint_saved" && l.reason === "periodic");
    await stop(b);
    expect(igord(["export", "heartbeat", "--out", join(root, "expB"), "--data-dir", B]).status).toBe(0);

    const v = igord(["verify", join(root, "expA"), join(root, "expB")]);
    expect(v.stdout).toMatch(/^VALID/);
    expect(v.stdout).toContain(`did: ${born.did}`);
    expect(v.stdout).toMatch(/ticks 0\.\.\d+/);
    expect(v.status).toBe(0);
  });

  it("resume --budget really overrides and is recorded as a signed top-up that verify accepts", async () => {
    const root = tempDir();
    const A = join(root, "A");
    const a = startDaemon(["run", HEARTBEAT, "--budget", "0.000002", "--price", "1", "--data-dir", A, ...FAST]);
    await a.waitFor((l) => l.event === "agent_stopped" && l.reason === "budget_exhausted");
    expect(await a.exit).toBe(0);
    igord(["export", "heartbeat", "--out", join(root, "ex"), "--data-dir", A]);
    const ex = join(root, "ex");
    const b = startDaemon([
      "resume", "--checkpoint", join(ex, "heartbeat.checkpoint"), "--wasm", join(ex, "heartbeat.wasm"),
      "--identity", join(ex, "heartbeat.identity"), "--budget", "5", "--data-dir", join(root, "B"), ...FAST,
    ]);
    const started = await b.waitFor((l) => l.event === "run_started");
    expect(started.budget).toBe("5.000000");
    await b.waitFor((l) => l.event === "checkpoint_saved" && l.reason === "periodic");
    await stop(b);
    const v = igord(["verify", "--agent", "heartbeat", "--data-dir", join(root, "B")]);
    expect(v.stdout).toMatch(/^VALID/);
  });

  // Seven igord processes, one after another: 30 s was too short for them at load 10.
  // Acceptance 12: 0 B, 30 B, unknown version, negative budget, other WASM, other key → each its own message; nothing written.
  it("refuses empty, truncated, unknown-version, negative-budget and foreign checkpoints, writing nothing", { timeout: 120_000 }, () => {
    const root = tempDir();
    const B = join(root, "B");
    const key = generateKey();
    const idFile = join(root, "id");
    writeFileSync(idFile, Buffer.concat([Buffer.from([64, 0, 0, 0]), key.seed, key.publicKey]));
    const wasmHash = sha256(readFileSync(HEARTBEAT));
    const good = (over: Partial<Parameters<typeof encodeCheckpoint>[0]> = {}) =>
      signCheckpoint(
        encodeCheckpoint(
          { budget: 100n, price: 1000n, tick: 1n, wasmHash, epochMajor: 0n, epochGeneration: 0n, leaseExpiry: 0n, prevHash: GENESIS_PREV_HASH, publicKey: key.publicKey, ...over },
          new Uint8Array(0),
        ),
        key,
      );
    const unknownVersion = good();
    unknownVersion[0] = 0x09;
    const negative = good();
    new DataView(negative.buffer).setBigInt64(1, -1n, true);
    const cases: [string, Uint8Array, RegExp][] = [
      ["empty", new Uint8Array(0), /empty \(0 bytes\) \[CHECKPOINT_TRUNCATED\]/],
      ["thirty", new Uint8Array(30).fill(4), /30 bytes, shorter than the 209-byte v0x04 header/],
      ["v9", unknownVersion, /unknown version byte 0x09 .*\[CHECKPOINT_VERSION\]/],
      ["negative", negative, /negative budget \(-1\) \[CHECKPOINT_INVALID\]/],
      ["foreign-wasm", good({ wasmHash: sha256(new Uint8Array([1])) }), /was made for WASM .* \[CHECKPOINT_WASM_MISMATCH\]/],
    ];
    for (const [name, bytes, message] of cases) {
      const file = join(root, `${name}.ckpt`);
      writeFileSync(file, bytes);
      const r = igord(["resume", "--checkpoint", file, "--wasm", HEARTBEAT, "--identity", idFile, "--data-dir", B]);
      expect(r.status, name).toBe(1);
      expect(r.stderr, name).toMatch(message);
      // Refused from the files alone, before a node starts (no listener, no workers, no lock taken).
      expect(r.stdout, name).not.toContain("node_starting");
    }
    const stranger = generateKey();
    const foreignKey = signCheckpoint(encodeCheckpoint({ budget: 1n, price: 1n, tick: 1n, wasmHash, epochMajor: 0n, epochGeneration: 0n, leaseExpiry: 0n, prevHash: GENESIS_PREV_HASH, publicKey: stranger.publicKey }, new Uint8Array(0)), stranger);
    writeFileSync(join(root, "foreign.ckpt"), foreignKey);
    const r = igord(["resume", "--checkpoint", join(root, "foreign.ckpt"), "--wasm", HEARTBEAT, "--identity", idFile, "--data-dir", B]);
    expect(r.stderr).toMatch(/not by the agent's identity .* \[CHECKPOINT_FOREIGN_KEY\]/);
    expect(r.stdout).not.toContain("node_starting");
    // Nothing was stored on B.
    const agents = igord(["inspect", "--agent", "heartbeat", "--data-dir", B]);
    expect(agents.status).toBe(1);
  });

  // Acceptance 13: igor's golden vectors inspect to the documented version, budget, price, tick, epoch, header size (and state, size, WASM hash).
  it("inspect shows igor's golden vectors with their documented values", () => {
    const vectors = join(ROOT, "test", "fixtures", "igor-vectors");
    // The values igor documents for its testdata (shared/reference/igor.md §3.2), each checkpoint bound
    // to the WASM bytes "known-wasm-binary-for-golden-test".
    const wasmHash = hex(sha256(new TextEncoder().encode("known-wasm-binary-for-golden-test")));
    const documented: [string, Record<string, string>, string][] = [
      ["checkpoint.bin", {
        version: "0x02 (header 57 bytes)", budget: "1.000000 (1000000 µ¢)", price: "0.001000/s (1000 µ¢/s)", tick: "5",
        epoch: "(0,0)", "state size": "8 bytes", "total size": "65 bytes",
      }, "03 00 00 00 00 00 00 00"],
      ["checkpoint_empty_state.bin", {
        version: "0x02 (header 57 bytes)", budget: "0.500000 (500000 µ¢)", price: "0.002000/s (2000 µ¢/s)", tick: "0",
        epoch: "(0,0)", "state size": "0 bytes", "total size": "57 bytes",
      }, ""],
      ["checkpoint_v3.bin", {
        version: "0x03 (header 81 bytes)", budget: "2.000000 (2000000 µ¢)", price: "0.001500/s (1500 µ¢/s)", tick: "10",
        epoch: "(3,7)", "lease expiry": new Date(1_700_000_000_000).toISOString(), "state size": "8 bytes", "total size": "89 bytes",
      }, "05 00 00 00 00 00 00 00"],
    ];
    for (const [file, fields, stateBytes] of documented) {
      const r = igord(["inspect", "--state", join(vectors, file)]);
      expect(r.status, file).toBe(0);
      for (const [field, value] of Object.entries(fields)) expect(inspectField(r.stdout, field), `${file} ${field}`).toBe(value);
      expect(inspectField(r.stdout, "wasm hash"), file).toBe(wasmHash);
      if (stateBytes !== "") expect(r.stdout, file).toMatch(new RegExp(`^\\s+00000000  ${stateBytes} `, "m"));
    }
  });

  it("verify takes an export by its folder, its history/ folder or its history/<agent> folder; a folder without histories says what to give", async () => {
    const root = tempDir();
    const { ex, hist } = await exportedHistory(root);
    for (const dir of [ex, join(ex, "history"), hist]) expect(igord(["verify", dir]).stdout, dir).toMatch(/^VALID/m);
    const empty = igord(["verify", root]);
    expect(empty.status).toBe(1);
    expect(empty.stderr).toMatch(/no \.ckpt files in .*give an export folder, its history\/<agent> folder, or a folder of \.ckpt files/);
  });

  // Acceptance 14: a flipped byte and a deleted middle checkpoint → INVALID with the reason, exit 1.
  it("verify flags a flipped byte and a deleted middle checkpoint in an exported history (exit 1)", async () => {
    const root = tempDir();
    const { hist, files } = await exportedHistory(root);

    const flipped = join(hist, files[2] as string);
    const original = readFileSync(flipped);
    const bad = Buffer.from(original);
    bad[100] = (bad[100] ?? 0) ^ 1;
    writeFileSync(flipped, bad);
    const v1 = igord(["verify", hist]);
    expect(v1.status).toBe(1);
    expect(v1.stdout).toMatch(/^INVALID/);
    expect(v1.stdout).toContain(`${files[2]}: signature INVALID`);
    writeFileSync(flipped, original);

    // A garbled overrides.json is named as a reason, not a crash or a silently ignored file.
    const overrides = join(hist, "overrides.json");
    writeFileSync(overrides, "[{ not json");
    const v3 = igord(["verify", hist]);
    expect(v3.status).toBe(1);
    expect(v3.stdout).toMatch(/^INVALID/);
    expect(v3.stdout).toMatch(/reason: overrides\.json: not JSON/);
    writeFileSync(overrides, JSON.stringify([{ afterHash: "zz", tick: "-5", oldBudget: "1", newBudget: "2", reason: "r", signature: "00" }]));
    const v4 = igord(["verify", hist]);
    expect(v4.status).toBe(1);
    expect(v4.stdout).toMatch(/reason: overrides\.json: entry 0: afterHash must be 32 bytes of lowercase hex; tick must be a decimal string/);
    unlinkSync(overrides);

    unlinkSync(join(hist, files[2] as string));
    const v2 = igord(["verify", hist]);
    expect(v2.status).toBe(1);
    expect(v2.stdout).toMatch(new RegExp(`${files[3]}: prevHash does not match ${files[1]}`));
    rmSync(root, { recursive: true, force: true });
  });

  it("import into a running daemon's data dir starts the agent at once", async () => {
    const root = tempDir();
    const a = startDaemon(["run", HEARTBEAT, "--data-dir", join(root, "A"), ...FAST]);
    await a.waitFor(tickLogged(2));
    await stop(a);
    igord(["export", "heartbeat", "--out", join(root, "ex"), "--data-dir", join(root, "A")]);
    const d = startDaemon(["--data-dir", join(root, "D"), "--agents-dir", join(root, "none"), "--control", "127.0.0.1:0", ...FAST]);
    const listening = await d.waitFor((l) => l.event === "control_listening");
    const imp = igord(["import", join(root, "ex"), "--data-dir", join(root, "D"), "--control", `127.0.0.1:${listening.port}`]);
    expect(imp.status).toBe(0);
    expect(imp.stdout).toMatch(/the running daemon started heartbeat at tick \d+/);
    await d.waitFor((l) => l.event === "agent_log" && l.agent === "heartbeat");
    await stop(d);
  });

  it("import brings an exported agent into another node, which resumes it; a second import is refused", async () => {
    const root = tempDir();
    const a = startDaemon(["run", HEARTBEAT, "--data-dir", join(root, "A"), ...FAST]);
    const born = await a.waitFor((l) => l.event === "run_started");
    await a.waitFor(tickLogged(2));
    await stop(a);
    igord(["export", "heartbeat", "--out", join(root, "ex"), "--data-dir", join(root, "A")]);
    const C = join(root, "C");
    const imp = igord(["import", join(root, "ex"), "--data-dir", C]);
    expect(imp.status).toBe(0);
    expect(imp.stdout).toContain(String(born.did));
    const again = igord(["import", join(root, "ex"), "--data-dir", C]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already exists .*\[AGENT_EXISTS\]/);

    const agents = join(root, "empty-agents");
    const d = startDaemon(["--data-dir", C, "--agents-dir", agents, "--control", "off", ...FAST]);
    const resumed = await d.waitFor((l) => l.event === "agent_started" && l.agent === "heartbeat");
    expect(resumed.fresh).toBe(false);
    await stop(d);
    copyFileSync(HEARTBEAT, join(root, "unused.wasm"));
  });

  it("import refuses an export whose files name an invalid agent id (AGENT_ID_INVALID), as run and migration do, and stores nothing", async () => {
    const root = tempDir();
    const { ex } = await exportedHistory(root);
    // The id comes from the file names only: a renamed export names another.
    const bad = "bad id\n{\"event\":\"forged\"}";
    for (const ext of ["checkpoint", "identity", "wasm", "manifest.json", "receipts"]) renameSync(join(ex, `heartbeat.${ext}`), join(ex, `${bad}.${ext}`));
    renameSync(join(ex, "history", "heartbeat"), join(ex, "history", bad));
    const C = join(root, "C");
    const imp = igord(["import", ex, "--data-dir", C]);
    expect(imp.stderr).toContain("[AGENT_ID_INVALID]");
    expect(imp.status).toBe(1);
    expect(existsSync(join(C, "igord.db"))).toBe(false);
  });

  it("import refuses an export whose event-log segment was altered after it was signed (EVENT_LOG_FORGED), and stores nothing", async () => {
    const root = tempDir();
    const { hist } = await exportedHistory(root);
    const events = join(hist, "events");
    const name = readdirSync(events).filter((f) => f.endsWith(".seg")).sort()[0]!;
    const seg = decodeSegmentFile(new Uint8Array(readFileSync(join(events, name))), name);
    const logs = decodeSegment(seg.blob);
    const entry = logs.flatMap((l) => l.entries).find((e) => e.id === HostcallId.log_emit)!;
    entry.payload = new TextEncoder().encode(new TextDecoder().decode(entry.payload).replace("heartbeat", "HEARTBEAT"));
    writeFileSync(join(events, name), encodeSegmentFile({ ...seg, blob: encodeSegment(logs) }));
    expectImportRefused(root, "EVENT_LOG_FORGED");
  });

  it("import refuses an export whose event-log segments add up past SEGMENTS_TOTAL_MAX_BYTES before reading any of them (EXPORT_TOO_LARGE), and stores nothing", async () => {
    const root = tempDir();
    const { hist } = await exportedHistory(root);
    // Two files, each under the per-file cap, together over the total (sparse: no disk is used).
    for (const name of ["9999999990-9999999991.seg", "9999999992-9999999993.seg"]) sparseFile(join(hist, "events", name), SEGMENTS_TOTAL_MAX_BYTES / 2 + 1);
    expectImportTooLarge(root);
  });

  it("import reads no symbolic link in the export folder: a manifest linked to another file of the importer's is refused, not stored (and shipped with the agent)", async () => {
    const root = tempDir();
    const { ex } = await exportedHistory(root);
    // Any JSON object the importer can read passes as a manifest (unknown keys are kept verbatim).
    const secret = join(root, "credentials.json");
    writeFileSync(secret, JSON.stringify({ token: "s3cr3t" }));
    const manifest = join(ex, "heartbeat.manifest.json");
    rmSync(manifest, { force: true });
    symlinkSync(secret, manifest);
    expectImportRefused(root, "symbolic link");
  });

  it("import and verify --replay read no folder of the export through a symbolic link (history/<agent>/, events/), even to an intact copy: refused EXPORT_FOLDER_INVALID, nothing stored", async () => {
    const root = tempDir();
    const { ex, hist } = await exportedHistory(root);
    // The same files, moved elsewhere and linked back: followed, the import would succeed.
    const elsewhere = join(root, "elsewhere");
    mkdirSync(elsewhere);
    renameSync(join(hist, "events"), join(elsewhere, "events"));
    symlinkSync(join(elsewhere, "events"), join(hist, "events"));
    expectImportRefused(root, "EXPORT_FOLDER_INVALID", "events is a symbolic link");
    const audit = igord(["verify", "--replay", ex]);
    expect(audit.stderr).toContain("EXPORT_FOLDER_INVALID");
    expect(audit.status).not.toBe(0);
    // Linked back as they were, the same files import.
    rmSync(join(hist, "events"));
    renameSync(join(elsewhere, "events"), join(hist, "events"));
    renameSync(hist, join(elsewhere, "heartbeat"));
    symlinkSync(join(elsewhere, "heartbeat"), hist);
    expectImportRefused(root, "EXPORT_FOLDER_INVALID", "heartbeat is a symbolic link");
    rmSync(hist);
    renameSync(join(elsewhere, "heartbeat"), hist);
    expect(igord(["import", ex, "--data-dir", join(root, "C")]).status).toBe(0);
  });

  it("import refuses a lineage event outside the chain that the agent did not sign, as admission does (CHECKPOINT_CHAIN_BROKEN), and stores nothing", async () => {
    const root = tempDir();
    const { hist } = await exportedHistory(root);
    // Well formed, after a checkpoint the history does not hold, its signature anyone's.
    const forged = { kind: "budget_override", afterHash: "11".repeat(32), tick: "3", oldBudget: "1", newBudget: "1000000", reason: "forged", signature: "22".repeat(64) };
    writeFileSync(join(hist, "overrides.json"), JSON.stringify([forged]));
    expectImportRefused(root, "CHECKPOINT_CHAIN_BROKEN", "is not signed by");
  });

  it("import and verify refuse a history whose checkpoint files add up past CHECKPOINTS_TOTAL_MAX_BYTES before reading any of them (EXPORT_TOO_LARGE), and import stores nothing", async () => {
    const root = tempDir();
    const { hist } = await exportedHistory(root);
    // Files each within MAX_CHECKPOINT_BYTES, together over the total (sparse: no disk is used).
    const count = Math.floor(CHECKPOINTS_TOTAL_MAX_BYTES / MAX_CHECKPOINT_BYTES) + 1;
    for (let i = 0; i < count; i++) sparseFile(join(hist, `99999999${String(i).padStart(2, "0")}.ckpt`), MAX_CHECKPOINT_BYTES);
    expectImportTooLarge(root);
    const started = Date.now();
    const ver = igord(["verify", hist]);
    expect(ver.stderr).toContain("EXPORT_TOO_LARGE");
    expect(ver.status).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("import and verify --replay read only the earlier modules the checkpoints name: a stray file in modules/ is never read", async () => {
    const root = tempDir();
    const { ex, hist } = await exportedHistory(root);
    mkdirSync(join(hist, "modules"), { recursive: true });
    // Named like a module, but no checkpoint names it (and its bytes do not even hash to its name).
    writeFileSync(join(hist, "modules", `${"ab".repeat(32)}.wasm`), "not a module");
    expect(igord(["verify", "--replay", ex]).status).toBe(0);
    const C = join(root, "C");
    const imp = igord(["import", ex, "--data-dir", C]);
    expect(imp.stderr).toBe("");
    expect(imp.status).toBe(0);
  });

  it("import stores the export's node receipts, each checked against its node's key and the history's ticks; an altered one is refused RECEIPT_INVALID and nothing is stored", async () => {
    const { root, ex, file, honest, count } = await exportedReceipts();
    // The node signs a receipt at least when the agent stops.
    expect(count).toBeGreaterThanOrEqual(1);
    const B = join(root, "B");
    expect(igord(["import", ex, "--data-dir", B, "--control", "off"]).status).toBe(0);
    const store = SqliteStore.open(join(B, DB_FILE), { readonly: true });
    const stored = store.receipts("heartbeat");
    store.close();
    expect(stored).toHaveLength(count);
    expect(Buffer.from(stored.at(-1)!.blob).equals(honest.subarray(honest.length - stored.at(-1)!.blob.byteLength))).toBe(true);
    // The first receipt's agent id, one byte changed: its node's signature no longer holds.
    const altered = Buffer.from(honest);
    altered[12] = altered[12]! ^ 1;
    writeFileSync(file, altered);
    const C = join(root, "C");
    const imp = igord(["import", ex, "--data-dir", C, "--control", "off"]);
    expect(imp.stderr).toContain("RECEIPT_INVALID");
    expect(imp.status).toBe(1);
    expect(existsSync(join(C, "igord.db"))).toBe(false);
  });

  it("import stores each of the export's receipts once: a receipts file that lists them twice does not make the agent's node count them twice", async () => {
    const { root, ex, file, honest, count } = await exportedReceipts();
    const twice = Buffer.concat([Buffer.alloc(4), honest.subarray(4), honest.subarray(4)]);
    twice.writeUInt32LE(2 * count, 0);
    writeFileSync(file, twice);
    const B = join(root, "B");
    expect(igord(["import", ex, "--data-dir", B, "--control", "off"]).status).toBe(0);
    const store = SqliteStore.open(join(B, DB_FILE), { readonly: true });
    try {
      expect(store.receiptCount("heartbeat")).toBe(count);
    } finally {
      store.close();
    }
  });

  // Acceptance 36: renewed lease, exported, imported, runs; verify of the new node and of the union VALID.
  it("import and resume --checkpoint continue at the next major epoch, recorded in the lineage, so verify stays VALID after a renewed lease", async () => {
    const root = tempDir();
    const A = join(root, "A");
    // A short lease renews every few hundred ms: the exported head carries a generation above 0.
    const a = startDaemon(["run", HEARTBEAT, "--data-dir", A, ...FAST, "--lease-duration", "1s", "--log-level", "debug"]);
    const renewed = await a.waitFor((l) => l.event === "lease_state" && l.why === "renewed" && Number(l.generation) >= 2);
    // Renewals are written by the lease sweep, between ticks: the head carries the generation once a
    // checkpoint of a tick committed after the renewal is saved (the last tick logged before it is
    // the agent's committed tick then).
    const before = a.lines.slice(0, a.lines.indexOf(renewed));
    const tickAtRenewal = Math.max(0, ...before.filter((l) => l.event === "agent_log").map((l) => Number(l.tick)));
    await a.waitFor((l) => l.event === "checkpoint_saved" && Number(l.tick) > tickAtRenewal);
    await stop(a);
    const exported = inspectField(igord(["inspect", "--agent", "heartbeat", "--data-dir", A]).stdout, "epoch");
    expect(exported).toMatch(/^\(0,([2-9]|\d\d+)\)$/);
    const ex = join(root, "ex");
    expect(igord(["export", "heartbeat", "--out", ex, "--data-dir", A]).status).toBe(0);

    const B = join(root, "B");
    const imp = igord(["import", ex, "--data-dir", B, "--control", "off"]);
    expect(imp.status).toBe(0);
    expect(imp.stdout).toMatch(/continues at epoch \(1,0\)/);
    const b = startDaemon(["run", HEARTBEAT, "--data-dir", B, ...FAST, "--lease-duration", "1s"]);
    await b.waitFor((l) => l.event === "checkpoint_saved" && l.reason === "periodic");
    await stop(b);
    expect(inspectField(igord(["inspect", "--agent", "heartbeat", "--data-dir", B]).stdout, "epoch")).toMatch(/^\(1,\d+\)$/);
    const verified = igord(["verify", "--agent", "heartbeat", "--data-dir", B]);
    expect(verified.stdout).toMatch(/^VALID/);
    const exB = join(root, "exB");
    expect(igord(["export", "heartbeat", "--out", exB, "--data-dir", B]).status).toBe(0);
    const records = JSON.parse(readFileSync(join(exB, "history", "heartbeat", "overrides.json"), "utf8")) as { reason: string }[];
    expect(records.map((r) => r.reason)).toContainEqual(expect.stringMatching(new RegExp(`^import: continues at epoch \\(1,0\\) after ${exported.replace(/[()]/g, "\\$&")}`)));
    expect(igord(["verify", exB]).stdout).toMatch(/^VALID/);

    const C = join(root, "C");
    const c = startDaemon([
      "resume", "--checkpoint", join(ex, "heartbeat.checkpoint"), "--wasm", join(ex, "heartbeat.wasm"),
      "--identity", join(ex, "heartbeat.identity"), "--data-dir", C, ...FAST, "--lease-duration", "1s",
    ]);
    await c.waitFor((l) => l.event === "checkpoint_saved" && l.reason === "periodic");
    await stop(c);
    expect(inspectField(igord(["inspect", "--agent", "heartbeat", "--data-dir", C]).stdout, "epoch")).toMatch(/^\(1,\d+\)$/);
    expect(igord(["verify", "--agent", "heartbeat", "--data-dir", C]).stdout).toMatch(/^VALID/);
    expect(igord(["verify", join(ex, "history", "heartbeat"), join(exB, "history", "heartbeat")]).stdout).toMatch(/^VALID/);
  });

  it("resume --checkpoint extending a stored agent with a checkpoint from a newer epoch moves its lease above that epoch", async () => {
    const root = tempDir();
    const A = join(root, "A");
    const a = startDaemon(["run", HEARTBEAT, "--data-dir", A, ...FAST]);
    await a.waitFor(tickLogged(2));
    await stop(a);
    const ex = join(root, "ex");
    expect(igord(["export", "heartbeat", "--out", ex, "--data-dir", A]).status).toBe(0);
    // The next checkpoint, as a copy elsewhere at epoch (0,9) would have signed it.
    const key = decodeIdentityFile(new Uint8Array(readFileSync(join(ex, "heartbeat.identity"))));
    const headBlob = new Uint8Array(readFileSync(join(ex, "heartbeat.checkpoint")));
    const head = parseCheckpoint(headBlob);
    const next = signCheckpoint(
      encodeCheckpoint({ ...head, tick: head.tick + 1n, epochMajor: 0n, epochGeneration: 9n, prevHash: sha256(headBlob) }, head.state),
      key,
    );
    writeFileSync(join(root, "next.ckpt"), next);
    const b = startDaemon(["resume", "--checkpoint", join(root, "next.ckpt"), "--wasm", HEARTBEAT, "--data-dir", A, ...FAST]);
    await b.waitFor((l) => l.event === "checkpoint_saved" && l.reason === "periodic");
    await stop(b);
    expect(inspectField(igord(["inspect", "--agent", "heartbeat", "--data-dir", A]).stdout, "epoch")).toMatch(/^\(1,\d+\)$/);
    expect(igord(["verify", "--agent", "heartbeat", "--data-dir", A]).stdout).toMatch(/^VALID/);
  });

  // Acceptance 14: ticks backwards, a changed key, a budget increase → INVALID with the reason, exit 1.
  it("verify flags ticks going backwards, a changed key and a budget increase without a signed top-up, each properly signed and chained, with the reason (exit 1)", async () => {
    const root = tempDir();
    const { ex, hist, files } = await exportedHistory(root);
    const key = decodeIdentityFile(new Uint8Array(readFileSync(join(ex, "heartbeat.identity"))));
    const prevName = files.at(-2) as string;
    const lastName = files.at(-1) as string;
    const prevBlob = new Uint8Array(readFileSync(join(hist, prevName)));
    const prev = parseCheckpoint(prevBlob);
    const last = parseCheckpoint(new Uint8Array(readFileSync(join(hist, lastName))));
    // Each forgery replaces the head with a checkpoint that chains onto its predecessor and is signed:
    // only the one rule it breaks can find it.
    const forge = (over: Partial<Parameters<typeof encodeCheckpoint>[0]>, signer = key) =>
      signCheckpoint(encodeCheckpoint({ ...last, prevHash: sha256(prevBlob), ...over }, last.state), signer);
    const stranger = generateKey();
    const cases: [string, Uint8Array, string][] = [
      ["backwards", forge({ tick: prev.tick - 1n }), `${lastName}: tick ${prev.tick - 1n} does not increase (previous ${prevName} is tick ${prev.tick})`],
      ["other-key", forge({ publicKey: stranger.publicKey }, stranger), `${lastName}: signed by a different key (did:key:z6Mk`],
      ["more-budget", forge({ budget: prev.budget + 1000n }), `${lastName}: budget increased from ${prev.budget} to ${prev.budget + 1000n} without a recorded top-up`],
    ];
    for (const [name, forged, reason] of cases) {
      const copy = join(root, name);
      cpSync(hist, copy, { recursive: true });
      writeFileSync(join(copy, lastName), forged);
      const v = igord(["verify", copy]);
      expect(v.status, name).toBe(1);
      expect(v.stdout, name).toMatch(/^INVALID/);
      expect(v.stdout, name).toContain(reason);
      // The forgery is found by its own rule only: the chain and signature still hold.
      expect(v.stdout, name).not.toMatch(/signature INVALID|prevHash does not match/);
    }
  });
});
