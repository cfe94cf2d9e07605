// Test nodes: real worker pool, real WASM, temp dirs, logs captured as parsed JSON objects.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { loadConfig } from "../../src/config/load.js";
import type { NodeConfig } from "../../src/config/schema.js";
import { IgordNode } from "../../src/node/node.js";
import type { AgentStore } from "../../src/store/agent-store.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const EXAMPLES = join(ROOT, "agents");
export const AS_FIXTURES = join(ROOT, "test", "fixtures", "build");

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
  stop(): Promise<void>;
}

const live = new Set<TestNode>();

export async function startTestNode(
  flags: Record<string, string> = {},
  opts: { store?: AgentStore; watch?: boolean; start?: boolean } = {},
): Promise<TestNode> {
  const dir = tempDir();
  const config = loadConfig({
    flags: {
      "agents-dir": join(dir, "agents"),
      "data-dir": join(dir, "data"),
      control: "off",
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
    ...(opts.store ? { store: opts.store } : {}),
  });
  const t: TestNode = {
    node,
    logs,
    config,
    dir,
    stop: async () => {
      live.delete(t);
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(t);
  if (opts.start ?? true) await node.start();
  return t;
}

/** Stops every node a test started (call from afterEach). */
export async function stopAllNodes(): Promise<void> {
  await Promise.all([...live].map((t) => t.stop()));
}
