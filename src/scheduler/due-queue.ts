// A min-heap of (due time, item) with lazy deletion: rescheduling pushes a new entry and bumps the
// item's version, so stale entries are skipped when popped. The version lives on the item itself
// (the scheduler's agent record), so scheduling and popping look nothing up by id: once per tick each.
// Entries that arrive in due order — the common case: a committed tick schedules the next at now +
// interval, and now only grows — go to a FIFO lane beside the heap instead: in and out in O(1), no
// entry object and no heap walk. popDue takes whichever head is earlier.

/** What the queue holds: its version field belongs to the queue (start it at 0). */
export interface Queued {
  dueVersion: number;
}

interface Entry<T> {
  due: number;
  item: T;
  version: number;
}

/** Lane slots before its popped prefix is dropped (amortised: only once it is half the lane). */
const LANE_COMPACT_MIN = 64;

export class DueQueue<T extends Queued> {
  private heap: Entry<T>[] = [];
  // The lane, as parallel arrays from laneHead on; its dues never decrease.
  private laneItems: (T | null)[] = [];
  private laneDue: number[] = [];
  private laneVersion: number[] = [];
  private laneHead = 0;

  schedule(item: T, due: number): void {
    const version = ++item.dueVersion;
    const n = this.laneDue.length;
    if (n === this.laneHead || due >= (this.laneDue[n - 1] as number)) {
      this.laneItems.push(item);
      this.laneDue.push(due);
      this.laneVersion.push(version);
    } else this.push({ due, item, version });
  }

  cancel(item: T): void {
    item.dueVersion++;
  }

  /** Earliest live due time, or null. */
  peek(): number | null {
    this.dropStale();
    const heapDue = this.heap[0]?.due ?? Number.POSITIVE_INFINITY;
    const laneDue = this.laneHead < this.laneDue.length ? (this.laneDue[this.laneHead] as number) : Number.POSITIVE_INFINITY;
    const due = Math.min(heapDue, laneDue);
    return due === Number.POSITIVE_INFINITY ? null : due;
  }

  /** Removes and returns every item due at or before `now`. */
  popDue(now: number): T[] {
    const out: T[] = [];
    for (;;) {
      this.dropStale();
      const top = this.heap[0];
      const h = this.laneHead;
      const laneDue = h < this.laneDue.length ? (this.laneDue[h] as number) : Number.POSITIVE_INFINITY;
      if (top && top.due <= now && top.due <= laneDue) {
        this.pop();
        top.item.dueVersion++;
        out.push(top.item);
      } else if (laneDue <= now) {
        const item = this.laneItems[h] as T;
        this.laneItems[h] = null;
        this.laneHead = h + 1;
        item.dueVersion++;
        out.push(item);
      } else {
        this.compactLane();
        return out;
      }
    }
  }

  private dropStale(): void {
    while (this.heap.length > 0) {
      const top = this.heap[0] as Entry<T>;
      if (top.item.dueVersion === top.version) break;
      this.pop();
    }
    let h = this.laneHead;
    const n = this.laneDue.length;
    while (h < n && (this.laneItems[h] as T).dueVersion !== this.laneVersion[h]) this.laneItems[h++] = null;
    this.laneHead = h;
  }

  private compactLane(): void {
    const h = this.laneHead;
    if (h < LANE_COMPACT_MIN || h * 2 < this.laneDue.length) return;
    this.laneItems.splice(0, h);
    this.laneDue.splice(0, h);
    this.laneVersion.splice(0, h);
    this.laneHead = 0;
  }

  private push(e: Entry<T>): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((h[p] as Entry<T>).due <= e.due) break;
      h[i] = h[p] as Entry<T>;
      i = p;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as Entry<T>;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && (h[r] as Entry<T>).due < (h[l] as Entry<T>).due ? r : l;
      if ((h[c] as Entry<T>).due >= last.due) break;
      h[i] = h[c] as Entry<T>;
      i = c;
    }
    h[i] = last;
  }
}
