// dev.mjs of a project from `igord new` (npm run dev): the dev loop that rebuilds on save and lets the
// running agent take each build as an upgrade (docs/AUTHORING.md, "Change it while it runs").

/** How often `npm run dev` looks at its sources (a save is built once they have held still this long). */
export const DEV_POLL_MS = 300;

export function devScript(n: string, sources: string[]): string {
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
const parent = process.ppid;
const timer = setInterval(async () => {
  // npm gone (a SIGTERM to npm alone: an IDE's stop button, a process manager): stop as if told to.
  if (process.ppid !== parent) return stop("SIGTERM");
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

// Ctrl-C reaches the daemon too (one process group: passing it on would be a second SIGINT, which
// stops the daemon without its checkpoint). A SIGTERM to this script alone, or npm gone, is passed on
// once. The daemon checkpoints and exits, and so does this script, with its code.
let stopping = false;
function stop(signal) {
  clearInterval(timer);
  if (daemon === null) process.exit(signal === "SIGINT" ? 130 : 143);
  if (stopping || signal === "SIGINT") return;
  stopping = true;
  daemon.kill("SIGTERM");
}
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));
`;
}
