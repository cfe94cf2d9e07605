// A full disk is mostly a passing state (a log burst, a backup landing beside the data dir): what
// failed on it (an agent's checkpoint, a new agent file's first rows) is tried again once there may
// be room, after DISK_FULL_RETRY_FIRST_MS, then at doubling intervals up to DISK_FULL_RETRY_MAX_MS
// while the disk stays full.

/** The first retry after a write met a full disk. */
export const DISK_FULL_RETRY_FIRST_MS = 1_000;
/** The longest wait between retries while the disk stays full. */
export const DISK_FULL_RETRY_MAX_MS = 60_000;

/** The wait before the next retry, after one of `previousMs` (none yet: the first). */
export function nextDiskFullRetryMs(previousMs?: number): number {
  return previousMs === undefined ? DISK_FULL_RETRY_FIRST_MS : Math.min(previousMs * 2, DISK_FULL_RETRY_MAX_MS);
}
