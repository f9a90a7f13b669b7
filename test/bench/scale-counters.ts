import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from 'cassandra-driver';
import { resolveCounterNamespace } from '../../api/resolve';
import type { NamespaceConfig } from '../../api/namespace-config';
import { EventWriter } from '../../runtime/counter/event-writer';
import { settleDelayMs } from '../../runtime/rollup/rollup';
import { CounterStore } from '../../runtime/storage/counter-store';
import { dropKeyspace, ensureSchema } from '../../store/ensure';
import { httpClient } from './http-client';
import { closedLoop, cpuSeconds } from './load';
import { counterValue } from './scale-stats';
import {
  getText,
  progress,
  runSweeper,
  sampleRss,
  startServe,
  waitAllReady,
  withRetry,
  type SweepRun,
} from './scale-process';

export interface CountersResult {
  counters: number;
  /** Writing every counter once through AddCounts (50 adds a request). */
  fillAddsPerSecond: number;
  /** Adds of the fill still refused (503) after resending them for 3 s. */
  fillFailed: number;
  /** Closed-loop AddCount spread uniformly over the namespace's counters. */
  addCount: { throughput: number; p50Ms: number; p99Ms: number; errors: number; cpuUsPerAdd: number };
  runtimePeakRssMiB: number;
  /** Once the runtime's rollup queues were empty again. */
  runtimeAfterRssMiB: number;
  /** Every counter behind its checkpoint (one event each since the last rollup): the sweeper rolls all of them up. */
  sweepBehind: SweepRun;
  /** Right after: every counter current, the sweeper only pages through the rollups table. */
  sweepCurrent: SweepRun;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const BATCH = 50;

/** A durable namespace of the scale run, with its tables, in a directory of its own (for serve and rollup). */
export async function scaleNamespace(
  client: Client,
  name: string,
  spec: Record<string, unknown>,
): Promise<{ config: NamespaceConfig; dir: string; cleanup(): Promise<void> }> {
  const config = resolveCounterNamespace({
    apiVersion: 'tally.dev/v1alpha1',
    kind: 'CounterNamespace',
    metadata: { name },
    spec,
  });
  await withRetry(`creating ${config.cassandra.keyspace}`, () => ensureSchema(client, config));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-scale-'));
  fs.writeFileSync(path.join(dir, 'ns.json'), JSON.stringify(config));
  return {
    config,
    dir,
    async cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
      await withRetry(`dropping ${config.cassandra.keyspace}`, () => dropKeyspace(client, config.cassandra.keyspace));
    },
  };
}

interface AddItem {
  namespace: string;
  counter_name: string;
  delta: number;
  idempotency_token: { token: string; generation_time: string };
}

/** How long the bench resends a refused item with its token (inside the namespace's 5 s accept window). */
const RESEND_FOR_MS = 3000;

/**
 * Sends the items through AddCounts, resending those answered 503 (Cassandra busy) with the same tokens, as a client
 * would, while their accept window allows. Returns how many items failed for good.
 */
async function addCounts(http: ReturnType<typeof httpClient>, items: AddItem[]): Promise<number> {
  const until = Date.now() + RESEND_FOR_MS;
  let todo = items;
  for (;;) {
    const body = await http.request('POST', '/v1/counter/AddCounts', JSON.stringify({ items: todo }));
    const results = (JSON.parse(body) as { results: { status: number; error?: { message: string } }[] }).results;
    const bad = results.find((r) => r.status !== 200 && r.status !== 503);
    if (bad) throw new Error(`AddCounts item failed: ${bad.status} ${bad.error?.message ?? ''}`);
    todo = todo.filter((_, i) => results[i]!.status === 503);
    if (todo.length === 0 || Date.now() > until) return todo.length;
    await sleep(200);
  }
}

/**
 * Writes counters c0..c(n-1) once each through AddCounts, `concurrency` requests in flight. Adds per second, and the
 * adds that failed for good.
 */
async function fill(
  http: ReturnType<typeof httpClient>,
  namespace: string,
  n: number,
  concurrency: number,
  label: string,
): Promise<{ rate: number; failed: number }> {
  let next = 0;
  let done = 0;
  let failed = 0;
  let reported = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const from = next;
        next = Math.min(n, next + BATCH);
        const items: AddItem[] = [];
        const generation_time = new Date().toISOString();
        for (let i = from; i < next; i++)
          items.push({
            namespace,
            counter_name: `c${i}`,
            delta: 1,
            idempotency_token: { token: randomUUID(), generation_time },
          });
        failed += await addCounts(http, items);
        done += items.length;
        if (done - reported >= Math.max(10_000, n / 10)) {
          reported = done;
          progress('counters', label, {
            counters: n,
            written: done,
            per_second: Math.round(done / ((Date.now() - t0) / 1000)),
          });
        }
      }
    }),
  );
  return { rate: n / ((Date.now() - t0) / 1000), failed };
}

