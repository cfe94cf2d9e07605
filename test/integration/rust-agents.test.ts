// Rust agents written as an author would (test/fixtures/rust/*.rs, built by scripts/build-rust-agents.sh
// with rustc alone and committed): a no_std counter on wasm32-unknown-unknown and std agents on
// wasm32-wasi. Each runs, replays, migrates and audits, or fails and is refused with an error that
// names what the Rust code did. The committed .wasm always run; only the rebuild check needs rustc.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentView, DivergenceEvent, TickEvent } from "../../src/scheduler/scheduler.js";
import { ROOT, startTestNode, stopAllNodes, storedHead, type TestNode, tempDir } from "../helpers/node.js";
import { checkpointedTwice, placeFixture, u64At, verifiedTicks as verified } from "../helpers/fixture-agents.js";
import { igord } from "../helpers/process.js";

afterEach(stopAllNodes);

const FIXTURES = join(ROOT, "test", "fixtures", "rust");
const RUSTC = "/usr/bin/rustc";
const FAST = { "tick-interval": "10ms", "checkpoint-interval": "40ms", "verify-interval": "3" };
const P2P = { listen: "/ip4/127.0.0.1/tcp/0", "accept-migrations": "any", "migration-retry-delay": "10ms", "migration-timeout": "5s", "peer-refresh": "0" };
const LIFECYCLE = ["agent_checkpoint", "agent_checkpoint_ptr", "agent_init", "agent_resume", "agent_tick"];

/** Copies fixture NAME.wasm into the node's dir with a manifest granting `caps` (and `limits`); returns its path. */
const place = (t: TestNode, name: string, caps: string[], limits?: Record<string, number>): string => placeFixture(t, join(FIXTURES, `${name}.wasm`), name, caps, limits);

const lines = (t: TestNode, id: string): string[] => t.logs.events("agent_log", id).map((l) => String(l.msg));

function surface(name: string): { imports: string[]; exports: string[] } {
  const m = new WebAssembly.Module(readFileSync(join(FIXTURES, `${name}.wasm`)));
  return { imports: WebAssembly.Module.imports(m).map((i) => `${i.module}.${i.name}`), exports: WebAssembly.Module.exports(m).map((e) => e.name).sort() };
}

/** Why this machine cannot rebuild the fixtures (no rustc, another version, no wasm32 std), or null. */
function cannotRebuild(): string | null {
  if (!existsSync(RUSTC)) return `${RUSTC} is not installed`;
  const version = spawnSync(RUSTC, ["--version"], { encoding: "utf8" }).stdout.trim();
  const builtWith = readFileSync(join(FIXTURES, "BUILT_WITH"), "utf8").trim();
  if (version !== builtWith) return `the fixtures were built with "${builtWith}", this machine has "${version}"`;
  const dir = tempDir("igord-rust-probe-");
  writeFileSync(join(dir, "p.rs"), "#[no_mangle] pub extern \"C\" fn probe() -> i32 { 0 }\n");
  for (const target of ["wasm32-unknown-unknown", "wasm32-wasi"]) {
    const r = spawnSync(RUSTC, ["--crate-type", "cdylib", "--target", target, "-o", join(dir, `${target}.wasm`), join(dir, "p.rs")], { encoding: "utf8" });
    if (r.status !== 0) return `rustc has no ${target} std (${(r.stderr.split("\n").find((l) => /error/.test(l)) ?? "").trim()})`;
  }
  return null;
}

