// Bad agents are refused before any tick with an error naming the problem, and nothing is stored;
// good agents in the same directory keep running.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { MAX_MANIFEST_BYTES } from "../../src/manifest/manifest.js";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type IgordError, isIgordError } from "../../src/errors.js";
import Database from "better-sqlite3";
import { DB_FILE } from "../../src/store/sqlite-store.js";
import { startAgent } from "../../src/node/agent-lifecycle.js";
import { hex, sha256 } from "../../src/hash/bytes.js";
import type { TickEvent } from "../../src/scheduler/scheduler.js";
import { AS_FIXTURES, EXAMPLES, startTestNode, stopAllNodes, storedHead, type TestNode } from "../helpers/node.js";
import { segmentsView } from "../helpers/checkpoint-store.js";
import { waitUntil } from "../helpers/wait.js";
import { CAPS, wat2wasm, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAllNodes);

async function refusal(t: TestNode, o: Parameters<TestNode["node"]["addAgent"]>[0]): Promise<IgordError> {
  try {
    await t.node.addAgent(o);
  } catch (e) {
    if (isIgordError(e)) {
      // Nothing was stored and nothing runs.
      expect(
        t.node.scheduler.list().find((a) => a.wasmPath.endsWith(o.wasmPath.split("/").pop() ?? "")),
      ).toBeUndefined();
      return e;
    }
    throw e;
  }
  throw new Error(`expected ${o.wasmPath} to be refused`);
}

