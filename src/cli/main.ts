#!/usr/bin/env node
// igord: the daemon (default command) and its subcommands.
import "../shim/promise-with-resolvers.js";
import { Command, Option } from "commander";
import { loadConfig } from "../config/load.js";
import { parseHostPort } from "../config/units.js";
import { ErrorCode, IgordError } from "../errors.js";
import { VERSION } from "../node/node.js";
import { runAgentCommand, runDaemon } from "./daemon.js";
import { addConfigOptions, cliFlags } from "./options.js";
import { printAgents, printStatus } from "./status.js";

function fail(e: unknown): never {
  const msg = e instanceof Error ? e.message : String(e);
  const code = e instanceof IgordError ? ` [${e.code}]` : "";
  process.stderr.write(`igord: error: ${msg}${code}\n`);
  process.exit(1);
}

const program = new Command("igord")
  .description("Runtime daemon for portable, continuous WebAssembly agents")
  .version(VERSION)
  .showHelpAfterError()
  // Options after a subcommand belong to it (`igord run x --budget 10` is run's budget).
  .enablePositionalOptions()
  .allowExcessArguments(false);
addConfigOptions(program).action(async () => {
  await runDaemon(loadConfig({ flags: cliFlags(program), env: process.env }));
});

const run = new Command("run")
  .description("run one agent in the foreground with the daemon's engine")
  .argument("<agent.wasm>", "the agent module")
  .addOption(new Option("--agent-id <id>", "agent id").default("derived from the file name"))
  .addOption(
    new Option("--manifest <path>", "capability manifest").default("<name>.manifest.json next to the wasm"),
  );
addConfigOptions(run, ["agents-dir"]);
run.action(async (wasm: string) => {
  const flags = cliFlags(run);
  // `run` serves no control API unless asked, so it can run beside a daemon.
  if (flags.control === undefined) flags.control = "off";
  const config = loadConfig({ flags, env: process.env });
  const opts = run.opts<Record<string, string>>();
  const sourceOf = (k: string) => run.getOptionValueSource(k);
  let budget: bigint | undefined;
  if (sourceOf("budget") === "cli") budget = config.budget;
  await runAgentCommand(config, {
    wasmPath: wasm,
    ...(sourceOf("agentId") === "cli" ? { agentId: opts.agentId } : {}),
    ...(sourceOf("manifest") === "cli" ? { manifestPath: opts.manifest } : {}),
    ...(budget !== undefined ? { budget } : {}),
  });
});
program.addCommand(run);

for (const [name, description, print] of [
  ["status", "show the running daemon's status", printStatus],
  ["agents", "list the running daemon's agents", printAgents],
] as const) {
  const cmd = new Command(name)
    .description(description)
    .addOption(new Option("--control <host:port>", "the daemon's control API").default("127.0.0.1:7420"))
    .addOption(
      new Option("--data-dir <dir>", "the daemon's data dir (holds control.token)").default("./data"),
    )
    .option("--json", "print raw JSON", false)
    .action(async () => {
      const o = cmd.opts<{ control: string; dataDir: string; json: boolean }>();
      let control: ReturnType<typeof parseHostPort>;
      try {
        control = parseHostPort(o.control);
      } catch (e) {
        throw new IgordError(ErrorCode.ConfigInvalid, `invalid --control: ${(e as Error).message}`);
      }
      await print(control, o.dataDir, o.json);
    });
  program.addCommand(cmd);
}

program.parseAsync(process.argv).catch(fail);
