// The files every agent project gets, whatever its language: package.json, manifest, vitest config,
// README and .gitignore.
import type { ProjectContext } from "./new-project.js";

export function json(v: unknown): string {
  return `${JSON.stringify(v, null, 2)}\n`;
}

/** Milliseconds a project test may take: real nodes start, migrate and restart. */
export const PROJECT_TEST_TIMEOUT_MS = 60_000;

export function commonFiles(
  c: ProjectContext,
  o: {
    build: string;
    /** The files and folders `npm run dev` watches: a save to any of them rebuilds. */
    sources: string[];
    devDependencies: Record<string, string>;
    /** Where the agent's u64 tick counter is in its checkpointed state. */
    counterOffset: number;
    /** What the build needs beyond npm, said in the README. */
    buildNeeds?: string;
  },
): Record<string, string> {
  const n = c.name;
  return {
    "package.json": json({
      name: n,
      version: "0.1.0",
      private: true,
      type: "module",
      description: `${n}: an igord agent`,
      scripts: {
        build: o.build,
        test: "vitest run",
        start: "igord --agents-dir build --data-dir data",
        dev: "node dev.mjs",
      },
      // igord is not on the npm registry: this links the igord install that ran `igord new`.
      dependencies: { igord: `file:${c.igordRoot}` },
      devDependencies: o.devDependencies,
    }),
    [`${n}.manifest.json`]: json({
      capabilities: { clock: { version: 1 }, log: { version: 1 } },
      resource_limits: { max_memory_bytes: 16 * 1024 * 1024 },
      migration_policy: { enabled: true, max_price_per_second: 1_000_000 },
    }),
    "vitest.config.mjs": `import { defineConfig } from "vitest/config";

// Real igord nodes start, migrate and restart in these tests: give them time.
export default defineConfig({
  test: { testTimeout: ${PROJECT_TEST_TIMEOUT_MS}, hookTimeout: ${PROJECT_TEST_TIMEOUT_MS}, include: ["test/**/*.test.ts"] },
});
`,
    ".gitignore": "node_modules/\nbuild/\ndata/\ndev-data/\n",
    "dev.mjs": devScript(n, o.sources),
    [`test/${n}.test.ts`]: testFile(n, o.counterOffset),
    "README.md": `# ${n}

An agent for [igord](${c.igordRoot}) ${c.igordVersion}, made by \`igord new\`. igord's
\`docs/AUTHORING.md\` walks through it; \`docs/SDK.md\` is the SDK reference and \`docs/TESTING.md\` the
test kit's.

\`\`\`sh
npm install      # the build and test tools from npm; igord linked from ${c.igordRoot}
npm run build    # build/${n}.wasm and build/${n}.manifest.json${o.buildNeeds ? ` (needs ${o.buildNeeds})` : ""}
npm test         # two real igord nodes: it ticks, migrates, survives a restart and a SIGKILL
npm start        # a daemon running build/ (state in ./data; Ctrl-C checkpoints and stops it)
npm run dev      # a daemon of its own (state in ./dev-data) that takes every rebuild; saves rebuild
\`\`\`

- \`${n}.manifest.json\`: the capabilities the agent may use (each hostcall needs one) and its limits.
- \`test/${n}.test.ts\`: tests on real nodes from \`igord/testing\`.
- igord is not on the npm registry: \`package.json\` depends on \`file:${c.igordRoot}\`, the igord
  that wrote this project. If igord moves, point that line at its new place and run \`npm install\`.
`,
  };
}

function testFile(n: string, counterOffset: number): string {
  return `// ${n} on real igord nodes from igord's test kit (igord/testing): nodes on free loopback ports with
// temp data dirs; the agent ticks, migrates, and survives a restart and a SIGKILL.
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startCluster, stopAll } from "igord/testing";

const wasm = fileURLToPath(new URL("../build/${n}.wasm", import.meta.url));

// Stops every node and process the kit started, even when a test fails.
afterEach(stopAll);

/** The agent's tick counter in its checkpointed state (the first field it marshals). */
function counter(state: Uint8Array): bigint {
  return new DataView(state.buffer, state.byteOffset, state.byteLength).getBigUint64(${counterOffset}, true);
}

describe("${n}", () => {
  it("ticks, migrates to another node, and survives that node's restart with its state", async () => {
    const cluster = await startCluster(2);
    const [a, b] = cluster.nodes;
    await a.load(wasm);
    await a.waitForTick("${n}", 3n);
    const moved = await a.migrate("${n}", b);
    expect(moved.outcome).toBe("done");
    expect(cluster.owner("${n}")).toBe(b);
    const seen = await b.waitForTick("${n}", 5n);
    await b.restart();
    await b.waitForTick("${n}", seen + 1n);
    expect(cluster.owner("${n}")).toBe(b);
    // Every tick ran once: the agent's own counter equals the node's tick number.
    const head = b.checkpoint("${n}");
    expect(counter(head.state)).toBe(head.tick);
    expect(b.lineage("${n}").report.valid).toBe(true);
  });

  it("survives a SIGKILL: it resumes from its last checkpoint on the restarted process", async () => {
    const cluster = await startCluster(1, { mode: "process" });
    const node = cluster.at(0);
    await node.load(wasm);
    await node.waitForTick("${n}", 10n);
    await node.kill();
    const last = node.checkpoint("${n}");
    expect(counter(last.state)).toBe(last.tick);
    await node.restart();
    expect(await node.waitForTick("${n}", last.tick + 1n)).toBe(last.tick + 1n);
  });
});
`;
}

