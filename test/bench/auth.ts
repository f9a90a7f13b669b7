import { randomUUID } from 'node:crypto';
import { httpClient } from './http-client';
import { alternate, closedLoop, type RoundsResult } from './load';
import type { ResultRow, SideResult } from './report';

export interface AuthBenchOptions {
  /** A runtime with --auth kubernetes and one with --auth none, serving the same Eventual namespace. */
  on: { url: string; pid: number };
  off: { url: string; pid: number };
  namespace: string;
  /** A token allowed get and update on the namespace's counters (the stack's TALLY_TOKEN). */
  token: string;
  /** Other processes whose CPU is shown (cassandra, memcached, the API server). */
  pids: Record<string, number>;
  concurrency: number;
  seconds: number;
  rounds: number;
  warmupSeconds: number;
}

function side(r: RoundsResult): SideResult {
  return {
    throughput: r.throughput,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    ...(r.errors ? { errors: r.errors } : {}),
    ...(r.cpuPerOp ? { cpuPerOpUs: r.cpuPerOp } : {}),
  };
}

/**
 * The cost of authentication on the hot path: AddCount and cached GetCount against a runtime that checks every
 * caller (TokenReview and SubjectAccessReview, answers cached) and one that checks none, alternating rounds, same
 * namespace, same counters, same concurrency. Target: within 10% (ratio >= 0.9x) once decisions are cached.
 */
export async function benchAuth(o: AuthBenchOptions, say: (m: string) => void): Promise<ResultRow[]> {
  const on = httpClient(o.on.url, o.concurrency, { authorization: `Bearer ${o.token}` });
  const off = httpClient(o.off.url, o.concurrency);
  const counters = 100;
  // Checkpoints in the cache first, so reads are cache hits on both sides.
  for (let c = 0; c < counters; c++) {
    await off.request(
      'POST',
      '/v1/counter/AddCount',
      JSON.stringify({ namespace: o.namespace, counter_name: `a${c}`, delta: 1 }),
    );
    await off.request(
      'POST',
      '/v1/counter/GetCount',
      JSON.stringify({ namespace: o.namespace, counter_name: `a${c}` }),
    );
  }
  const opts = { concurrency: o.concurrency, seconds: o.seconds, warmupSeconds: o.warmupSeconds };
  const add = (loop: number, i: number): string =>
    JSON.stringify({
      namespace: o.namespace,
      counter_name: `a${(loop * 7919 + i) % counters}`,
      delta: 1,
      idempotency_token: { token: randomUUID(), generation_time: new Date().toISOString() },
    });
  const read = (loop: number, i: number): string =>
    `/v1/namespaces/${o.namespace}/counters/a${(loop * 31 + i) % counters}`;
  const rows: ResultRow[] = [];
  for (const [workload, run] of [
    [
      'auth-addcount',
      (c: typeof on) => (loop: number, i: number) => c.request('POST', '/v1/counter/AddCount', add(loop, i)),
    ],
    ['auth-getcount', (c: typeof on) => (loop: number, i: number) => c.request('GET', read(loop, i))],
  ] as const) {
    say(
      `${workload}: authentication on (bearer token, cached TokenReview + SubjectAccessReview) vs off, concurrency ${o.concurrency}, ${o.rounds} x ${o.seconds} s each`,
    );
    const [withAuth, without] = await alternate(o.rounds, [
      {
        name: `${workload} (auth on)`,
        watch: { runtime: o.on.pid, ...o.pids, bench: process.pid },
        run: () => closedLoop(opts, async (loop, i) => void (await run(on)(loop, i))),
      },
      {
        name: `${workload} (auth off)`,
        watch: { runtime: o.off.pid, ...o.pids, bench: process.pid },
        run: () => closedLoop(opts, async (loop, i) => void (await run(off)(loop, i))),
      },
    ]);
    rows.push({ workload, tally: side(withAuth!), baseline: side(without!), target: { ratio: 0.9 } });
  }
  on.close();
  off.close();
  return rows;
}
