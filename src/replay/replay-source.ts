// Serves a tick's recorded event log back to the hostcalls, in order, through the same code path
// the live tick used. Any difference between what the agent asks for now and what it asked for then
// is reported precisely: which position, which hostcall, what shape.
import type { Observation, ObservationCheck, ObservationSource } from "../eventlog/recorder.js";
import type { LogEntry } from "../eventlog/tick-log.js";
import { ErrorCode, IgordError } from "../errors.js";
import { hostcallById } from "../hostcalls/registry.js";

const nameOf = (id: number): string => hostcallById(id)?.name ?? `#${id}`;

export class ReplaySource implements ObservationSource {
  private position = 0;

  constructor(
    private entries: readonly LogEntry[],
    private tick: bigint,
  ) {}

  /** Serves another tick's log (a long chain reuses one source). */
  reset(entries: readonly LogEntry[], tick: bigint): void {
    this.entries = entries;
    this.tick = tick;
    this.position = 0;
  }

  observe(id: number, _live: () => Observation, check?: ObservationCheck): Observation {
    const k = this.position;
    const e = this.entries[k];
    if (!e) {
      throw new IgordError(
        ErrorCode.ReplayLogExhausted,
        `tick ${this.tick}: the agent called ${nameOf(id)} at position ${k}, but the recorded log has only ${this.entries.length} entries`,
        { details: { tick: String(this.tick), position: k, hostcall: id } },
      );
    }
    if (e.id !== id) {
      throw new IgordError(
        ErrorCode.ReplayHostcallMismatch,
        `tick ${this.tick}: hostcall mismatch at position ${k}: the agent called ${nameOf(id)}, the log recorded ${nameOf(e.id)}`,
        { details: { tick: String(this.tick), position: k, called: id, recorded: e.id } },
      );
    }
    // The entry itself is the observation (it has result and payload; nothing writes to it).
    const o: Observation = e;
    const problem = check?.(o);
    if (problem) {
      throw new IgordError(ErrorCode.ReplayPayloadMismatch, `tick ${this.tick}: ${nameOf(id)} at position ${k}: ${problem}`, {
        details: { tick: String(this.tick), position: k, hostcall: id },
      });
    }
    this.position++;
    return o;
  }

  /** After the tick: every recorded entry must have been consumed. */
  finish(): void {
    if (this.position < this.entries.length) {
      throw new IgordError(
        ErrorCode.ReplayUnconsumed,
        `tick ${this.tick}: ${this.entries.length - this.position} recorded entries were left unconsumed (first: ${nameOf(this.entries[this.position]?.id ?? 0)} at position ${this.position})`,
        { details: { tick: String(this.tick), position: this.position, remaining: this.entries.length - this.position } },
      );
    }
  }
}
