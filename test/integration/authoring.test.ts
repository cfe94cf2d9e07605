// docs/AUTHORING.md, run as an author runs it: every command of its shell blocks, in order, in a
// fresh directory outside this repo (npm install from the registry; igord linked from this checkout).
// A command the page shows and this test does not run, or the other way round, fails the test.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { IGORD_ROOT } from "../../src/authoring/new-project.js";
import { waitUntil } from "../../src/testing/wait.js";
import { authorEnv, npm, PROJECT_STEPS_TIMEOUT_MS } from "../helpers/author.js";
import { ROOT, tempDir } from "../helpers/node.js";
import { igord } from "../helpers/process.js";

const PAGE = join(ROOT, "docs", "AUTHORING.md");
/** How long a daemon of the walk-through may take to start, tick or stop (ticks are 1 s apart). */
const DAEMON_WAIT_MS = 30_000;

/** The commands of the page's ```sh blocks, in order, without their comments. */
export function shellCommands(markdown: string): string[] {
  const out: string[] = [];
  for (const block of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of (block[1] ?? "").split("\n")) {
      const cmd = line.replace(/\s+#.*$/, "").trim();
      if (cmd && !cmd.startsWith("#")) out.push(cmd);
    }
  }
  return out;
}

/**
 * The walk-through: the page up to its "Other toolchains" reference section, whose compiler lines
 * (clang, cargo, zig, tinygo) need toolchains npm does not provide (the C ones are
 * scripts/build-c-agents.sh's, rebuilt and compared by c-agents.test.ts where clang is present).
 */
export function walkThrough(markdown: string): string {
  const end = markdown.indexOf("\n## Other toolchains");
  return end < 0 ? markdown : markdown.slice(0, end);
}

/** A daemon started from the walk-through (npm start, or igord in the foreground), in its own process group like a terminal's job. */
class Foreground {
  readonly lines: Record<string, unknown>[] = [];
  /** What it wrote to stderr (npm run dev's own lines, a failed build's errors). */
  stderr = "";
  readonly exit: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(cmd, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let buf = "";
    this.child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split("\n");
      buf = parts.pop() ?? "";
      // npm prints its own "> hello@0.1.0 start" lines first; igord's are JSON.
      for (const p of parts) if (p.startsWith("{")) this.lines.push(JSON.parse(p) as Record<string, unknown>);
    });
    this.child.stderr?.on("data", (d: Buffer) => {
      this.stderr += d.toString();
    });
    // "close": npm and the igord under it have both exited (igord holds the pipe until it ends).
    this.exit = new Promise((resolve) => this.child.on("close", (code) => resolve(code)));
    running.add(this);
  }

  async waitFor(pred: (l: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
    await waitUntil(() => this.lines.some(pred), { what, timeoutMs: DAEMON_WAIT_MS });
    return this.lines.find(pred) as Record<string, unknown>;
  }

  async waitForStderr(re: RegExp, what: string): Promise<void> {
    await waitUntil(() => re.test(this.stderr), { what, timeoutMs: DAEMON_WAIT_MS });
  }

  /** Ctrl-C: SIGINT to the whole process group (npm and the igord under it); true when igord stopped cleanly. */
  async interrupt(): Promise<boolean> {
    process.kill(-(this.child.pid as number), "SIGINT");
    await this.exit;
    running.delete(this);
    // npm itself dies of the SIGINT; igord checkpoints its agents and says so before it exits.
    return this.lines.some((l) => l.event === "node_stopped");
  }

  /** A SIGTERM to npm alone (an IDE's stop button, a process manager); true when igord stopped cleanly. */
  async terminateNpm(): Promise<boolean> {
    process.kill(this.child.pid as number, "SIGTERM");
    await this.exit;
    running.delete(this);
    return this.lines.some((l) => l.event === "node_stopped");
  }

  kill(): void {
    try {
      process.kill(-(this.child.pid as number), "SIGKILL");
    } catch {
      // already gone
    }
  }
}

