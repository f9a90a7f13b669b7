/**
 * At most `limit` tasks at once; the others wait for a slot, first come first served. The one bound on concurrency
 * (rollups in flight, partition reads of a window, the sweeper's rollups).
 */
export class Semaphore {
  private readonly waiting: (() => void)[] = [];
  private free: number;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a concurrency limit must be >= 1, got ${limit}`);
    this.free = limit;
  }

  /** Tasks running now. */
  get active(): number {
    return this.limit - this.free;
  }

  /** Resolves once a slot is taken; the caller must release() it. */
  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot to the next waiter, or frees it. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }

  /** Runs fn in a slot and resolves (or rejects) as it does; the slot is released either way. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /** Resolves once every task started so far has finished (it takes every slot, then gives them back). */
  async idle(): Promise<void> {
    for (let i = 0; i < this.limit; i++) await this.acquire();
    for (let i = 0; i < this.limit; i++) this.release();
  }
}

/** fn over every item, at most `limit` at once; the results in the items' order. */
export function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const slots = new Semaphore(limit);
  return Promise.all(items.map((item) => slots.run(() => fn(item))));
}
