// A min-heap of (due time, agent) with lazy deletion: rescheduling pushes a new entry and bumps the
// agent's version, so stale entries are skipped when popped.

interface Entry {
  due: number;
  id: string;
  version: number;
}

export class DueQueue {
  private heap: Entry[] = [];
  private versions = new Map<string, number>();

  schedule(id: string, due: number): void {
    const version = (this.versions.get(id) ?? 0) + 1;
    this.versions.set(id, version);
    this.push({ due, id, version });
  }

  cancel(id: string): void {
    this.versions.set(id, (this.versions.get(id) ?? 0) + 1);
  }

  /** Earliest live due time, or null. */
  peek(): number | null {
    this.dropStale();
    return this.heap[0]?.due ?? null;
  }

  /** Removes and returns every agent due at or before `now`. */
  popDue(now: number): string[] {
    const out: string[] = [];
    for (;;) {
      this.dropStale();
      const top = this.heap[0];
      if (!top || top.due > now) return out;
      this.pop();
      this.versions.set(top.id, top.version + 1);
      out.push(top.id);
    }
  }

  private dropStale(): void {
    while (this.heap.length > 0) {
      const top = this.heap[0] as Entry;
      if (this.versions.get(top.id) === top.version) return;
      this.pop();
    }
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((h[p] as Entry).due <= e.due) break;
      h[i] = h[p] as Entry;
      i = p;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as Entry;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && (h[r] as Entry).due < (h[l] as Entry).due ? r : l;
      if ((h[c] as Entry).due >= last.due) break;
      h[i] = h[c] as Entry;
      i = c;
    }
    h[i] = last;
  }
}
