// The entry the kit starts igord through (startDaemon): `node daemon-entry.js <owned-dir> <igord args>`
// runs igord's own CLI in this same process (same pid, same signals), and stops it once the test
// process that started it is gone. A test process ended by a signal runs no exit hooks, and vitest
// ends its workers with SIGTERM and then SIGKILL, which nothing can catch: so the daemon watches for
// itself. Its stdin is a pipe the kit holds open and never writes; the kernel closes it when the kit's
// process ends, however it ends. Only the kit starts igord this way: an igord an operator starts never
// loads this file and runs as it always did.
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** How long an orphaned igord may take to stop cleanly (checkpointing its agents) before it exits anyway. */
const ORPHAN_STOP_MS = 10_000;

const CLI = new URL("../cli/main.js", import.meta.url);

// The dir a process node lives in ("" for none): nobody will read it once its test process is gone.
const ownedDir = process.argv[2] ?? "";
// igord parses its arguments as if it had been started itself.
process.argv.splice(1, 2, fileURLToPath(CLI));

let orphaned = false;
function stopOrphan(): void {
  if (orphaned) return;
  orphaned = true;
  if (ownedDir) process.once("exit", () => rmSync(ownedDir, { recursive: true, force: true }));
  setTimeout(() => process.exit(1), ORPHAN_STOP_MS).unref();
  // The daemon stops cleanly on SIGTERM; a command with no handler (or not yet one) exits now, its exit hooks run.
  if (process.listenerCount("SIGTERM") > 0) process.kill(process.pid, "SIGTERM");
  else process.exit(1);
}
process.stdin.on("end", stopOrphan).on("close", stopOrphan).on("error", stopOrphan);
process.stdin.resume();
// Watching is no reason to stay alive: a command that is done exits as it would have.
process.stdin.unref();

await import(CLI.href);
