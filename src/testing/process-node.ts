// A kit node as a real igord child process: a SIGKILL is a real one, and a restart a new process on
// the same data dir. Seen through its JSON log lines, its control API and its SQLite file.
import { copyFileSync, existsSync, mkdirSync, renameSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Lease } from "../authority/lease.js";
import { controlGet, controlPost } from "../control/client.js";
import { ErrorCode, isIgordError } from "../errors.js";
import type { MigrationResult } from "../migration/context.js";
import { DB_FILE } from "../store/sqlite-store.js";
import { type AgentInfo, agentIdOf, agentInfo, checkpointOf, KIT_WAIT_MS, type KitNode, type Lineage, lineageOf, type OutboxMessage, outboxOf, readStore, type StoredCheckpoint, waitForStatus } from "./kit-node.js";
import { tempDir } from "./node.js";
import { type Daemon, startDaemon } from "./process.js";
import { TempDirs } from "./temp-dirs.js";

/** Temp dirs of process nodes (in-process nodes' dirs are tracked by startTestNode). */
const processDirs = new TempDirs();

/** Removes every process node's dir (their processes must be gone). */
export function removeProcessDirs(): void {
  processDirs.removeAll();
}

/**
 * The daemon's environment: this process's, without the IGORD_* settings of the shell that runs the
 * tests (an author's own daemon's), so a process node is configured by the kit's flags alone, as an
 * in-process node is.
 */
function daemonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("IGORD_")) env[k] = v;
  return env;
}

type LogLine = Record<string, unknown>;

export class ProcessNode implements KitNode {
  readonly mode = "process" as const;
  private daemon!: Daemon;
  private addr = "";
  private peer = "";
  private control: { host: string; port: number } | null = null;
  private up = false;

  private constructor(
    readonly name: string,
    readonly dir: string,
    private readonly flags: Record<string, string>,
  ) {}

  static async start(name: string, flags: Record<string, string>): Promise<ProcessNode> {
    const dir = tempDir("igord-kit-");
    processDirs.add(dir);
    const n = new ProcessNode(name, dir, flags);
    await n.spawn();
    return n;
  }

  get dataDir(): string {
    return join(this.dir, "data");
  }
  get agentsDir(): string {
    return join(this.dir, "agents");
  }
  get running(): boolean {
    return this.up && this.daemon.child.exitCode === null && this.daemon.child.signalCode === null;
  }
  get address(): string {
    return this.addr;
  }
  get peerId(): string {
    return this.peer;
  }

  private async spawn(): Promise<void> {
    mkdirSync(this.agentsDir, { recursive: true });
    const all: Record<string, string> = {
      "data-dir": this.dataDir,
      "agents-dir": this.agentsDir,
      control: "127.0.0.1:0",
      ...this.flags,
      // The kit sees ticks through the daemon's debug lines.
      "log-level": "debug",
    };
    const args = Object.entries(all).flatMap(([k, v]) => [`--${k}`, v]);
    this.daemon = startDaemon(args, { ...daemonEnv(), IGORD_LISTEN: all.listen ?? "off" }, this.dir);
    const listening = await this.daemon.waitFor((l) => l.event === "p2p_listening" || l.event === "agents_loaded", KIT_WAIT_MS);
    if (listening.event === "p2p_listening") {
      this.addr = (listening.addrs as string[])[0] ?? "";
      this.peer = String(listening.peerId);
    }
    const control = await this.daemon.waitFor((l) => l.event === "control_listening", KIT_WAIT_MS);
    this.control = { host: String(control.host), port: Number(control.port) };
    await this.daemon.waitFor((l) => l.event === "agents_loaded", KIT_WAIT_MS);
    this.up = true;
  }

  /** Lines this process logged since it (re)started, parsed. */
  get logs(): LogLine[] {
    return this.daemon.lines;
  }

