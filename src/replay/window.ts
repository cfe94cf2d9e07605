// The per-agent replay window (pure): recent tick snapshots — pre-tick state, post-tick state and
// the tick's event log. Pre-state of tick N is the same object as post-state of N-1, so a window
// costs no copies. Over capacity — in snapshots or in bytes — what no verification needs goes first
// (verified or silent ticks, or ones a verification in flight holds), then the snapshot with the
// fewest observations (ties: the oldest); the newest is always kept. The verifier asks before that
// happens (mustVerify), and a tick still to verify that goes anyway is counted (takeDropped).
import type { LogEntry } from "../eventlog/tick-log.js";

/**
 * States and logs one agent's window may hold (a state shared by neighbouring snapshots counted once). With large states
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
  /**
   * Bytes held. A state is shared only by neighbours (tick N's post-state is tick N+1's pre-state:
   * the scheduler never shares one otherwise), so each snapshot is charged its post-state, its
   * pre-state unless it is its predecessor's post-state, and its log payloads. Counting by
   * neighbour costs a few comparisons per tick where a map of references cost ~0.3 µs.
   */
  private held = 0;
  /** Ticks up to this one are held by the verification in flight (claim); -1: none is. */
  private claimedThrough = -1n;
  /**
   * At least the number of snapshots still to verify (not spare): set at `release`, 0 at `claim`,
   * one more a tick. Lets mustVerify answer most ticks without looking at every snapshot.
   */
  private toVerifyAtMost = 0;
  /** Ticks with observations that left the window unverified and unclaimed, since takeDropped. */
  private dropped = 0;
  private droppedLast: bigint | null = null;

  constructor(
    readonly capacity: number,
    readonly maxBytes = REPLAY_WINDOW_MAX_BYTES,
  ) {}

  /** Bytes of distinct states and of log payloads held. */
  get bytes(): number {
    return this.held;
  }

  push(s: Omit<Snapshot, "verified">): void {
    this.pushTick(s.tick, s.pre, s.post, s.postHash, s.entries, s.budget, s.price);
  }

  /** `push` without an argument object: the scheduler's commit calls this once per tick. */
  pushTick(tick: bigint, pre: Uint8Array, post: Uint8Array, postHash: Uint8Array, entries: LogEntry[], budget: bigint, price: bigint): void {
    if (this.capacity <= 0) return;
    const snaps = this.snaps;
    const last = snaps[snaps.length - 1];
    // Consecutive ticks without observations are trivially deterministic: keep only the newest. The
    // silent newest is replaced in place (no replay ever holds one: pending() lists only snapshots
    // with observations), so a silent tick allocates nothing here.
    if (entries.length === 0 && last && last.entries.length === 0) {
      const i = snaps.length - 1;
      this.held -= this.charge(i);
      last.tick = tick;
      last.pre = pre;
      last.post = post;
      last.postHash = postHash;
      last.entries = entries;
      last.budget = budget;
      last.price = price;
      last.verified = false;
      this.held += this.charge(i);
    } else {
      snaps.push({ tick, pre, post, postHash, entries, budget, price, verified: false });
      this.held += this.charge(snaps.length - 1);
    }
    this.toVerifyAtMost++;
    while (snaps.length > 1 && (snaps.length > this.capacity || this.held > this.maxBytes)) {
      let victim = 0;
      let spare = this.spare(snaps[0] as Snapshot);
      for (let i = 1; i < snaps.length - 1; i++) {
        const s = snaps[i] as Snapshot;
        const sp = this.spare(s);
        if ((sp && !spare) || (sp === spare && s.entries.length < (snaps[victim] as Snapshot).entries.length)) {
          victim = i;
          spare = sp;
        }
      }
      // A tick still to verify that no verification holds: it will never be verified.
      if (!spare) this.countDropped((snaps[victim] as Snapshot).tick);
      this.removeAt(victim);
    }
  }

  /** Whether the snapshot can leave without a tick going unverified. */
  private spare(s: Snapshot): boolean {
    return s.verified || s.entries.length === 0 || s.tick <= this.claimedThrough;
  }

  /**
   * Whether the next tick would push out a tick still to verify (no spare snapshot makes room, by
   * count or by bytes, the next tick taken as large as the newest): the verifier verifies now rather
   * than let it go. With a large state the byte bound holds fewer ticks than --verify-interval.
   */
  mustVerify(): boolean {
    const snaps = this.snaps;
    const newest = snaps[snaps.length - 1];
    if (!newest || this.capacity <= 0) return false;
    // Room by count is short only when every snapshot is still to verify.
    const overCount = snaps.length + 1 > this.capacity && this.toVerifyAtMost >= snaps.length;
    let next = newest.post.length;
    for (const e of newest.entries) next += e.payload.length;
    const overBytes = this.held + next - this.maxBytes;
    if (!overCount && overBytes <= 0) return false;
    let spares = 0;
    let spareBytes = 0;
    let toVerify = 0;
    for (let i = 0; i < snaps.length; i++) {
      if (this.spare(snaps[i] as Snapshot)) {
        spares++;
        spareBytes += this.charge(i);
      } else toVerify++;
    }
    return toVerify > 0 && ((overCount && spares === 0) || (overBytes > 0 && spareBytes < overBytes));
  }

  /**
   * The snapshots to verify now, held by that verification until `release`: while it runs they may
   * leave the window (the verification has them) without counting as unverified.
   */
  claim(): Snapshot[] {
    const pending = this.pending();
    const last = pending[pending.length - 1];
    if (last) this.claimedThrough = last.tick;
    this.toVerifyAtMost = 0;
    return pending;
  }

  /** The verification ended: what it did not mark verified is to verify again. */
  release(): void {
    this.claimedThrough = -1n;
    let n = 0;
    for (const s of this.snaps) if (!this.spare(s)) n++;
    this.toVerifyAtMost = n;
  }

  /**
   * The verification that claimed `claimed` ended without verifying them (its worker died, the agent
   * moved): those that left the window while it ran will never be verified, so they count as dropped.
   */
  forfeit(claimed: readonly Snapshot[]): void {
    const held = new Set(this.snaps);
    for (const s of claimed) {
      if (!s.verified && s.entries.length > 0 && !held.has(s)) this.countDropped(s.tick);
    }
  }

  /** A tick with observations that left the window unverified, for takeDropped. */
  private countDropped(tick: bigint): void {
    this.dropped++;
    if (this.droppedLast === null || tick > this.droppedLast) this.droppedLast = tick;
  }

  /** How many ticks still to verify left the window since the last call, and the last of them. */
  takeDropped(): { count: number; lastTick: bigint | null } {
    const out = { count: this.dropped, lastTick: this.droppedLast };
    this.dropped = 0;
    this.droppedLast = null;
    return out;
  }

  /** What the snapshot at `i` adds to the bytes held, given its predecessor. */
  private charge(i: number): number {
    const s = this.snaps[i] as Snapshot;
    let n = s.post.length;
    if (s.pre !== s.post && (i === 0 || s.pre !== (this.snaps[i - 1] as Snapshot).post)) n += s.pre.length;
    for (const e of s.entries) n += e.payload.length;
    return n;
  }

  private removeAt(i: number): void {
    const next = i + 1 < this.snaps.length;
    this.held -= this.charge(i) + (next ? this.charge(i + 1) : 0);
    if (next) {
      this.snaps.splice(i, 1);
      this.held += this.charge(i);
    } else this.snaps.pop();
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
      if (s !== newest && (s.verified || s.entries.length === 0)) this.removeAt(i);
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