function copyExample(t: TestNode, name: string, manifest?: unknown): string {
  const dir = join(t.dir, "wasm");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.wasm`);
  copyFileSync(join(EXAMPLES, `${name}.wasm`), path);
  if (manifest !== undefined) writeFileSync(join(dir, `${name}.manifest.json`), JSON.stringify(manifest));
  return path;
}

describe("loading agents", () => {
  // Acceptance 7: garbage, 0 bytes, empty module, missing agent_checkpoint_ptr → clear errors, no agent.
  it("refuses malformed modules with a clear error", async () => {
    const t = await startTestNode();
    const dir = join(t.dir, "wasm");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "garbage.wasm"), Buffer.from("this is not wasm at all"));
    writeFileSync(join(dir, "zero.wasm"), new Uint8Array(0));
    writeFileSync(join(dir, "empty.wasm"), await wat2wasm("(module)"));
    const garbage = await refusal(t, { wasmPath: join(dir, "garbage.wasm") });
    expect(garbage.code).toBe("WASM_MALFORMED");
    expect(garbage.message).toMatch(/garbage\.wasm is not a valid WebAssembly module/);
    expect((await refusal(t, { wasmPath: join(dir, "zero.wasm") })).message).toMatch(/empty \(0 bytes\)/);
    const empty = await refusal(t, { wasmPath: join(dir, "empty.wasm") });
    expect(empty.code).toBe("WASM_MISSING_EXPORT");
    expect(empty.message).toMatch(
      /agent_init, agent_tick, agent_checkpoint, agent_checkpoint_ptr, agent_resume/,
    );
    const noPtr = await refusal(t, {
      wasmPath: await writeWat(dir, "noptr", watAgent({ omit: ["agent_checkpoint_ptr"] })),
    });
    expect(noPtr.message).toMatch(/missing required export agent_checkpoint_ptr$/);
    expect((await refusal(t, { wasmPath: join(dir, "missing.wasm") })).code).toBe("WASM_NOT_FOUND");
    expect(t.node.scheduler.list()).toEqual([]);
  });

  // Acceptance 5: igor.rand_bytes with only clock granted fails at load naming the import, nothing stored.
  it("deny by default: an import the manifest does not grant fails at load, before any tick", async () => {
    const t = await startTestNode();
    const e = await refusal(t, { wasmPath: copyExample(t, "survivor", CAPS("clock", "log")) });
    expect(e.code).toBe("CAPABILITY_NOT_GRANTED");
    expect(e.message).toContain("igor.rand_bytes");
    expect(storedHead(t.config.dataDir, "survivor")).toBeUndefined();
  });

  // Acceptance 5: a capability the node does not offer fails naming it.
  it("a manifest asking for a capability the node does not offer fails naming it", async () => {
    const t = await startTestNode({ capabilities: "clock,log" });
    const e = await refusal(t, { wasmPath: copyExample(t, "survivor", CAPS("clock", "rand", "log")) });
    expect(e.code).toBe("CAPABILITY_NOT_OFFERED");
    expect(e.message).toContain('"rand"');
  });

  it("a capability change at run time applies to the next load", async () => {
    const t = await startTestNode();
    const path = copyExample(t, "survivor", CAPS("clock", "rand", "log"));
    t.node.capabilities.replace(["clock", "log"]);
    expect((await refusal(t, { wasmPath: path })).code).toBe("CAPABILITY_NOT_OFFERED");
    t.node.capabilities.replace(["clock", "log", "rand"]);
    expect((await t.node.addAgent({ wasmPath: path })).status).toBe("running");
  });

  // Acceptance 6: invalid JSON, version 0, memory above 64 MiB refused; exactly 64 MiB loads.
  it("validates manifests: invalid JSON, version 0, memory above 64 MiB; exactly 64 MiB loads", async () => {
    const t = await startTestNode();
    const dir = join(t.dir, "wasm");
    const path = await writeWat(dir, "m", watAgent());
    const put = (m: string) => writeFileSync(join(dir, "m.manifest.json"), m);
    put("{oops");
    expect((await refusal(t, { wasmPath: path })).message).toMatch(/m\.manifest\.json: is not valid JSON/);
    put('{"capabilities": {"clock": {"version": 0}}}');
    expect((await refusal(t, { wasmPath: path })).message).toMatch(/version must be an integer >= 1/);
    put('{"resource_limits": {"max_memory_bytes": 134217728}}');
    expect((await refusal(t, { wasmPath: path })).message).toMatch(/above the maximum/);
    put('{"resource_limits": {"max_memory_bytes": 67108864}}');
    expect((await t.node.addAgent({ wasmPath: path })).status).toBe("running");
  });

  // Acceptance 6: an explicit manifest path that does not exist is an error.
  it("an explicit --manifest path that does not exist is an error", async () => {
    const t = await startTestNode();
    const e = await refusal(t, {
      wasmPath: copyExample(t, "heartbeat"),
      manifestPath: join(t.dir, "nope.json"),
    });
    expect(e.code).toBe("MANIFEST_NOT_FOUND");
    expect(e.message).toContain("nope.json");
  });

  it("refuses a module whose initial memory exceeds its cap", async () => {
    const t = await startTestNode();
    const path = await writeWat(
      join(t.dir, "wasm"),
      "big",
      watAgent({ memory: '(memory (export "memory") 32)' }),
      {
        resource_limits: { max_memory_bytes: 1048576 },
      },
    );
    const e = await refusal(t, { wasmPath: path });
    expect(e.code).toBe("WASM_MEMORY_LIMIT");
    expect(e.message).toMatch(/32 pages.*limit of 16 pages/);
  });

  it("refuses AssemblyScript's Math.random (env.seed) and serves Date.now through the clock", async () => {
    const t = await startTestNode({ "tick-interval": "20ms" });
    const e = await refusal(t, { wasmPath: join(AS_FIXTURES, "uses_math_random.wasm") });
    expect(e.code).toBe("IMPORT_REFUSED");
    expect(e.message).toMatch(/env\.seed/);
    const dir = join(t.dir, "wasm");
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(AS_FIXTURES, "uses_date.wasm"), join(dir, "uses_date.wasm"));
    writeFileSync(join(dir, "uses_date.manifest.json"), JSON.stringify(CAPS("clock", "log")));
    await t.node.addAgent({ wasmPath: join(dir, "uses_date.wasm") });
    const tick = await t.waitFor<TickEvent>("tick", (ev) => ev.agentId === "uses_date");
    expect(tick.events.map((en) => en.id)).toEqual([1, 3]); // clock (via Date.now), then log
    const ms = Number(new DataView(tick.events[0]!.payload.buffer).getBigInt64(0, true) / 1_000_000n);
    expect(Math.abs(ms - Date.now())).toBeLessThan(5000);
  });

  it("an AssemblyScript agent without malloc resumes through its runtime exports (__new/__pin)", async () => {
    const t = await startTestNode({ "tick-interval": "10ms", "fast-tick-interval": "10ms" });
    const path = join(AS_FIXTURES, "runtime_alloc.wasm");
    await t.node.addAgent({ wasmPath: path });
    await t.waitFor<TickEvent>("tick",
      (e) => e.agentId === "runtime_alloc" && e.tick === 3n,
    );
    await t.stop();
    const saved = storedHead(t.config.dataDir, "runtime_alloc")!;
    expect(saved.tick).toBeGreaterThanOrEqual(3n);
    const t2 = await startTestNode({ "tick-interval": "10ms" }, { dir: t.dir });
    await t2.node.addAgent({ wasmPath: path });
    const next = await t2.waitFor<TickEvent>("tick",
      (e) => e.agentId === "runtime_alloc",
    );
    expect(next.tick).toBe(saved.tick + 1n);
    const state = t2.node.scheduler.view("runtime_alloc")!;
    expect(state.stateBytes).toBe(8 + `tick-${next.tick}`.length);
  });
});

/** A node, not started yet, watching an agents dir that holds these examples with their manifests. */
async function nodeWithExamples(flags: Record<string, string>, names: readonly string[]): Promise<{ t: TestNode; dir: string }> {
  const t = await startTestNode(flags, { watch: true, start: false });
  const dir = t.config.agentsDir;
  mkdirSync(dir, { recursive: true });
  for (const name of names) {
    copyFileSync(join(EXAMPLES, `${name}.wasm`), join(dir, `${name}.wasm`));
    copyFileSync(join(EXAMPLES, `${name}.manifest.json`), join(dir, `${name}.manifest.json`));
  }
  return { t, dir };
}

describe("the agents directory", () => {
  // Acceptance 7: a broken file in agents/ is reported, the others run.
  it("loads every .wasm at start, reports a broken one and keeps the others running", async () => {
    const { t, dir } = await nodeWithExamples({ "tick-interval": "50ms" }, ["heartbeat"]);
    writeFileSync(join(dir, "broken.wasm"), "garbage");
    mkdirSync(join(dir, "nested"));
    copyFileSync(join(EXAMPLES, "watcher.wasm"), join(dir, "nested", "agent.wasm"));
    copyFileSync(join(EXAMPLES, "watcher.manifest.json"), join(dir, "nested", "agent.manifest.json"));
    await t.node.start();
    await t.node.whenLoaded();
    expect(
      t.node.scheduler
        .list()
        .map((a) => a.id)
        .sort(),
    ).toEqual(["heartbeat", "nested"]);
    const failed = t.logs.events("agent_load_failed");
    expect(failed.length).toBe(1);
    expect(String(failed[0]?.path)).toMatch(/broken\.wasm$/);
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 2n);
  });

  // Acceptance 16: a .wasm dropped in starts within 2 s; a broken one is reported once and ignored.
  it("starts a .wasm dropped in while running within 2 s, and reports a broken drop-in once", async () => {
    const t = await startTestNode({ "tick-interval": "50ms" }, { watch: true });
    const dir = t.config.agentsDir;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "heartbeat.manifest.json"), JSON.stringify(CAPS("clock", "log")));
    const dropped = Date.now();
    copyFileSync(join(EXAMPLES, "heartbeat.wasm"), join(dir, "heartbeat.wasm"));
    writeFileSync(join(dir, "bad.wasm"), "not wasm");
    await waitUntil(() => t.node.scheduler.has("heartbeat"), { timeoutMs: 2000, what: "heartbeat to start" });
    expect(Date.now() - dropped).toBeLessThan(2000);
    await waitUntil(() => t.logs.events("agent_load_failed").length === 1, {
      timeoutMs: 2000,
      what: "bad.wasm report",
    });
    // Reported once, not on every scan.
    await t.waitFor<TickEvent>("tick",
      (e) => e.agentId === "heartbeat" && e.tick >= 10n,
    );
    expect(t.logs.events("agent_load_failed").length).toBe(1);
  });

  it("a file that failed to load is listed with path, code and message and counted, until it loads or is removed", async () => {
    const { t, dir } = await nodeWithExamples({ control: "127.0.0.1:0", "tick-interval": "50ms" }, ["heartbeat"]);
    writeFileSync(join(dir, "broken.wasm"), "garbage");
    await writeWat(dir, "greedy", watAgent({ imports: '(import "env" "seed" (func (result f64))) (import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32)))' }), CAPS());
    await t.node.start();
    await t.node.whenLoaded();
    const api = async (path: string) => {
      const addr = t.node.controlAddress!;
      const token = readFileSync(join(t.config.dataDir, "control.token"), "utf8").trim();
      return (await (await fetch(`http://${addr.host}:${addr.port}${path}`, { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;
    };
    type Entry = { id: string; status: string; path?: string; error?: { code: string; message: string } };
    const failedLoads = async () => ((await api("/v1/agents")).agents as Entry[]).filter((a) => a.status === "load_failed");
    const failed = await failedLoads();
    expect(failed.map((f) => [f.id, f.path, f.error?.code])).toEqual([
      ["broken", join(dir, "broken.wasm"), "WASM_MALFORMED"],
      ["greedy", join(dir, "greedy.wasm"), "IMPORT_REFUSED"],
    ]);
    expect(failed[0]?.error?.message).toMatch(/broken\.wasm is not a valid WebAssembly module/);
    expect(failed[1]?.error?.message).toMatch(/env\.seed.*wasi_unstable\.fd_write/);
    expect(((await api("/v1/status")).agents as Record<string, number>).loadFailed).toBe(2);
    expect(await t.node.metrics.render()).toMatch(/igord_agents\{state="load_failed"\} 2/);

    rmSync(join(dir, "greedy.wasm"));
    expect((await failedLoads()).map((f) => f.id)).toEqual(["broken"]);
    copyFileSync(join(EXAMPLES, "heartbeat.wasm"), join(dir, "broken.wasm"));
    copyFileSync(join(EXAMPLES, "heartbeat.manifest.json"), join(dir, "broken.manifest.json"));
    await waitUntil(() => t.node.scheduler.has("broken"), { timeoutMs: 5000, what: "the mended file to load" });
    expect(await failedLoads()).toEqual([]);
    expect(((await api("/v1/status")).agents as Record<string, number>).loadFailed).toBe(0);
    expect(await t.node.metrics.render()).toMatch(/igord_agents\{state="load_failed"\} 0/);
  });
});