const running = new Set<Foreground>();
const dirs: string[] = [];
afterAll(() => {
  for (const f of running) f.kill();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A line the agent logged through the log hostcall (the daemon prints them at info level). */
function agentLog(l: Record<string, unknown>): boolean {
  return l.event === "agent_log" && l.agent === "hello" && /^hello: tick \d+$/.test(String(l.msg));
}

/** Loopback ports the page names, replaced by free ones: tests never take fixed ports. */
function freePorts(cmd: string): string {
  return cmd.replace(/127\.0\.0\.1:\d+/, "127.0.0.1:0").replace(/\/tcp\/\d+/, "/tcp/0");
}

describe("docs/AUTHORING.md", () => {
  // Acceptance 40: igord new outside the repo → npm install, build, test pass; runs on a daemon, survives a restart.
  it(
    "from igord new to an agent that survives a restart and migrates: every command on the page runs and does what the page says",
    async () => {
      const commands = shellCommands(walkThrough(readFileSync(PAGE, "utf8")));
      const home = tempDir("igord-authoring-");
      dirs.push(home);
      let cwd = home;
      const env = { ...authorEnv(), npm_config_prefer_offline: "true", npm_config_audit: "false", npm_config_fund: "false" };
      const npx = (args: string[]) => npm(["exec", "--", "igord", ...args], cwd, env);
      let node1: Foreground | null = null;
      let node2: Foreground | null = null;
      let node2Address = "";
      let resumedFrom = -1n;
      const ran: string[] = [];

      const steps: [RegExp, (cmd: string) => Promise<void> | void][] = [
        [/^igord new hello$/, () => {
          const r = igord(["new", "hello"], env, cwd);
          expect(r.stderr).toBe("");
          expect(r.status).toBe(0);
          const pkg = JSON.parse(readFileSync(join(cwd, "hello", "package.json"), "utf8")) as { dependencies: Record<string, string> };
          expect(pkg.dependencies.igord).toBe(`file:${IGORD_ROOT}`);
          expect(readFileSync(join(cwd, "hello", "assembly", "index.ts"), "utf8")).toContain('from "igord/sdk"');
        }],
        [/^cd hello$/, () => {
          cwd = join(cwd, "hello");
        }],
        [/^npm install$/, () => {
          const r = npm(["install"], cwd, env);
          expect(r.out).not.toMatch(/ERR!/);
          expect(r.status).toBe(0);
        }],
        [/^npm run build$/, () => {
          const r = npm(["run", "build"], cwd, env);
          expect(r.out).toContain("built build/hello.wasm");
          expect(r.status).toBe(0);
        }],
        [/^npm test$/, () => {
          const r = npm(["test"], cwd, env);
          expect(r.out).toMatch(/Tests\s+2 passed/);
          expect(r.status).toBe(0);
        }],
        [/^npm start$/, async () => {
          if (node1) {
            // Step 5: Ctrl-C first. The daemon checkpoints and exits 0.
            expect(await node1.interrupt()).toBe(true);
            // The agent's own last log line ("hello: tick N") is the tick it resumes after.
            resumedFrom = BigInt(String([...node1.lines].reverse().find(agentLog)?.tick));
          }
          // The page's npm start, on free loopback ports (IGORD_* env; the page's flags are none).
          node1 = new Foreground("npm", ["start"], cwd, { ...env, IGORD_LISTEN: "/ip4/127.0.0.1/tcp/0", IGORD_CONTROL: "127.0.0.1:0" });
          const started = await node1.waitFor((l) => l.event === "agent_started" && l.agent === "hello", "hello started");
          if (resumedFrom >= 0n) {
            // Resumed from the checkpoint taken at Ctrl-C, not born again.
            expect(started.fresh).toBe(false);
            expect(BigInt(String(started.tick))).toBe(resumedFrom);
          }
          const after = resumedFrom < 0n ? 1n : resumedFrom;
          await node1.waitFor((l) => agentLog(l) && BigInt(String(l.tick)) > after, "hello ticking");
        }],
        [/^npx igord status$/, () => {
          const r = npx(["status"]);
          expect(r.out).toMatch(/agents: 1 running/);
          expect(r.out).toMatch(/p2p: \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/);
          expect(r.status).toBe(0);
        }],
        [/^npx igord agents$/, () => {
          const r = npx(["agents"]);
          expect(r.out).toMatch(/hello\s+running\s+\d+/);
          expect(r.status).toBe(0);
        }],
        [/^npx igord --data-dir data2 /, async (cmd) => {
          const args = freePorts(cmd).split(/\s+/).slice(2);
          node2 = new Foreground("npm", ["exec", "--", "igord", ...args], cwd, env);
          await node2.waitFor((l) => l.event === "agents_loaded", "the second node started");
        }],
        [/^npx igord status --data-dir data2$/, () => {
          const r = npx(["status", "--data-dir", "data2"]);
          expect(r.status).toBe(0);
          node2Address = /p2p: (\S+)/.exec(r.out)?.[1] ?? "";
          expect(node2Address).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/);
        }],
        [/^npx igord migrate hello --to \/ip4\/127\.0\.0\.1\/tcp\/4002\/p2p\/12D3KooW\.\.\.$/, () => {
          const r = npx(["migrate", "hello", "--to", node2Address]);
          expect(r.out).toMatch(/^hello migrated to 12D3KooW\S+ via \/ip4\/127\.0\.0\.1\/tcp\/\d+\S* at epoch/m);
          expect(r.status).toBe(0);
        }],
        [/^npx igord agents --data-dir data2$/, () => {
          const r = npx(["agents", "--data-dir", "data2"]);
          expect(r.out).toMatch(/hello\s+running/);
          expect(r.status).toBe(0);
        }],
        [/^npm run dev$/, async () => {
          const dev = new Foreground("npm", ["run", "dev"], cwd, env);
          try {
            const started = await dev.waitFor((l) => l.event === "agent_started" && l.agent === "hello", "hello started by npm run dev");
            await dev.waitFor((l) => agentLog(l) && BigInt(String(l.tick)) >= 2n, "hello ticking under npm run dev");
            // The page's edit, saved.
            const source = join(cwd, "assembly", "index.ts");
            const original = readFileSync(source, "utf8");
            const edited = original.replace('"hello: tick "', '"hello: now at tick "');
            expect(edited).not.toBe(original);
            writeFileSync(source, edited);
            const upgraded = await dev.waitFor((l) => l.event === "code_upgraded" && l.agent === "hello", "the rebuilt agent taken as an upgrade");
            const newLine = (l: Record<string, unknown>) => l.event === "agent_log" && l.agent === "hello" && /^hello: now at tick \d+$/.test(String(l.msg));
            const first = await dev.waitFor(newLine, "the new code's line");
            // The next tick, the same identity, and the agent's own counter going on from the old code's state.
            expect(BigInt(String(first.tick))).toBe(BigInt(String(upgraded.tick)) + 1n);
            expect(first.did).toBe(started.did);
            const lastOld = [...dev.lines].reverse().find(agentLog);
            const counter = (l: Record<string, unknown> | undefined) => Number(/(\d+)$/.exec(String(l?.msg))?.[1]);
            expect(counter(first)).toBe(counter(lastOld) + 1);
            // A save that does not build: its errors, and the agent runs on with the code it has.
            writeFileSync(source, `${edited}\nthis is not AssemblyScript ((\n`);
            await dev.waitForStderr(/the build failed; the agent runs on with the code it has/, "the failed build reported");
            const after = dev.lines.filter(newLine).length;
            await dev.waitFor(() => dev.lines.filter(newLine).length > after + 1, "ticks of the running code after the failed build");
            expect(dev.lines.filter((l) => l.event === "code_upgraded")).toHaveLength(1);
            writeFileSync(source, edited);
          } finally {
            expect(await dev.interrupt()).toBe(true);
          }
          // Stopped by a SIGTERM to npm alone: npm exits at once; dev.mjs and the daemon under it
          // were left running, holding dev-data/. dev.mjs sees npm gone and stops the daemon cleanly.
          const again = new Foreground("npm", ["run", "dev"], cwd, env);
          try {
            await again.waitFor((l) => l.event === "agent_log" && l.agent === "hello", "hello ticking under npm run dev again");
          } finally {
            expect(await again.terminateNpm()).toBe(true);
          }
        }],
        [/^npx igord verify --agent hello --data-dir data2$/, () => {
          const r = npx(["verify", "--agent", "hello", "--data-dir", "data2"]);
          expect(r.out).toMatch(/VALID/);
          expect(r.out).not.toMatch(/INVALID/);
          expect(r.status).toBe(0);
        }],
      ];

      for (const cmd of commands) {
        const step = steps.find(([re]) => re.test(cmd));
        if (!step) throw new Error(`docs/AUTHORING.md shows \`${cmd}\`, which this test does not run`);
        await step[1](cmd);
        ran.push(cmd);
      }
      const unused = steps.filter(([re]) => !commands.some((c) => re.test(c))).map(([re]) => re.source);
      expect(unused).toEqual([]);
      expect(ran.filter((c) => c === "npm start")).toHaveLength(2);
      // The agent ended where the page says: on the second node, retired on the first.
      const all = npx(["agents", "--all"]);
      expect(all.out).toMatch(/hello\s+retired/);
      const [n1, n2] = [node1 as Foreground | null, node2 as Foreground | null];
      expect(await n2?.interrupt()).toBe(true);
      expect(await n1?.interrupt()).toBe(true);
    },
    PROJECT_STEPS_TIMEOUT_MS * 3,
  );

  it("reads the commands of the page's sh blocks only, without their comments", () => {
    expect(shellCommands("```sh\nnpm test   # runs it\n# a comment\n\nnpm start\n```\ntext\n```ts\nnot a command\n```")).toEqual(["npm test", "npm start"]);
  });
});
