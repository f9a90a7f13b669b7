import { randomUUID } from 'node:crypto';
import type { Client } from 'cassandra-driver';
import { httpClient } from './http-client';
import { alternate, closedLoop, type LoadResult, type RoundsResult } from './load';
import type { ResultRow, SideResult } from './report';

export interface BatchBenchOptions {
  /** The runtime under test. */
  url: string;
  /** An Eventual namespace it serves. */
  namespace: string;
  /** A keyspace the native side may create its counter table in (the namespace's own will do). */
  keyspace: string;
  /** A cassandra-driver client of the same Cassandra. */
  client: Client;
  /** Processes whose CPU per add is reported; NaN for one the bench cannot see. */
  pids: { runtime: number; cassandra: number; memcached: number };
  /** Request loops on each side (the native side: one UPDATE in flight per loop). */
  concurrency: number;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  /** Items per AddCounts and GetCounts request. Default 50. */
  itemsPerRequest?: number;
  /** Distinct counters written. Default 1000. */
  counters?: number;
  say?: (message: string) => void;
}

/** A result counted in items (adds or counters read) instead of requests; latencies stay those of the requests. */
function inItems(r: LoadResult, items: number): LoadResult {
  return { ...r, requests: r.requests * items, throughput: r.throughput * items };
}

function side(r: RoundsResult, say: (m: string) => void): SideResult {
  if (r.firstError) say(`${r.errors} failed requests; the first: ${r.firstError}`);
  return {
    throughput: r.throughput,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    ...(r.errors ? { errors: r.errors } : {}),
    cpuPerOpUs: r.cpuPerOp,
  };
}

/** Every item answered 200, or the request counts as an error (with the first failed item's answer). */
function checked(body: string): void {
  if (!body.includes('"error"')) return;
  const failed = (JSON.parse(body) as { results: { status: number }[] }).results.find((r) => r.status !== 200);
  throw new Error(`an item failed: ${JSON.stringify(failed)}`);
}

/**
 * AddCounts against native counter UPDATEs, and GetCounts against single GetCounts, in alternating rounds (load.ts
 * `alternate`): adds per second through `POST /v1/counter/AddCounts` (`itemsPerRequest` adds, each with its own
 * token, per request) against `UPDATE ... SET c = c + ?` through cassandra-driver at the same concurrency, target
 * 1.2x; counters read per second through `POST /v1/counter/GetCounts` against `POST /v1/counter/GetCount`, cache
 * hits both, reported. Throughput and CPU per operation are per add or counter read; p50 and p99 per request.
 */
export async function benchBatch(o: BatchBenchOptions): Promise<ResultRow[]> {
  const say = o.say ?? ((m: string) => void process.stderr.write(`[bench] ${m}\n`));
  const items = o.itemsPerRequest ?? 50;
  const counters = o.counters ?? 1000;
  const http = httpClient(o.url, o.concurrency);
  const name = (loop: number, i: number, k: number): string => `b${(loop * 7919 + i * items + k) % counters}`;
  const opts = { concurrency: o.concurrency, seconds: o.seconds, warmupSeconds: o.warmupSeconds };
  try {
    await o.client.execute(
      `CREATE TABLE IF NOT EXISTS ${o.keyspace}.native_counters (name text PRIMARY KEY, c counter)`,
      [],
      { readTimeout: 60000 },
    );
    const update = `UPDATE ${o.keyspace}.native_counters SET c = c + ? WHERE name = ?`;
    say(
      `AddCounts (${items} adds a request, Eventual) vs native counter UPDATEs through cassandra-driver, concurrency ${o.concurrency}, ${o.rounds} x ${o.seconds} s each`,
    );
    const addCounts = (loop: number, i: number): string => {
      const generation_time = new Date().toISOString();
      return JSON.stringify({
        items: Array.from({ length: items }, (_, k) => ({
          namespace: o.namespace,
          counter_name: name(loop, i, k),
          delta: 1,
          idempotency_token: { token: randomUUID(), generation_time },
        })),
      });
    };
    const [batched, native] = await alternate(o.rounds, [
      {
        name: `AddCounts x${items}`,
        watch: { runtime: o.pids.runtime, cassandra: o.pids.cassandra, bench: process.pid },
        run: async () =>
          inItems(
            await closedLoop(opts, async (loop, i) =>
              checked(await http.request('POST', '/v1/counter/AddCounts', addCounts(loop, i))),
            ),
            items,
          ),
      },
      {
        name: 'native counter',
        watch: { cassandra: o.pids.cassandra, bench: process.pid },
        run: () =>
          closedLoop(
            opts,
            async (loop, i) => void (await o.client.execute(update, [1n, name(loop, i, 0)], { prepare: true })),
          ),
      },
    ]);

    // Reads of counters without a checkpoint roll them up inline and fill the cache: both sides then read hits.
    const read = Array.from({ length: 100 }, (_, c) => ({ namespace: o.namespace, counter_name: `b${c}` }));
    checked(await http.request('POST', '/v1/counter/GetCounts', JSON.stringify({ items: read })));
    say(
      `GetCounts (${items} counters a request, Eventual, cache hits) vs GetCount, concurrency ${o.concurrency}, ${o.rounds} x ${o.seconds} s each`,
    );
    const getCounts = (loop: number, i: number): string =>
      JSON.stringify({ items: Array.from({ length: items }, (_, k) => read[(loop * 31 + i * items + k) % 100]) });
    const [gets, single] = await alternate(o.rounds, [
      {
        name: `GetCounts x${items}`,
        watch: { runtime: o.pids.runtime, memcached: o.pids.memcached, bench: process.pid },
        run: async () =>
          inItems(
            await closedLoop(opts, async (loop, i) =>
              checked(await http.request('POST', '/v1/counter/GetCounts', getCounts(loop, i))),
            ),
            items,
          ),
      },
      {
        name: 'GetCount',
        watch: { runtime: o.pids.runtime, memcached: o.pids.memcached, bench: process.pid },
        run: () =>
          closedLoop(
            opts,
            async (loop, i) =>
              void (await http.request('POST', '/v1/counter/GetCount', JSON.stringify(read[(loop * 31 + i) % 100]))),
          ),
      },
    ]);
    return [
      {
        workload: 'addcounts',
        tally: side(batched!, say),
        baseline: side(native!, say),
        target: { ratio: 1.2 },
        note: `${items} adds a request; throughput and CPU/op per add, p50/p99 per request`,
      },
      {
        workload: 'getcounts',
        tally: side(gets!, say),
        baseline: side(single!, say),
        note: `${items} counters a request; throughput and CPU/op per counter read, p50/p99 per request`,
      },
    ];
  } finally {
    http.close();
  }
}
