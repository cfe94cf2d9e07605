// The test kit (igord/testing) against real nodes: in-process and as child processes, an agent loaded,
// ticked, migrated, killed with SIGKILL and restarted; lineage, outbox and ownership read back; and
// everything it started gone after stopAll().
import { type ChildProcess, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, KIT_WAIT_MS, startCluster, startNode, stopAll } from "../../src/testing/index.js";
import { startDaemon } from "../../src/testing/process.js";
import { upgradeAgent } from "../../src/node/code-upgrade.js";
import { AS_FIXTURES, EXAMPLES, ROOT, tempDir } from "../helpers/node.js";
import { alive } from "../helpers/process.js";
import { CAPS, watAgent, writeWat } from "../helpers/wat.js";

afterEach(stopAll);

const survivor = join(EXAMPLES, "survivor.wasm");

describe("test kit: in-process cluster", () => {
  it("loads an agent, sees it tick, migrates it, restarts the target, and the agent goes on from its checkpoint with one owner", async () => {
    const cluster = await startCluster(2);
    const [a, b] = [cluster.at(0), cluster.at(1)];
    expect(a.address).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//);
    expect(a.address).not.toBe(b.address);
    expect(await a.load(survivor)).toBe("survivor");
    expect(await a.waitForTick("survivor", 3n)).toBeGreaterThanOrEqual(3n);
    const r = await a.migrate("survivor", b);
    expect(r.outcome).toBe("done");
    expect(cluster.owner("survivor")).toBe(b);
    expect(a.lease("survivor")?.state).toBe("RETIRED");
    const moved = await b.waitForTick("survivor", 4n);
    await b.restart();
    expect(cluster.owner("survivor")).toBe(b);
    expect(await b.waitForTick("survivor", moved + 2n)).toBeGreaterThan(moved);
    const lineage = b.lineage("survivor");
    expect(lineage.report.reasons).toEqual([]);
    expect(lineage.report.valid).toBe(true);
    expect(lineage.checkpoints.at(-1)?.epochMajor).toBe(1n);
  });

  it("owner() names every node's lease when there is no single owner", async () => {
    const cluster = await startCluster(2);
    expect(() => cluster.owner("nobody")).toThrow('expected exactly one owner of "nobody", found 0 (node0: none, node1: none)');
    await expect(cluster.at(0).kill()).rejects.toThrow(/needs startCluster\(n, \{ mode: "process" \}\)/);
  });

  it("reads the outbox: each tick's message once, from the node that owned the agent at that tick", async () => {
    const dir = tempDir();
    copyFileSync(join(AS_FIXTURES, "emitter.wasm"), join(dir, "emitter.wasm"));
    writeFileSync(join(dir, "emitter.manifest.json"), JSON.stringify({ capabilities: { emit: { version: 1 } } }));
    const cluster = await startCluster(2);
    const [a, b] = [cluster.at(0), cluster.at(1)];
    await a.load(join(dir, "emitter.wasm"));
    await a.waitForTick("emitter", 3n);
    expect((await a.migrate("emitter", b)).outcome).toBe("done");
    await b.waitForTick("emitter", 6n);
    await b.stop();
    const all = [...a.outbox("emitter"), ...b.outbox("emitter")];
    expect(all.map((m) => m.tick)).toEqual(all.map((_, i) => BigInt(i + 1)));
    expect(all.every((m) => m.text === `tick ${m.tick}`)).toBe(true);
    expect(new Set(b.outbox("emitter").map((m) => m.epochMajor))).toEqual(new Set([1n]));
  });
});

