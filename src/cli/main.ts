#!/usr/bin/env node
// igord: the daemon (default command) and its subcommands.
// Only what parsing the command line needs is loaded up front; each command imports its own code
// when it runs, so `igord --help` or `igord status` never load libp2p, SQLite or the daemon.
import "../shim/promise-with-resolvers.js";
import { Command, Option } from "commander";
import { loadConfig } from "../config/load.js";
import { explainLocation, locateControl, resolveDataDir } from "../control/locate.js";
import type { HostPort } from "../config/units.js";
import { ErrorCode, IgordError, isIgordError } from "../errors.js";
import { printable } from "../log/printable.js";
import { VERSION } from "../version.js";
import { addConfigOptions, cliFlags } from "./options.js";

const daemon = () => import("./daemon.js");
const lineage = () => import("./lineage.js");
const notify = () => import("./notify.js");
const migrations = () => import("./migrate.js");
const status = () => import("./status.js");

// A closed pipe (`igord verify … | head`) ends output quietly instead of crashing.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

/** The largest edit distance at which a misspelt command is offered its nearest (commander's own bound). */
const MAX_COMMAND_SUGGESTION_DISTANCE = 3;

/** " (Did you mean status?)" for the command nearest to a misspelt `word`, or "" when none is near. */
function nearestCommand(word: string): string {
  let best = "";
  let bestDistance = MAX_COMMAND_SUGGESTION_DISTANCE + 1;
  for (const c of program.commands) {
    const d = editDistance(word, c.name());
    // Near relative to the word's length too: "x" is not a misspelt "run".
    if (d < bestDistance && d < Math.max(word.length, c.name().length) * 0.6) {
      best = c.name();
      bestDistance = d;
    }
  }
  return best ? `\n(Did you mean ${best}?)` : "";
}

/** Levenshtein distance, with a swap of two neighbours counting one. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}

function fail(e: unknown): never {
  const msg = e instanceof Error ? e.message : String(e);
  const code = e instanceof IgordError ? ` [${e.code}]` : "";
  process.stderr.write(`igord: error: ${printable(msg, true)}${code}\n`);
  process.exit(1);
}

const program = new Command("igord")
  .description("Runtime daemon for portable, continuous WebAssembly agents")
  .version(VERSION)
  .showHelpAfterError()
  // Options after a subcommand belong to it (`igord run x --budget 10` is run's budget).
  .enablePositionalOptions()
  // A word the daemon does not take is a command misspelt: named in the action below, not "too many arguments".
  .allowExcessArguments(true)
  // `igord help [command]` (commander adds it only to a program without an action of its own).
  .helpCommand(true);
addConfigOptions(program).action(async () => {
  const [word] = program.args;
  if (word !== undefined) program.error(`error: unknown command '${word}'${nearestCommand(word)}`, { code: "commander.unknownCommand" });
  const config = loadConfig({ flags: cliFlags(program), env: process.env });
  await (await daemon()).runDaemon(config);
});

/**
 * --budget of run and resume: only typed on the command line does it act, on a stored agent as a
 * signed override (the daemon's "budget given to a new agent", default 1.0, would say otherwise).
 */
function describeBudget(cmd: Command, description: string, byDefault: string): void {
  const option = cmd.options.find((o) => o.long === "--budget");
  if (option === undefined) return;
  option.description = description;
  option.defaultValueDescription = byDefault;
}

const run = new Command("run")
  .description("run one agent in the foreground with the daemon's engine")
  .argument("<agent.wasm>", "the agent module")
  .addOption(new Option("--agent-id <id>", "agent id").default("derived from the file name"))
  .addOption(
    new Option("--manifest <path>", "capability manifest").default("<name>.manifest.json next to the wasm"),
  );
