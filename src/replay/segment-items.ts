// A stored or shipped event-log segment as a replay chain: one item per tick of its range, from the
// state of the checkpoint before it; ticks without a log observed nothing and have no state hash.
import type { EventLogSegment, TickLog } from "../eventlog/tick-log.js";
import type { ReplayItem } from "./engine.js";

/** `logs` are the segment's decoded tick logs; the callers decide what an unreadable blob means. */
export function segmentReplayItems(seg: Pick<EventLogSegment, "fromTick" | "toTick" | "postHashes">, logs: readonly TickLog[], preState: Uint8Array): ReplayItem[] {
  const byTick = new Map(logs.map((l, i) => [l.tick, { entries: l.entries, hash: seg.postHashes.slice(i * 32, i * 32 + 32) }]));
  const items: ReplayItem[] = [];
  for (let tick = seg.fromTick; tick <= seg.toTick; tick++) {
    const l = byTick.get(tick);
    items.push({
      tick,
      ...(tick === seg.fromTick ? { preState } : {}),
      entries: l?.entries ?? [],
      ...(l ? { expectedPostHash: l.hash } : {}),
      budget: 0n,
      price: 0n,
    });
  }
  return items;
}
