// The files every agent project gets, whatever its language: package.json, manifest, vitest config,
// README, .gitignore and the dev loop's dev.mjs (dev-script.ts).
import { devScript } from "./dev-script.js";
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
