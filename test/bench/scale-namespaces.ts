import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client } from 'cassandra-driver';
import { resolveCounterNamespace } from '../../api/resolve';
import type { NamespaceConfig } from '../../api/namespace-config';
import { dropKeyspace, ensureSchema } from '../../store/ensure';
import { benchOperator } from './operator';
import { httpClient } from './http-client';
import { cpuSeconds, rssMiB } from './load';
import { progress, sampleRss, startServe, waitAllReady, withRetry } from './scale-process';

export interface NamespacesResult {
  counterType: 'BestEffort' | 'Eventual';
  namespaces: number;
  /** From spawning `tally serve` to its listening line, and to /readyz with every namespace ready. */
  listeningMs: number;
  readyMs: number;
  /** Resident memory once every namespace is ready, and after one AddCount in each. */
  readyRssMiB: number;
  afterAddsRssMiB: number;
  /** CPU the idle runtime uses, in % of one core, over `idleSeconds` after start-up (no requests). */
  idleCpuPercent: number;
  idleSeconds: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A runtime serving `n` namespaces of one type. Eventual ones each have their own keyspace and tables (created as
 * the sizes grow); BestEffort ones need no tables, so they reach sizes whose tables this Cassandra could not hold.
 */
export async function benchNamespaces(
  env: NodeJS.ProcessEnv,
  client: Client,
  sizes: number[],
  opts: { run: string; idleSeconds: number; counterType: 'BestEffort' | 'Eventual' },
): Promise<NamespacesResult[]> {
  const durable = opts.counterType === 'Eventual';
  const tag = durable ? 'e' : 'b';
  const configs: NamespaceConfig[] = [];
  const results: NamespacesResult[] = [];
  try {
    for (const n of sizes) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-scale-ns-'));
      for (let i = configs.length; i < n; i++) {
        const config = resolveCounterNamespace({
          apiVersion: 'tally.dev/v1alpha1',
          kind: 'CounterNamespace',
          metadata: { name: `scale-n${tag}${opts.run}-${i}` },
          spec: { counterType: opts.counterType },
        });
        if (durable) {
          await withRetry(`creating the tables of ${config.name}`, () => ensureSchema(client, config));
          if ((i + 1) % 10 === 0) progress('namespaces', 'keyspaces created', { namespaces: i + 1 });
        }
        configs.push(config);
      }
      const names = configs.slice(0, n).map((c) => c.name);
      for (const config of configs.slice(0, n))
        fs.writeFileSync(path.join(dir, `${config.name}.json`), JSON.stringify(config));
      progress('namespaces', 'start', { namespaces: n, counter_type: opts.counterType });
      const served = await startServe(env, dir);
      try {
        const readyMs = await waitAllReady(served, n);
        await sleep(2000);
        const readyRss = rssMiB(served.pid);
        const cpu0 = cpuSeconds(served.pid);
        await sleep(opts.idleSeconds * 1000);
        const idleCpuPercent = ((cpuSeconds(served.pid) - cpu0) / opts.idleSeconds) * 100;
        const rss = sampleRss(served.pid);
        const http = httpClient(served.url, 4);
        for (let i = 0; i < n; i += 50) {
          const items = names.slice(i, i + 50).map((namespace) => ({ namespace, counter_name: 'c', delta: 1 }));
          const body = await http.request('POST', '/v1/counter/AddCounts', JSON.stringify({ items }));
          const bad = (JSON.parse(body) as { results: { status: number }[] }).results.find((r) => r.status !== 200);
          if (bad) throw new Error(`AddCounts item failed with ${bad.status}`);
        }
        http.close();
        await sleep(2000);
        rss.stop();
        const result: NamespacesResult = {
          counterType: opts.counterType,
          namespaces: n,
          listeningMs: served.listeningMs,
          readyMs,
          readyRssMiB: readyRss,
          afterAddsRssMiB: Math.max(rss.peak(), rssMiB(served.pid)),
          idleCpuPercent,
          idleSeconds: opts.idleSeconds,
        };
        progress('namespaces', 'measured', { ...result });
        results.push(result);
      } finally {
        await served.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    if (durable) {
      progress('namespaces', 'dropping keyspaces', { keyspaces: configs.length });
      for (const c of configs)
        await withRetry(`dropping ${c.cassandra.keyspace}`, () => dropKeyspace(client, c.cassandra.keyspace));
    }
  }
  return results;
}

export interface OperatorScaleResult {
  count: number;
  readySeconds: number;
  reconcileP99Seconds: number;
  reconciles: number;
  /** The bench process runs the operator in-process: its resident memory before and at the peak, and the heap. */
  rssBeforeMiB: number;
  rssPeakMiB: number;
  heapPeakMiB: number;
  /** Dropping the keyspaces afterwards (part of the run's time, not the operator's). */
  totalSeconds: number;
}

/** The operator with `count` CounterNamespaces: time to Ready, reconcile p99, and memory. */
export async function benchOperatorScale(
  env: NodeJS.ProcessEnv,
  client: Client,
  count: number,
): Promise<OperatorScaleResult> {
  global.gc?.();
  const rssBeforeMiB = rssMiB(process.pid);
  const rss = sampleRss(process.pid, 500);
  let heapPeak = process.memoryUsage().heapUsed;
  const heapTimer = setInterval(() => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)), 500);
  const t0 = Date.now();
  try {
    const o = await benchOperator(env, client, count, (m) => progress('operator', m, { count }), {
      ddlBaseline: false,
    });
    return {
      count,
      readySeconds: o.operatorSeconds,
      reconcileP99Seconds: o.reconcileP99Seconds,
      reconciles: o.reconciles,
      rssBeforeMiB,
      rssPeakMiB: rss.peak(),
      heapPeakMiB: heapPeak / 2 ** 20,
      totalSeconds: (Date.now() - t0) / 1000,
    };
  } finally {
    rss.stop();
    clearInterval(heapTimer);
  }
}
