// WAT agents and replay targets the replay tests share: the hostcall imports, an agent with a hidden
// (unrecorded) input, and a target built from WAT with some capabilities granted.
import { planImports } from "../../src/hostcalls/policy.js";
import { parseManifest } from "../../src/manifest/manifest.js";
import type { ReplayTarget } from "../../src/replay/engine.js";
import { readModuleInfo } from "../../src/wasm/module-info.js";
import { CAPS, wat2wasm, watAgent } from "./wat.js";

export const REPLAY_IMPORTS = `
  (import "igor" "clock_now" (func $clock (result i64)))
  (import "igor" "rand_bytes" (func $rand (param i32 i32) (result i32)))
  (import "igor" "log_emit" (func $log (param i32 i32)))`;

// A hidden input: $hidden is a global that agent_checkpoint does not save. A resumed instance starts
// it at 0 again, so replayed ticks compute something else.
export const HIDDEN_INPUT_AGENT = watAgent({
  imports: REPLAY_IMPORTS,
  onTick: `
    (global.set $hidden (i32.add (global.get $hidden) (i32.const 7)))
    (global.set $ticks (i32.add (global.get $ticks) (global.get $hidden)))
    (drop (call $clock))`,
  extra: "(global $hidden (mut i32) (i32.const 0))",
});

// A divergence the next tick hides: the state is a word whose low half counts ticks; $hidden (not
// saved) counts the ticks this instance ran; odd ticks put it in the word's high half, even ticks
// clear it. A replay that starts after tick 1 reproduces every even tick's state, no odd tick's.
export const MASKED_BY_NEXT_TICK_AGENT = watAgent({
  imports: '(import "igor" "clock_now" (func $clock (result i64)))',
  onTick: `(global.set $hidden (i32.add (global.get $hidden) (i32.const 1)))
    (global.set $ticks (i32.and (global.get $ticks) (i32.const 0xffff)))
    (if (i32.and (global.get $ticks) (i32.const 1))
      (then (global.set $ticks (i32.or (global.get $ticks) (i32.shl (global.get $hidden) (i32.const 16))))))
    (drop (call $clock))`,
  extra: "(global $hidden (mut i32) (i32.const 0))",
});

export async function replayTarget(text: string, caps: string[]): Promise<ReplayTarget> {
  const bytes = await wat2wasm(text);
  return {
    module: new WebAssembly.Module(bytes),
    plan: planImports(readModuleInfo(bytes), parseManifest(JSON.stringify(CAPS(...caps))), new Set(caps)),
    memoryCapPages: 16,
  };
}