describe("the agents directory holds only regular files we read", () => {
  it("a FIFO, a directory named *.wasm and a dangling link are skipped with one log line each; links to real files load", async () => {
    const t = await startTestNode({ "tick-interval": "50ms" }, { watch: true, start: false });
    const dir = t.config.agentsDir;
    mkdirSync(join(dir, "piped"), { recursive: true });
    // A reader opening this FIFO would block the main thread until a writer appears.
    execFileSync("mkfifo", [join(dir, "piped", "agent.wasm")]);
    execFileSync("mkfifo", [join(dir, "top.wasm")]);
    mkdirSync(join(dir, "folder.wasm"));
    symlinkSync(join(dir, "nowhere.wasm"), join(dir, "dangling.wasm"));
    // Links to regular files load the same at the top level and nested.
    symlinkSync(join(EXAMPLES, "heartbeat.wasm"), join(dir, "linked.wasm"));
    writeFileSync(join(dir, "linked.manifest.json"), JSON.stringify(CAPS("clock", "log")));
    mkdirSync(join(dir, "nestedlink"));
    symlinkSync(join(EXAMPLES, "heartbeat.wasm"), join(dir, "nestedlink", "agent.wasm"));
    writeFileSync(join(dir, "nestedlink", "agent.manifest.json"), JSON.stringify(CAPS("clock", "log")));
    await t.node.start();
    await t.node.whenLoaded();
    expect(t.node.scheduler.list().map((a) => a.id).sort()).toEqual(["linked", "nestedlink"]);
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "linked" && e.tick >= 3n);
    // Several scans later, each skipped entry was reported exactly once.
    const skipped = t.logs.events("agent_file_skipped");
    expect(skipped.map((l) => String(l.path).slice(dir.length + 1)).sort()).toEqual(["dangling.wasm", "folder.wasm", "piped/agent.wasm", "top.wasm"]);
    expect(skipped.every((l) => typeof l.reason === "string" && (l.reason as string).length > 0)).toBe(true);
  });

  it("a manifest that is a FIFO or oversized is refused without reading it whole", async () => {
    const t = await startTestNode({ "tick-interval": "50ms" });
    const dir = join(t.dir, "wasm");
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(EXAMPLES, "heartbeat.wasm"), join(dir, "fifo.wasm"));
    execFileSync("mkfifo", [join(dir, "fifo.manifest.json")]);
    const fifo = await refusal(t, { wasmPath: join(dir, "fifo.wasm") });
    expect(fifo.code).toBe("MANIFEST_INVALID");
    expect(fifo.message).toMatch(/not a regular file/);
    copyFileSync(join(EXAMPLES, "heartbeat.wasm"), join(dir, "big.wasm"));
    writeFileSync(join(dir, "big.manifest.json"), " ".repeat(MAX_MANIFEST_BYTES + 1));
    const big = await refusal(t, { wasmPath: join(dir, "big.wasm") });
    expect(big.code).toBe("MANIFEST_INVALID");
    expect(big.message).toMatch(/bytes, more than/);
  });
});

