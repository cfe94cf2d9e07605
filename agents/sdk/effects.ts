// EffectLog: intents for side effects, kept inside the agent's own state so they survive
// checkpoints and migration. Lifecycle: Recorded → InFlight → Confirmed | Unresolved → Compensated.
//
// The pattern (record intent, checkpoint, act, confirm): record and begin the intent in one tick,
// let a checkpoint cover it, then act and confirm in a later tick. If the node dies after acting but
// before a checkpoint covers the act, the agent comes back from the checkpoint with the intent
// InFlight and an unknown outcome: the first EffectLog call of the first tick asks the host
// (igor.resume_interrupted, recorded like any observation) whether ticks may have run after that
// checkpoint, and if so turns every InFlight intent into Unresolved, to be reconciled instead of
// blindly retried. unmarshal restores intents exactly as marshal wrote them (agent_resume stays the
// pure inverse of agent_checkpoint), so replay and migration see the same state the live agent had.
import { Encoder, Decoder } from "./codec";
import { onTickStart } from "./agent";

@external("igor", "resume_interrupted") declare function igor_resume_interrupted(): i32;

export enum IntentState {
  Recorded = 1,
  InFlight = 2,
  Confirmed = 3,
  Unresolved = 4,
  Compensated = 5,
}

// Result codes of EffectLog operations (AssemblyScript cannot catch exceptions).
/** The operation was applied. */
export const EFFECT_OK: i32 = 0;
/** `record`: an intent with this id is already in the log (nothing changed). */
export const EFFECT_EXISTS: i32 = -1;
/** No intent with this id is in the log. */
export const EFFECT_NOT_FOUND: i32 = -2;
/** The intent is in a state this operation does not move from (nothing changed). */
export const EFFECT_INVALID_TRANSITION: i32 = -3;

export class Intent {
  constructor(public id: string, public state: IntentState, public data: Uint8Array) {}

  get terminal(): bool {
    return this.state == IntentState.Confirmed || this.state == IntentState.Compensated;
  }
}

/**
 * The EffectLogs of this instance that hold InFlight intents, in the order they came to: settled at
 * the start of each tick (a log without one has nothing to settle). Only these are kept reachable
 * here, and each only while it holds one: a log the agent drops is garbage like any object.
 */
let inFlightLogs: EffectLog[] = [];

function settleAll(): void {
  const logs = inFlightLogs;
  inFlightLogs = [];
  for (let i = 0; i < logs.length; i++) {
    const l = logs[i];
    l._listed = false;
    l.settle();
    l._listIfInFlight();
  }
}
onTickStart(settleAll);

export class EffectLog {
  private intents: Intent[] = [];
  /** In inFlightLogs (SDK-internal). */
  _listed: bool = false;

  /** Puts this log among those settled at each tick's start while it holds an InFlight intent (SDK-internal). */
  _listIfInFlight(): void {
    if (this._listed) return;
    for (let i = 0; i < this.intents.length; i++) {
      if (this.intents[i].state == IntentState.InFlight) {
        this._listed = true;
        inFlightLogs.push(this);
        return;
      }
    }
  }

  /**
   * At the start of each tick: with InFlight intents, asks whether this instance resumed after an
   * interruption and, if so, marks them Unresolved. Whether the host is asked depends only on the
   * state, so a replay of the tick asks exactly when the live tick did.
   */
  settle(): void {
    let inFlight = false;
    for (let i = 0; i < this.intents.length; i++) if (this.intents[i].state == IntentState.InFlight) inFlight = true;
    if (!inFlight || igor_resume_interrupted() != 1) return;
    for (let i = 0; i < this.intents.length; i++) {
      if (this.intents[i].state == IntentState.InFlight) this.intents[i].state = IntentState.Unresolved;
    }
  }

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
    const r = this.move(id, IntentState.Recorded, IntentState.Recorded, IntentState.InFlight);
    if (r == EFFECT_OK) this._listIfInFlight();
    return r;
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

  /** Restores intents exactly as marshal wrote them (InFlight stays InFlight until settle()). */
  unmarshal(dec: Decoder): void {
    this.intents = [];
    const n = dec.u32();
    for (let i: u32 = 0; i < n && !dec.err(); i++) {
      const state = <IntentState>dec.u8();
      const id = dec.string();
      const data = dec.bytes();
      if (dec.err()) break;
      this.intents.push(new Intent(id, state, data));
    }
    this._listIfInFlight();
  }
}
