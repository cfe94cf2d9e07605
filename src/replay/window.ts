// The per-agent replay window (pure): recent tick snapshots — pre-tick state, post-tick state and
// the tick's event log. Pre-state of tick N is the same object as post-state of N-1, so a window
// costs no copies. Over capacity, the snapshot with the fewest observations goes first (ties: the
// oldest); the newest is always kept.
import type { LogEntry } from "../eventlog/tick-log.js";

export interface Snapshot {
  tick: bigint;
  pre: Uint8Array;
  post: Uint8Array;
  postHash: Uint8Array;
  entries: LogEntry[];
  budget: bigint;
  price: bigint;
  verified: boolean;
}

export class ReplayWindow {
  private readonly snaps: Snapshot[] = [];

  constructor(readonly capacity: number) {}

  push(s: Omit<Snapshot, "verified">): void {
    if (this.capacity <= 0) return;
    const last = this.snaps.at(-1);
    // Consecutive ticks without observations are trivially deterministic: keep only the newest.
    if (s.entries.length === 0 && last && last.entries.length === 0) {
      this.snaps[this.snaps.length - 1] = { ...s, verified: false };
      return;
    }
    this.snaps.push({ ...s, verified: false });
    while (this.snaps.length > this.capacity) {
      let victim = 0;
      for (let i = 1; i < this.snaps.length - 1; i++) {
        if ((this.snaps[i] as Snapshot).entries.length < (this.snaps[victim] as Snapshot).entries.length) victim = i;
      }
      this.snaps.splice(victim, 1);
    }
  }

  /** Snapshots with observations that have not been verified yet, oldest first. */
  pending(): Snapshot[] {
    return this.snaps.filter((s) => !s.verified && s.entries.length > 0);
  }

  all(): readonly Snapshot[] {
    return this.snaps;
  }

  get size(): number {
    return this.snaps.length;
  }
}
