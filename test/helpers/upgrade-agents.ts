// WAT counters the code-upgrade tests switch between: each reads the clock every tick (so every tick
// is in an event log, replayable), and keeps its tick count as its 4-byte state.
import { watAgent } from "./wat.js";

export const CLOCK = '(import "igor" "clock_now" (func $clock (result i64)))';
/** v1 counts ticks. */
export const COUNTER_V1 = watAgent({ imports: CLOCK, onTick: "(drop (call $clock))" });
/** v2: same state format, adds 100 per tick. */
export const COUNTER_V2 = watAgent({ imports: CLOCK, onTick: "(drop (call $clock)) (global.set $ticks (i32.add (global.get $ticks) (i32.const 99)))" });