/** What the node's SQLite file holds of an agent (rows per table) and of a module (by its bytes' hash), read straight from the file. */
function storedOf(dataDir: string, agentId: string, wasm: Uint8Array): Record<string, number> {
  const db = new Database(join(dataDir, DB_FILE), { readonly: true });
  try {
    const count = (sql: string, arg: string): number => (db.prepare(sql).get(arg) as { n: number }).n;
    const rows: Record<string, number> = {};
    segmentsView(db);
    for (const table of ["agents", "identities", "checkpoints", "receipts", "lineage_events", "segments"]) {
      rows[table] = count(`SELECT COUNT(*) AS n FROM ${table} WHERE agent_id = ?`, agentId);
    }
    rows.wasm_modules = count("SELECT COUNT(*) AS n FROM wasm_modules WHERE hash = ?", hex(sha256(wasm)));
    return rows;
  } finally {
    db.close();
  }
}

describe("a refused agent leaves nothing in the store", () => {
  // Acceptance 5: refused loads (ungranted, unoffered, malformed) write no row at all.
  // Acceptance 7: no agent rows; the healthy agent in the same agents/ dir keeps ticking.
  it("ungranted and unoffered capabilities, garbage, an empty file, an empty module and a missing export: no agent row, identity, checkpoint or module is written, and the healthy agent in the same directory keeps ticking", async () => {
    const { t, dir } = await nodeWithExamples({ capabilities: "clock,log", "tick-interval": "20ms" }, ["heartbeat"]);
    // survivor imports igor.rand_bytes: once not granted by its manifest, once granted but not offered by the node.
    copyFileSync(join(EXAMPLES, "survivor.wasm"), join(dir, "denied.wasm"));
    writeFileSync(join(dir, "denied.manifest.json"), JSON.stringify(CAPS("clock", "log")));
    copyFileSync(join(EXAMPLES, "survivor.wasm"), join(dir, "unoffered.wasm"));
    writeFileSync(join(dir, "unoffered.manifest.json"), JSON.stringify(CAPS("clock", "rand", "log")));
    writeFileSync(join(dir, "garbage.wasm"), "this is not wasm at all");
    writeFileSync(join(dir, "zero.wasm"), new Uint8Array(0));
    writeFileSync(join(dir, "empty.wasm"), await wat2wasm("(module)"));
    await writeWat(dir, "noptr", watAgent({ omit: ["agent_checkpoint_ptr"] }), CAPS());
    await t.node.start();
    await t.node.whenLoaded();
    const codes = Object.fromEntries(t.logs.events("agent_load_failed").map((l) => [String(l.path).slice(dir.length + 1), l.code]));
    expect(codes).toEqual({
      "denied.wasm": "CAPABILITY_NOT_GRANTED",
      "unoffered.wasm": "CAPABILITY_NOT_OFFERED",
      "garbage.wasm": "WASM_MALFORMED",
      "zero.wasm": "WASM_MALFORMED",
      "empty.wasm": "WASM_MISSING_EXPORT",
      "noptr.wasm": "WASM_MISSING_EXPORT",
    });
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "heartbeat" && e.tick >= 3n);
    await t.node.scheduler.settled();
    const none = { agents: 0, identities: 0, checkpoints: 0, receipts: 0, lineage_events: 0, segments: 0, wasm_modules: 0 };
    for (const id of Object.keys(codes).map((f) => f.replace(/\.wasm$/, ""))) {
      expect(storedOf(t.config.dataDir, id, new Uint8Array(readFileSync(join(dir, `${id}.wasm`)))), id).toEqual(none);
    }
    // The same query sees what a loaded agent writes.
    const kept = storedOf(t.config.dataDir, "heartbeat", new Uint8Array(readFileSync(join(dir, "heartbeat.wasm"))));
    expect(kept).toMatchObject({ agents: 1, identities: 1, wasm_modules: 1 });
    expect(kept.checkpoints).toBeGreaterThan(0);
    expect(t.node.scheduler.list().map((a) => a.id)).toEqual(["heartbeat"]);
  });
});

