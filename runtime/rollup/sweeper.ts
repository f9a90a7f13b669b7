import type { RollupCache } from '../cache/rollup-cache';
import type { CounterStore, RollupRow } from '../storage/counter-store';
import { rollupCounter } from './rollup';

export interface SweepSummary {
  namespace: string;
  scanned: number;
  behind: number;
  rolled: number;
  current: number;
  failed: number;
  eventsRead: number;
  durationMs: number;
  errors: string[];
}

/** A counter needs a rollup when something was written or cleared after its checkpoint (or it has none yet). */
export function isBehind(row: RollupRow): boolean {
  const cp = row.checkpoint?.timeMs;
  if (cp === undefined) return row.firstWriteMs !== undefined;
  return (row.lastWriteMs ?? 0) > cp || (row.lastClearMs ?? 0) > cp;
}

const MAX_REPORTED_ERRORS = 10;

/**
 * The sweeper behind the rollup CronJob: pages through the rollups table and rolls up every counter whose last
 * write is newer than its checkpoint. It catches what lost triggers left behind (rarely read counters, restarts).
 */
export async function sweep(
  store: CounterStore,
  cache: RollupCache | undefined,
  opts: { concurrency: number; now?: () => number },
): Promise<SweepSummary> {
  const now = opts.now ?? Date.now;
  const started = Date.now();
  const summary: SweepSummary = {
    namespace: store.config.name,
    scanned: 0,
    behind: 0,
    rolled: 0,
    current: 0,
    failed: 0,
    eventsRead: 0,
    durationMs: 0,
    errors: [],
  };
  const inFlight = new Set<Promise<void>>();
  for await (const row of store.rows()) {
    summary.scanned++;
    if (!isBehind(row)) continue;
    summary.behind++;
    const task = rollupCounter(store, cache, row.counter, now())
      .then((outcome) => {
        if (outcome.result === 'rolled') summary.rolled++;
        else summary.current++;
        summary.eventsRead += outcome.eventsRead;
      })
      .catch((err: Error) => {
        summary.failed++;
        if (summary.errors.length < MAX_REPORTED_ERRORS) summary.errors.push(`${row.counter}: ${err.message}`);
      })
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
    if (inFlight.size >= opts.concurrency) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  summary.durationMs = Date.now() - started;
  return summary;
}