describe("Rust agents, as authors write them", () => {
  it("the committed fixtures are what scripts/build-rust-agents.sh builds (with the same rustc), no_std importing only igor, std only igor and WASI preview1", (ctx) => {
    expect(surface("nostd-counter")).toEqual({ imports: ["igor.clock_now", "igor.log_emit"], exports: ["__data_end", "__heap_base", ...LIFECYCLE, "malloc", "memory"] });
    const std = surface("wasi-std");
    expect(std.imports.every((i) => i.startsWith("wasi_snapshot_preview1.") || i.startsWith("igor."))).toBe(true);
    expect(std.exports).toEqual(["__data_end", "__heap_base", ...LIFECYCLE, "free", "malloc", "memory"]);
    expect(surface("command-bin").exports).toContain("_start");
    const why = cannotRebuild();
    if (why !== null) {
      ctx.skip(`${why}: the committed Rust fixtures are not rebuilt (apt-get install rustc libstd-rust-dev-wasm32)`);
      return;
    }
    const out = tempDir("igord-rust-agents-");
    execFileSync(join(ROOT, "scripts", "build-rust-agents.sh"), [out], { stdio: "pipe" });
    const built = readdirSync(FIXTURES).filter((f) => f.endsWith(".wasm"));
    expect(built.length).toBe(readdirSync(FIXTURES).filter((f) => f.endsWith(".rs")).length);
    for (const f of built) expect(Buffer.compare(readFileSync(join(out, f)), readFileSync(join(FIXTURES, f))), f).toBe(0);
  });

  it("a no_std counter and a std agent (Vec, String, format!, println!/eprintln!, SystemTime, BTreeMap, Box<dyn Trait>, i64 hostcalls, state serialised in agent_checkpoint) verify, migrate with admission replay and audit VALID on the target", async () => {
    const a = await startTestNode({ ...FAST, ...P2P }, { start: false });
    const b = await startTestNode({ ...FAST, ...P2P, "checkpoint-interval": "0" });
    const agents = [place(a, "nostd-counter", ["clock", "log"]), place(a, "wasi-std", ["clock", "log", "wallet"])];
    await a.node.start();
    for (const wasmPath of agents) await a.node.addAgent({ wasmPath });
    const target = b.node.migration!.addresses()[0]!;
    for (const id of ["nostd-counter", "wasi-std"]) {
      await checkpointedTwice(a, id);
      await verified(a, id, 3);
      const r = await a.node.migrate(id, [target]);
      expect(r.outcome, `${id}: ${JSON.stringify(r.error)}`).toBe("done");
      await verified(b, id, 3);
    }
    expect(lines(a, "nostd-counter")[0]).toBe("rust-nostd: tick 1, 0 ms since the first");
    expect(lines(a, "wasi-std")[0]).toMatch(/^rust-std: tick 1 score \d+ balance \d+ \[bucket-\d=1\]$/);
    expect(lines(a, "wasi-std")).toContainEqual(expect.stringMatching(/^rust-std: tick 3 igor clock \d{19} wasi clock \d{19}$/));
    expect([...a.logs.events("replay_divergence"), ...b.logs.events("replay_divergence")]).toEqual([]);
    await b.stop();
    for (const id of ["nostd-counter", "wasi-std"]) {
      const head = storedHead(b.config.dataDir, id)!;
      expect(u64At(head.state, 0), id).toBe(head.tick);
      const audit = igord(["verify", "--replay", "--agent", id, "--data-dir", b.config.dataDir]);
      expect(audit.stdout, `${id}: ${audit.stdout}${audit.stderr}`).toMatch(/replay: VALID/);
    }
  });

  it("a panic in a tick fails the agent with AGENT_TRAP quoting what the Rust runtime printed: the panic message and where", async () => {
    const t = await startTestNode(FAST, { start: false });
    const path = place(t, "panic-in-tick", ["log"]);
    await t.node.start();
    await t.node.addAgent({ wasmPath: path });
    const failed = await t.waitFor<AgentView>("stopped", (v) => v.id === "panic-in-tick");
    expect([failed.status, failed.error?.code]).toEqual(["failed", "AGENT_TRAP"]);
    expect(failed.error?.message).toMatch(/^agent trapped during agent_tick: unreachable/);
    expect(failed.error?.message).toMatch(/panicked at 'index out of bounds: the len is 2 but the index is 2', panic-in-tick\.rs:\d+:\d+/);
    expect(t.logs.events("agent_failed", "panic-in-tick")[0]?.details).toMatchObject({ trap: "unreachable", output: expect.stringMatching(/^thread '<unnamed>' panicked at 'index out of bounds/) });
  });

  it("a no_std panic handler that logs the PanicInfo through igor.log_emit before unreachable: the failure quotes it", async () => {
    const t = await startTestNode(FAST, { start: false });
    const path = place(t, "nostd-panic", ["log"]);
    await t.node.start();
    await t.node.addAgent({ wasmPath: path });
    const failed = await t.waitFor<AgentView>("stopped", (v) => v.id === "nostd-panic");
    expect([failed.status, failed.error?.code, failed.tick]).toEqual(["failed", "AGENT_TRAP", 2n]);
    expect(failed.error?.message).toMatch(/^agent trapped during agent_tick: unreachable \(its last output: nostd-panic: panicked at 'attempt to divide by zero', nostd-panic\.rs:\d+:\d+\)$/);
    expect(lines(t, "nostd-panic")).toEqual(["nostd-panic: tick 1 share 50", "nostd-panic: tick 2 share 100"]);
  });

  it("a std agent whose manifest forgets log panics at its first println!: the failure names fd_write and the log capability", async () => {
    const t = await startTestNode(FAST, { start: false });
    const path = place(t, "wasi-std", ["clock", "wallet"]);
    await t.node.start();
    await t.node.addAgent({ wasmPath: path });
    const failed = await t.waitFor<AgentView>("stopped", (v) => v.id === "wasi-std");
    expect([failed.status, failed.error?.code, failed.tick]).toEqual(["failed", "AGENT_TRAP", 0n]);
    expect(failed.error?.message).toMatch(/^agent trapped during agent_tick: unreachable \(WASI calls refused ENOTCAPABLE.*: fd_write needs "log"\)$/);
  });

  it("std::process::exit(3) after an eprintln! fails the agent with AGENT_EXIT and the line it wrote", async () => {
    const t = await startTestNode(FAST, { start: false });
    const path = place(t, "exit-in-tick", ["log"]);
    await t.node.start();
    await t.node.addAgent({ wasmPath: path });
    const failed = await t.waitFor<AgentView>("stopped", (v) => v.id === "exit-in-tick");
    expect([failed.status, failed.error?.code]).toEqual(["failed", "AGENT_EXIT"]);
    expect(t.logs.events("agent_failed", "exit-in-tick")[0]?.details).toMatchObject({ exitCode: 3, output: "exit-in-tick: tick 3 | exit-in-tick: the feed is gone, giving up" });
    expect(failed.error?.message).toMatch(/proc_exit\(3\) during agent_tick.*exit-in-tick: the feed is gone, giving up/);
  });

  it("a Vec grown past max_memory_bytes fails the agent naming the allocation that failed", async () => {
    const t = await startTestNode(FAST, { start: false });
    const path = place(t, "grow-to-cap", ["log"], { max_memory_bytes: 16 * 1024 * 1024 });
    await t.node.start();
    await t.node.addAgent({ wasmPath: path });
    const failed = await t.waitFor<AgentView>("stopped", (v) => v.id === "grow-to-cap");
    expect([failed.status, failed.error?.code]).toEqual(["failed", "AGENT_TRAP"]);
    expect(failed.error?.message).toMatch(/memory allocation of 4194304 bytes failed/);
    expect(lines(t, "grow-to-cap").at(-1)).toBe("grow-to-cap: tick 3 holds 12 MiB");
  });

  // AUTHORING.md "Rust": std seeds HashMap's keys once, at the first RandomState of the instance.
  it("a HashMap first made in a tick does not replay, rand granted or not; seeded in agent_init it verifies and migrates without rand", async () => {
    const a = await startTestNode({ ...FAST, ...P2P }, { start: false });
    const b = await startTestNode({ ...FAST, ...P2P, "checkpoint-interval": "0" });
    const inTick = place(a, "hashmap-in-tick", ["rand", "log"]);
    const seeded = place(a, "hashmap-seeded-in-init", ["log"]);
    await a.node.start();
    await a.node.addAgent({ wasmPath: inTick });
    await a.node.addAgent({ wasmPath: seeded });
    const target = b.node.migration!.addresses()[0]!;

    const diverged = await a.waitFor<DivergenceEvent>("divergence", (e) => e.agentId === "hashmap-in-tick", 15_000);
    expect(diverged.code).toBe("REPLAY_HOSTCALL_MISMATCH");
    expect(diverged.message).toMatch(/the agent called rand_bytes/);
    await checkpointedTwice(a, "hashmap-in-tick");
    const refused = await a.node.migrate("hashmap-in-tick", [target]);
    expect(refused.outcome).toBe("reverted");
    expect(refused.error?.code).toBe("REPLAY_HOSTCALL_MISMATCH");

    await checkpointedTwice(a, "hashmap-seeded-in-init");
    await verified(a, "hashmap-seeded-in-init", 3);
    const moved = await a.node.migrate("hashmap-seeded-in-init", [target]);
    expect(moved.outcome, JSON.stringify(moved.error)).toBe("done");
    await verified(b, "hashmap-seeded-in-init", 3);
    expect(lines(a, "hashmap-seeded-in-init")[0]).toBe("hashmap-seeded-in-init: tick 1 squared 1 keys [1, 2, 3, 4]");

    // Without rand the first HashMap of a tick is std's panic, quoted in the failure.
    const c = await startTestNode(FAST, { start: false });
    const noRand = place(c, "hashmap-in-tick", ["log"]);
    await c.node.start();
    await c.node.addAgent({ wasmPath: noRand });
    const failed = await c.waitFor<AgentView>("stopped", (v) => v.id === "hashmap-in-tick");
    expect(failed.error?.code).toBe("AGENT_TRAP");
    expect(failed.error?.message).toMatch(/random/);
  });

  it("state kept in a thread_local! outside the checkpoint diverges in replay; a bin (a WASI command) loads, never runs main, and verifies", async () => {
    const t = await startTestNode(FAST, { start: false });
    const outside = place(t, "state-outside-checkpoint", ["log"]);
    const bin = place(t, "command-bin", ["log"]);
    await t.node.start();
    await t.node.addAgent({ wasmPath: outside });
    await t.node.addAgent({ wasmPath: bin });
    const diverged = await t.waitFor<DivergenceEvent>("divergence", (e) => e.agentId === "state-outside-checkpoint", 15_000);
    expect(diverged.code).toBe("REPLAY_PAYLOAD_MISMATCH");
    await verified(t, "command-bin", 3);
    expect(lines(t, "command-bin").slice(0, 2)).toEqual(["command-bin: tick 1", "command-bin: tick 2"]);
    const next = storedHead(t.config.dataDir, "command-bin")?.tick ?? 0n;
    await t.waitFor<TickEvent>("tick", (e) => e.agentId === "command-bin" && e.tick > next + 2n);
    expect(lines(t, "command-bin").filter((l) => /main ran/.test(l))).toEqual([]);
  });
});
