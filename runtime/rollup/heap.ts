/** A binary min-heap of (key, due time): the rollup queues pop the counters that are due first. */
export class DueHeap {
  private readonly items: { key: string; due: number }[] = [];

  get size(): number {
    return this.items.length;
  }

  clear(): void {
    this.items.length = 0;
  }

  peekDue(): number | undefined {
    return this.items[0]?.due;
  }

  push(key: string, due: number): void {
    const items = this.items;
    items.push({ key, due });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.due <= items[i]!.due) break;
      [items[parent], items[i]] = [items[i]!, items[parent]!];
      i = parent;
    }
  }

  pop(): { key: string; due: number } | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < items.length && items[l]!.due < items[smallest]!.due) smallest = l;
      if (r < items.length && items[r]!.due < items[smallest]!.due) smallest = r;
      if (smallest === i) break;
      [items[smallest], items[i]] = [items[i]!, items[smallest]!];
      i = smallest;
    }
    return top;
  }
}
