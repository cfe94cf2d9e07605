// A cluster of real igord processes for chaos tests: each node listens on a fixed loopback port (the
// same after a restart), trusts the others by peer id, and reaches each other node only through a
// fault proxy of its own (node i → node j goes through proxies[i][j]), so a pair can be partitioned
// both ways. The harness SIGKILLs, SIGSTOPs and restarts nodes, reads their SQLite files read-only,
// and keeps every log line and every byte of stderr of every incarnation for the invariant checks.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import type { Lease } from "../../src/authority/lease.js";
import { controlGet, controlPost } from "../../src/control/client.js";
import { DB_FILE, SqliteStore } from "../../src/store/sqlite-store.js";
import { FaultProxy } from "./fault-proxy.js";
import { EXAMPLES, tempDir } from "./node.js";
import { type Daemon, igordAsync, startDaemon } from "./process.js";

export type LogLine = Record<string, unknown>;

/**
 * Where a node's fixed port is drawn from: below Linux's ephemeral range (32768–60999), from which
 * every port-0 listener and outgoing connection of the other test files takes its ports. A port
 * drawn from that range and released could be taken by one of them while its node is down between
 * a kill and its restart.
 */
const FIXED_PORTS = { from: 20_000, to: 32_000 } as const;

/** A free loopback TCP port outside the ephemeral range (bound and released: a node listens on it for its whole life, across restarts). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = FIXED_PORTS.from + Math.floor(Math.random() * (FIXED_PORTS.to - FIXED_PORTS.from));
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** mulberry32: a small seeded PRNG, so a seed replays the same schedule of operations. */
export function prng(seed: number): { next(): number; int(lo: number, hi: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int, pick: (xs) => xs[int(0, xs.length - 1)]!, chance: (p) => next() < p };
}

/** One run of a node's process: its lines and its whole stderr. */
export interface Incarnation {
  daemon: Daemon;
  stderr: string;
  /** How it ended: "sigkill" (by the harness), "sigterm", or null while it runs. */
  end: string | null;
  exitCode: number | null;
}

