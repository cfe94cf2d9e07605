#!/usr/bin/env node
// Builds the AssemblyScript example agents (agents/src/*.ts → agents/<name>.wasm), the demo agents
// that need servers (examples/<name>/agent.ts → examples/<name>/agent.wasm, kept out of agents/ so
// `npm start` does not run them) and, with --fixtures, the AssemblyScript test fixtures
// (test/fixtures/as/*.ts → test/fixtures/build/<name>.wasm).
// A module is rebuilt only when its source or the SDK is newer than the output.
// The examples import the SDK by package name ("igord/sdk"), as an author's project does: asc finds
// packages in node_modules folders and in --path folders, so the build gives asc a folder whose
// `igord` package holds this checkout's SDK.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const sdkDir = join(root, "agents", "sdk");
/** A package folder for asc (--path) holding `igord` → this checkout. */
const packagesDir = join(root, "dist", "asc-packages");

// -O3 and the incremental runtime: deterministic GC, no host imports beyond env.abort (which igord
// turns into an agent error carrying the message, file and line).
// `igord new` writes the same flags into an author's build script (test/integration/new-project.test.ts).
export const ASC_FLAGS = ["-O3", "--noAssert", "--runtime", "incremental"];

/**
 * dist/asc-packages/igord/ holds links to the two folders an agent build reads (sdk/ and agents/sdk/),
 * not to the checkout itself, so no tool walking dist/ meets a cycle. Relative: a moved checkout keeps
 * them valid.
 */
function igordPackagePath() {
  const pkg = join(packagesDir, "igord");
  for (const [link, target] of [
    [join(pkg, "sdk"), join("..", "..", "..", "sdk")],
    [join(pkg, "agents", "sdk"), join("..", "..", "..", "..", "agents", "sdk")],
  ]) {
    if (existsSync(link) || isLink(link)) continue;
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(target, link, "dir");
  }
  return packagesDir;
}

function isLink(p) {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function newestMtime(paths) {
  return Math.max(...paths.map((p) => statSync(p).mtimeMs));
}

/**
 * Builds one module. `defines` are compile-time integer constants (asc `--use NAME=VALUE`), which the
 * demo agents read with `isDefined(NAME)` to aim at servers on other ports (tests, the demo script);
 * `deps` are more files whose change means a rebuild.
 */
export async function buildAgent(source, out, { force = false, defines = {}, deps = [] } = {}) {
  const sdkFiles = readdirSync(sdkDir).map((f) => join(sdkDir, f));
  const use = Object.entries(defines).flatMap(([k, v]) => ["--use", `${k}=${v}`]);
  if (!force && use.length === 0 && existsSync(out) && statSync(out).mtimeMs >= newestMtime([source, ...sdkFiles, ...deps])) {
    return false;
  }
  mkdirSync(dirname(out), { recursive: true });
  // A source may add flags on its first line: `// asc-flags: --exportRuntime`.
  const first = readFileSync(source, "utf8").split("\n", 1)[0] ?? "";
  const extra = first.startsWith("// asc-flags:")
    ? first.slice("// asc-flags:".length).trim().split(/\s+/)
    : [];
  const { error, stderr } = await asc.main([source, ...ASC_FLAGS, ...extra, ...use, "--path", igordPackagePath(), "-o", out], {});
  if (error) {
    throw new Error(`asc failed for ${source}:\n${stderr.toString()}`);
  }
  return true;
}

async function buildDir(srcDir, outDir) {
  if (!existsSync(srcDir)) return;
  for (const file of readdirSync(srcDir)
    .filter((f) => f.endsWith(".ts"))
    .sort()) {
    const name = basename(file, ".ts");
    const built = await buildAgent(join(srcDir, file), join(outDir, `${name}.wasm`));
    console.log(`${built ? "built" : "up to date"}: ${join(outDir, name)}.wasm`);
  }
}

export const EXAMPLES_DIR = join(root, "examples");

/** examples/<name>/agent.ts → examples/<name>/agent.wasm (next to its agent.manifest.json). */
async function buildExamples() {
  if (!existsSync(EXAMPLES_DIR)) return;
  const libDir = join(EXAMPLES_DIR, "lib");
  const deps = existsSync(libDir) ? readdirSync(libDir).map((f) => join(libDir, f)) : [];
  for (const name of readdirSync(EXAMPLES_DIR).sort()) {
    const source = join(EXAMPLES_DIR, name, "agent.ts");
    if (!existsSync(source)) continue;
    const built = await buildAgent(source, join(EXAMPLES_DIR, name, "agent.wasm"), { deps });
    console.log(`${built ? "built" : "up to date"}: ${join(EXAMPLES_DIR, name)}/agent.wasm`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildDir(join(root, "agents", "src"), join(root, "agents"));
  await buildExamples();
  if (process.argv.includes("--fixtures")) {
    await buildDir(join(root, "test", "fixtures", "as"), join(root, "test", "fixtures", "build"));
  }
}
