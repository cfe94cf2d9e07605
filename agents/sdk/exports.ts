// The igor lifecycle ABI. Re-export these from an agent's entry file: `export * from "../sdk/exports"`.
import { sdkInit, sdkTick, sdkCheckpoint, sdkCheckpointPtr, sdkResume, sdkMalloc } from "./agent";

export function agent_init(): void { sdkInit(); }
export function agent_tick(): i32 { return sdkTick(); }
export function agent_checkpoint(): i32 { return sdkCheckpoint(); }
export function agent_checkpoint_ptr(): usize { return sdkCheckpointPtr(); }
export function agent_resume(ptr: usize, len: i32): void { sdkResume(ptr, len); }
export function malloc(n: usize): usize { return sdkMalloc(n); }
