// EffectLog: intents for side effects, kept inside the agent's own state so they survive
// checkpoints and migration. Lifecycle: Recorded → InFlight → Confirmed | Unresolved → Compensated.
// An intent that was InFlight when the agent stopped comes back Unresolved: the outcome is unknown,
// so the agent must reconcile it instead of blindly retrying.
import { Encoder, Decoder } from "./codec";

export enum IntentState {
  Recorded = 1,
  InFlight = 2,
  Confirmed = 3,
  Unresolved = 4,
  Compensated = 5,
}

/** Result codes of EffectLog operations (AssemblyScript cannot catch exceptions). */
export const EFFECT_OK: i32 = 0;
export const EFFECT_EXISTS: i32 = -1;
export const EFFECT_NOT_FOUND: i32 = -2;
export const EFFECT_INVALID_TRANSITION: i32 = -3;

export class Intent {
  constructor(public id: string, public state: IntentState, public data: Uint8Array) {}

  get terminal(): bool {
    return this.state == IntentState.Confirmed || this.state == IntentState.Compensated;
  }
}

export class EffectLog {
  private intents: Intent[] = [];

  get(id: string): Intent | null {
    for (let i = 0; i < this.intents.length; i++) {
      if (this.intents[i].id == id) return this.intents[i];
    }
    return null;
  }

  /** Records a new intent; its id is the agent's idempotency key. */
  record(id: string, data: Uint8Array): i32 {
    if (this.get(id) !== null) return EFFECT_EXISTS;
    this.intents.push(new Intent(id, IntentState.Recorded, data));
    return EFFECT_OK;
  }

  begin(id: string): i32 {
    return this.move(id, IntentState.Recorded, IntentState.Recorded, IntentState.InFlight);
  }

  confirm(id: string): i32 {
    return this.move(id, IntentState.InFlight, IntentState.Unresolved, IntentState.Confirmed);
  }

  compensate(id: string): i32 {
    return this.move(id, IntentState.InFlight, IntentState.Unresolved, IntentState.Compensated);
  }

  private move(id: string, fromA: IntentState, fromB: IntentState, to: IntentState): i32 {
    const it = this.get(id);
    if (it === null) return EFFECT_NOT_FOUND;
    if (it.state != fromA && it.state != fromB) return EFFECT_INVALID_TRANSITION;
    it.state = to;
    return EFFECT_OK;
  }

  pending(): Intent[] {
    return this.intents.filter((it: Intent) => !it.terminal);
  }

  unresolved(): Intent[] {
    return this.intents.filter((it: Intent) => it.state == IntentState.Unresolved);
  }

  get length(): i32 {
    return this.intents.length;
  }

  /** Drops terminal intents; returns how many were dropped. */
  prune(): i32 {
    const before = this.intents.length;
    this.intents = this.intents.filter((it: Intent) => !it.terminal);
    return before - this.intents.length;
  }

  marshal(enc: Encoder): void {
    enc.u32(<u32>this.intents.length);
    for (let i = 0; i < this.intents.length; i++) {
      const it = this.intents[i];
      enc.u8(<u8>it.state);
      enc.string(it.id);
      enc.bytes(it.data);
    }
  }

  /** Restores intents; every InFlight intent becomes Unresolved. */
  unmarshal(dec: Decoder): void {
    this.intents = [];
    const n = dec.u32();
    for (let i: u32 = 0; i < n && !dec.err(); i++) {
      let state = <IntentState>dec.u8();
      const id = dec.string();
      const data = dec.bytes();
      if (dec.err()) break;
      if (state == IntentState.InFlight) state = IntentState.Unresolved;
      this.intents.push(new Intent(id, state, data));
    }
  }
}
