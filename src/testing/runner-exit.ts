// What the kit does when the test process ends without its teardown (no afterEach ran): kill the
// igord processes it started, then remove its temp dirs (data dirs hold private keys). A process
// ended by a signal runs no "exit" hooks, and vitest stops a worker with SIGTERM (then SIGKILL), so
// the kit also cleans up on the signals a runner or a terminal sends, then lets the signal end the
// process as it would have. SIGKILL cannot be caught: for that, each daemon watches its test process
// itself (daemon-entry.ts).

/** Processes first: a dir is removed once nothing writes into it any more. */
export type RunnerExitStep = "kill-processes" | "remove-dirs";

const SIGNALS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"];
const steps: Record<RunnerExitStep, (() => void)[]> = { "kill-processes": [], "remove-dirs": [] };
let installed = false;

/** Runs `cleanup` (synchronous) when the test process exits or is ended by SIGTERM, SIGINT or SIGHUP. */
export function onRunnerExit(step: RunnerExitStep, cleanup: () => void): void {
  steps[step].push(cleanup);
  if (installed) return;
  installed = true;
  process.once("exit", runSteps);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function runSteps(): void {
  for (const step of [steps["kill-processes"], steps["remove-dirs"]]) {
    // One failing cleanup (a dir already gone, a process already reaped) must not keep the others from running.
    for (const cleanup of step.splice(0)) {
      try {
        cleanup();
      } catch {
        // The process is ending: there is nobody left to tell.
      }
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runSteps();
  for (const s of SIGNALS) process.off(s, onSignal);
  // Listening for a signal took away its default action. Raised again with the kit's handlers gone, it
  // ends the process as it would have; a listener of the test's own got it already and decides.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}
