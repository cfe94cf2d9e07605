// What igor's demo agents share: a tick count, birth and last-seen times from the recorded clock,
// latest/high/low trackers, and (for the agents that act) the EffectLog turn order: reconcile what
// is unresolved first, then act on an intent begun in an earlier tick once a checkpoint covers it.
import { Agent, Decoder, EffectLog, Encoder, Intent, clockNow } from "igord/sdk";
import { dueToAct } from "./intents";

export abstract class DemoAgent extends Agent {
  tickCount: u64 = 0;
  birthNs: i64 = 0;
  lastNs: i64 = 0;

  init(): void {}

  /** Counts the tick and reads the clock (the first reading is the birth); true on the first one. */
  protected advance(): bool {
    this.tickCount++;
    const now = clockNow();
    const first = this.birthNs == 0;
    if (first) this.birthNs = now;
    this.lastNs = now;
    return first;
  }

  get ageS(): i64 {
    return (this.lastNs - this.birthNs) / 1_000_000_000;
  }

  protected marshalLife(enc: Encoder): void {
    enc.u64(this.tickCount).i64(this.birthNs).i64(this.lastNs);
  }

  protected unmarshalLife(dec: Decoder): void {
    this.tickCount = dec.u64();
    this.birthNs = dec.i64();
    this.lastNs = dec.i64();
  }
}

/** An agent that acts through intents. */
export abstract class IntentAgent extends DemoAgent {
  effects: EffectLog = new EffectLog();
  reconciling: bool = false;

  /** Settles one intent whose outcome is unknown (it was in flight when the agent stopped). */
  abstract reconcile(intent: Intent): void;

  /** Reconciles every unresolved intent and drops the settled ones; true if there were any. */
  protected reconcileUnresolved(): bool {
    const unresolved = this.effects.unresolved();
    if (unresolved.length == 0) return false;
    this.reconciling = true;
    for (let i = 0; i < unresolved.length; i++) this.reconcile(unresolved[i]);
    this.effects.prune();
    this.reconciling = false;
    return true;
  }

  /** The first begun intent whose wait for a checkpoint is over, if any. */
  protected nextDue(): Intent | null {
    const pending = this.effects.pending();
    for (let i = 0; i < pending.length; i++) {
      if (dueToAct(pending[i], this.tickCount)) return pending[i];
    }
    return null;
  }

  /** True while a begun intent waits for a checkpoint (the agent does nothing else meanwhile). */
  protected waiting(): bool {
    return this.effects.pending().length > 0;
  }
}

/** Latest, highest and lowest of a series (0 = not seen yet). */
export class Range {
  latest: u64 = 0;
  high: u64 = 0;
  low: u64 = 0;

  observe(v: u64): void {
    this.latest = v;
    if (this.high == 0 || v > this.high) this.high = v;
    if (this.low == 0 || v < this.low) this.low = v;
  }

  marshal(enc: Encoder): void {
    enc.u64(this.latest).u64(this.high).u64(this.low);
  }

  unmarshal(dec: Decoder): void {
    this.latest = dec.u64();
    this.high = dec.u64();
    this.low = dec.u64();
  }
}
