// The one code path through which every hostcall observes the world. Live execution records what
// it observed; replay (a later issue) serves the recorded entries back through the same interface,
// so error paths and zero-length calls replay exactly as they ran.
import type { LogEntry } from "./tick-log.js";

export interface Observation {
  result: number;
  payload: Uint8Array;
}

/** Says what is wrong with an observation's shape for this call (null = fine). */
export type ObservationCheck = (o: Observation) => string | null;

export interface ObservationSource {
  /**
   * Returns the observation for one hostcall invocation. `live` produces it from the real world;
   * a replay source ignores `live` and returns the next recorded entry after checking its id and,
   * with `check`, its shape (e.g. the payload length the call needs).
   */
  observe(id: number, live: () => Observation, check?: ObservationCheck): Observation;
}

export const EMPTY = new Uint8Array(0);

/** Records every observation of the current tick. */
export class LiveRecorder implements ObservationSource {
  private entries: LogEntry[] = [];

  observe(id: number, live: () => Observation): Observation {
    const o = live();
    this.entries.push({ id, result: o.result, payload: o.payload });
    return o;
  }

  /** Returns the entries recorded since the last call and starts a new log. */
  take(): LogEntry[] {
    const out = this.entries;
    this.entries = [];
    return out;
  }
}
