// The daemon and `igord run`: build a node, start it, stop it cleanly on SIGINT/SIGTERM (exit 0; 1 when a checkpoint at shutdown failed).

import { formatUnits } from "../budget/money.js";
import { unknownSettingVars } from "../config/load.js";
import type { NodeConfig } from "../config/schema.js";
import { type IgordError, isIgordError } from "../errors.js";
import { checkWasmFile } from "../loader/prepare.js";
import { createLogger } from "../log/logger.js";
import { type AddAgentOptions, IgordNode } from "../node/node.js";
import type { AgentView } from "../scheduler/scheduler.js";
import { crashHooks } from "../migration/crash-points.js";

function exitAfterStopFailure(e: unknown): never {
  const code = isIgordError(e) ? ` [${e.code}]` : "";
  process.stderr.write(`igord: error while stopping: ${(e as Error).message}${code}\n`);
  process.exit(1);
}

/** How often a daemon an npm script started checks that the shell npm ran it in is still its parent. */
const NPM_PARENT_POLL_MS = 1_000;

/**
 * npm runs a script (`npm start`, `npx igord`) in a shell and passes a SIGTERM it gets (an IDE's
 * stop button, a process manager) to that shell alone, which dies without passing it on: igord,
 * left behind, would run on holding its data dir. So a process started by npm (npm sets
 * `npm_lifecycle_event`) stops as on SIGTERM once its parent is gone. Started otherwise (systemd,
 * a shell, nohup), it never watches: outliving the shell that started it is then meant.
 */
function whenNpmGone(stop: () => void): void {
  if (process.env.npm_lifecycle_event === undefined) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.stderr.write("igord: npm, which started this process, is gone: stopping as on SIGTERM\n");
    stop();
  }, NPM_PARENT_POLL_MS);
  timer.unref();
}

function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const begin = (): void => {
    stopping = true;
    stop().then(
      () => process.exit(0),
      (e: unknown) => exitAfterStopFailure(e),
    );
  };
  const handler = (sig: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`igord: ${sig} again, exiting without waiting\n`);
      process.exit(1);
    }
    begin();
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  // Ctrl-C ends npm and its shell too: their going is then no second signal.
  whenNpmGone(() => {
    if (!stopping) begin();
  });
}

/** The data dir is no longer this node's alone (its lock or its database taken): stop, then exit 1 naming why, whatever the stop said. */
function exitOnDataDirLost(node: IgordNode, e: IgordError): void {
  const done = (): never => {
    process.stderr.write(`igord: error: ${e.message} [${e.code}]\n`);
    process.exit(1);
  };
  node.stop().then(done, done);
}

export async function runDaemon(config: NodeConfig): Promise<void> {
  const logger = createLogger(config.logLevel);
  for (const v of unknownSettingVars(process.env)) {
    logger.warn({ event: "config_env_unknown", name: v.name, nearest: v.nearest }, `${v.name} is not an igord setting and has no effect${v.nearest ? ` (did you mean ${v.nearest}?)` : ""}`);
  }
  const node: IgordNode = new IgordNode({ config, logger, migrationHooks: crashHooks(process.env), onDataDirLost: (e) => exitOnDataDirLost(node, e) });
  onSignals(() => node.stop());
  await node.start();
}

export async function runAgentCommand(config: NodeConfig, agent: AddAgentOptions): Promise<void> {
  // A module that could never load starts no node: no data dir, node key or lock for a typo (resume
  // checks its files so, too). The node's own load checks the rest (manifest, exports, imports).
  checkWasmFile(agent.wasmPath);
  await runForeground(config, (node) => node.addAgent(agent));
}

/** Runs one agent in the foreground until it stops or a signal arrives. */
export async function runForeground(config: NodeConfig, start: (node: IgordNode) => Promise<AgentView>): Promise<void> {
  const logger = createLogger(config.logLevel);
  const node: IgordNode = new IgordNode({ config, logger, watchAgentsDir: false, resumeStoredAgents: false, onDataDirLost: (e) => exitOnDataDirLost(node, e) });
  onSignals(() => node.stop());
  await node.start();
  let view: AgentView;
  try {
    view = await start(node);
  } catch (e) {
    await node.stop();
    throw e;
  }
  logger.info(
    { event: "run_started", agent: view.id, did: view.did, budget: formatUnits(view.budget), tick: String(view.tick) },
    `running agent ${view.id} (${view.did}) from tick ${view.tick} with budget ${formatUnits(view.budget)}`,
  );
  node.scheduler.on("stopped", (v) => {
    if (v.id !== view.id) return;
    node.stop().then(() => process.exit(v.status === "failed" ? 1 : 0), exitAfterStopFailure);
  });
}