addConfigOptions(run, ["agents-dir", "upgrade-agents-dir"], { control: "off" });
describeBudget(run, "budget of a new agent, in units [env IGORD_BUDGET]; on the command line for a stored agent, a signed override of its budget", "1.0 for a new agent, else the stored budget");
run.action(async (wasm: string) => {
  const flags = cliFlags(run);
  // `run` serves no control API unless asked, so it can run beside a daemon.
  if (flags.control === undefined) flags.control = "off";
  const config = loadConfig({ flags, env: process.env });
  const opts = run.opts<Record<string, string>>();
  const sourceOf = (k: string) => run.getOptionValueSource(k);
  let budget: bigint | undefined;
  if (sourceOf("budget") === "cli") budget = config.budget;
  await (await daemon()).runAgentCommand(config, {
    wasmPath: wasm,
    ...(sourceOf("agentId") === "cli" ? { agentId: opts.agentId } : {}),
    ...(sourceOf("manifest") === "cli" ? { manifestPath: opts.manifest } : {}),
    ...(budget !== undefined ? { budget } : {}),
  });
});
program.addCommand(run);

const resume = new Command("resume")
  .description("continue an agent from a checkpoint file (verified against its WASM and identity)")
  .requiredOption("--checkpoint <file>", "the checkpoint to resume from")
  .requiredOption("--wasm <file>", "the agent's module (must match the checkpoint's WASM hash)")
  .addOption(new Option("--identity <file>", "the agent's identity file (igor format)").default("the stored identity"))
  .addOption(new Option("--agent-id <id>", "agent id").default("derived from the wasm file name"))
  .addOption(new Option("--manifest <path>", "capability manifest").default("<name>.manifest.json next to the wasm"));
addConfigOptions(resume, ["agents-dir", "upgrade-agents-dir"], { control: "off" });
describeBudget(resume, "the agent's budget from the checkpoint on, in units: a signed override", "the checkpoint's budget");
resume.action(async () => {
  const flags = cliFlags(resume);
  if (flags.control === undefined) flags.control = "off";
  const config = loadConfig({ flags, env: process.env });
  const o = resume.opts<Record<string, string>>();
  const given = (k: string): string | undefined => (resume.getOptionValueSource(k) === "cli" ? o[k] : undefined);
  const identity = given("identity");
  const agentIdOpt = given("agentId");
  const manifest = given("manifest");
  // --budget really overrides (igor ignored it), recorded in the lineage as a signed override.
  const budget = resume.getOptionValueSource("budget") === "cli" ? config.budget : undefined;
  const { readResumeFiles, stageResume } = await import("./resume.js");
  const resumeOptions = {
    checkpoint: o.checkpoint as string,
    wasm: o.wasm as string,
    ...(identity ? { identity } : {}),
    ...(agentIdOpt ? { agentId: agentIdOpt } : {}),
    ...(manifest ? { manifest } : {}),
  };
  // A checkpoint its own files refuse starts no node.
  const files = readResumeFiles(resumeOptions);
  await (await daemon()).runForeground(config, async (node) => {
    // Staged under the node's data-dir lock: nothing is written beside a live daemon.
    const agentId = stageResume(config.dataDir, resumeOptions, files);
    if (budget !== undefined) node.overrideBudget(agentId, budget, "igord resume --budget");
    return node.resumeAgent(agentId);
  });
});
program.addCommand(resume);

// Commands that open the database themselves find the data dir as the daemon does (resolveDataDir).
const dataDirOption = () => new Option("--data-dir <dir>", "the node's data dir").default(resolveDataDir(undefined, process.env).dataDir, "IGORD_DATA_DIR, else ./data");
const controlOption = () =>
  new Option("--control <host:port|off>", "a daemon running on this data dir is asked to start the agent at once (default: IGORD_CONTROL, else the address in <data-dir>/control.addr; none: no daemon is told)");

/** The daemon to tell about a changed agent, found like the daemon commands find it; null with "off" or when none serves the data dir. */
async function notifyTarget(o: { control?: string; dataDir: string }): Promise<HostPort | null> {
  if (o.control === "off") return null;
  try {
    return locateControl(o, process.env).control;
  } catch (e) {
    if (isIgordError(e, ErrorCode.ControlUnavailable)) return null;
    throw e;
  }
}

