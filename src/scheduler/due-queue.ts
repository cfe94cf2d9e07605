// A min-heap of (due time, item) with lazy deletion: rescheduling pushes a new entry and bumps the
// item's version, so stale entries are skipped when popped. The version lives on the item itself
// (the scheduler's agent record), so scheduling and popping look nothing up by id: once per tick each.

/** What the queue holds: its version field belongs to the queue (start it at 0). */
export interface Queued {
  dueVersion: number;
}

interface Entry<T> {
  due: number;
  item: T;
  version: number;
}

export class DueQueue<T extends Queued> {
  private heap: Entry<T>[] = [];

  schedule(item: T, due: number): void {
    const version = ++item.dueVersion;
    this.push({ due, item, version });
  }

  cancel(item: T): void {
    item.dueVersion++;
  }

  /** Earliest live due time, or null. */
  peek(): number | null {
    this.dropStale();
    return this.heap[0]?.due ?? null;
  }

  /** Removes and returns every item due at or before `now`. */
  popDue(now: number): T[] {
    const out: T[] = [];
    for (;;) {
      this.dropStale();
      const top = this.heap[0];
      if (!top || top.due > now) return out;
      this.pop();
      top.item.dueVersion++;
      out.push(top.item);
    }
  }

  private dropStale(): void {
    while (this.heap.length > 0) {
      const top = this.heap[0] as Entry<T>;
      if (top.item.dueVersion === top.version) return;
      this.pop();
    }
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
