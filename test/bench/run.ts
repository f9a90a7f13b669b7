import { setOperatorReplicas } from '../stack/components/cluster';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from 'cassandra-driver';
import { resolveCounterNamespace } from '../../api/resolve';
import type { NamespaceConfig } from '../../api/namespace-config';
import { countAsOf } from '../../runtime/rollup/count';
import { immutableBefore, rollupCounter } from '../../runtime/rollup/rollup';
import { timeBucketsBetween } from '../../runtime/storage/buckets';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../store/client';
import { CounterStore } from '../../runtime/storage/counter-store';
import { EventWriter } from '../../runtime/counter/event-writer';
import { dropKeyspace, ensureSchema } from '../../store/ensure';
import { repoRoot } from '../stack/paths';
import { readRecord } from '../stack/processes';
import { up } from '../stack/stack';
import { splitCpus } from './cpu-split';
import { benchOperator, type OperatorBench } from './operator';
import { benchAuth } from './auth';
import { benchBatch } from './batch';
import { httpClient } from './http-client';
import { alternate, closedLoop, openLoop, rssMiB, WARMUP_ROUNDS, type LoadResult, type RoundsResult } from './load';
import { startRedis } from './redis';
import {
  thisMachine,
  writeReport,
  type ConcurrencySweep,
  type LatencyDistribution,
  type ResultRow,
  type SideResult,
  type SweepSide,
} from './report';

/**
 * `npm run bench`: each workload beside its baseline, in one run, on this machine, with ratios, written to
 * docs/benchmarks.md (report.ts; each run replaces it) and printed. A missed target is reported, not hidden.
 * Settings: BENCH_SECONDS (per round, default 5), BENCH_NAMESPACES (default 50), BENCH_ROUNDS (alternating rounds per
 * side, default 3), BENCH_WARMUP_ROUNDS (default 3), BENCH_CONCURRENCY (default 32), BENCH_ROLLUP_EVENTS (default
 * 60000); for the concurrency sweeps BENCH_SWEEP_CONCURRENCY (default 1,4,16,32,64), BENCH_SWEEP_SECONDS (per round,
 * default 2) and BENCH_SWEEP_ROUNDS (default 2); BENCH_DOCS_DIR (default docs) for where the report and its plots go.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP = 1;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const ROLLUP_EVENTS = Number(process.env.BENCH_ROLLUP_EVENTS ?? 60000);
const NAMESPACES = Number(process.env.BENCH_NAMESPACES ?? 50);
const COUNTERS = 1000;
const SWEEP_CONCURRENCY = (process.env.BENCH_SWEEP_CONCURRENCY ?? '1,4,16,32,64').split(',').map(Number);
const SWEEP_SECONDS = Number(process.env.BENCH_SWEEP_SECONDS ?? 2);
const SWEEP_ROUNDS = Number(process.env.BENCH_SWEEP_ROUNDS ?? 2);
/** Where benchmarks.md and plots/ are written: BENCH_DOCS_DIR, e.g. a scratch folder for a partial run. */
const DOCS = path.resolve(process.env.BENCH_DOCS_DIR ?? path.join(repoRoot(), 'docs'));
/**
 * BENCH_ONLY=addcount,open,besteffort,addcounts,getcount,sweep,auth,rollup,operator runs a subset (default: all; open
 * needs addcount).
 */
/** Extra node flags for the runtime under test, e.g. BENCH_RUNTIME_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const RUNTIME_NODE_ARGS = (process.env.BENCH_RUNTIME_NODE_ARGS ?? '').split(' ').filter(Boolean);
const ONLY = new Set(
  (process.env.BENCH_ONLY ?? 'addcount,open,besteffort,addcounts,getcount,sweep,auth,rollup,operator')
    .split(',')
    .map((s) => s.trim()),
);

const say = (m: string): void => void process.stderr.write(`[bench] ${m}\n`);

/** One side's figures for the report. */
function side(r: LoadResult | RoundsResult): SideResult {
  const rounds = r as Partial<RoundsResult>;
  return {
    throughput: r.throughput,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    p999Ms: r.p999Ms,
    ...(r.errors ? { errors: r.errors } : {}),
    ...(rounds.cpuPerOp ? { cpuPerOpUs: rounds.cpuPerOp } : {}),
  };
}

function startChild(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start:\n${out}`)), 60_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.stdout.resume();
        child.stderr.resume();
        resolve({ child, match: m });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}:\n${out}`)));
  });
}