describe("test kit: lineage", () => {
  it("lineage().report agrees with igord verify --agent after a code upgrade: VALID (it said INVALID, 'WASM changed … without a signed code upgrade')", async () => {
    const CLOCK = '(import "igor" "clock_now" (func $clock (result i64)))';
    const c = await startCluster(1);
    const a = c.at(0);
    await a.load(await writeWat(join(a.dir, "v1"), "counter", watAgent({ imports: CLOCK, onTick: "(drop (call $clock))" }), CAPS("clock")));
    await a.waitForTick("counter", 3n);
    await upgradeAgent(a.node, "counter", await writeWat(join(a.dir, "v2"), "counter", watAgent({ imports: CLOCK, onTick: "(drop (call $clock)) (nop)" }), CAPS("clock")));
    const at = a.node.scheduler.view("counter")?.tick ?? 0n;
    await a.waitForTick("counter", at + 3n);
    await a.stop();
    const report = a.lineage("counter").report;
    expect(report.reasons).toEqual([]);
    expect(report.valid).toBe(true);
    expect(report.upgrades).toHaveLength(1);
    const cli = spawnSync(process.execPath, [join(ROOT, "dist", "cli", "main.js"), "verify", "--agent", "counter", "--data-dir", a.dataDir], { encoding: "utf8" });
    expect(cli.status).toBe(0);
  });
});

