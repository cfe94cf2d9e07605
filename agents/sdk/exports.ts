// The igor lifecycle ABI. Re-export these from an agent's entry file: `export * from "igord/sdk/exports"`.
import { sdkInit, sdkTick, sdkCheckpoint, sdkCheckpointPtr, sdkResume, sdkMalloc } from "./agent";

/** Checks that an agent is registered (its `init` runs in the first tick, where its observations are recorded). */
export function agent_init(): void { sdkInit(); }
/** Runs `init` before the first tick, then `tick`; returns 1 when more work is pending. */
export function agent_tick(): i32 { return sdkTick(); }
/** Encodes the state (an SDK header, then `marshal`) and returns its length in bytes. */
export function agent_checkpoint(): i32 { return sdkCheckpoint(); }
/** Where the bytes of the last `agent_checkpoint` are, for the host to copy. */
export function agent_checkpoint_ptr(): usize { return sdkCheckpointPtr(); }
/** Restores the state from `len` bytes at `ptr` (from `malloc`; freed here) through `unmarshal`; `len` 0 means a fresh agent. */
export function agent_resume(ptr: usize, len: i32): void { sdkResume(ptr, len); }
/** Allocates `n` bytes for the host to write a checkpoint into before `agent_resume`. */
export function malloc(n: usize): usize { return sdkMalloc(n); }
