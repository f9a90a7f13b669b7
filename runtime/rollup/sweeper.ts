import type { RollupCache } from '../cache/rollup-cache';
import { Semaphore } from '../../lib/concurrency';
import { messageOf } from '../../lib/errors';
import { isUnavailable } from '../../store/client';
import type { CounterStore } from '../storage/counter-store';
import type { ClockTrust } from '../clock/clock-guard';
import { clockOffsetBoundMs, isBehind, rollupCounter } from './rollup';

export interface SweepSummary {
  namespace: string;
  scanned: number;
  behind: number;
  rolled: number;
  current: number;
  failed: number;
  /** Rollups tried again after Cassandra timed out or was unavailable (each counted once per retry). */
  retried: number;
  eventsRead: number;
  durationMs: number;
  errors: string[];
}

const MAX_REPORTED_ERRORS = 10;
/**
 * A rollup that timed out is tried again, twice, after 250 and 500 ms: a busy Cassandra times out a few of thousands
 * of rollups, and without a retry each waits for the next scheduled run. Safe: a rollup is idempotent (it recomputes
 * the checkpoint from the events up to the horizon).
 */
const RETRY_DELAYS_MS = [250, 500];

async function withRetries<T>(attempt: () => Promise<T>, onRetry: () => void): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      const delay = RETRY_DELAYS_MS[i];
      if (delay === undefined || !isUnavailable(err)) throw err;
      onRetry();
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * The sweeper behind the rollup CronJob: pages through the rollups table and rolls up every counter whose last
 * write is newer than its checkpoint. It catches what lost triggers left behind (rarely read counters, restarts).
 */
export async function sweep(
  store: CounterStore,
  cache: RollupCache | undefined,
  opts: { concurrency: number; clock: ClockTrust; requestTimeoutMs: number; now?: () => number },
): Promise<SweepSummary> {
  const now = opts.now ?? Date.now;
  // A sweeper whose clock is off would checkpoint past events other processes still accept (see clock-guard.ts).
  const bound = clockOffsetBoundMs(store.config, opts.requestTimeoutMs);
  const trusted = (): void => opts.clock.assertWithin(bound, store.config.name, 'writing checkpoints');
  trusted();
  const started = Date.now();
  const summary: SweepSummary = {
    namespace: store.config.name,
    scanned: 0,
    behind: 0,
    rolled: 0,
    current: 0,
    failed: 0,
    retried: 0,
    eventsRead: 0,
    durationMs: 0,
    errors: [],
  };
  // A slot is taken before the next row is read, so the scan runs no further ahead than the rollups.
  const slots = new Semaphore(opts.concurrency);
  for await (const row of store.rows()) {
    summary.scanned++;
    if (!isBehind(row)) continue;
    summary.behind++;
    await slots.acquire();
    void withRetries(
      () => {
        trusted();
        return rollupCounter(store, cache, row.counter, now());
      },
      () => summary.retried++,
    )
      .then((outcome) => {
        if (outcome.result === 'rolled') summary.rolled++;
        else summary.current++;
        summary.eventsRead += outcome.eventsRead;
      })
      .catch((err: unknown) => {
        summary.failed++;
        if (summary.errors.length < MAX_REPORTED_ERRORS) summary.errors.push(`${row.counter}: ${messageOf(err)}`);
      })
      .finally(() => slots.release());
  }
  await slots.idle();
  summary.durationMs = Date.now() - started;
  return summary;
}