describe("test kit: a daemon that dies", () => {
  it("fails a wait for its lines at once, quoting its stderr (it waited 15 s and said 'last lines: []')", async () => {
    const started = Date.now();
    const d = startDaemon(["--no-such-flag"]);
    const err = await d.waitFor((l) => l.event === "agents_loaded").then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/igord exited \(code 1\) before logging the expected line; stderr: .*no-such-flag/s);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe("test kit: nodes as processes", () => {
  it("an agent migrated to a node that is then SIGKILLed resumes there after a restart, from its last checkpoint, with one owner", async () => {
    const cluster = await startCluster(2, { mode: "process" });
    const [a, b] = [cluster.at(0), cluster.at(1)];
    await a.load(survivor);
    await a.waitForTick("survivor", 3n);
    expect(await a.migrate("survivor", b)).toMatchObject({ outcome: "done", epoch: { major: 1n, generation: 0n } });
    const handedOff = b.lineage("survivor").checkpoints.at(-1)!.tick;
    await eventually(() => b.lineage("survivor").checkpoints.at(-1)!.tick > handedOff, "a periodic checkpoint on b");
    await b.kill();
    expect(b.running).toBe(false);
    // The agent resumes from the last checkpoint b committed before the kill, not from the handoff.
    const committed = b.lineage("survivor").checkpoints.at(-1)!.tick;
    expect(committed).toBeGreaterThan(handedOff);
    await b.restart();
    expect(await b.waitForTick("survivor", committed + 1n)).toBe(committed + 1n);
    expect(cluster.owner("survivor")).toBe(b);
    expect(b.lineage("survivor").report.valid).toBe(true);
  });

  it("stopAll() kills every process the kit started and removes their dirs", async () => {
    const one = await startNode({ mode: "process" });
    const cluster = await startCluster(2, { mode: "process" });
    const dirs = [one.dir, ...cluster.nodes.map((n) => n.dir)];
    expect(dirs.every((d) => existsSync(d))).toBe(true);
    await stopAll();
    expect(dirs.some((d) => existsSync(d))).toBe(false);
    expect([one, ...cluster.nodes].every((n) => !n.running)).toBe(true);
  });
});

describe("test kit: a process node's environment", () => {
  const saved = process.env.IGORD_CAPABILITIES;
  afterEach(() => {
    if (saved === undefined) delete process.env.IGORD_CAPABILITIES;
    else process.env.IGORD_CAPABILITIES = saved;
  });

  it("an IGORD_* variable in the test's environment changes neither a process node nor an in-process one", async () => {
    // An author's shell that limits their own daemon's capabilities.
    process.env.IGORD_CAPABILITIES = "rand";
    const inProcess = await startNode();
    const asProcess = await startNode({ mode: "process" });
    const wasm = join(EXAMPLES, "heartbeat.wasm");
    const results = await Promise.all(
      [inProcess, asProcess].map((n) =>
        n.load(wasm).then(
          () => `${n.mode}: loaded`,
          (e: Error) => `${n.mode}: ${e.message.slice(0, 160)}`,
        ),
      ),
    );
    expect(results).toEqual(["in-process: loaded", "process: loaded"]);
  });
});

describe("test kit: a process node whose daemon died", () => {
  it("fails waitForStatus at once saying it exited (as its other waits do), not after KIT_WAIT_MS as 'not there'", async () => {
    const node = await startNode({ mode: "process" });
    await node.load(join(EXAMPLES, "heartbeat.wasm"));
    await node.waitForTick("heartbeat", 2n);
    // The daemon dies on its own (a crash), not through node.kill().
    const daemon = (node as unknown as { daemon: { child: ChildProcess; exit: Promise<unknown> } }).daemon;
    daemon.child.kill("SIGKILL");
    await daemon.exit;
    const started = Date.now();
    const err = await node.waitForStatus("heartbeat", "stopped").then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/igord exited \(SIGKILL\)/);
    expect(Date.now() - started).toBeLessThan(KIT_WAIT_MS / 3);
  });
});

describe("test kit: agent states", () => {
  for (const mode of ["in-process", "process"] as const) {
    it(`waitForStatus sees an agent fail with its error, on a node ${mode === "process" ? "as a process" : "in this process"}`, async () => {
      const dir = tempDir();
      copyFileSync(join(AS_FIXTURES, "aborter.wasm"), join(dir, "aborter.wasm"));
      writeFileSync(join(dir, "aborter.manifest.json"), JSON.stringify({ capabilities: {} }));
      const node = mode === "process" ? await startNode({ mode }) : await startNode();
      expect(await node.agent("aborter")).toBeUndefined();
      await node.load(join(dir, "aborter.wasm"));
      const failed = await node.waitForStatus("aborter", "failed");
      expect(failed.error?.code).toBe("AGENT_ABORT");
      expect(failed.error?.message).toMatch(/boom at tick 2/);
      await expect(node.waitForStatus("aborter", "running", 200)).rejects.toThrow(/waiting for "aborter" to be running on node0 \(it is failed/);
    });
  }
});

describe("test kit: a runner that dies", () => {
  it("takes the igord processes it started, and their temp dirs, with it", async () => {
    // A test process that starts a process node and exits without any teardown (a crash, a failed
    // assertion outside any hook): the kit's exit hook still SIGKILLs the daemon.
    const script = `
      const kit = await import(${JSON.stringify(join(ROOT, "dist", "testing", "index.js"))});
      const node = await kit.startNode({ mode: "process" });
      console.log(JSON.stringify({ dir: node.dir, pid: Number(readFileSync(node.dataDir + "/igord.pid", "utf8")) }));
      process.exit(3);`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", `import { readFileSync } from "node:fs";${script}`], { encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(3);
    const { pid, dir } = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { pid: number; dir: string };
    expect(pid).toBeGreaterThan(0);
    await eventually(() => !alive(pid), `igord (pid ${pid}) to be gone`);
    expect(existsSync(dir)).toBe(false);
  });
});

describe("docs/TESTING.md", () => {
  const doc = readFileSync(join(ROOT, "docs", "TESTING.md"), "utf8");
  const source = (f: string) => readFileSync(join(ROOT, "src", "testing", f), "utf8");

  it("names every symbol igord/testing exports", () => {
    const exported = [...source("index.ts").matchAll(/export \{([^}]+)\}/g)].flatMap((m) => m[1]!.split(",").map((n) => n.replace(/^\s*type\s+/, "").trim()));
    expect(exported.length).toBeGreaterThan(20);
    expect(exported.filter((name) => !doc.includes(`\`${name}`))).toEqual([]);
  });

  it("describes every member of a node and of a cluster", () => {
    const members = (iface: string) => {
      const body = new RegExp(`export interface ${iface}\\b[^{]*\\{([\\s\\S]*?)\\n\\}`).exec(source("cluster.ts") + source("kit-node.ts"))![1]!;
      return [...body.matchAll(/^ {2}(?:readonly )?(\w+)[(?:<]/gm)].map((m) => `${iface}.${m[1]}`);
    };
    const all = [...members("KitNode"), ...members("Cluster")];
    expect(all).toContain("KitNode.restart");
    expect(all.filter((m) => !doc.includes(`\`${m}`))).toEqual([]);
  });
});
