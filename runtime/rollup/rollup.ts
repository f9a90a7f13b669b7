import type { NamespaceConfig } from '../../api/namespace-config';
import type { RollupCache } from '../cache/rollup-cache';
import { messageOf } from '../../lib/errors';
import type { Checkpoint, CounterStore, RollupRow } from '../storage/counter-store';
import { countAsOf } from './count';

export interface RollupOutcome {
  counter: string;
  /** rolled: a new checkpoint was written; current: the checkpoint already covers every immutable event. */
  result: 'rolled' | 'current' | 'unknown-counter';
  checkpoint?: Checkpoint;
  /** How far the previous checkpoint lagged behind the new one. */
  lagMs?: number;
  eventsRead: number;
  cacheError?: string;
}

/** Milliseconds after an event's time until its window is immutable and a rollup will include it. */
export function settleDelayMs(config: NamespaceConfig): number {
  return config.eventStorage.acceptLimitSeconds * 1000 + config.rollup.settleMarginMs;
}

/**
 * How far a process's clock may be from Cassandra's while it accepts events or writes checkpoints for the namespace.
 * The settle margin covers an insert in flight (at most the Cassandra request timeout) plus the clock difference
 * between the process that accepted an event and the one rolling past it; each may be off by this much, in
 * opposite directions. No margin beyond the timeout leaves no room at all.
 */
export function clockOffsetBoundMs(config: NamespaceConfig, requestTimeoutMs: number): number {
  return Math.max(0, (config.rollup.settleMarginMs - requestTimeoutMs) / 2);
}

/** The newest instant whose events can no longer change: now - accept limit - settle margin. */
export function immutableBefore(store: CounterStore, nowMs: number): number {
  return nowMs - settleDelayMs(store.config);
}

/** A counter needs a rollup when something was written or cleared after its checkpoint (or it has none yet). */
export function isBehind(row: RollupRow): boolean {
  const cp = row.checkpoint?.timeMs;
  if (cp === undefined) return row.firstWriteMs !== undefined;
  return (row.lastWriteMs ?? 0) > cp || (row.lastClearMs ?? 0) > cp;
}

/**
 * Rolls one counter up to the immutable horizon and stores the checkpoint in Cassandra, then in the cache.
 * Any number of processes may do this at once for the same counter: each aggregates only immutable windows, so
 * each computes the exact count for its horizon, and the checkpoint's write timestamp (its rollup time) lets the
 * newest win.
 */
export async function rollupCounter(
  store: CounterStore,
  cache: RollupCache | undefined,
  counter: string,
  nowMs: number,
): Promise<RollupOutcome> {
  const horizon = immutableBefore(store, nowMs);
  const row = await store.readRow(counter);
  const cp = row.checkpoint;
  if (!cp && row.firstWriteMs === undefined) return { counter, result: 'unknown-counter', eventsRead: 0 };
  // Nothing newer than the checkpoint was written: it is still exact, so no table write (idle counters cost a read).
  if (cp && (cp.timeMs >= horizon || !isBehind(row))) {
    // Still written to the cache: it may hold an older checkpoint (a failed cache write, or a reader's fill racing a
    // rollup), which would otherwise be served until its TTL. put() never replaces a newer one.
    return withCache(cache, { counter, result: 'current', checkpoint: cp, eventsRead: 0 });
  }
  const counted = await countAsOf(store, row, horizon, nowMs);
  const checkpoint: Checkpoint = { count: counted.count, timeMs: horizon };
  await store.writeCheckpoint(counter, checkpoint);
  const outcome: RollupOutcome = {
    counter,
    result: 'rolled',
    checkpoint,
    eventsRead: counted.eventsRead,
    ...(cp ? { lagMs: horizon - cp.timeMs } : {}),
  };
  return withCache(cache, outcome);
}

/** Writes the outcome's checkpoint to the cache. The table holds the truth: a failed cache write is only reported. */
async function withCache(cache: RollupCache | undefined, outcome: RollupOutcome): Promise<RollupOutcome> {
  if (cache && outcome.checkpoint) {
    try {
      await cache.put(outcome.counter, outcome.checkpoint);
    } catch (err) {
      outcome.cacheError = messageOf(err);
    }
  }
  return outcome;
}
