// In-process test nodes: a real IgordNode (real worker pool, real WASM, real SQLite file) on temp
// dirs, its logs captured as parsed JSON objects, and a registry so one call tears them all down.
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
import { TempDirs, tempDir } from "./temp-dirs.js";
import { waitForEvent } from "./wait.js";

export { tempDir };

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

/** Started nodes not stopped yet: what stopAllNodes() stops. */
const live = new Set<TestNode>();
const dirs = new TempDirs();
/** Dirs of nodes whose start is under way: a teardown meanwhile leaves them to that start, which ends it. */
const starting = new Set<string>();
/** Counts stopAllNodes() calls: a start that began before one and ended after it belongs to a torn-down test. */
let generation = 0;

/**
 * Starts a node on temp dirs. Pass `dir` (from an earlier node) to restart on the same data dir and
 * agents dir — the same SQLite file. A start that stopAllNodes() overtook (a test that timed out while
 * its node was starting) stops that node again, removes its dir and throws.
 */
export async function startTestNode(
  flags: Record<string, string> = {},
  opts: { dir?: string; watch?: boolean; start?: boolean; resumeStored?: boolean; awaitLoads?: boolean } = {},
  migrationHooks?: MigrationHooks,
): Promise<TestNode> {
  const gen = generation;
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
  if (!(opts.start ?? true)) {
    live.add(t);
    return t;
  }
  starting.add(dir);
  const failure = await (async () => {
    await node.start();
    // Most tests want the agents present at start loaded; those about loading itself say otherwise.
    if (opts.awaitLoads ?? true) await node.whenLoaded();
  })().then(
    () => null,
    (e: unknown) => ({ e }),
  );
  starting.delete(dir);
  if (gen !== generation) {
    await t.stop().catch(() => undefined);
    dirs.remove(dir);
    throw new Error(`stopAllNodes() ran while the node on ${dir} was starting: it is stopped and its dir removed`);
  }
  // A node whose start failed may hold files and threads open: stopAllNodes() stops it like the others.
  live.add(t);
  if (failure) throw failure.e;
  return t;
}

/** Stops every node a test started (call from afterEach) and removes their dirs. */
export async function stopAllNodes(): Promise<void> {
  generation++;
  await Promise.all([...live].map((t) => t.stop()));
  dirs.removeAll(starting);
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
