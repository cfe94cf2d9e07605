// What `igord --help` and `igord status` load: only command-line parsing and, for status, the
// control client. Their start-up within 2x of `node -e 0` (acceptance 42) rests on never loading
// libp2p, SQLite or the daemon; the time itself is the bench's "CLI start-up" rows
// (scripts/bench-cli.mjs), which a shared test machine cannot judge by a fixed bound.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EXAMPLES, ROOT, tempDir } from "../helpers/node.js";
import { BIN, killAll, startDaemon } from "../helpers/process.js";

afterEach(killAll);

const TRACE_HOOK = join(ROOT, "test", "fixtures", "module-trace", "register.mjs");
const HEARTBEAT = join(EXAMPLES, "heartbeat.wasm");
const ENV: NodeJS.ProcessEnv = { ...process.env, IGORD_LISTEN: "off", IGORD_CONTROL: "", IGORD_DATA_DIR: "" };

/** Runs igord with a resolve hook and returns its result and every module it loaded. */
function traced(args: string[], env: NodeJS.ProcessEnv): { status: number | null; stdout: string; modules: string[] } {
  const trace = join(tempDir(), "modules.txt");
  const r = spawnSync(process.execPath, ["--import", TRACE_HOOK, BIN, ...args], {
    encoding: "utf8",
    timeout: 30_000,
    env: { ...env, IGORD_TEST_MODULE_TRACE: trace },
  });
  return { status: r.status, stdout: r.stdout, modules: readFileSync(trace, "utf8").split("\n").filter((l) => l !== "") };
}

/** The packages (outside commander, the parser) and igord's own folders a quick command must not load. */
function heavy(modules: string[]): string[] {
  return modules.filter((url) =>
    (/\/node_modules\//.test(url) && !/\/node_modules\/commander\//.test(url)) ||
    /\/dist\/(node|p2p|store|scheduler|wasm|migration|checkpoint|eventlog|identity)\//.test(url) ||
    /\/dist\/cli\/daemon\.js$/.test(url) ||
    url === "node:worker_threads",
  );
}

describe("what a quick command loads", () => {
  // Acceptance 42: `igord --help` and `igord status` (found from IGORD_DATA_DIR alone) load no daemon, libp2p or SQLite.
  it("igord --help and igord status, finding its daemon from IGORD_DATA_DIR alone, load neither libp2p, SQLite nor the daemon", async () => {
    const help = traced(["--help"], ENV);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: igord/);
    expect(help.modules.some((url) => url.endsWith("/dist/cli/main.js"))).toBe(true);
    expect(heavy(help.modules)).toEqual([]);

    const dir = tempDir();
    const dataDir = join(dir, "data");
    const d = startDaemon(["--agents-dir", join(dir, "agents"), "--data-dir", dataDir, "--control", "127.0.0.1:0"], ENV);
    await d.waitFor((l) => l.event === "control_listening");
    const status = traced(["status"], { ...ENV, IGORD_DATA_DIR: dataDir });
    expect(status.status).toBe(0);
    expect(status.stdout).toContain(`(pid ${d.child.pid})`);
    expect(status.modules.some((url) => url.endsWith("/dist/control/client.js"))).toBe(true);
    expect(heavy(status.modules)).toEqual([]);
    d.child.kill("SIGINT");
    expect(await d.exit).toBe(0);
  });

  it("igord run with --listen off never loads libp2p; with a listen address it loads it as one bundled module", async () => {
    /** Runs heartbeat to its third tick and stops it; returns the libp2p modules the process loaded. */
    const libp2pLoaded = async (listen: string): Promise<{ packages: string[]; bundle: string[] }> => {
      const trace = join(tempDir(), "modules.txt");
      const d = startDaemon(["run", HEARTBEAT, "--budget", "10", "--data-dir", join(tempDir(), "A"), "--tick-interval", "50ms", "--listen", listen], {
        ...ENV,
        IGORD_LISTEN: listen,
        NODE_OPTIONS: `--import ${TRACE_HOOK}`,
        IGORD_TEST_MODULE_TRACE: trace,
      });
      await d.waitFor((l) => l.event === "agent_log" && / tick 3 /.test(` ${String(l.msg)} `));
      d.child.kill("SIGINT");
      expect(await d.exit).toBe(0);
      const modules = [...new Set(readFileSync(trace, "utf8").split("\n"))];
      return {
        packages: modules.filter((url) => /\/node_modules\/(libp2p|@libp2p|@chainsafe|@multiformats)\//.test(url)),
        bundle: modules.filter((url) => url.endsWith("/dist/p2p/libp2p-modules.js")),
      };
    };
    expect(await libp2pLoaded("off")).toEqual({ packages: [], bundle: [] });
    // The build bundles libp2p (scripts/bundle-libp2p.mjs): one module, not ~325 resolved one by one.
    const listening = await libp2pLoaded("/ip4/127.0.0.1/tcp/0");
    expect(listening.bundle).toHaveLength(1);
    expect(listening.packages).toEqual([]);
  });
});

