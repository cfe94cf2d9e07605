// Runs an agent live in-process (a real sandbox, a recorder, a scripted world) and returns one replay
// item per tick: its pre-state, its event log and the hash of its post-state.
import { createHash } from "node:crypto";
import { LiveRecorder } from "../../src/eventlog/recorder.js";
import type { ReplayItem, ReplayTarget } from "../../src/replay/engine.js";
import { AgentSandbox } from "../../src/wasm/sandbox.js";

const sha = (b: Uint8Array): Uint8Array => new Uint8Array(createHash("sha256").update(b).digest());

export function liveTickItems(t: ReplayTarget, n: number): ReplayItem[] {
  const rec = new LiveRecorder();
  let clock = 1_000n;
  const sb = AgentSandbox.instantiate({
    ...t,
    context: {
      source: rec,
      budget: () => 100n,
      price: () => 1n,
      authority: () => true,
      world: { nowNs: () => (clock += 37n), randomFill: (b) => b.set(b.map((_, i) => (i * 13 + Number(clock)) & 0xff)) },
    },
  });
  sb.init();
  const items: ReplayItem[] = [];
  let pre = sb.captureState();
  for (let i = 1; i <= n; i++) {
    sb.tick();
    const post = sb.captureState();
    items.push({ tick: BigInt(i), preState: pre, entries: rec.take(), expectedPostHash: sha(post), budget: 100n, price: 1n });
    pre = post;
  }
  return items;
}
