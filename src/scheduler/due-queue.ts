// A min-heap of (due time, item). Rescheduling or cancelling an item empties the slot that held it
// (the item knows its slot: its heap entry or its lane position), so an emptied slot is skipped when
// it comes up and holds nothing of the item meanwhile: an agent that left (stopped, removed, handed
// off) with its next tick a day away would otherwise keep its whole record (committed state, replay
// window, logger) alive here until then. Only a number and an empty entry wait for their turn.
// Entries that arrive in due order — the common case: a committed tick schedules the next at now +
// interval, and now only grows — go to a FIFO lane beside the heap instead: in and out in O(1), no
// entry object and no heap walk. popDue takes whichever head is earlier.

/** A heap slot: `item` is emptied when the item is rescheduled or cancelled. */
export interface DueEntry {
  due: number;
  item: Queued | null;
}

/** What the queue holds: both fields belong to the queue (start them at null and NOT_IN_LANE). */
export interface Queued {
  /** The heap entry holding this item, or null. */
  dueEntry: DueEntry | null;
  /** The item's lane position (counted from the lane's first slot ever), or NOT_IN_LANE. */
  dueLane: number;
}

export const NOT_IN_LANE = -1;

/** Lane slots before its popped prefix is dropped (amortised: only once it is half the lane). */
const LANE_COMPACT_MIN = 64;

export class DueQueue<T extends Queued> {
  private heap: DueEntry[] = [];
  // The lane, as parallel arrays from laneHead on; its dues never decrease. laneBase: slots dropped
  // from its front so far, so an item's lane position stays valid across compactions.
  private laneItems: (T | null)[] = [];
  private laneDue: number[] = [];
  private laneHead = 0;
  private laneBase = 0;

  schedule(item: T, due: number): void {
    this.cancel(item);
    const n = this.laneDue.length;
    if (n === this.laneHead || due >= (this.laneDue[n - 1] as number)) {
      item.dueLane = this.laneBase + n;
      this.laneItems.push(item);
      this.laneDue.push(due);
    } else {
      const e: DueEntry = { due, item };
      item.dueEntry = e;
      this.push(e);
    }
  }

  cancel(item: T): void {
    if (item.dueEntry !== null) {
      item.dueEntry.item = null;
      item.dueEntry = null;
    }
    if (item.dueLane !== NOT_IN_LANE) {
      this.laneItems[item.dueLane - this.laneBase] = null;
      item.dueLane = NOT_IN_LANE;
    }
  }

  /** Earliest live due time, or null. */
  peek(): number | null {
    this.dropEmpty();
    const heapDue = this.heap[0]?.due ?? Number.POSITIVE_INFINITY;
    const laneDue = this.laneHead < this.laneDue.length ? (this.laneDue[this.laneHead] as number) : Number.POSITIVE_INFINITY;
    const due = Math.min(heapDue, laneDue);
    return due === Number.POSITIVE_INFINITY ? null : due;
  }

  /** Removes and returns every item due at or before `now`. */
  popDue(now: number): T[] {
    const out: T[] = [];
    for (;;) {
      this.dropEmpty();
      const top = this.heap[0];
      const h = this.laneHead;
      const laneDue = h < this.laneDue.length ? (this.laneDue[h] as number) : Number.POSITIVE_INFINITY;
      if (top && top.due <= now && top.due <= laneDue) {
        this.pop();
        const item = top.item as T;
        item.dueEntry = null;
        out.push(item);
      } else if (laneDue <= now) {
        const item = this.laneItems[h] as T;
        this.laneItems[h] = null;
        this.laneHead = h + 1;
        item.dueLane = NOT_IN_LANE;
        out.push(item);
      } else {
        this.compactLane();
        return out;
      }
    }
  }

  private dropEmpty(): void {
    while (this.heap.length > 0 && (this.heap[0] as DueEntry).item === null) this.pop();
    let h = this.laneHead;
    const n = this.laneDue.length;
    while (h < n && this.laneItems[h] === null) h++;
    this.laneHead = h;
  }

  private compactLane(): void {
    const h = this.laneHead;
    if (h < LANE_COMPACT_MIN || h * 2 < this.laneDue.length) return;
    this.laneItems.splice(0, h);
    this.laneDue.splice(0, h);
    this.laneHead = 0;
    this.laneBase += h;
  }

  private push(e: DueEntry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((h[p] as DueEntry).due <= e.due) break;
      h[i] = h[p] as DueEntry;
      i = p;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as DueEntry;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && (h[r] as DueEntry).due < (h[l] as DueEntry).due ? r : l;
      if ((h[c] as DueEntry).due >= last.due) break;
      h[i] = h[c] as DueEntry;
      i = c;
    }
    h[i] = last;
  }
}
