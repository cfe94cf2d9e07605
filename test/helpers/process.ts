// Real igord processes come from the test kit (src/testing, published as igord/testing).
import { spawn } from "node:child_process";
import { BIN } from "../../src/testing/process.js";

import type { Daemon } from "../../src/testing/process.js";

export { BIN, type Daemon, igord, killAll, startDaemon } from "../../src/testing/process.js";

/** The daemon's exit code once it has exited, or a failure naming its last lines if it still runs after `ms`. */
export function exitWithin(d: Daemon, ms: number): Promise<number | null> {
  return Promise.race([
    d.exit,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running after ${ms}ms: ${JSON.stringify(d.lines.slice(-3))}`)), ms)),
  ]);
}

/**
 * igord run to completion without blocking this process: for a command that talks to a node or a
 * server running in it (igord() waits in spawnSync, and nothing here could answer meanwhile).
 */
export function igordAsync(args: string[], env: NodeJS.ProcessEnv = { IGORD_LISTEN: "off", ...process.env }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on("exit", (status) => resolve({ status, stdout, stderr })));
}

/** Whether a process with this pid is still there (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
