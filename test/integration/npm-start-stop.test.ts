// `npm start` (README's quick start, and the `npm start` of an `igord new` project) stopped the way an
// IDE's stop button or a process manager stops it: a SIGTERM to npm alone. npm passes it to the shell
// that runs the script, not to igord under it; the shell dies and igord, left behind, went on running
// its agents and holding the data dir. It must stop as on its own SIGTERM: checkpoint and exit 0.
import { type ChildProcess, spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { waitUntil } from "../../src/testing/wait.js";
import { authorEnv } from "../helpers/author.js";
import { agentsDirWith, ROOT } from "../helpers/node.js";
import { alive } from "../helpers/process.js";

/** How long igord may take to start, tick, or notice npm is gone and stop. */
const WAIT_MS = 15_000;

const started: ChildProcess[] = [];
afterEach(() => {
  for (const c of started.splice(0)) {
    try {
      process.kill(-(c.pid as number), "SIGKILL");
    } catch {
      // already gone
    }
  }
});

/** `npm start -- args` in this checkout, in a process group of its own like a terminal's job; its JSON lines. */
function npmStart(args: string[]): { child: ChildProcess; lines: Record<string, unknown>[] } {
  const child = spawn("npm", ["start", "--", ...args], { cwd: ROOT, env: authorEnv(), detached: true, stdio: ["ignore", "pipe", "pipe"] });
  started.push(child);
  const lines: Record<string, unknown>[] = [];
  let buf = "";
  child.stdout?.on("data", (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split("\n");
    buf = parts.pop() ?? "";
    for (const p of parts) if (p.startsWith("{")) lines.push(JSON.parse(p) as Record<string, unknown>);
  });
  return { child, lines };
}

describe("npm start", () => {
  it("a SIGTERM to npm alone (an IDE's stop button) stops igord under it as its own SIGTERM does: every agent checkpointed, no daemon left behind", async () => {
    const { agents, data } = agentsDirWith(["heartbeat"]);
    const { child, lines } = npmStart(["--agents-dir", agents, "--data-dir", data, "--listen", "off", "--control", "127.0.0.1:0"]);
    await waitUntil(() => lines.some((l) => l.event === "agent_log" && l.agent === "heartbeat"), { what: "heartbeat's first tick under npm start", timeoutMs: WAIT_MS });
    const pid = lines.find((l) => l.event === "node_starting")?.pid as number;
    expect(pid).not.toBe(child.pid);

    process.kill(child.pid as number, "SIGTERM");
    await waitUntil(() => !alive(pid), { what: `igord (pid ${pid}) to stop once npm is gone`, timeoutMs: WAIT_MS });
    expect(lines.some((l) => l.event === "checkpoint_saved" && l.agent === "heartbeat" && l.reason === "shutdown")).toBe(true);
    expect(lines.some((l) => l.event === "node_stopped")).toBe(true);
  });
});