  async load(wasmPath: string): Promise<string> {
    const agentId = agentIdOf(wasmPath);
    const manifest = join(dirname(wasmPath), `${agentId}.manifest.json`);
    // The daemon watches its agents dir: the manifest lands first, the module in one rename.
    if (existsSync(manifest)) copyFileSync(manifest, join(this.agentsDir, `${agentId}.manifest.json`));
    const partial = join(this.agentsDir, `.${agentId}.wasm.partial`);
    copyFileSync(wasmPath, partial);
    renameSync(partial, join(this.agentsDir, `${agentId}.wasm`));
    const line = await this.daemon.waitFor(
      (l) => (l.event === "agent_started" && l.agent === agentId) || (l.event === "agent_load_failed" && typeof l.path === "string" && basename(l.path) === `${agentId}.wasm`),
      KIT_WAIT_MS,
    );
    if (line.event === "agent_load_failed") throw new Error(`${this.name} cannot load ${wasmPath}: ${String(line.err)} [${String(line.code)}]`);
    return agentId;
  }

  async waitForTick(agentId: string, atLeast = 1n, timeoutMs = KIT_WAIT_MS): Promise<bigint> {
    const line = await this.daemon.waitFor((l) => l.event === "tick" && l.agent === agentId && BigInt(String(l.tick)) >= atLeast, timeoutMs);
    return BigInt(String(line.tick));
  }

  async migrate(agentId: string, to: KitNode): Promise<MigrationResult> {
    if (!this.control) throw new Error(`${this.name} is not running`);
    const path = `/v1/agents/${encodeURIComponent(agentId)}/migrate`;
    const r = (await controlPost(this.control, this.dataDir, path, { to: to.address }, KIT_WAIT_MS * 2)) as Omit<MigrationResult, "epoch"> & { epoch: string | null };
    // The control API shows the epoch as "(major,generation)"; a test gets it as in-process nodes give it.
    const m = r.epoch ? /^\((\d+),(\d+)\)$/.exec(r.epoch) : null;
    return { ...r, epoch: m ? { major: BigInt(m[1]!), generation: BigInt(m[2]!) } : null };
  }

  lease(agentId: string): Lease | undefined {
    if (!existsSync(join(this.dataDir, DB_FILE))) return undefined;
    return readStore(this.dataDir, (s) => s.lease(agentId));
  }
  lineage(agentId: string): Lineage {
    return readStore(this.dataDir, (s) => lineageOf(s, agentId));
  }
  outbox(agentId: string): OutboxMessage[] {
    return readStore(this.dataDir, (s) => outboxOf(s, agentId));
  }
  checkpoint(agentId: string): StoredCheckpoint {
    return readStore(this.dataDir, (s) => checkpointOf(s, agentId, this.name));
  }

  async agent(agentId: string): Promise<AgentInfo | undefined> {
    if (!this.control || !this.up) return undefined;
    // Died without stop() or kill(): a wait on it would never end well, so it fails at once saying why.
    if (!this.running) throw new Error(`${this.name} is not running: ${await this.daemon.ended}`);
    try {
      return agentInfo((await controlGet(this.control, this.dataDir, `/v1/agents/${encodeURIComponent(agentId)}`)) as Record<string, unknown>);
    } catch (e) {
      if (isIgordError(e, ErrorCode.AgentNotFound)) return undefined;
      throw e;
    }
  }
  waitForStatus(agentId: string, status: string, timeoutMs?: number): Promise<AgentInfo> {
    return waitForStatus(this, agentId, status, timeoutMs);
  }

  async stop(): Promise<void> {
    if (!this.up) return;
    this.up = false;
    this.daemon.child.kill("SIGTERM");
    const code = await this.daemon.exit;
    if (code !== 0) throw new Error(`${this.name} exited with ${String(code)} on SIGTERM`);
  }

  async kill(): Promise<void> {
    this.up = false;
    this.daemon.child.kill("SIGKILL");
    await this.daemon.exit;
  }

  async restart(): Promise<void> {
    if (this.up) await this.stop();
    await this.spawn();
  }
}
