import { CountOutOfRangeError } from '../errors';
import type { CounterStore, RollupRow } from '../storage/counter-store';

export interface CountResult {
  /** The exact count as of asOfMs (events with time <= asOfMs). */
  count: number;
  asOfMs: number;
  eventsRead: number;
}

/**
 * A counter's count as of `asOfMs`: its checkpoint plus the deltas of the events after it. Clears are events too:
 * the latest clear at or before asOfMs resets the count to 0, and only events strictly after it count (an add at the
 * same millisecond as a clear is cleared by it).
 *
 * The bounds in the rollups row keep the read small: first_write_time gives a new counter's first rollup its
 * exact starting point, last_write_time ends the scan early when nothing newer was written, and last_clear_time
 * says whether there may have been a clear since the checkpoint and where to look for it.
 */
export async function countAsOf(
  store: CounterStore,
  row: RollupRow,
  asOfMs: number,
  nowMs: number,
): Promise<CountResult> {
  let base = row.checkpoint?.count ?? 0;
  let from = row.checkpoint?.timeMs ?? (row.firstWriteMs !== undefined ? row.firstWriteMs - 1 : undefined);
  const empty = (count: number): CountResult => ({ count, asOfMs, eventsRead: 0 });
  if (from === undefined) return empty(0);
  if (asOfMs <= from) return { ...empty(base), asOfMs: from };

  if (row.lastClearMs !== undefined && row.lastClearMs > from) {
    // last_clear_time is written before the clear's event (so no rollup can pass a clear it does not know of), so a
    // clear whose event write then failed (the client got a 503) leaves a time with no event behind: the event log
    // decides. No clear is later than last_clear_time, so the search starts in that time's bucket.
    const clearAt = await store.latestClearIn(row.counter, from, Math.min(asOfMs, row.lastClearMs));
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
  const count = BigInt(base) + window.sum;
  // Refused rather than rounded: a rounded count would be written as a checkpoint and never be exact again.
  if (count > BigInt(Number.MAX_SAFE_INTEGER) || count < BigInt(Number.MIN_SAFE_INTEGER))
    throw new CountOutOfRangeError(row.counter, count);
  return { count: Number(count), asOfMs, eventsRead: window.events };
}
