// After `igord import` or `igord recover` changed the database, ask a daemon running on that data
// dir to start the agent now; without one, it starts at the daemon's next start.
import { printable } from "../log/printable.js";
import { controlPost } from "../control/client.js";
import type { HostPort } from "../config/units.js";
import { ErrorCode, isIgordError } from "../errors.js";

export async function startInDaemon(control: HostPort | null, dataDir: string, agentId: string): Promise<void> {
  const later = (): void => {
    process.stdout.write(`${agentId} starts when the daemon on ${dataDir} next starts\n`);
  };
  if (!control) return later();
  try {
    const a = (await controlPost(control, dataDir, `/v1/agents/${encodeURIComponent(agentId)}/resume`)) as { tick?: string };
    process.stdout.write(`the running daemon started ${agentId} at tick ${a.tick ?? "?"}\n`);
  } catch (e) {
    // The database change has already succeeded: a daemon that cannot start the agent now is
    // explained, not turned into a failure.
    if (isIgordError(e, ErrorCode.ControlUnavailable)) return later();
    process.stdout.write(`the daemon at ${control.host}:${control.port} did not start ${agentId}: ${printable((e as Error).message, true)}\n`);
    later();
  }
}
