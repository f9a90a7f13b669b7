import type { CounterEvent, CounterStore } from '../storage/counter-store';
import { WriteBoundsCache } from './write-bounds';

/**
 * Writes events the one way that never leaves an acknowledged event outside a rollup's window: first the counter's
 * bounds in its rollups row (only when this writer has not already covered the event's time; rounded to a grain,
 * see write-bounds.ts), for a clear also its exact time, which rollups use to find it, then the event itself.
 * Durable counters write through it, and so do the tests and the benchmark that need events in the tables.
 */
export class EventWriter {
  private readonly bounds: WriteBoundsCache;

  constructor(private readonly store: CounterStore) {
    this.bounds = new WriteBoundsCache(store);
  }

  /** `beforeInsert` runs once the bounds are written, right before the event: it may throw to refuse the event. */
  async append(event: CounterEvent, beforeInsert?: () => void): Promise<void> {
    await this.bounds.cover(event.counter, event.eventTimeMs);
    if (event.kind === 'clear') await this.store.widenBounds(event.counter, { clearMs: event.eventTimeMs });
    beforeInsert?.();
    await this.store.insertEvent(event);
  }
}
