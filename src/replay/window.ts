// The per-agent replay window (pure): recent tick snapshots — pre-tick state, post-tick state and
// the tick's event log. Pre-state of tick N is the same object as post-state of N-1, so a window
// costs no copies. Over capacity — in snapshots or in bytes — the snapshot with the fewest
// observations goes first (ties: the oldest); the newest is always kept.
import type { LogEntry } from "../eventlog/tick-log.js";

/**
 * States and logs one agent's window may hold (each distinct state counted once). With large states
 * it holds fewer snapshots than --replay-window: 16 snapshots of an 8 MiB state would be 136 MiB.
 */
export const REPLAY_WINDOW_MAX_BYTES = 64 * 1024 * 1024;

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
  /** References to each state held, so a state shared by two snapshots is counted once. */
  private readonly states = new Map<Uint8Array, number>();
  private held = 0;

  constructor(
    readonly capacity: number,
    readonly maxBytes = REPLAY_WINDOW_MAX_BYTES,
  ) {}

  /** Bytes of distinct states and of log payloads held. */
  get bytes(): number {
    return this.held;
  }

  push(s: Omit<Snapshot, "verified">): void {
    if (this.capacity <= 0) return;
    const last = this.snaps.at(-1);
    // Consecutive ticks without observations are trivially deterministic: keep only the newest.
    const snap: Snapshot = { tick: s.tick, pre: s.pre, post: s.post, postHash: s.postHash, entries: s.entries, budget: s.budget, price: s.price, verified: false };
    if (s.entries.length === 0 && last && last.entries.length === 0) {
      if (s.pre === last.post) {
        // The usual case (tick N+1 starts from N's post-state): only the ends change hands.
        this.unref(last.pre);
        this.ref(s.post);
      } else {
        this.release(last);
        this.hold(snap);
      }
      this.snaps[this.snaps.length - 1] = snap;
      return;
    }
    this.snaps.push(snap);
    this.hold(snap);
    while (this.snaps.length > 1 && (this.snaps.length > this.capacity || this.held > this.maxBytes)) {
      let victim = 0;
      for (let i = 1; i < this.snaps.length - 1; i++) {
        if ((this.snaps[i] as Snapshot).entries.length < (this.snaps[victim] as Snapshot).entries.length) victim = i;
      }
      this.release(this.snaps[victim] as Snapshot);
      this.snaps.splice(victim, 1);
    }
  }

  private hold(s: Pick<Snapshot, "pre" | "post" | "entries">): void {
    this.ref(s.pre);
    this.ref(s.post);
    for (const e of s.entries) this.held += e.payload.byteLength;
  }

  private release(s: Pick<Snapshot, "pre" | "post" | "entries">): void {
    this.unref(s.pre);
    this.unref(s.post);
    for (const e of s.entries) this.held -= e.payload.byteLength;
  }

  /**
   * Lets go of what no replay will read again: verified snapshots, and ones without observations
   * (never replayed), except the newest. Each pending snapshot holds its own pre-state, so nothing
   * left depends on what goes. A window then holds about --verify-interval snapshots, not
   * --replay-window (per-agent memory on the main thread).
   */
  dropSettled(): void {
    const newest = this.snaps.at(-1);
    for (let i = this.snaps.length - 1; i >= 0; i--) {
      const s = this.snaps[i] as Snapshot;
      if (s !== newest && (s.verified || s.entries.length === 0)) {
        this.release(s);
        this.snaps.splice(i, 1);
      }
    }
  }

  private ref(state: Uint8Array): void {
    const n = this.states.get(state) ?? 0;
    if (n === 0) this.held += state.byteLength;
    this.states.set(state, n + 1);
  }

  private unref(state: Uint8Array): void {
    const n = this.states.get(state) ?? 0;
    if (n <= 1) {
      this.states.delete(state);
      this.held -= state.byteLength;
    } else this.states.set(state, n - 1);
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