program.addCommand(
  new Command("inspect")
    .description("print every header field of a checkpoint, its signature and DID")
    .argument("[file]", "a checkpoint file")
    .option("--agent <id>", "inspect the agent's latest stored checkpoint instead")
    .addOption(dataDirOption())
    .option("--wasm <file>", "also check the checkpoint's WASM hash against this module")
    .option("--state", "also print the agent's state as a hex dump", false)
    .action(async (file: string | undefined, o: { agent?: string; dataDir: string; wasm?: string; state?: boolean }) => {
      process.exitCode = (await lineage()).inspectCommand(file, o);
    }),
);

program.addCommand(
  new Command("verify")
    .description("verify an agent's history: signatures, hash chain, one key, ticks, budgets, epochs (VALID/INVALID)")
    .argument("[dirs...]", "history directories (several = the union of histories kept on several nodes)")
    .option("--agent <id>", "verify the agent's history stored in --data-dir instead")
    .option("--replay", "also re-execute the stored history through its event logs (audit replay; needs --agent)", false)
    .addOption(dataDirOption())
    .action(async (dirs: string[], o: { agent?: string; dataDir: string; replay?: boolean }) => {
      process.exitCode = await (await lineage()).verifyCommand(dirs, o);
    }),
);

program.addCommand(
  new Command("lineage")
    .description("list an agent's signed lineage events in --data-dir: budget overrides, recoveries, imports, code upgrades (old -> new WASM at tick N); exit 1 if a signature fails")
    .argument("<agent>", "agent id")
    .addOption(dataDirOption())
    .option("--json", "print raw JSON", false)
    .action(async (agent: string, o: { dataDir: string; json: boolean }) => {
      process.exitCode = (await import("./lineage-events.js")).lineageCommand(agent, o);
    }),
);

program.addCommand(
  new Command("export")
    .description("write an agent's checkpoint, identity, WASM, manifest, receipts and history (igor layout)")
    .argument("<agent>", "agent id")
    .requiredOption("--out <dir>", "output directory (must be empty or absent)")
    .addOption(dataDirOption())
    .action(async (agent: string, o: { out: string; dataDir: string }) => {
      process.exitCode = (await lineage()).exportCommand(agent, o);
    }),
);

program.addCommand(
  new Command("backup")
    .description("write a consistent copy of the node's database while the daemon runs (SQLite VACUUM INTO; the copy is 0600: it holds private keys)")
    .argument("<file>", "the copy to write (must not exist)")
    .addOption(dataDirOption())
    .action(async (file: string, o: { dataDir: string }) => {
      process.exitCode = (await lineage()).backupCommand(file, o);
    }),
);

program.addCommand(
  new Command("import")
    .description("bring an exported agent into this node's database (verified first; never overwrites)")
    .argument("<dir>", "a directory written by igord export")
    .addOption(dataDirOption())
    .addOption(controlOption())
    .action(async (dir: string, o: { dataDir: string; control?: string }) => {
      const agentId = (await lineage()).importCommand(dir, o);
      await (await notify()).startInDaemon(await notifyTarget(o), o.dataDir, agentId);
    }),
);

program.addCommand(
  new Command("recover")
    .description("resolve an agent the node cannot recover alone (unresolved handoff, RECOVERY_REQUIRED): new major epoch, recorded in its lineage")
    .argument("<agent>", "agent id")
    .requiredOption("--reason <text>", "why (recorded in the agent's lineage)")
    .addOption(dataDirOption())
    .addOption(controlOption())
    .action(async (agent: string, o: { reason: string; dataDir: string; control?: string }) => {
      (await import("./recover.js")).recoverCommand(agent, o);
      await (await notify()).startInDaemon(await notifyTarget(o), o.dataDir, agent);
    }),
);

