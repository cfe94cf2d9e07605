// A full disk fails the checkpoint of every agent that meets it (DISK_FULL), and a failed agent is
// stopped: nothing it does after its last committed checkpoint can be kept. A full disk is mostly a
// passing state (a log burst, a backup landing beside the data dir), so such an agent is started
// again from that checkpoint once there is room, as `igord start` would: tried after
// DISK_FULL_RETRY_FIRST_MS, then at doubling intervals up to DISK_FULL_RETRY_MAX_MS
// (files/disk-full-retry.ts) while the disk stays full (a start that meets it, or a first checkpoint
// that fails again), until a checkpoint of the agent is written. The ticks after the last committed checkpoint run again, as after a crash.
import { ErrorCode } from "../errors.js";
import type { Logger } from "pino";
import { nextDiskFullRetryMs } from "../files/disk-full-retry.js";
import type { AgentView, CheckpointEvent } from "../scheduler/scheduler.js";

export interface DiskFullRestartHooks {
  /** Starts the agent again from its head checkpoint (the operator's `igord start`, in its turn). */
  start: (id: string) => Promise<unknown>;
  /** The agent as the scheduler sees it now; null when it is not loaded here. */
  view: (id: string) => AgentView | null;
  stopping: () => boolean;
  logger: Logger;
}

/** An agent waiting to be started again: the delay before its next try, and the timer armed for it. */
interface WaitingRestart {
  delayMs: number;
  timer: NodeJS.Timeout | null;
}

export class DiskFullRestarts {
  /** Each waiting agent's next delay and its timer. */
  private readonly waiting = new Map<string, WaitingRestart>();

  constructor(private readonly hooks: DiskFullRestartHooks) {}

  /** The scheduler's `stopped`: an agent failed by a full disk is started again later. */
  onStopped(v: AgentView): void {
    if (v.status !== "failed" || v.error?.code !== ErrorCode.DiskFull || this.hooks.stopping()) return;
    const entry = this.waiting.get(v.id) ?? { delayMs: nextDiskFullRetryMs(), timer: null };
    this.waiting.set(v.id, entry);
    this.arm(v.id, entry);
  }

  /** The scheduler's `checkpoint`: once one is written the disk had room, and the backoff starts over. */
  onCheckpoint(e: CheckpointEvent): void {
    if (e.outcome !== "written") return;
    const entry = this.waiting.get(e.agentId);
    if (entry && entry.timer === null) this.waiting.delete(e.agentId);
  }

  stop(): void {
    for (const entry of this.waiting.values()) if (entry.timer) clearTimeout(entry.timer);
    this.waiting.clear();
  }

  private arm(id: string, entry: WaitingRestart): void {
    if (entry.timer) return;
    const delayMs = entry.delayMs;
    this.hooks.logger.warn(
      { event: "agent_restart_scheduled", agent: id, code: ErrorCode.DiskFull, inMs: delayMs },
      `agent ${id} failed on a full disk: started again from its last committed checkpoint in ${delayMs} ms if there is room by then`,
    );
    entry.timer = setTimeout(() => {
      entry.timer = null;
      entry.delayMs = nextDiskFullRetryMs(delayMs);
      void this.retry(id, entry);
    }, delayMs);
    entry.timer.unref();
  }

  private async retry(id: string, entry: WaitingRestart): Promise<void> {
    // An operator's command since (a start, a stop, a remove) decided instead.
    const v = this.hooks.view(id);
    if (this.hooks.stopping() || v?.status !== "failed" || v.error?.code !== ErrorCode.DiskFull) {
      this.waiting.delete(id);
      return;
    }
    try {
      await this.hooks.start(id);
      this.hooks.logger.info({ event: "agent_restarted_after_disk_full", agent: id }, `agent ${id} started again after its checkpoint met a full disk`);
    } catch (e) {
      const code = (e as { code?: string }).code ?? ErrorCode.StoreError;
      this.hooks.logger.warn({ event: "agent_restart_failed", agent: id, code }, `agent ${id} could not be started again yet: ${(e as Error).message}`);
      if (!this.hooks.stopping() && this.waiting.get(id) === entry) this.arm(id, entry);
    }
  }
}