describe("a stored agent quarantined at start", () => {
  it("its unchanged file in the agents dir is held, not resumed again: listed once, quarantined with the reason; igord start retries it once the cause is gone", async () => {
    const { t: first } = await nodeWithExamples({ "tick-interval": "20ms" }, ["survivor"]);
    await first.node.start();
    await first.node.whenLoaded();
    await first.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor" && e.tick >= 2n);
    await first.stop();
    // Restarted without "rand", which survivor needs: its resume fails and it is quarantined.
    const t = await startTestNode({ "tick-interval": "20ms", capabilities: "clock,log" }, { dir: first.dir, watch: true, resumeStored: true });
    expect(t.node.quarantined.get("survivor")?.code).toBe("CAPABILITY_NOT_OFFERED");
    expect(t.logs.events("agent_file_held").map((l) => [l.agent, l.code])).toEqual([["survivor", "AGENT_QUARANTINED"]]);
    expect(t.logs.events("agent_load_failed")).toEqual([]);
    const listed = t.node.agentsJson().filter((a) => a.id === "survivor");
    expect(listed.map((a) => [a.status, (a.error as { code: string } | undefined)?.code])).toEqual([["quarantined", "CAPABILITY_NOT_OFFERED"]]);
    const stored = storedHead(t.config.dataDir, "survivor")!;
    // The cause goes away; igord start (the control API's start) resumes it from where it stopped.
    t.node.capabilities.replace(["clock", "log", "rand"]);
    await startAgent(t.node, "survivor");
    const next = await t.waitFor<TickEvent>("tick", (e) => e.agentId === "survivor");
    expect(next.tick).toBe(stored.tick + 1n);
    expect(t.node.quarantined.has("survivor")).toBe(false);
    expect(t.node.agentsJson().filter((a) => a.id === "survivor").map((a) => a.status)).toEqual(["running"]);
  });
});