// Commands that talk to a running daemon find it: --control > IGORD_CONTROL > <data-dir>/control.addr.
const daemonControlOption = () =>
  new Option("--control <host:port>", "the daemon's control API (default: IGORD_CONTROL, else the address the daemon wrote in <data-dir>/control.addr)");
const daemonDataDirOption = () => new Option("--data-dir <dir>", "the daemon's data dir, holding control.token and control.addr (default: IGORD_DATA_DIR, else ./data)");

async function withDaemon<T>(o: { control?: string; dataDir?: string }, run: (control: HostPort, dataDir: string) => Promise<T>): Promise<T> {
  const loc = locateControl(o, process.env);
  try {
    return await run(loc.control, loc.dataDir);
  } catch (e) {
    throw explainLocation(e, loc);
  }
}

for (const [name, description, print] of [
  ["status", "show the running daemon's status", "printStatus"],
  ["agents", "list the running daemon's agents", "printAgents"],
] as const) {
  const cmd = new Command(name)
    .description(description)
    .addOption(daemonControlOption())
    .addOption(daemonDataDirOption())
    .option("--json", "print raw JSON", false);
  if (name === "agents") cmd.option("--all", "also list agents that moved away (where and when they went)", false);
  cmd.action(async () => {
    const o = cmd.opts<{ control?: string; dataDir?: string; json: boolean; all?: boolean }>();
    await withDaemon(o, (control, dataDir) => status().then((m) => m[print](control, dataDir, o.json, o.all ?? false)));
  });
  program.addCommand(cmd);
}

for (const [name, description] of [
  ["stop", "stop a running agent on the live daemon: checkpointed, out of its worker, stays stopped across restarts (igord start resumes it)"],
  ["start", "start a stopped agent on the live daemon from its last checkpoint"],
  ["remove", "retire an agent on the live daemon for good; its history is kept (igord verify --agent, igord agents --all)"],
] as const) {
  program.addCommand(
    new Command(name)
      .description(description)
      .argument("<agent>", "agent id")
      .addOption(daemonControlOption())
      .addOption(daemonDataDirOption())
      .option("--json", "print raw JSON", false)
      .action(async (agent: string, o: { control?: string; dataDir?: string; json: boolean }) => {
        const { AGENT_OPERATION_TIMEOUT_MS, controlPost } = await import("../control/client.js");
        const r = (await withDaemon(o, (control, dataDir) => controlPost(control, dataDir, `/v1/agents/${encodeURIComponent(agent)}/${name}`, undefined, AGENT_OPERATION_TIMEOUT_MS))) as Record<string, unknown>;
        process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `${agent}: ${String(r.status)}${r.tick ? ` at tick ${String(r.tick)}` : ""}\n`);
      }),
  );
}

program.addCommand(
  new Command("upgrade")
    .description("switch a live agent to new code: it resumes from the old code's checkpoint (replay-rule checked), recorded as a signed lineage event; a refused upgrade leaves the old code running")
    .argument("<agent>", "agent id")
    .requiredOption("--wasm <file>", "the new module (read by the daemon; the agent's stored manifest applies)")
    .addOption(daemonControlOption())
    .addOption(daemonDataDirOption())
    .option("--json", "print raw JSON", false)
    .action(async (agent: string, o: { wasm: string; control?: string; dataDir?: string; json: boolean }) => {
      const { AGENT_OPERATION_TIMEOUT_MS, controlPost } = await import("../control/client.js");
      const { resolve } = await import("node:path");
      const path = `/v1/agents/${encodeURIComponent(agent)}/upgrade`;
      const r = (await withDaemon(o, (control, dataDir) => controlPost(control, dataDir, path, { wasm: resolve(o.wasm) }, AGENT_OPERATION_TIMEOUT_MS))) as Record<string, string>;
      process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : `${agent}: upgraded at tick ${r.tick}: ${r.fromWasm?.slice(0, 16)}… -> ${r.toWasm?.slice(0, 16)}…\n`);
    }),
);