/** The pid of a process the stack started (NaN when the service is an existing one: its CPU is then not shown). */
function stackPid(name: string): number {
  return readRecord(name)?.pid ?? NaN;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** A bench side served by a process of its own: its URL and pid. */
interface Server {
  url: string;
  pid: number;
}

async function benchAddCount(
  url: string,
  servers: { floor: Server; peer: Server },
  client: Client,
  keyspace: string,
  namespace: string,
  pids: Record<string, number>,
  placement: string,
): Promise<{ rows: ResultRow[]; nativeThroughput: number; latencies: LatencyDistribution }> {
  say(
    `AddCount (Eventual) through HTTP vs a Cassandra counter column UPDATE through cassandra-driver, the HTTP + INSERT floor and the HTTP + counter UPDATE peer, ${placement}, concurrency ${CONCURRENCY}, ${ROUNDS} x ${SECONDS} s each`,
  );
  const http = httpClient(url, CONCURRENCY);
  const floorHttp = httpClient(servers.floor.url, CONCURRENCY);
  const peerHttp = httpClient(servers.peer.url, CONCURRENCY);
  const opts = { concurrency: CONCURRENCY, seconds: SECONDS, warmupSeconds: WARMUP };
  const [workload, floorResult, peerResult, baseline] = await alternate(ROUNDS, [
    {
      name: 'AddCount',
      watch: { runtime: pids.runtime!, cassandra: pids.cassandra!, bench: process.pid },
      run: () =>
        closedLoop(
          opts,
          async (loop, i) => void (await http.request('POST', '/v1/counter/AddCount', addBody(namespace, loop, i))),
        ),
    },
    {
      name: 'HTTP + INSERT floor',
      watch: { server: servers.floor.pid, cassandra: pids.cassandra!, bench: process.pid },
      run: () =>
        closedLoop(opts, async (loop, i) => void (await floorHttp.request('POST', '/', addBody(namespace, loop, i)))),
    },
    {
      name: 'HTTP + counter UPDATE peer',
      watch: { server: servers.peer.pid, cassandra: pids.cassandra!, bench: process.pid },
      run: () =>
        closedLoop(opts, async (loop, i) => void (await peerHttp.request('POST', '/', addBody(namespace, loop, i)))),
    },
    {
      name: 'native counter',
      watch: { cassandra: pids.cassandra!, bench: process.pid },
      run: () => closedLoop(opts, async (loop, i) => void (await nativeUpdate(client, keyspace, counterOf(loop, i)))),
    },
  ]);
  http.close();
  floorHttp.close();
  peerHttp.close();
  const tally = side(workload!);
  return {
    rows: [
      { workload: 'addcount', placement, tally, baseline: side(baseline!), target: { ratio: 1.0 } },
      { workload: 'addcount-floor', placement, tally, baseline: side(floorResult!), target: { ratio: 0.95 } },
      { workload: 'addcount-peer', placement, tally, baseline: side(peerResult!), target: { ratio: 1.1 } },
    ],
    nativeThroughput: baseline!.throughput,
    latencies: {
      id: 'addcount',
      title: 'AddCount (Eventual) and the native counter `UPDATE`, closed loop',
      method: `closed loop at concurrency ${CONCURRENCY}, ${placement}, the median round of each (the table\u2019s first AddCount row)`,
      sides: [
        { name: 'Tally AddCount', samplesMs: workload!.latenciesMs },
        { name: 'native counter UPDATE', samplesMs: baseline!.latenciesMs },
      ],
    },
  };
}

const counterOf = (loop: number, i: number): string => `c${(loop * 7919 + i) % COUNTERS}`;

/** An AddCount body with a fresh idempotency token: what Tally, the floor and the peers are sent. */
function addBody(namespace: string, loop: number, i: number): string {
  return JSON.stringify({
    namespace,
    counter_name: counterOf(loop, i),
    delta: 1,
    idempotency_token: { token: randomUUID(), generation_time: new Date().toISOString() },
  });
}

/** The table of native counters the baseline and the HTTP + counter UPDATE peer update. */
async function ensureNativeCounters(client: Client, keyspace: string): Promise<string> {
  const table = `${keyspace}.native_counters`;
  await client.execute(`CREATE TABLE IF NOT EXISTS ${table} (name text PRIMARY KEY, c counter)`, [], {
    readTimeout: 60000,
  });
  return table;
}

function nativeUpdate(client: Client, keyspace: string, counter: string): Promise<unknown> {
  return client.execute(`UPDATE ${keyspace}.native_counters SET c = c + ? WHERE name = ?`, [1n, counter], {
    prepare: true,
  });
}

/**
 * Latency as users feel it: AddCount and the native counter UPDATE at a fixed offered rate, half of what the native
 * counter reached closed-loop, each latency counted from when the request was due (test/bench/load.ts openLoop).
 */
async function benchOpenLoop(
  url: string,
  client: Client,
  keyspace: string,
  namespace: string,
  nativeThroughput: number,
): Promise<{ row: ResultRow; latencies: LatencyDistribution }> {
  const rate = Math.max(50, Math.round(nativeThroughput / 2));
  say(
    `AddCount and the native counter open-loop at ${rate}/s (half the native counter's maximum), ${SECONDS * 2} s each`,
  );
  const http = httpClient(url, CONCURRENCY * 4);
  const opts = { rate, seconds: SECONDS * 2, warmupSeconds: 2 };
  let n = 0;
  const tally = await openLoop(
    opts,
    async (i) => void (await http.request('POST', '/v1/counter/AddCount', addBody(namespace, n++, i))),
  );
  const native = await openLoop(opts, async (i) => void (await nativeUpdate(client, keyspace, counterOf(0, i))));
  http.close();
  const fmt = (r: LoadResult): string => `${r.p50Ms.toFixed(1)} / ${r.p99Ms.toFixed(1)} / ${r.p999Ms.toFixed(1)} ms`;
  return {
    row: {
      workload: 'addcount-open',
      tally: side(tally),
      baseline: side(native),
      note: `offered ${rate}/s; p50 / p99 / p99.9: Tally ${fmt(tally)}, native counter ${fmt(native)}`,
    },
    latencies: {
      id: 'addcount-open',
      title: 'AddCount (Eventual) and the native counter `UPDATE`, open loop',
      method: `open loop at ${rate}/s offered, each latency counted from when the request was due`,
      sides: [
        { name: 'Tally AddCount', samplesMs: tally.latenciesMs },
        { name: 'native counter UPDATE', samplesMs: native.latenciesMs },
      ],
    },
  };
}

/**
 * BestEffort (Memcached incr behind Tally's API) against the peer a team would write for an in-memory counter: a
 * bare node:http server doing a Redis INCRBY per request (Redis from Debian, on loopback).
 */
async function benchBestEffort(
  url: string,
  peer: Server,
  namespace: string,
  pids: Record<string, number>,
): Promise<ResultRow> {
  say(`BestEffort AddCount vs HTTP + Redis INCR, concurrency ${CONCURRENCY}, ${ROUNDS} x ${SECONDS} s each`);
  const http = httpClient(url, CONCURRENCY);
  const peerHttp = httpClient(peer.url, CONCURRENCY);
  const opts = { concurrency: CONCURRENCY, seconds: SECONDS, warmupSeconds: WARMUP };
  const body = (loop: number, i: number): string =>
    JSON.stringify({ namespace, counter_name: counterOf(loop, i), delta: 1 });
  const [tally, redis] = await alternate(ROUNDS, [
    {
      name: 'BestEffort AddCount',
      watch: { runtime: pids.runtime!, memcached: pids.memcached!, bench: process.pid },
      run: () =>
        closedLoop(opts, async (loop, i) => void (await http.request('POST', '/v1/counter/AddCount', body(loop, i)))),
    },
    {
      name: 'HTTP + Redis INCR',
      watch: { server: peer.pid, redis: pids.redis!, bench: process.pid },
      run: () =>
        closedLoop(opts, async (loop, i) => void (await peerHttp.request('POST', '/', addBody(namespace, loop, i)))),
    },
  ]);
  http.close();
  peerHttp.close();
  return { workload: 'besteffort', tally: side(tally!), baseline: side(redis!), target: { ratio: 0.9 } };
}

/** 100 Eventual counters whose checkpoints are cached, and the bare node:http + memjs baseline reading their keys. */
interface CachedReads {
  baseline: Server;
  /** The GET path of a loop's i-th read: Tally's, and the baseline's of the same counter. */
  tallyPath: (loop: number, i: number) => string;
  basePath: (loop: number, i: number) => string;
  /** The counter of a loop's i-th read. */
  counter: (loop: number, i: number) => string;
  stop: () => Promise<void>;
}

async function cachedReads(url: string, namespace: string, env: NodeJS.ProcessEnv): Promise<CachedReads> {
  say('GetCount: writing and rolling up 100 counters so reads hit the cache');
  const http = httpClient(url, 1);
  for (let c = 0; c < 100; c++)
    await http.request('POST', '/v1/counter/AddCount', JSON.stringify({ namespace, counter_name: `r${c}`, delta: c }));
  // Reads of counters without a checkpoint roll them up inline and fill the cache.
  for (let c = 0; c < 100; c++)
    await http.request('POST', '/v1/counter/GetCount', JSON.stringify({ namespace, counter_name: `r${c}` }));
  http.close();
  const main = path.join(repoRoot(), 'dist', 'test', 'bench', 'baseline-server.js');
  const { child, match } = await startChild([main, '0'], env, /listening (\d+)/);
  const keys = Array.from({ length: 100 }, (_, c) => encodeURIComponent(`tally:${namespace}:rollup:r${c}`));
  const index = (loop: number, i: number): number => (loop * 31 + i) % 100;
  return {
    baseline: { url: `http://127.0.0.1:${match[1]}`, pid: child.pid! },
    counter: (loop, i) => `r${index(loop, i)}`,
    tallyPath: (loop, i) => `/v1/namespaces/${namespace}/counters/r${index(loop, i)}`,
    basePath: (loop, i) => `/${keys[index(loop, i)]}`,
    stop: () => stopChild(child),
  };
}

async function benchGetCount(
  url: string,
  namespace: string,
  pids: Record<string, number>,
  reads: CachedReads,
): Promise<{ rows: ResultRow[]; rss: number; latencies: LatencyDistribution }> {
  const http = httpClient(url, CONCURRENCY);
  const base = httpClient(reads.baseline.url, CONCURRENCY);
  say(
    `GetCount (Eventual, cache hit) through HTTP vs a bare node:http server doing one memjs get, concurrency ${CONCURRENCY}, ${ROUNDS} x ${SECONDS} s each`,
  );
  let rss = 0;
  const sampler = setInterval(() => (rss = Math.max(rss, rssMiB(pids.runtime!))), 250);
  const opts = { concurrency: CONCURRENCY, seconds: SECONDS, warmupSeconds: WARMUP };
  const [get, post, baseline] = await alternate(ROUNDS, [
    {
      // The same request shape as the baseline's: a GET with the key in the path, no body.
      name: 'GetCount (GET)',
      watch: { runtime: pids.runtime!, memcached: pids.memcached!, bench: process.pid },
      run: () => closedLoop(opts, async (loop, i) => void (await http.request('GET', reads.tallyPath(loop, i)))),
    },
    {
      name: 'GetCount (POST)',
      watch: { runtime: pids.runtime!, memcached: pids.memcached!, bench: process.pid },
      run: () =>
        closedLoop(
          opts,
          async (loop, i) =>
            void (await http.request(
              'POST',
              '/v1/counter/GetCount',
              JSON.stringify({ namespace, counter_name: reads.counter(loop, i) }),
            )),
        ),
    },
    {
      name: 'node:http + memjs',
      watch: { server: reads.baseline.pid, memcached: pids.memcached!, bench: process.pid },
      run: () => closedLoop(opts, async (loop, i) => void (await base.request('GET', reads.basePath(loop, i)))),
    },
  ]);
  clearInterval(sampler);
  http.close();
  base.close();
  // Issue 16: with the near cache, at least 1.5x the bare server's throughput and a p99 no higher than its own.
  const target = { ratio: 1.5, p99Ms: 'baseline' as const };
  return {
    rows: [
      { workload: 'getcount-get', tally: side(get!), baseline: side(baseline!), target },
      { workload: 'getcount-post', tally: side(post!), baseline: side(baseline!), target },
    ],
    rss,
    latencies: {
      id: 'getcount',
      title: 'GetCount (Eventual, cache hit, `GET`) and node:http + memjs get',
      method: `closed loop at concurrency ${CONCURRENCY}, the median round of each`,
      sides: [
        { name: 'Tally GetCount (GET)', samplesMs: get!.latenciesMs },
        { name: 'node:http + memjs get', samplesMs: baseline!.latenciesMs },
      ],
    },
  };
}

/** One side of a concurrency sweep: how to send its requests with `concurrency` in flight. */
interface SweepLoad {
  name: string;
  open: (concurrency: number) => { request: (loop: number, i: number) => Promise<void>; close: () => void };
}

/**
 * A workload and its baseline at each of SWEEP_CONCURRENCY: at each, SWEEP_ROUNDS rounds of SWEEP_SECONDS per side,
 * alternating, each after 1 s of the same load unmeasured; the round with the median throughput is kept (of two, the
 * better one). Shorter than the main table's rounds: the shape of the curve is what it is for.
 */
async function sweep(id: string, title: string, tally: SweepLoad, baseline: SweepLoad): Promise<ConcurrencySweep> {
  say(`${title}: concurrency ${SWEEP_CONCURRENCY.join(', ')}, ${SWEEP_ROUNDS} x ${SWEEP_SECONDS} s per side at each`);
  const sides: SweepSide[] = [tally, baseline].map((l) => ({ name: l.name, points: [] }));
  for (const concurrency of SWEEP_CONCURRENCY) {
    const loads = [tally, baseline].map((l) => l.open(concurrency));
    const runs: LoadResult[][] = [[], []];
    for (let r = 0; r < SWEEP_ROUNDS; r++) {
      for (const [k, load] of loads.entries()) {
        const result = await closedLoop({ concurrency, seconds: SWEEP_SECONDS, warmupSeconds: 1 }, load.request);
        runs[k]!.push(result);
        say(
          `  concurrency ${concurrency}, round ${r + 1}/${SWEEP_ROUNDS} ${sides[k]!.name}: ${Math.round(result.throughput)}/s, p99 ${result.p99Ms.toFixed(1)} ms`,
        );
      }
    }
    for (const load of loads) load.close();
    for (const [k, side] of sides.entries()) {
      const sorted = [...runs[k]!].sort((a, b) => a.throughput - b.throughput);
      const median = sorted[Math.floor(sorted.length / 2)]!;
      side.points.push({ concurrency, throughput: median.throughput, p99Ms: median.p99Ms });
    }
  }
  return {
    id,
    title,
    tally: sides[0]!,
    baseline: sides[1]!,
    method:
      `All processes share every CPU. At each concurrency ${SWEEP_ROUNDS} rounds of ${SWEEP_SECONDS} s per side, ` +
      'alternating, each after 1 s of the same load unmeasured; the round with the median throughput is shown' +
      (SWEEP_ROUNDS === 2 ? ' (of two, the better)' : ''),
  };
}

/** A sweep side that sends its requests through the bench's HTTP client, one connection per request in flight. */
function httpLoad(
  name: string,
  url: string,
  send: (http: ReturnType<typeof httpClient>, loop: number, i: number) => Promise<unknown>,
): SweepLoad {
  return {
    name,
    open: (concurrency) => {
      const http = httpClient(url, concurrency);
      return { request: async (loop, i) => void (await send(http, loop, i)), close: () => http.close() };
    },
  };
}

/** Throughput against concurrency: AddCount vs the native counter UPDATE, cached GetCount vs node:http + memjs. */
async function benchSweeps(
  url: string,
  client: Client,
  keyspace: string,
  namespace: string,
  reads: CachedReads,
): Promise<ConcurrencySweep[]> {
  await ensureNativeCounters(client, keyspace);
  const native: SweepLoad = {
    name: 'native counter UPDATE',
    open: () => ({
      request: async (loop, i) => void (await nativeUpdate(client, keyspace, counterOf(loop, i))),
      close: () => undefined,
    }),
  };
  return [
    await sweep(
      'addcount',
      'AddCount (Eventual) and the native counter `UPDATE`',
      httpLoad('Tally AddCount', url, (http, loop, i) =>
        http.request('POST', '/v1/counter/AddCount', addBody(namespace, loop, i)),
      ),
      native,
    ),
    await sweep(
      'getcount',
      'GetCount (Eventual, cache hit, `GET`) and node:http + memjs get',
      httpLoad('Tally GetCount (GET)', url, (http, loop, i) => http.request('GET', reads.tallyPath(loop, i))),
      httpLoad('node:http + memjs get', reads.baseline.url, (http, loop, i) =>
        http.request('GET', reads.basePath(loop, i)),
      ),
    ),
  ];
}

async function benchRollup(client: Client, config: NamespaceConfig): Promise<ResultRow> {
  const store = new CounterStore(client, config);
  const writer = new EventWriter(store);
  const counter = `rollup-${randomUUID()}`;
  say(`rollup: writing ${ROLLUP_EVENTS.toLocaleString('en-US')} events of one counter over the last 50 s`);
  const now = Date.now();
  let written = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < ROLLUP_EVENTS) {
        const i = next++;
        await writer.append({
          counter,
          eventTimeMs: now - 50_000 + Math.floor((i * 50_000) / ROLLUP_EVENTS),
          eventId: `e${i}`,
          kind: 'add',
          delta: (i % 7) - 3,
        });
        if (++written % 20000 === 0) say(`  ${written.toLocaleString('en-US')} events written`);
      }
    }),
  );
  const row = await store.readRow(counter);
  const asOf = immutableBefore(store, Date.now() + 60_000);
  const runs = 5;

  say(`rollup: aggregating them ${runs} times (the rollup's count), then scanning them ${runs} times (baseline)`);
  let events = 0;
  let counted = 0;
  let t0 = process.hrtime.bigint();
  for (let r = 0; r < runs; r++) {
    const result = await countAsOf(store, row, asOf, Date.now());
    events += result.eventsRead;
    counted = result.count;
  }
  const workloadSeconds = Number(process.hrtime.bigint() - t0) / 1e9;

  // The baseline reads every event row of the same partitions and sums the deltas in the client.
  const { secondsPerBucket, bucketsPerCounter } = config.eventStorage;
  const scan = `SELECT delta FROM ${config.cassandra.keyspace}.${config.cassandra.eventsTable} WHERE counter_name = ? AND time_bucket = ? AND event_bucket = ? AND event_time > ? AND event_time <= ?`;
  let scanned = 0;
  let sum = 0;
  t0 = process.hrtime.bigint();
  for (let r = 0; r < runs; r++) {
    sum = 0;
    const parts = timeBucketsBetween(row.firstWriteMs! - 1, asOf, secondsPerBucket).flatMap((tb) =>
      Array.from({ length: bucketsPerCounter }, (_, eb) => [BigInt(tb), eb] as const),
    );
    await Promise.all(
      parts.map(async ([tb, eb]) => {
        let pageState: string | undefined;
        do {
          const rs = await client.execute(scan, [counter, tb, eb, new Date(row.firstWriteMs! - 1), new Date(asOf)], {
            prepare: true,
            fetchSize: 5000,
            ...(pageState ? { pageState } : {}),
          });
          for (const r of rs.rows) sum += Number(r.get('delta') as bigint);
          scanned += rs.rows.length;
          pageState = rs.pageState ?? undefined;
        } while (pageState);
      }),
    );
  }
  const baselineSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (sum !== counted) throw new Error(`rollup counted ${counted} but the raw scan summed ${sum}`);
  const outcome = await rollupCounter(store, undefined, counter, Date.now() + 60_000);
  if (outcome.checkpoint?.count !== sum)
    throw new Error(`the stored checkpoint ${outcome.checkpoint?.count} differs from ${sum}`);
  return {
    workload: 'rollup',
    tally: { throughput: events / workloadSeconds },
    baseline: { throughput: scanned / baselineSeconds },
    target: { ratio: 0.8 },
    note: `${ROLLUP_EVENTS.toLocaleString('en-US')} events, count ${counted} checked against the scan`,
  };
}

