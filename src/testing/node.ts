// In-process test nodes: a real IgordNode (real worker pool, real WASM, real SQLite file) on temp
// dirs, its logs captured as parsed JSON objects, and a registry so one call tears them all down.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { loadConfig } from "../config/load.js";
import type { NodeConfig } from "../config/schema.js";
import { parseCheckpoint } from "../checkpoint/codec.js";
import { IgordNode } from "../node/node.js";
import type { MigrationHooks } from "../migration/service.js";
import { DB_FILE, SqliteStore } from "../store/sqlite-store.js";
import { TempDirs } from "./temp-dirs.js";
import { waitForEvent } from "./wait.js";

/** The igord package root (this file is src/testing/ or dist/testing/ under it). */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export type LogLine = Record<string, unknown> & { event?: string; agent?: string; msg?: string };

export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly stream = new Writable({
    write: (chunk: Buffer, _enc, cb) => {
      for (const l of chunk.toString().split("\n")) if (l.trim()) this.lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  events(event: string, agent?: string): LogLine[] {
    return this.lines.filter((l) => l.event === event && (agent === undefined || l.agent === agent));
  }
}

export function tempDir(prefix = "igord-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestNode {
  node: IgordNode;
  logs: LogCapture;
  config: NodeConfig;
  dir: string;
  /**
   * Resolves with the first scheduler event (since the node was created) matching `predicate`,
   * waiting for it if it has not happened yet — so a fast event is never missed.
   */
  waitFor<T>(
    event: "tick" | "stopped" | "checkpoint" | "verified" | "divergence",
    predicate?: (value: T) => boolean,
    timeoutMs?: number,
  ): Promise<T>;
  stop(): Promise<void>;
}

const live = new Set<TestNode>();
const dirs = new TempDirs();

/**
 * Starts a node on temp dirs. Pass `dir` (from an earlier node) to restart on the same data dir and
 * agents dir — the same SQLite file.
 */
export async function startTestNode(
  flags: Record<string, string> = {},
  opts: { dir?: string; watch?: boolean; start?: boolean; resumeStored?: boolean; awaitLoads?: boolean } = {},
  migrationHooks?: MigrationHooks,
): Promise<TestNode> {
  const dir = opts.dir ?? tempDir();
  dirs.add(dir);
  const config = loadConfig({
    flags: {
      "agents-dir": join(dir, "agents"),
      "data-dir": join(dir, "data"),
      control: "off",
      listen: "off",
      "log-level": "debug",
      workers: "2",
      ...flags,
    },
    env: {},
  });
  const logs = new LogCapture();
  const logger = pino({ level: config.logLevel }, logs.stream);
  const node = new IgordNode({
    config,
    logger,
    watchAgentsDir: opts.watch ?? false,
    resumeStoredAgents: opts.resumeStored ?? false,
    ...(migrationHooks ? { migrationHooks } : {}),
  });
  const history: { event: string; value: unknown }[] = [];
  for (const event of ["tick", "stopped", "checkpoint", "verified", "divergence"] as const) {
    node.scheduler.on(event, (value: unknown) => history.push({ event, value }));
  }
  const t: TestNode = {
    node,
    logs,
    config,
    dir,
    waitFor: <T>(event: string, predicate: (value: T) => boolean = () => true, timeoutMs = 10_000) => {
      const seen = history.find((h) => h.event === event && predicate(h.value as T));
      if (seen) return Promise.resolve(seen.value as T);
      return waitForEvent<T>(node.scheduler, event, predicate, timeoutMs);
    },
    stop: async () => {
      live.delete(t);
      await node.stop();
    },
  };
  live.add(t);
  if (opts.start ?? true) {
    await node.start();
    // Most tests want the agents present at start loaded; those about loading itself say otherwise.
    if (opts.awaitLoads ?? true) await node.whenLoaded();
  }
  return t;
}

/** Stops every node a test started (call from afterEach). */
export async function stopAllNodes(): Promise<void> {
  await Promise.all([...live].map((t) => t.stop()));
  dirs.removeAll();
}

/** Reads an agent's stored head checkpoint straight from the node's SQLite file (read-only). */
export function storedHead(
  dataDir: string,
  agentId: string,
): { tick: bigint; budget: bigint; reason: string; state: Uint8Array; status: string; statusReason: string | null; count: number } | undefined {
  const store = SqliteStore.open(join(dataDir, DB_FILE), { readonly: true });
  try {
    const head = store.head(agentId);
    const row = store.agent(agentId);
    if (!head || !row) return undefined;
    const cp = parseCheckpoint(head.blob);
    return { tick: cp.tick, budget: cp.budget, reason: head.reason, state: cp.state, status: row.status, statusReason: row.reason, count: store.historyCount(agentId) };
  } finally {
    store.close();
  }
}
