// Real igord processes: run to completion, or run in the background and wait on their JSON log lines.
// BIN is this igord install's own CLI, so a project that depends on igord tests against that version.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./node.js";
import { onRunnerExit } from "./runner-exit.js";

export const BIN = join(ROOT, "dist", "cli", "main.js");
/** What a background daemon runs: BIN in the same process, stopping once this test process is gone (daemon-entry.ts). */
const DAEMON_ENTRY = join(ROOT, "dist", "testing", "daemon-entry.js");
const children = new Set<ChildProcess>();
// A test runner that exits, crashes or is stopped by a signal takes its daemons with it.
onRunnerExit("kill-processes", () => void killAll());

/** Kills every process a test started (call from afterEach); resolves once they have all exited. */
export function killAll(): Promise<void> {
  const exits = [...children].map((c) =>
    c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => c.once("exit", () => resolve())),
  );
  for (const c of children) c.kill("SIGKILL");
  children.clear();
  return Promise.all(exits).then(() => undefined);
}

/** How much of a daemon's stderr a failed wait quotes (its start). */
const STDERR_KEPT_CHARS = 4096;

/** Test daemons run without the p2p service unless a test asks for it (no shared port 4001). */
const TEST_ENV: NodeJS.ProcessEnv = { IGORD_LISTEN: "off", ...process.env };

export function igord(args: string[], env: NodeJS.ProcessEnv = TEST_ENV, cwd?: string) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 30_000, env, ...(cwd ? { cwd } : {}) });
}

export interface Daemon {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  waitFor(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exit: Promise<number | null>;
  /** Once its output has ended: how it exited, what it said on stderr and its last lines. */
  ended: Promise<string>;
}

/**
 * Starts igord in the background. Its stdin is a pipe this process holds open and never writes: when
 * this process ends, by any signal too, the daemon stops itself (and removes `ownedDir`, when given).
 */
export function startDaemon(args: string[], env: NodeJS.ProcessEnv = TEST_ENV, ownedDir = ""): Daemon {
  const child = spawn(process.execPath, [DAEMON_ENTRY, ownedDir, ...args], { stdio: ["pipe", "pipe", "pipe"], env });
  children.add(child);
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void; reject: (e: Error) => void }[] = [];
  let buf = "";
  // What it said on stderr, its start kept: why a daemon that never started did not (a bad flag, a lock).
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    if (stderr.length < STDERR_KEPT_CHARS) stderr = (stderr + d.toString()).slice(0, STDERR_KEPT_CHARS);
  });
  // Once its output has ended nothing more can match: every waiter fails at once, saying why.
  let ended: Error | null = null;
  let reportEnd: (report: string) => void = () => undefined;
  const endReport = new Promise<string>((resolve) => (reportEnd = resolve));
  child.on("close", (code, signal) => {
    const how = `igord exited (${signal ?? `code ${String(code)}`})`;
    const said = `stderr: ${stderr.trim() || "(empty)"}; last lines: ${JSON.stringify(lines.slice(-5))}`;
    ended = new Error(`${how} before logging the expected line; ${said}`);
    reportEnd(`${how}; ${said}`);
    for (const w of waiters.splice(0)) w.reject(ended);
  });
  child.stdout?.on("data", (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split("\n");
    buf = parts.pop() ?? "";
    for (const p of parts) {
      if (!p.trim()) continue;
      const l = JSON.parse(p) as Record<string, unknown>;
      lines.push(l);
      for (const w of [...waiters]) {
        if (w.pred(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => {
    children.delete(child);
    resolve(code);
  }));
  return {
    child,
    lines,
    exit,
    ended: endReport,
    waitFor: (pred, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const found = lines.find(pred);
        if (found) return resolve(found);
        if (ended) return reject(ended);
        const timer = setTimeout(
          () => reject(new Error(`igord never logged the expected line; last lines: ${JSON.stringify(lines.slice(-5))}`)),
          timeoutMs,
        );
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
      }),
  };
}