export class ChaosNode {
  peerId = "";
  control: { host: string; port: number } | null = null;
  readonly incarnations: Incarnation[] = [];
  frozen = false;
  /** Between a spawn and its agents_loaded line. */
  starting = false;
  /** Extra flags (the trusted peers, once known). */
  extra: Record<string, string> = {};

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly port: number,
    private readonly flags: Record<string, string>,
  ) {
    mkdirSync(this.agentsDir, { recursive: true });
  }

  get dataDir(): string {
    return join(this.dir, "data");
  }
  get agentsDir(): string {
    return join(this.dir, "agents");
  }
  get current(): Incarnation | undefined {
    return this.incarnations.at(-1);
  }
  get up(): boolean {
    const c = this.current;
    return !!c && c.end === null && c.daemon.child.exitCode === null && c.daemon.child.signalCode === null;
  }
  /** Up and not stopped by SIGSTOP: it can answer. */
  get answering(): boolean {
    return this.up && !this.frozen && !this.starting;
  }

  /** Lines of every incarnation, each with its incarnation index. */
  allLines(): (LogLine & { inc: number })[] {
    return this.incarnations.flatMap((c, inc) => c.daemon.lines.map((l) => ({ ...l, inc })));
  }

  addAgent(name: string): void {
    copyFileSync(join(EXAMPLES, `${name}.manifest.json`), join(this.agentsDir, `${name}.manifest.json`));
    copyFileSync(join(EXAMPLES, `${name}.wasm`), join(this.agentsDir, `${name}.wasm`));
  }

  async start(): Promise<void> {
    const all: Record<string, string> = {
      "data-dir": this.dataDir,
      "agents-dir": this.agentsDir,
      control: "127.0.0.1:0",
      listen: `/ip4/127.0.0.1/tcp/${this.port}`,
      "log-level": "debug",
      ...this.flags,
      ...this.extra,
    };
    const args = Object.entries(all).flatMap(([k, v]) => (k === "trusted-peer" ? v.split(",").flatMap((p) => ["--trusted-peer", p]) : [`--${k}`, v]));
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("IGORD_")) env[k] = v;
    const daemon = startDaemon(args, { ...env, IGORD_LISTEN: all.listen });
    const inc: Incarnation = { daemon, stderr: "", end: null, exitCode: null };
    daemon.child.stderr?.on("data", (d: Buffer) => (inc.stderr += d.toString()));
    void daemon.exit.then((code) => (inc.exitCode = code));
    this.incarnations.push(inc);
    this.frozen = false;
    this.starting = true;
    try {
      const listening = await daemon.waitFor((l) => l.event === "p2p_listening", 20_000);
      this.peerId = String(listening.peerId);
      const control = await daemon.waitFor((l) => l.event === "control_listening", 20_000);
      this.control = { host: String(control.host), port: Number(control.port) };
      await daemon.waitFor((l) => l.event === "agents_loaded", 20_000);
    } catch (e) {
      // Killed by the harness while starting: that is chaos, not a failure to start.
      if (inc.end !== "sigkill") throw e;
    } finally {
      this.starting = false;
    }
  }

  async kill(): Promise<void> {
    const c = this.current;
    if (!c || c.end !== null) return;
    c.end = "sigkill";
    c.daemon.child.kill("SIGKILL");
    await c.daemon.exit;
    this.frozen = false;
  }

  /** SIGTERM; resolves with the exit code (0 is a clean stop). */
  async stop(): Promise<number | null> {
    const c = this.current;
    if (!c || c.end !== null) return c?.exitCode ?? null;
    if (this.frozen) this.cont();
    c.end = "sigterm";
    c.daemon.child.kill("SIGTERM");
    return c.daemon.exit;
  }

  freeze(): void {
    if (!this.up || this.frozen) return;
    this.frozen = true;
    this.current!.daemon.child.kill("SIGSTOP");
  }

  cont(): void {
    if (!this.frozen) return;
    this.frozen = false;
    if (this.up) this.current!.daemon.child.kill("SIGCONT");
  }

  read<T>(f: (s: SqliteStore) => T): T | undefined {
    if (!existsSync(join(this.dataDir, DB_FILE))) return undefined;
    const store = SqliteStore.open(join(this.dataDir, DB_FILE), { readonly: true });
    try {
      return f(store);
    } finally {
      store.close();
    }
  }

  lease(agentId: string): Lease | undefined {
    return this.read((s) => s.lease(agentId));
  }

  get(path: string): Promise<unknown> {
    if (!this.control) throw new Error(`${this.name} has no control API`);
    return controlGet(this.control, this.dataDir, path);
  }

  post(path: string, body?: unknown, timeoutMs?: number): Promise<unknown> {
    if (!this.control) throw new Error(`${this.name} has no control API`);
    return controlPost(this.control, this.dataDir, path, body, timeoutMs);
  }

  /** An igord command on this node's data dir, run to completion without blocking the test process. */
  cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("IGORD_")) env[k] = v;
    return igordAsync([...args, "--data-dir", this.dataDir], { ...env, IGORD_LISTEN: "off" });
  }
}

export interface ChaosCluster {
  nodes: ChaosNode[];
  /** proxies[i][j]: node i's way to node j (undefined on the diagonal). */
  proxies: (FaultProxy | undefined)[][];
  /** The address node `from` dials to reach node `to` (through its proxy). */
  route(from: number, to: number): string;
}

/**
 * Starts `n` nodes that trust each other: a first start makes each node's key (its peer id), then
 * every node starts again with the others as --trusted-peer. `agentsAt[k]` lists the example agents
 * node k runs from its agents dir.
 */
export async function startChaosCluster(n: number, flags: Record<string, string>, agentsAt: string[][]): Promise<ChaosCluster> {
  const nodes: ChaosNode[] = [];
  for (let i = 0; i < n; i++) nodes.push(new ChaosNode(`n${i}`, tempDir("igord-chaos-"), await freePort(), flags));
  // The first start makes each node's key; nothing runs yet.
  await Promise.all(nodes.map((x) => x.start()));
  await Promise.all(nodes.map((x) => x.stop()));
  for (const x of nodes) x.extra = { "trusted-peer": nodes.filter((o) => o !== x).map((o) => o.peerId).join(",") };
  agentsAt.forEach((names, k) => names.forEach((a) => nodes[k]!.addAgent(a)));
  const proxies: (FaultProxy | undefined)[][] = [];
  for (let i = 0; i < n; i++) {
    proxies.push([]);
    for (let j = 0; j < n; j++) proxies[i]!.push(i === j ? undefined : await FaultProxy.start(nodes[j]!.port));
  }
  await Promise.all(nodes.map((x) => x.start()));
  return {
    nodes,
    proxies,
    route: (from, to) => proxies[from]![to]!.address(nodes[to]!.peerId),
  };
}
