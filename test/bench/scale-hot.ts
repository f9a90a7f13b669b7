import { randomUUID } from 'node:crypto';
import type { Client } from 'cassandra-driver';
import { timeBucket } from '../../runtime/storage/buckets';
import { CounterStore } from '../../runtime/storage/counter-store';
import { qualified } from '../../store/cql';
import { messageOf } from '../../lib/errors';
import { httpClient } from './http-client';
import { closedLoop } from './load';
import { scaleNamespace } from './scale-counters';
import { progress, sampleRss, startServe, getText, waitAllReady } from './scale-process';
import { countAfter, histogramBuckets, quantile, quantileBetween, windowQuantiles, type Buckets } from './scale-stats';

export interface HotResult {
  seconds: number;
  concurrency: number;
  adds: number;
  addsPerSecond: number;
  addP99Ms: number;
  errors: number;
  /** Adds acknowledged per second, per second of the run: [s, adds/s]. */
  rate: [number, number][];
  /** p99 of tally_rollup_lag_seconds observed in each window (upper bucket bound, s): [s, lag]. */
  rollupLagP99: [number, number][];
  /** How far the checkpoint trailed the wall clock, sampled every second: p99 per window, [s, seconds]. */
  checkpointAgeP99: [number, number][];
  /** Accurate GetCount latency, p50 and p99 per window: [s, ms]. */
  getP50: [number, number][];
  getP99: [number, number][];
  /** Each GetCount's latency against the events after the checkpoint it read past: [events, ms]. */
  getVsUnrolled: [number, number][];
  maxUnrolled: number;
  getCount: { reads: number; p50Ms: number; p99Ms: number; maxMs: number };
  partitions: {
    secondsPerBucket: number;
    bucketsPerCounter: number;
    /** Each event partition the run wrote: rows, keyed by time bucket and event bucket. */
    rows: { timeBucket: number; eventBucket: number; rows: number }[];
    /** The rows one partition gets when a whole time bucket is written at the measured rate. */
    fullBucketRows: number;
  };
  runtimePeakRssMiB: number;
  windowSeconds: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One Accurate counter at the highest rate the closed loop reaches for `seconds`: while it runs, an Accurate
 * GetCount every 100 ms, the checkpoint read from the rollups table every second, the runtime's rollup lag
 * histogram every window; after it, the rows of every event partition the counter filled.
 */
export async function benchHot(
  env: NodeJS.ProcessEnv,
  client: Client,
  opts: { concurrency: number; seconds: number; run: string; windowSeconds: number },
): Promise<HotResult> {
  const ns = await scaleNamespace(client, `scale-h${opts.run}`, { counterType: 'Accurate' });
  const namespace = ns.config.name;
  const counter = 'hot';
  const store = new CounterStore(client, ns.config);
  const served = await startServe(env, ns.dir);
  const rss = sampleRss(served.pid);
  const writers = httpClient(served.url, opts.concurrency);
  const reader = httpClient(served.url, 1);
  const windowMs = opts.windowSeconds * 1000;
  try {
    await waitAllReady(served, 1);
    progress('hot', 'start', { seconds: opts.seconds, concurrency: opts.concurrency });
    const t0 = Date.now();
    /** Event times (absolute ms) of the acknowledged adds, and when each was acknowledged (ms since t0). */
    const eventTimes: number[] = [];
    const ackAt: number[] = [];
    const gets: { at: number; ms: number; readPastMs: number }[] = [];
    const checkpoints: { at: number; timeMs: number }[] = [];
    const lagWindows: [number, number][] = [];
    let running = true;

    const readLoop = (async () => {
      while (running) {
        const at = Date.now();
        try {
          await reader.request('POST', '/v1/counter/GetCount', JSON.stringify({ namespace, counter_name: counter }));
          // The checkpoint this read added events to is the newest one sampled before it.
          const cp = checkpoints.at(-1)?.timeMs ?? t0;
          gets.push({ at: at - t0, ms: Date.now() - at, readPastMs: cp });
        } catch (err) {
          progress('hot', 'GetCount failed', { error: messageOf(err) });
        }
        await sleep(100);
      }
    })();
    const checkpointLoop = (async () => {
      while (running) {
        try {
          const row = await store.readRow(counter);
          if (row.checkpoint) checkpoints.push({ at: Date.now() - t0, timeMs: row.checkpoint.timeMs });
        } catch (err) {
          progress('hot', 'reading the checkpoint failed', { error: messageOf(err) });
        }
        await sleep(1000);
      }
    })();
    const metricsLoop = (async () => {
      let before: Buckets = new Map();
      let w = 0;
      while (running) {
        try {
          const text = (await getText(`${served.url}/metrics`)).body;
          const now = histogramBuckets(text, 'tally_rollup_lag_seconds', { namespace });
          if (w > 0) {
            const q = quantileBetween(before, now, 0.99);
            if (q.count > 0) lagWindows.push([(Date.now() - t0) / 1000, q.value]);
            progress('hot', 'window', {
              s: Math.round((Date.now() - t0) / 1000),
              adds: eventTimes.length,
              rollups: q.count,
              rollup_lag_p99_s: q.value,
              checkpoint_age_s: checkpoints.length ? (Date.now() - checkpoints.at(-1)!.timeMs) / 1000 : null,
              get_p99_ms: quantile(
                gets.filter((g) => g.at >= Date.now() - t0 - windowMs).map((g) => g.ms),
                0.99,
              ),
            });
          }
          before = now;
          w++;
        } catch (err) {
          progress('hot', 'scraping /metrics failed', { error: messageOf(err) });
        }
        await sleep(windowMs);
      }
    })();

    const load = await closedLoop(
      { concurrency: opts.concurrency, seconds: opts.seconds, warmupSeconds: 0 },
      async () => {
        const generated = Date.now();
        await writers.request(
          'POST',
          '/v1/counter/AddCount',
          JSON.stringify({
            namespace,
            counter_name: counter,
            delta: 1,
            idempotency_token: { token: randomUUID(), generation_time: new Date(generated).toISOString() },
          }),
        );
        eventTimes.push(generated);
        ackAt.push(Date.now() - t0);
      },
    );
    running = false;
    await Promise.all([readLoop, checkpointLoop, metricsLoop]);
    const endMs = Date.now();
    progress('hot', 'load done', { adds: eventTimes.length, per_second: Math.round(load.throughput) });

    // Acknowledged adds per second of the run.
    const perSecond = new Map<number, number>();
    for (const a of ackAt) perSecond.set(Math.floor(a / 1000), (perSecond.get(Math.floor(a / 1000)) ?? 0) + 1);
    const rate = [...perSecond.entries()]
      .filter(([s]) => s < Math.floor(opts.seconds))
      .sort(([a], [b]) => a - b)
      .map(([s, n]) => [s + 1, n] as [number, number]);

    const sortedEvents = [...eventTimes].sort((a, b) => a - b);
    const vsUnrolled = gets.map((g) => {
      // Events acknowledged before the read started whose time is past the checkpoint it read from.
      const acked = countAfter(sortedEvents, g.readPastMs) - countAfter(sortedEvents, t0 + g.at);
      return [acked, g.ms] as [number, number];
    });
    const ages = checkpoints.map((c) => [c.at, (t0 + c.at - c.timeMs) / 1000] as const);

    // Every event partition of the run, counted.
    const { secondsPerBucket, bucketsPerCounter } = ns.config.eventStorage;
    const table = qualified(ns.config.cassandra.keyspace, ns.config.cassandra.eventsTable);
    const rows: HotResult['partitions']['rows'] = [];
    for (let tb = timeBucket(t0, secondsPerBucket); tb <= timeBucket(endMs, secondsPerBucket); tb++) {
      for (let eb = 0; eb < bucketsPerCounter; eb++) {
        const rs = await client.execute(
          `SELECT count(*) AS n FROM ${table} WHERE counter_name = ? AND time_bucket = ? AND event_bucket = ?`,
          [counter, BigInt(tb), eb],
          { prepare: true, readTimeout: 60_000 },
        );
        const n = Number(String(rs.first()?.get('n') ?? 0));
        if (n > 0) rows.push({ timeBucket: tb, eventBucket: eb, rows: n });
      }
    }
    const total = rows.reduce((s, r) => s + r.rows, 0);
    if (total < eventTimes.length)
      throw new Error(`the event partitions hold ${total} rows, fewer than the ${eventTimes.length} adds acknowledged`);
    const latencies = gets.map((g) => g.ms);
    return {
      seconds: load.seconds,
      concurrency: opts.concurrency,
      adds: eventTimes.length,
      addsPerSecond: load.throughput,
      addP99Ms: load.p99Ms,
      errors: load.errors,
      rate,
      rollupLagP99: lagWindows,
      checkpointAgeP99: windowQuantiles(ages, windowMs, 0.99),
      getP50: windowQuantiles(
        gets.map((g) => [g.at, g.ms] as const),
        windowMs,
        0.5,
      ),
      getP99: windowQuantiles(
        gets.map((g) => [g.at, g.ms] as const),
        windowMs,
        0.99,
      ),
      getVsUnrolled: vsUnrolled,
      maxUnrolled: Math.max(0, ...vsUnrolled.map(([e]) => e)),
      getCount: {
        reads: latencies.length,
        p50Ms: quantile(latencies, 0.5),
        p99Ms: quantile(latencies, 0.99),
        maxMs: Math.max(...latencies),
      },
      partitions: {
        secondsPerBucket,
        bucketsPerCounter,
        rows,
        fullBucketRows: Math.round((load.throughput * secondsPerBucket) / bucketsPerCounter),
      },
      runtimePeakRssMiB: rss.peak(),
      windowSeconds: opts.windowSeconds,
    };
  } finally {
    writers.close();
    reader.close();
    rss.stop();
    await served.stop();
    await ns.cleanup();
  }
}