/** One event more for every counter, written straight to the tables (no runtime, so no rollup trigger). */
async function makeAllBehind(store: CounterStore, n: number, concurrency: number): Promise<void> {
  const writer = new EventWriter(store);
  const now = Date.now();
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        await withRetry('writing an event', () =>
          writer.append({ counter: `c${i}`, eventTimeMs: now, eventId: randomUUID(), kind: 'add', delta: 1 }),
        );
        if (++done % 50_000 === 0)
          progress('counters', 'events written behind the checkpoints', { counters: n, written: done });
      }
    }),
  );
}

/** Waits (up to a minute) until the runtime's rollup queues for the namespace are empty. */
async function queuesEmpty(url: string, namespace: string): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const metrics = await getText(`${url}/metrics`);
    if (counterValue(metrics.body, 'tally_rollup_queue_depth', { namespace }) === 0) return true;
    await sleep(1000);
  }
  return false;
}

/**
 * One namespace with `n` distinct counters written: AddCount throughput over them, the runtime's memory, and the
 * sweeper's duration and memory over all of them (behind, then current).
 */
export async function benchCounters(
  env: NodeJS.ProcessEnv,
  client: Client,
  n: number,
  opts: { concurrency: number; seconds: number; run: string },
): Promise<CountersResult> {
  const ns = await scaleNamespace(client, `scale-c${opts.run}-${n}`, { counterType: 'Eventual' });
  const namespace = ns.config.name;
  try {
    progress('counters', 'start', { counters: n });
    const served = await startServe(env, ns.dir);
    const rss = sampleRss(served.pid);
    const http = httpClient(served.url, opts.concurrency);
    let fillRate: number;
    let fillFailed: number;
    let add: CountersResult['addCount'];
    let after: number;
    try {
      await waitAllReady(served, 1);
      const filled = await fill(http, namespace, n, Math.min(opts.concurrency, 8), 'writing counters');
      fillRate = filled.rate;
      fillFailed = filled.failed;
      progress('counters', 'written', { counters: n, adds_per_second: Math.round(fillRate), failed: fillFailed });
      const cpu0 = cpuSeconds(served.pid);
      const result = await closedLoop(
        { concurrency: opts.concurrency, seconds: opts.seconds, warmupSeconds: 2 },
        async () =>
          void (await http.request(
            'POST',
            '/v1/counter/AddCount',
            JSON.stringify({
              namespace,
              counter_name: `c${Math.floor(Math.random() * n)}`,
              delta: 1,
              idempotency_token: { token: randomUUID(), generation_time: new Date().toISOString() },
            }),
          )),
      );
      const cpu = cpuSeconds(served.pid) - cpu0;
      add = {
        throughput: result.throughput,
        p50Ms: result.p50Ms,
        p99Ms: result.p99Ms,
        errors: result.errors,
        // Warm-up requests are not counted: slightly overstated.
        cpuUsPerAdd: (cpu * 1e6) / Math.max(1, result.requests),
      };
      progress('counters', 'AddCount measured', {
        counters: n,
        per_second: Math.round(result.throughput),
        p99_ms: result.p99Ms,
      });
      if (!(await queuesEmpty(served.url, namespace)))
        progress('counters', 'rollup queues not empty after 60 s', { counters: n });
      after = rss.last();
    } finally {
      http.close();
      rss.stop();
      await served.stop();
    }
    const peak = rss.peak();
    progress('counters', 'runtime stopped', { counters: n, peak_rss_mib: peak, after_rss_mib: after });

    const store = new CounterStore(client, ns.config);
    await makeAllBehind(store, n, 64);
    // The sweeper rolls up only settled events: wait until the last one is.
    await sleep(settleDelayMs(ns.config) + 500);
    progress('counters', 'sweeping (all behind)', { counters: n });
    const sweepBehind = await withRetry('sweeping', () => runSweeper(env, ns.dir, namespace), 3);
    progress('counters', 'swept (all behind)', { counters: n, ...sweepBehind });
    const sweepCurrent = await withRetry('sweeping', () => runSweeper(env, ns.dir, namespace), 3);
    progress('counters', 'swept (all current)', { counters: n, ...sweepCurrent });
    return {
      counters: n,
      fillAddsPerSecond: fillRate,
      fillFailed,
      addCount: add,
      runtimePeakRssMiB: peak,
      runtimeAfterRssMiB: after,
      sweepBehind,
      sweepCurrent,
    };
  } finally {
    await ns.cleanup();
  }
}
