// WAT counters the code-upgrade tests switch between: each reads the clock every tick (so every tick
// is in an event log, replayable), and keeps its tick count as its 4-byte state.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startTestNode, type TestNode } from "./node.js";
import { waitUntil } from "./wait.js";
import { CAPS, wat2wasm, watAgent } from "./wat.js";

export const CLOCK = '(import "igor" "clock_now" (func $clock (result i64)))';
/** v1 counts ticks. */
export const COUNTER_V1 = watAgent({ imports: CLOCK, onTick: "(drop (call $clock))" });
/** v2: same state format, adds 100 per tick. */
export const COUNTER_V2 = watAgent({ imports: CLOCK, onTick: "(drop (call $clock)) (global.set $ticks (i32.add (global.get $ticks) (i32.const 99)))" });
/**
 * v1's state is its 4-byte counter; this one's adds a 4-byte field after it (docs/SDK.md: new fields
 * at the end, read only when present), 1000 when an older state has none, bumped every tick.
 */
export const COUNTER_EXTENDS_LAYOUT = watAgent({
  imports: CLOCK,
  onTick: "(drop (call $clock)) (global.set $extra (i32.add (global.get $extra) (i32.const 1)))",
  omit: ["agent_checkpoint", "agent_resume"],
  extra: `(global $extra (mut i32) (i32.const 1000))
    (func (export "agent_checkpoint") (result i32) (i32.store (i32.const 0) (global.get $ticks)) (i32.store (i32.const 4) (global.get $extra)) (i32.const 8))
    (func (export "agent_resume") (param $p i32) (param $n i32)
      (if (i32.ge_u (local.get $n) (i32.const 4)) (then (global.set $ticks (i32.load (local.get $p)))))
      (if (i32.eq (local.get $n) (i32.const 8)) (then (global.set $extra (i32.load offset=4 (local.get $p)))) (else (global.set $extra (i32.const 1000)))))`,
});

/**
 * A node watching its agents dir, where counter.wasm (v1, granted the clock) was dropped and has
 * ticked to 3: the file's path, to replace it with a new build.
 */
export async function counterInAgentsDir(flags: Record<string, string>): Promise<{ t: TestNode; file: string }> {
  const t = await startTestNode(flags, { watch: true });
  const agents = join(t.dir, "agents");
  mkdirSync(agents, { recursive: true });
  writeFileSync(join(agents, "counter.manifest.json"), JSON.stringify(CAPS("clock")));
  const file = join(agents, "counter.wasm");
  writeFileSync(file, await wat2wasm(COUNTER_V1));
  await waitUntil(() => (t.node.scheduler.view("counter")?.tick ?? 0n) >= 3n, { timeoutMs: 15_000 });
  return { t, file };
}
