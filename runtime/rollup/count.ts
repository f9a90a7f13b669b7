import type { CounterStore, RollupRow } from '../storage/counter-store';

export interface CountResult {
  /** The exact count as of asOfMs (events with time <= asOfMs). */
  count: number;
  asOfMs: number;
  eventsRead: number;
  partitionsRead: number;
}

/**
 * A counter's count as of `asOfMs`: its checkpoint plus the deltas of the events after it. Clears are events too:
 * the latest clear at or before asOfMs resets the count to 0, and only events strictly after it count (an add at the
 * same millisecond as a clear is cleared by it).
 *
 * The bounds in the rollups row keep the read small: first_write_time gives a new counter's first rollup its
 * exact starting point, last_write_time ends the scan early when nothing newer was written, and last_clear_time
 * usually answers "was there a clear?" without reading events.
 */
export async function countAsOf(
  store: CounterStore,
  row: RollupRow,
  asOfMs: number,
  nowMs: number,
): Promise<CountResult> {
  let base = row.checkpoint?.count ?? 0;
  let from = row.checkpoint?.timeMs ?? (row.firstWriteMs !== undefined ? row.firstWriteMs - 1 : undefined);
  const empty = (count: number): CountResult => ({ count, asOfMs, eventsRead: 0, partitionsRead: 0 });
  if (from === undefined) return empty(0);
  if (asOfMs <= from) return { ...empty(base), asOfMs: from };

  if (row.lastClearMs !== undefined && row.lastClearMs > from) {
    const clearAt = row.lastClearMs <= asOfMs ? row.lastClearMs : await store.latestClearIn(row.counter, from, asOfMs);
    if (clearAt !== undefined) {
      base = 0;
      from = clearAt;
    }
  }

  const scanTo = row.lastWriteMs !== undefined ? Math.min(asOfMs, row.lastWriteMs) : asOfMs;
  // Events older than the retention have expired: there is nothing to read before it.
  const retentionStart = nowMs - store.config.eventStorage.retentionSeconds * 1000;
  const scanFrom = Math.max(from, retentionStart);
  if (scanTo <= scanFrom) return empty(base);
  const window = await store.sumWindow(row.counter, scanFrom, scanTo);
  return { count: base + window.sum, asOfMs, eventsRead: window.events, partitionsRead: window.partitions };
}
