// When each tracked subscription next needs the processor's attention, as a min-heap of wake times, so a step
// costs O(k log n) for the k subscriptions that are due instead of a scan of all n tracked ones (100,000
// subscriptions with nothing due: nothing is touched). Pure data structure: no clock, no I/O.
//
// Each key has at most one live wake time. Rescheduling pushes a new entry and bumps the key's generation; stale
// entries are skipped when they reach the top (lazy deletion), and the heap is rebuilt when stale entries
// outnumber live ones, so its size stays within twice the number of keys.

interface Entry {
  at: number;
  key: string;
  generation: number;
}

export class DueSchedule {
  private heap: Entry[] = [];
  private readonly live = new Map<string, { at: number; generation: number }>();
  private generation = 0;

  /** Number of keys with a wake time. */
  get size(): number {
    return this.live.size;
  }

  /** Heap entries, stale ones included (for tests and health). */
  get entries(): number {
    return this.heap.length;
  }

  /** Sets (or moves) `key`'s wake time to `at`. */
  schedule(key: string, at: number): void {
    const current = this.live.get(key);
    if (current && current.at === at) return;
    const generation = ++this.generation;
    this.live.set(key, { at, generation });
    this.push({ at, key, generation });
    if (this.heap.length > 64 && this.heap.length > 2 * this.live.size) this.compact();
  }

  /** Moves `key` earlier only: a later time than the one it has is ignored. */
  scheduleNoLaterThan(key: string, at: number): void {
    const current = this.live.get(key);
    if (current && current.at <= at) return;
    this.schedule(key, at);
  }

  /** Removes `key` (it wakes no more until scheduled again). */
  cancel(key: string): void {
    this.live.delete(key);
  }

  /** The wake time of `key`, if it has one. */
  wakeAt(key: string): number | undefined {
    return this.live.get(key)?.at;
  }

  /** The earliest wake time, if any. */
  peek(): number | undefined {
    this.dropStale();
    return this.heap[0]?.at;
  }

  /** Removes and returns up to `limit` keys whose wake time is ≤ `now`, earliest first. */
  takeDue(now: number, limit = Number.POSITIVE_INFINITY): string[] {
    const due: string[] = [];
    while (due.length < limit) {
      this.dropStale();
      const top = this.heap[0];
      if (!top || top.at > now) break;
      this.pop();
      this.live.delete(top.key);
      due.push(top.key);
    }
    return due;
  }

  private isStale(entry: Entry): boolean {
    return this.live.get(entry.key)?.generation !== entry.generation;
  }

  private dropStale(): void {
    while (this.heap.length > 0 && this.isStale(this.heap[0] as Entry)) this.pop();
  }

  private compact(): void {
    this.heap = this.heap.filter((entry) => !this.isStale(entry));
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private push(entry: Entry): void {
    this.heap.push(entry);
    this.up(this.heap.length - 1);
  }

  private pop(): void {
    const last = this.heap.pop();
    if (last === undefined || this.heap.length === 0) return;
    this.heap[0] = last;
    this.down(0);
  }

  private less(i: number, j: number): boolean {
    return (this.heap[i] as Entry).at < (this.heap[j] as Entry).at;
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i] as Entry;
    this.heap[i] = this.heap[j] as Entry;
    this.heap[j] = a;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < n && this.less(l, smallest)) smallest = l;
      if (r < n && this.less(r, smallest)) smallest = r;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }
}
