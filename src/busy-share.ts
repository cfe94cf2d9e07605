// The share of the main thread's time a piece of work takes, measured over windows of at least a
// given length. Helper threads (the store's commit thread, the signer threads) cost 8–17 MiB each;
// a node starts one only once the work it would take over measures busy enough to pay for it, so a
// node whose agents tick slowly never pays their memory.

export class BusyShare {
  private busyMs = 0;
  private windowStart = -1;

  /**
   * @param share the share of a window's time that counts as busy (0.2: a fifth)
   * @param windowMs the shortest window judged (one burst, such as a shutdown's checkpoints, is not "busy")
   */
  constructor(
    readonly share: number,
    readonly windowMs: number,
  ) {}

  /** Counts work that ran from `started` (a `performance.now()` reading) until now; true once a whole window measured busy. */
  note(started: number): boolean {
    const now = performance.now();
    this.busyMs += now - started;
    if (this.windowStart < 0) this.windowStart = started;
    const span = now - this.windowStart;
    if (span < this.windowMs) return false;
    const busy = this.busyMs >= span * this.share;
    this.busyMs = 0;
    this.windowStart = now;
    return busy;
  }
}
