// The scheduler's clock for due times, timers and hibernation: monotonic (performance.now), so a
// wall clock stepped back (an NTP step, a VM restored from a snapshot) neither freezes every cadence
// for the size of the step nor, stepped forward, fires them all at once. Wall time (Date.now) stays
// at the edges: leases, the time a tick committed (stored, and carried by a migration), and the
// next tick's time as views and logs show it.

/** Monotonic ms (this process's own origin: comparable only with itself). */
export function monoNow(): number {
  return performance.now();
}

/** The wall time (Unix ms) of a monotonic instant, as the wall clock reads now. */
export function wallTimeOf(mono: number): number {
  return Math.round(Date.now() + (mono - performance.now()));
}
