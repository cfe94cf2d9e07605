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
    private readonly entries: readonly LogEntry[],
    private readonly tick: bigint,
  ) {}

  observe(id: number, _live: () => Observation, check?: ObservationCheck): Observation {
    const k = this.position;
    const e = this.entries[k];
    if (!e) throw logExhausted(this.tick, id, k, this.entries.length);
    if (e.id !== id) throw hostcallMismatch(this.tick, id, k, e.id);
    // The entry itself is the observation (it has result and payload; nothing writes to it).
    const o: Observation = e;
    const problem = check?.(o);
    if (problem) throw payloadMismatch(this.tick, id, k, problem);
    this.position++;
    return o;
  }

  /** After the tick: every recorded entry must have been consumed. */
  finish(): void {
    if (this.position < this.entries.length) throw leftUnconsumed(this.tick, this.entries.length - this.position, this.entries[this.position]?.id ?? 0, this.position);
  }
}

// The reasons a tick's replay departs from its log (shared with the wire-form chain, replay/chain.ts).

export function logExhausted(tick: bigint, id: number, position: number, entries: number): IgordError {
  return new IgordError(
    ErrorCode.ReplayLogExhausted,
    `tick ${tick}: the agent called ${nameOf(id)} at position ${position}, but the recorded log has only ${entries} entries`,
    { details: { tick: String(tick), position, hostcall: id } },
  );
}

export function hostcallMismatch(tick: bigint, id: number, position: number, recorded: number): IgordError {
  return new IgordError(
    ErrorCode.ReplayHostcallMismatch,
    `tick ${tick}: hostcall mismatch at position ${position}: the agent called ${nameOf(id)}, the log recorded ${nameOf(recorded)}`,
    { details: { tick: String(tick), position, called: id, recorded } },
  );
}

export function payloadMismatch(tick: bigint, id: number, position: number, problem: string): IgordError {
  return new IgordError(ErrorCode.ReplayPayloadMismatch, `tick ${tick}: ${nameOf(id)} at position ${position}: ${problem}`, {
    details: { tick: String(tick), position, hostcall: id },
  });
}

export function leftUnconsumed(tick: bigint, remaining: number, firstId: number, position: number): IgordError {
  return new IgordError(
    ErrorCode.ReplayUnconsumed,
    `tick ${tick}: ${remaining} recorded entries were left unconsumed (first: ${nameOf(firstId)} at position ${position})`,
    { details: { tick: String(tick), position, remaining } },
  );
}
