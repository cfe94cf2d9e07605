// The one code path through which every hostcall observes the world. Live execution records what
// it observed; replay (a later issue) serves the recorded entries back through the same interface,
// so error paths and zero-length calls replay exactly as they ran.
import { ErrorCode, IgordError } from "../errors.js";
import { hostcallById } from "../hostcalls/registry.js";
import type { LogEntry } from "./tick-log.js";

/**
 * A live tick's event log (its encoded size: header, entry headers, payloads) may not grow past this:
 * the tick fails with TICK_LOG_TOO_LARGE. Bounds the host memory one tick can take (rand_bytes alone
 * allows 64 MiB a call) and every stored segment and shipped window built from it.
 */
export const MAX_TICK_EVENT_BYTES = 16 * 1024 * 1024;
/**
 * Nor hold more entries than this: the tick fails with TICK_LOG_TOO_LARGE. Within the byte cap a
 * tick of empty calls (10 bytes each) could record ~1.67 M entries, more than any reader of stored
 * logs takes (MAX_TICK_LOG_ENTRIES: restart verification, audits and migration admission refused the
 * agent's history), and each entry is an object on the main thread: one such tick held it for
 * seconds, past the tick timeout, every tick the guest liked.
 */
export const MAX_TICK_EVENT_ENTRIES = 65_536;
const TICK_LOG_HEADER_BYTES = 12;
const ENTRY_HEADER_BYTES = 10;

/** `phase`: the guest call of a load that recorded (agent_init, ...); null in a tick. */
export function tickLogTooLarge(id: number, position: number, wouldBe: number, max: number, phase: string | null = null): IgordError {
  return new IgordError(
    ErrorCode.TickLogTooLarge,
    `${phase ? `${phase}: ` : ""}${hostcallById(id)?.name ?? `#${id}`} at position ${position}: ${phase ? "its" : "the tick's"} event log would grow to ${wouldBe} bytes, over the per-tick limit of ${max}`,
    { details: { hostcall: id, position, bytes: wouldBe, limit: max, ...(phase ? { phase } : {}) } },
  );
}

export function tickLogTooManyEntries(id: number, position: number, max: number, phase: string | null = null): IgordError {
  return new IgordError(
    ErrorCode.TickLogTooLarge,
    `${phase ? `${phase}: ` : ""}${hostcallById(id)?.name ?? `#${id}`} at position ${position}: ${phase ? "its" : "the tick's"} event log would hold more than ${max} entries, the per-tick limit`,
    { details: { hostcall: id, position, entries: position + 1, limit: max, ...(phase ? { phase } : {}) } },
  );
}

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
  /**
   * Live recording only: fails the tick (TICK_LOG_TOO_LARGE) unless its log can still take a
   * payload of `bytes` — called before a hostcall allocates one.
   */
  reserve?(id: number, bytes: number): void;
}

export const EMPTY = new Uint8Array(0);

/**
 * Answers every observation with zeros of the right shape, records nothing and performs nothing
 * (`live` is never called): what guest code outside the recorded calls sees. A replay instance's
 * agent_init runs with it (its state is replaced by agent_resume), and every agent_checkpoint, live
 * and in replay alike, so an agent that reads the clock or logs a line while serialising its state
 * acts on nothing and serialises the same state in both.
 */
export const ZERO_SOURCE: ObservationSource = {
  observe: (_id, _live, check) => {
    const eight = { result: 0, payload: new Uint8Array(8) };
    return check?.(eight) ? { result: 0, payload: EMPTY } : eight;
  },
};

/** Records every observation of the current tick. */
export class LiveRecorder implements ObservationSource {
  private entries: LogEntry[] = [];
  private bytes = TICK_LOG_HEADER_BYTES;
  /**
   * While a load runs guest code (start, _initialize, agent_init, agent_resume), the guest call
   * running: a log over the limit then names it, not a tick. Null in ticks.
   */
  loadPhase: (() => string) | null = null;

  constructor(
    readonly maxBytes = MAX_TICK_EVENT_BYTES,
    readonly maxEntries = MAX_TICK_EVENT_ENTRIES,
  ) {}

  observe(id: number, live: () => Observation): Observation {
    const o = live();
    this.reserve(id, o.payload.length);
    this.bytes += ENTRY_HEADER_BYTES + o.payload.length;
    this.entries.push({ id, result: o.result, payload: o.payload });
    return o;
  }

  reserve(id: number, bytes: number): void {
    if (this.entries.length >= this.maxEntries) throw tickLogTooManyEntries(id, this.entries.length, this.maxEntries, this.loadPhase?.() ?? null);
    const wouldBe = this.bytes + ENTRY_HEADER_BYTES + bytes;
    if (wouldBe > this.maxBytes) throw tickLogTooLarge(id, this.entries.length, wouldBe, this.maxBytes, this.loadPhase?.() ?? null);
  }

  /** Entries recorded since the last take(). */
  get size(): number {
    return this.entries.length;
  }

  /** Returns the entries recorded since the last call and starts a new log. */
  take(): LogEntry[] {
    const out = this.entries;
    this.entries = [];
    this.bytes = TICK_LOG_HEADER_BYTES;
    return out;
  }
}
