// The test kit's teardown when a test ends badly: a runner that stops its worker with a signal (vitest
// sends SIGTERM, then SIGKILL after 500 ms), a test that times out while its cluster is still starting,
// and the nodes a cluster or stopAll() stopped, their state and their temp dirs.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { InProcessNode } from "../../src/testing/in-process-node.js";
import { eventually, startCluster, startNode, stopAll } from "../../src/testing/index.js";
import { ROOT } from "../helpers/node.js";
import { alive } from "../helpers/process.js";

const originalStart = InProcessNode.start.bind(InProcessNode);
afterEach(async () => {
  InProcessNode.start = originalStart;
  await stopAll();
});

// What a failing runner test would leave: stopped here so it does not outlive the test.
const leaked: number[] = [];
const leakedDirs: string[] = [];
afterEach(() => {
  for (const pid of leaked.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
  for (const d of leakedDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** How long a daemon whose test process is gone may take to notice it and stop. */
const ORPHAN_GONE_MS = 10_000;

interface Runner {
  /** The daemon of the runner's process node. */
  pid: number;
  /** The process node's temp dir and the in-process node's. */
  dir: string;
  inDir: string;
  exited: Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

/** A test process that starts a process node and an in-process node through the built kit, then idles. */
async function runner(): Promise<Runner> {
  const script = `
    import { readFileSync } from "node:fs";
    const kit = await import(${JSON.stringify(join(ROOT, "dist", "testing", "index.js"))});
    const node = await kit.startNode({ mode: "process" });
    const inproc = await kit.startNode();
    console.log(JSON.stringify({ dir: node.dir, inDir: inproc.dir, pid: Number(readFileSync(node.dataDir + "/igord.pid", "utf8")) }));
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  await eventually(() => out.includes("\n"), "the runner's report line", 30_000);
  const { pid, dir, inDir } = JSON.parse(out.trim().split("\n")[0]!) as { pid: number; dir: string; inDir: string };
  leaked.push(pid);
  leakedDirs.push(dir, inDir);
  expect(alive(pid)).toBe(true);
  return { pid, dir, inDir, exited, kill: (signal) => child.kill(signal) };
}

async function gone(pid: number, how: string): Promise<void> {
  await eventually(() => !alive(pid), `igord (pid ${pid}) to be gone after its test process was ${how}`, ORPHAN_GONE_MS);
}

describe("test kit: a runner ended by a signal", () => {
  it("a test process ended by SIGTERM (how vitest stops a forks worker) leaves no igord daemon and no temp dir behind", async () => {
    const r = await runner();
    r.kill("SIGTERM");
    await r.exited;
    await gone(r.pid, "SIGTERMed");
    expect(existsSync(r.dir)).toBe(false);
    expect(existsSync(r.inDir)).toBe(false);
  });

  it("a test process ended by SIGKILL (vitest's second signal) leaves no igord daemon and no process node's dir behind", async () => {
    const r = await runner();
    r.kill("SIGKILL");
    await r.exited;
    await gone(r.pid, "SIGKILLed");
    // The daemon removes its own dir once its test process is gone.
    await eventually(() => !existsSync(r.dir), `the process node's dir ${r.dir} to be removed`, ORPHAN_GONE_MS);
    // An in-process node's dir has nobody left to remove it: the next test process that loads the kit
    // does (here, or one that another test file started meanwhile).
    const next = spawnSync(process.execPath, ["--input-type=module", "-e", `await import(${JSON.stringify(join(ROOT, "dist", "testing", "index.js"))});`], { encoding: "utf8" });
    expect(next.stderr).toBe("");
    expect(existsSync(r.inDir)).toBe(false);
  });

  it("a process node's daemon is igord itself, the kit's own child (its orphan watch runs in igord's process): kill() hits it", async () => {
    const node = await startNode({ mode: "process" });
    const pid = Number(readFileSync(join(node.dataDir, "igord.pid"), "utf8"));
    const child = (node as unknown as { daemon: { child: { pid: number } } }).daemon.child;
    expect(pid).toBe(child.pid);
  });
});

describe("test kit: teardown while a cluster starts", () => {
  it("stopAll() while startCluster is starting its nodes (a test timed out there) leaves no node running and no dir behind", async () => {
    // Only to know when the first node is up, so the teardown lands between two node starts, and
    // which nodes started at all.
    let resolve: () => void = () => undefined;
    const firstUp = new Promise<void>((r) => (resolve = r));
    const started: InProcessNode[] = [];
    InProcessNode.start = async (...args: Parameters<typeof InProcessNode.start>) => {
      const n = await originalStart(...args);
      started.push(n);
      resolve();
      return n;
    };
    const starting = startCluster(3);
    await firstUp;
    await stopAll(); // what afterEach(stopAll) does when the test times out here
    const outcome = await starting.then(
      () => null,
      (e: Error) => e,
    );
    // An IgordNode never stopped has no stop in progress or done (node.ts: `stopping` stays null).
    const neverStopped = (n: InProcessNode): boolean => (n.node as unknown as { stopping: Promise<void> | null }).stopping === null;
    const running = started.filter(neverStopped).map((n) => n.name);
    await Promise.all(started.filter(neverStopped).map((n) => n.node.stop().catch(() => undefined)));
    expect(running, "nodes started after stopAll() and never stopped").toEqual([]);
    expect(started.filter((n) => existsSync(n.dir)).map((n) => n.dir)).toEqual([]);
    // The test that was starting the cluster hears why it has none.
    expect(outcome?.message).toMatch(/stopAll\(\) ran while startCluster was starting node\d/);
  });
});

describe("test kit: what stopping leaves", () => {
  it("an in-process node says it is not running after stopAll() (as a process node does)", async () => {
    const node = await startNode();
    await stopAll();
    expect(node.running).toBe(false);
  });

  it("Cluster.stop() stops its nodes and removes their temp dirs, in either mode", async () => {
    const inProcess = await startCluster(2);
    const asProcess = await startCluster(1, { mode: "process" });
    const dirs = [...inProcess.nodes, ...asProcess.nodes].map((n) => n.dir);
    await Promise.all([inProcess.stop(), asProcess.stop()]);
    expect([...inProcess.nodes, ...asProcess.nodes].filter((n) => n.running).map((n) => n.name)).toEqual([]);
    expect(dirs.filter((d) => existsSync(d))).toEqual([]);
  });
});