/**
 * AddCount and GetCount through a second runtime that authenticates its callers with the stack's API server, beside
 * the first (no authentication). It serves the same namespace from a CounterNamespace document placed in a
 * Kubernetes namespace, and the bench calls it with the stack's TALLY_TOKEN (bound to the counter admin role).
 */
async function authRows(
  env: NodeJS.ProcessEnv,
  stackEnv: Record<string, string>,
  namespace: string,
  off: { url: string; pid: number },
  pids: Record<string, number>,
): Promise<ResultRow[]> {
  if (!stackEnv.TALLY_TOKEN || !stackEnv.KUBECONFIG) {
    say('authentication on vs off: not run (the stack has no cluster runtime, so no TALLY_TOKEN)');
    return [];
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-bench-auth-'));
  fs.writeFileSync(
    path.join(dir, 'ns.json'),
    JSON.stringify({
      apiVersion: 'tally.dev/v1alpha1',
      kind: 'CounterNamespace',
      metadata: { name: namespace, namespace: 'bench' },
      spec: { counterType: 'Eventual' },
    }),
  );
  const main = path.join(repoRoot(), 'dist', 'cli', 'main.js');
  const { child, match } = await startChild(
    [
      ...RUNTIME_NODE_ARGS,
      main,
      'serve',
      '--namespaces',
      dir,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--auth',
      'kubernetes',
    ],
    { ...env, LOG_LEVEL: 'info' },
    /"port":(\d+)[^\n]*tally runtime listening/,
  );
  try {
    return await benchAuth(
      {
        on: { url: `http://127.0.0.1:${match[1]}`, pid: child.pid! },
        off,
        namespace,
        token: stackEnv.TALLY_TOKEN,
        pids: { cassandra: pids.cassandra!, apiserver: stackPid('kube-apiserver') },
        concurrency: CONCURRENCY,
        seconds: SECONDS,
        rounds: ROUNDS,
        warmupSeconds: WARMUP,
      },
      say,
    );
  } finally {
    await stopChild(child);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  say('bringing the local stack up (or using the one that is up)');
  const stack = await up();
  const env: NodeJS.ProcessEnv = { ...process.env, ...stack.env, LOG_LEVEL: 'warn' };
  // The in-cluster operator watches every namespace: it would reconcile the operator bench's CounterNamespaces too.
  await setOperatorReplicas(stack.env, 0);
  const namespace = `bench-${randomUUID().slice(0, 8)}`;
  const config = resolveCounterNamespace({
    apiVersion: 'tally.dev/v1alpha1',
    kind: 'CounterNamespace',
    metadata: { name: namespace },
    spec: { counterType: 'Eventual' },
  });
  const client = createCassandraClient(cassandraSettingsFromEnv(env));
  await client.connect();
  await ensureSchema(client, config);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-bench-'));
  fs.writeFileSync(path.join(dir, 'ns.json'), JSON.stringify(config));
  const bestEffort = `${namespace}-be`;
  fs.writeFileSync(
    path.join(dir, 'be.json'),
    JSON.stringify(
      resolveCounterNamespace({
        apiVersion: 'tally.dev/v1alpha1',
        kind: 'CounterNamespace',
        metadata: { name: bestEffort },
        spec: { counterType: 'BestEffort' },
      }),
    ),
  );
  const main = path.join(repoRoot(), 'dist', 'cli', 'main.js');
  const { child, match } = await startChild(
    [...RUNTIME_NODE_ARGS, main, 'serve', '--namespaces', dir, '--port', '0', '--host', '127.0.0.1'],
    { ...env, LOG_LEVEL: 'info' },
    /"port":(\d+)[^\n]*tally runtime listening/,
  );
  const url = `http://127.0.0.1:${match[1]}`;
  const rows: ResultRow[] = [];
  const sweeps: ConcurrencySweep[] = [];
  const latencies: LatencyDistribution[] = [];
  const cassandraVersion = String(
    (await client.execute('SELECT release_version FROM system.local')).first()?.get('release_version') ?? '',
  );
  let rss = 0;
  let operatorResult: OperatorBench | undefined;
  try {
    await new Promise((r) => setTimeout(r, 500));
    const pids = { runtime: child.pid!, cassandra: stackPid('cassandra'), memcached: stackPid('memcached') };
    if (ONLY.has('addcount')) {
      const peerMain = path.join(repoRoot(), 'dist', 'test', 'bench', 'peer-server.js');
      const table = await ensureNativeCounters(client, config.cassandra.keyspace);
      const floor = await startChild([peerMain, 'insert', namespace], env, /listening (\d+)/);
      const peer = await startChild([peerMain, 'counter', table], env, /listening (\d+)/);
      try {
        const servers = {
          floor: { url: `http://127.0.0.1:${floor.match[1]}`, pid: floor.child.pid! },
          peer: { url: `http://127.0.0.1:${peer.match[1]}`, pid: peer.child.pid! },
        };
        const add = (placement: string) =>
          benchAddCount(url, servers, client, config.cassandra.keyspace, namespace, pids, placement);
        const shared = await add('all processes share every CPU');
        rows.push(...shared.rows);
        latencies.push(shared.latencies);
        if (ONLY.has('open')) {
          const open = await benchOpenLoop(url, client, config.cassandra.keyspace, namespace, shared.nativeThroughput);
          rows.push(open.row);
          latencies.push(open.latencies);
        }
        // As deployed, Cassandra does not share its CPUs with the servers in front of it or the clients: the same
        // workloads with Cassandra on CPUs of its own, the runtime, the floor, the peer and the load generator on the
        // others.
        const split = splitCpus(pids.cassandra, [child.pid!, servers.floor.pid, servers.peer.pid, process.pid]);
        if (typeof split === 'string') say(`AddCount with Cassandra on CPUs of its own: not run (${split})`);
        else {
          try {
            rows.push(...(await add(split.description)).rows);
          } finally {
            split.restore();
          }
        }
      } finally {
        await stopChild(floor.child);
        await stopChild(peer.child);
      }
    }
    if (ONLY.has('besteffort')) {
      const redis = await startRedis();
      const peerMain = path.join(repoRoot(), 'dist', 'test', 'bench', 'peer-server.js');
      const peer = await startChild([peerMain, 'redis', redis.url], env, /listening (\d+)/);
      try {
        rows.push(
          await benchBestEffort(url, { url: `http://127.0.0.1:${peer.match[1]}`, pid: peer.child.pid! }, bestEffort, {
            ...pids,
            redis: redis.pid,
          }),
        );
      } finally {
        await stopChild(peer.child);
        await redis.stop();
      }
    }
    if (ONLY.has('addcounts')) {
      rows.push(
        ...(await benchBatch({
          url,
          namespace,
          keyspace: config.cassandra.keyspace,
          client,
          pids,
          concurrency: CONCURRENCY,
          rounds: ROUNDS,
          seconds: SECONDS,
          warmupSeconds: WARMUP,
          say,
        })),
      );
    }
    if (ONLY.has('getcount') || ONLY.has('sweep')) {
      const reads = await cachedReads(url, namespace, env);
      try {
        if (ONLY.has('getcount')) {
          const get = await benchGetCount(url, namespace, pids, reads);
          rows.push(...get.rows);
          latencies.push(get.latencies);
          rss = get.rss;
        }
        if (ONLY.has('sweep')) {
          const t0 = Date.now();
          sweeps.push(...(await benchSweeps(url, client, config.cassandra.keyspace, namespace, reads)));
          say(`concurrency sweeps: ${Math.round((Date.now() - t0) / 1000)} s`);
        }
      } finally {
        await reads.stop();
      }
    }
    rss = Math.max(rss, rssMiB(child.pid!));
    if (ONLY.has('auth')) rows.push(...(await authRows(env, stack.env, namespace, { url, pid: child.pid! }, pids)));
    if (ONLY.has('rollup')) rows.push(await benchRollup(client, config));
    if (ONLY.has('operator')) operatorResult = await benchOperator(env, client, NAMESPACES, say);
  } finally {
    await stopChild(child);
    await setOperatorReplicas(stack.env, 1);
    await dropKeyspace(client, config.cassandra.keyspace);
    await client.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  if (operatorResult) {
    const o = operatorResult;
    rows.push({
      workload: 'operator',
      tally: { throughput: o.count / o.operatorSeconds },
      baseline: { throughput: o.count / o.ddlSeconds },
      ratio: o.ddlSeconds / o.operatorSeconds,
      note:
        `${o.count} to Ready in ${o.operatorSeconds.toFixed(1)} s, the DDL alone ${o.ddlSeconds.toFixed(1)} s; ` +
        `reconcile p99 <= ${o.reconcileP99Seconds} s over ${o.reconciles} reconciles`,
    });
  }
  const file = path.join(DOCS, 'benchmarks.md');
  await writeReport(file, {
    date: new Date().toISOString(),
    machine: thisMachine(cassandraVersion || undefined),
    settings: { concurrency: CONCURRENCY, rounds: ROUNDS, secondsPerRound: SECONDS, warmupRounds: WARMUP_ROUNDS },
    rows,
    ...(Number.isFinite(rss) && rss > 0 ? { runtimeRssMiB: rss } : {}),
    ...(sweeps.length > 0 ? { sweeps } : {}),
    ...(latencies.length > 0 ? { latencies } : {}),
  });
  process.stdout.write(fs.readFileSync(file, 'utf8'));
  say(`report written to ${path.relative(process.cwd(), file)}`);
}

// Exiting through process.exit runs the 'exit' handlers (they give Cassandra back its CPUs); a signal's default does not.
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[bench] failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