program.addCommand(
  new Command("dashboard")
    .description("print a one-time link that opens the daemon's read-only web dashboard (valid 60 s; the token never goes in a URL)")
    .option("--agent <id>", "open the page on this agent's timeline")
    .addOption(daemonControlOption())
    .addOption(daemonDataDirOption())
    .action(async (o: { agent?: string; control?: string; dataDir?: string }) => {
      const { controlPost } = await import("../control/client.js");
      const r = (await withDaemon(o, (control, dataDir) => controlPost(control, dataDir, "/v1/dashboard/login"))) as { url: string };
      const url = o.agent ? `${r.url}&agent=${encodeURIComponent(o.agent)}` : r.url;
      process.stdout.write(`open ${url}\n(one use, valid for 60 s; the page keeps its session for this daemon's address only)\n`);
    }),
);

program.addCommand(
  new Command("migrate")
    .description("move a running agent to another node (exit 0 done, 1 not moved, 2 awaiting the target's answer)")
    .argument("<agent>", "agent id")
    .option("--to <multiaddr|peer-id>", "the target (default: the best known candidate)")
    .option("--fallback <multiaddr|peer-id>", "try this node if the target refuses or cannot be reached (repeatable)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .addOption(daemonControlOption())
    .addOption(daemonDataDirOption())
    .option("--json", "print raw JSON", false)
    .action(async (agent: string, o: { to?: string; fallback: string[]; control?: string; dataDir?: string; json: boolean }) => {
      if (o.fallback.length > 0 && !o.to) throw new IgordError(ErrorCode.ConfigInvalid, "--fallback needs --to");
      process.exitCode = await withDaemon(o, async (control, dataDir) => (await migrations()).migrateCommand(control, dataDir, agent, o));
    }),
);

program.addCommand(
  new Command("peers")
    .description("list the peers the daemon knows: price, capabilities, health")
    .addOption(daemonControlOption())
    .addOption(daemonDataDirOption())
    .option("--json", "print raw JSON", false)
    .action(async (o: { control?: string; dataDir?: string; json: boolean }) => {
      await withDaemon(o, async (control, dataDir) => (await migrations()).peersCommand(control, dataDir, o.json));
    }),
);

program.addCommand(
  new Command("migrations")
    .description("list recent migrations, outgoing and incoming, with their states")
    .option("--agent <id>", "only this agent's")
    .addOption(daemonControlOption())
    .addOption(daemonDataDirOption())
    .option("--json", "print raw JSON", false)
    .action(async (o: { agent?: string; control?: string; dataDir?: string; json: boolean }) => {
      await withDaemon(o, async (control, dataDir) => (await migrations()).migrationsCommand(control, dataDir, o.agent, o.json));
    }),
);

program.addCommand(
  new Command("new")
    .description("write a standalone agent project: source, manifest, build script, README and a test on real nodes (docs/AUTHORING.md)")
    .argument("<name>", "the agent's name (lowercase letters, digits, -): its id, files and npm package")
    .addOption(new Option("--lang <language>", "the agent's language (as: assemblyscript)").choices(["assemblyscript", "as", "c"]).default("assemblyscript"))
    .option("--dir <path>", "where to write it (default: ./<name>; must be new or empty)")
    .action(async (name: string, o: { lang: "assemblyscript" | "as" | "c"; dir?: string }) => {
      if (o.lang === "as") o.lang = "assemblyscript";
      const { newProject } = await import("../authoring/new-project.js");
      const p = newProject({ name, lang: o.lang, ...(o.dir ? { dir: o.dir } : {}) });
      const build = o.lang === "c" ? "npm run build  (needs clang with the wasm32 target and wasm-ld)" : "npm run build";
      process.stdout.write(`wrote ${p.dir}:\n${p.files.map((f) => `  ${f}`).join("\n")}\nnext:\n  cd ${p.dir}\n  npm install\n  ${build}\n  npm test\n`);
    }),
);

program.parseAsync(process.argv).catch(fail);