/** How often `npm run dev` looks at its sources (a save is built once they have held still this long). */
export const DEV_POLL_MS = 300;

function devScript(n: string, sources: string[]): string {
  return `// npm run dev: builds ${n}, runs a daemon of its own on build/ that takes each rebuild as an upgrade
// of the running agent (igord --upgrade-agents-dir true: same identity, the new code resumes from the
// old code's state), and rebuilds whenever one of the sources below is saved. Its state is in
// dev-data/ (not npm start's data/); no p2p, the control API on a free loopback port
// (npx igord agents --data-dir dev-data). A build that fails prints why, and the agent runs on with
// the code it has. Ctrl-C checkpoints the agent and stops the daemon. The manifest is the agent's
// from its first load (an upgrade changes only the code): for a changed one, stop, delete
// dev-data/ and start again.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const SOURCES = ${JSON.stringify(sources)};
const POLL_MS = ${DEV_POLL_MS};
const WASM = "build/${n}.wasm";

/** The sources' sizes and modification times: a change in any of them is a save. */
function signature() {
  const parts = [];
  const walk = (path) => {
    let st;
    try {
      st = statSync(path);
    } catch {
      parts.push(\`\${path}:gone\`);
      return;
    }
    if (st.isDirectory()) for (const e of readdirSync(path).sort()) walk(join(path, e));
    else parts.push(\`\${path}:\${st.size}:\${st.mtimeMs}\`);
  };
  for (const s of SOURCES) walk(s);
  return parts.join("|");
}

function build() {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["build.mjs"], { stdio: ["ignore", "inherit", "inherit"] });
    child.on("error", () => resolve(false));
    child.on("close", (code) => resolve(code === 0));
  });
}

const igordPackage = createRequire(import.meta.url).resolve("igord/package.json");
const igordBin = join(dirname(igordPackage), JSON.parse(readFileSync(igordPackage, "utf8")).bin.igord);
let daemon = null;
function startDaemon() {
  daemon = spawn(process.execPath, [igordBin, "--agents-dir", "build", "--data-dir", "dev-data", "--upgrade-agents-dir", "true", "--listen", "off", "--control", "127.0.0.1:0"], { stdio: "inherit" });
  // This script ends with the daemon, with its exit code.
  daemon.on("close", (code) => process.exit(code ?? 1));
}

let seen = signature();
if (!(await build())) console.error("dev: the build failed; fix it and save");
// The daemon loads what build/ holds: it starts once there is something to run.
if (existsSync(WASM)) startDaemon();

// Saves come in bursts (an editor writes, then renames): build once the sources have held still.
let changed = false;
let building = false;
const timer = setInterval(async () => {
  if (building) return;
  const now = signature();
  if (now !== seen) {
    seen = now;
    changed = true;
    return;
  }
  if (!changed) return;
  changed = false;
  building = true;
  console.error("dev: a source changed: building");
  const ok = await build();
  building = false;
  if (!ok) console.error("dev: the build failed; the agent runs on with the code it has");
  else if (daemon === null && existsSync(WASM)) startDaemon();
}, POLL_MS);

// Ctrl-C reaches the daemon too (one process group): it checkpoints and exits, and so does this
// script. A SIGTERM sent to this script alone is passed on.
process.on("SIGINT", () => {
  clearInterval(timer);
  if (daemon === null) process.exit(130);
});
process.on("SIGTERM", () => {
  clearInterval(timer);
  if (daemon === null) process.exit(143);
  daemon.kill("SIGTERM");
});
`;
}
