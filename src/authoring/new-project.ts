// `igord new <name>`: a standalone agent project an author builds and tests with npm alone.
// igord is not on the npm registry, so the project depends on the igord install that wrote it
// ("file:<package root>", which npm links); the SDK comes from there by package name (igord/sdk), and
// so does the test kit (igord/testing). Everything else (assemblyscript, vitest) comes from npm.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCode, IgordError } from "../errors.js";
import { cTemplates } from "./templates-c.js";
import { asTemplates } from "./templates-as.js";

/** The igord package root this code runs from (dist/authoring/ or src/authoring/ under it). */
export const IGORD_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

export const PROJECT_LANGUAGES = ["assemblyscript", "c"] as const;
export type ProjectLanguage = (typeof PROJECT_LANGUAGES)[number];

/** A project name is its agent id, its npm package name and its file names: lowercase, digits, `-`. */
export const PROJECT_NAME_RE = /^[a-z][a-z0-9-]{0,63}$/;

/**
 * asc flags of an agent build, the same as scripts/build-agents.mjs uses for the examples: -O3, no
 * assertion traps, and the incremental runtime (frees memory by itself, deterministically).
 */
export const ASC_FLAGS = ["-O3", "--noAssert", "--runtime", "incremental"] as const;

export interface NewProjectOptions {
  name: string;
  lang?: ProjectLanguage;
  /** Where to write the project (default ./<name>); must not exist or be empty. */
  dir?: string;
}

export interface ProjectContext {
  name: string;
  /** PascalCase of the name, for the agent's class. */
  className: string;
  igordRoot: string;
  igordVersion: string;
  /** Version ranges from igord's own package.json, so the project builds with what igord was tested with. */
  ascVersion: string;
  vitestVersion: string;
  /** igord's C header (sdk/c/igor.h) when this install has one. */
  cHeader: string | null;
}

function packageJson(root: string): { version: string; devDependencies?: Record<string, string> } {
  return JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string; devDependencies?: Record<string, string> };
}

/**
 * Names an agent's class may not take in the generated source: what it imports from the SDK (a
 * project named "agent", "encoder" or "decoder" made a class that collided with its import:
 * "Duplicate identifier"). AssemblyScript lets a class shadow its own globals (Map, String).
 */
const TAKEN_CLASS_NAMES = new Set(["Agent", "Encoder", "Decoder"]);

/** The agent's class: the name in PascalCase, "The…" when that is taken (TAKEN_CLASS_NAMES). */
export function agentClassName(name: string): string {
  const pascal = name.split("-").map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join("");
  return TAKEN_CLASS_NAMES.has(pascal) ? `The${pascal}` : pascal;
}

export function projectContext(name: string, igordRoot = IGORD_ROOT): ProjectContext {
  const pkg = packageJson(igordRoot);
  const header = join(igordRoot, "sdk", "c", "igor.h");
  return {
    name,
    className: agentClassName(name),
    igordRoot,
    igordVersion: pkg.version,
    ascVersion: pkg.devDependencies?.assemblyscript ?? "^0.28.0",
    vitestVersion: pkg.devDependencies?.vitest ?? "^4.0.0",
    cHeader: existsSync(header) ? readFileSync(header, "utf8") : null,
  };
}

/** Writes the project; returns its directory and the files written (relative paths). */
export function newProject(o: NewProjectOptions): { dir: string; files: string[] } {
  const lang = o.lang ?? "assemblyscript";
  if (!PROJECT_NAME_RE.test(o.name)) {
    throw new IgordError(ErrorCode.AgentIdInvalid, `project name "${o.name}" must start with a lowercase letter and hold only lowercase letters, digits and "-" (at most 64): it names the agent, its files and its npm package`);
  }
  if (!PROJECT_LANGUAGES.includes(lang)) {
    throw new IgordError(ErrorCode.ConfigInvalid, `--lang must be one of ${PROJECT_LANGUAGES.join(", ")}, got "${lang}"`);
  }
  const dir = resolve(o.dir ?? o.name);
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new IgordError(ErrorCode.ConfigInvalid, `${dir} exists and is not a directory: igord new writes a project only into a new or empty directory`);
  }
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new IgordError(ErrorCode.ConfigInvalid, `${dir} exists and is not empty: igord new writes a project only into a new or empty directory`);
  }
  const ctx = projectContext(o.name);
  const files = lang === "c" ? cTemplates(ctx) : asTemplates(ctx);
  for (const [path, text] of Object.entries(files)) {
    const file = join(dir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  return { dir, files: Object.keys(files) };
}
