// The Agent contract and the five lifecycle exports that drive it. An agent module does
// `export * from "igord/sdk/exports"` and calls `register(new MyAgent())` at top level.
import { Encoder, Decoder } from "./codec";

/**
 * What an agent implements. igord calls init once (in the first tick), tick every tick, marshal at
 * every checkpoint and unmarshal when it resumes the agent in a fresh instance (after a restart or a
 * migration). unmarshal must restore exactly what marshal wrote, and nothing else: marshal after
 * unmarshal gives back the same bytes (docs/AGENT_ABI.md, replay rules).
 */
export abstract class Agent {
  /** Runs once in the agent's life, inside its first tick (so its observations are recorded). */
  abstract init(): void;
  /** One unit of work. Return true when more work is pending (the host ticks again soon). */
  abstract tick(): bool;
  /** Writes the agent's whole state. */
  abstract marshal(enc: Encoder): void;
  /** Restores the state written by marshal. */
  abstract unmarshal(dec: Decoder): void;
}

// SDK state header: one format byte, then the initialized flag, then the agent's bytes.
const SDK_STATE_FORMAT: u8 = 1;

let current: Agent | null = null;
let initialized = false;
const encoder = new Encoder();
// Keeps the last checkpoint alive (a GC root) while the host copies it out.
let checkpointBuf: Uint8Array | null = null;

/** Makes `agent` the module's agent; call once at top level: `register(new MyAgent())`. */
export function register(agent: Agent): void {
  current = agent;
}

function agentOrAbort(): Agent {
  const a = current;
  if (a === null) throw new Error("no agent registered: call register(new MyAgent()) at top level");
  return a;
}

export function sdkInit(): void {
  agentOrAbort();
}

/** Run at the start of every tick, before the agent's own code (the EffectLog settles there). */
const tickStartHooks: (() => void)[] = [];

export function onTickStart(hook: () => void): void {
  tickStartHooks.push(hook);
}

export function sdkTick(): i32 {
  for (let i = 0; i < tickStartHooks.length; i++) tickStartHooks[i]();
  const a = agentOrAbort();
  if (!initialized) {
    a.init();
    initialized = true;
  }
  return a.tick() ? 1 : 0;
}

export function sdkCheckpoint(): i32 {
  const a = agentOrAbort();
  encoder.reset().u8(SDK_STATE_FORMAT).bool(initialized);
  a.marshal(encoder);
  checkpointBuf = encoder.view();
  return encoder.length;
}

export function sdkCheckpointPtr(): usize {
  const buf = checkpointBuf;
  return buf === null ? 0 : buf.dataStart;
}

export function sdkResume(ptr: usize, len: i32): void {
  const a = agentOrAbort();
  if (len == 0) return;
  const data = new Uint8Array(len);
  memory.copy(data.dataStart, ptr, len);
  heap.free(ptr);
  const dec = new Decoder(data);
  const format = dec.u8();
  if (format != SDK_STATE_FORMAT) throw new Error("unknown SDK state format");
  initialized = dec.bool();
  a.unmarshal(dec);
  if (dec.err()) throw new Error("checkpoint state is truncated");
}

export function sdkMalloc(n: usize): usize {
  return heap.alloc(n);
}
