// Crash points for the kill-at-every-step test suite: IGORD_CRASH_AT=<point> makes the daemon
// SIGKILL itself at that step of a migration, exactly as a power cut would. Unset in production.
import type { MigrationHooks } from "./service.js";

export const CRASH_ENV = "IGORD_CRASH_AT";
export const CRASH_POINTS = ["source-after-handoff", "source-after-send", "source-after-confirm", "target-after-package", "target-after-pending", "target-after-durable", "target-after-commit"] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

function die(point: string): never {
  process.stderr.write(`igord: ${CRASH_ENV}=${point}: killing this process\n`);
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable");
}

export function crashHooks(env: NodeJS.ProcessEnv): MigrationHooks {
  const point = env[CRASH_ENV];
  if (!point) return {};
  if (!(CRASH_POINTS as readonly string[]).includes(point)) {
    throw new Error(`${CRASH_ENV}=${point} is not a crash point (${CRASH_POINTS.join(", ")})`);
  }
  return {
    afterHandoffRecorded: () => (point === "source-after-handoff" ? die(point) : undefined),
    afterPackageSent: () => (point === "source-after-send" ? die(point) : undefined),
    afterConfirmed: () => (point === "source-after-confirm" ? die(point) : undefined),
    afterPackage: () => (point === "target-after-package" ? die(point) : undefined),
    // Stored as a pending reception (synced) and admitted; the source's `durable` not read yet.
    afterPendingStored: () => (point === "target-after-pending" ? die(point) : undefined),
    // Admitted, and the source's `durable` read: the source counts the package as sent.
    beforeStore: () => (point === "target-after-durable" ? die(point) : undefined),
    beforeConfirm: () => (point === "target-after-commit" ? die(point) : undefined),
  };
}
