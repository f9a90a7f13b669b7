import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from 'cassandra-driver';
import { createCassandraClient, cassandraSettingsFromEnv } from '../../../store/client';
import { cassandra } from '../../stack/components/cassandra';
import { memcached } from '../../stack/components/memcached';
import { readRecord } from '../../stack/processes';
import { up } from '../../stack/stack';
import { fakeTimeEnv } from '../../support/faketime';
import {
  call,
  dropKeyspaces,
  keyspaceOf,
  stackEnv,
  startProcess,
  uniqueSuffix,
  writeNamespaces,
  type ChildRuntime,
} from '../../support/runtime-harness';
import { TcpProxy } from '../../support/tcp-proxy';
import { Load } from './load';
import { judge, readEventLog } from './truth';

/**
 * The fault-injection suite (npm run test:faults): two `tally serve` processes under load from clients that retry as
 * the README says, one fault per scenario, then the clients' records are checked against the event log read straight
 * from Cassandra and the counts every runtime reads: no acknowledged add lost or doubled, nothing answered 500.
 *
 * The runtimes reach Cassandra through a proxy (to lose or delay its answers) and the stack's Memcached directly.
 * Kills and stops hit the stack's own Cassandra and Memcached processes, which the stack then starts again.
 */
const ACCEPT_LIMIT_MS = 5000;
const SPEC = {
  eventStorage: {
    acceptLimitSeconds: ACCEPT_LIMIT_MS / 1000,
    maxFutureSkewSeconds: 2,
    secondsPerBucket: 60,
    bucketsPerCounter: 4,
    retentionSeconds: 3600,
  },
  // Offset bound (2000 − 1000) / 2 = 500 ms.
  rollup: { coalesceMs: 200, settleMarginMs: 2000 },
};

interface Report {
  scenario: string;
  faults: string;
  requests: number;
  acknowledged: number;
  failed: number;
  retries: number;
  longestUnavailableMs: number;
  lost: number;
  foreign: number;
  mismatch: number;
  answered500: number;
}

describe('fault injection: no acknowledged count lost or doubled', () => {
  const run = uniqueSuffix();
  const EV = `flt-ev-${run}`;
  const AC = `flt-ac-${run}`;
  let dir: string;
  let proxy: TcpProxy;
  let log: Client;
  const runtimes: ChildRuntime[] = [];
  const extra: ChildRuntime[] = [];
  const reports: Report[] = [];
  const urls = (): string[] => [...runtimes, ...extra].map((r) => r.url);
  const startRuntime = (env: Record<string, string> = {}) =>
    startProcess(dir, [EV, AC], { CASSANDRA_CONTACT_POINTS: proxy.address, ...env });

  /** SIGTERM; SIGKILL after 15 s (a runtime stuck on an unreachable store must not hold up the suite). */
  const stopOrKill = async (r: ChildRuntime): Promise<void> => {
    const timer = setTimeout(() => r.child.kill('SIGKILL'), 15_000);
    try {
      await r.stop();
    } finally {
      clearTimeout(timer);
    }
  };

  /** The pid of a process the stack started; the suite kills and stops only its own stack's services. */
  const stackPid = (name: string): number => {
    const pid = readRecord(name)?.pid;
    if (!pid) throw new Error(`the fault suite needs the stack's own ${name} (it kills it); none is recorded`);
    return pid;
  };

  beforeAll(async () => {
    dir = writeNamespaces([
      { name: EV, counterType: 'Eventual', spec: SPEC },
      { name: AC, counterType: 'Accurate', spec: SPEC },
    ]);
    proxy = await TcpProxy.forAddress(stackEnv().CASSANDRA_CONTACT_POINTS!).start();
    runtimes.push(await startRuntime(), await startRuntime());
    log = createCassandraClient(cassandraSettingsFromEnv(stackEnv()));
    await log.connect();
  });

  afterAll(async () => {
    await Promise.all([...runtimes, ...extra].map(stopOrKill));
    await log?.shutdown();
    await proxy?.close();
    fs.rmSync(dir, { recursive: true, force: true });
    await dropKeyspaces([keyspaceOf(EV), keyspaceOf(AC)]);
    process.stderr.write(`fault suite report:\n${reports.map((r) => JSON.stringify(r)).join('\n')}\n`);
  }, 60_000);

  /** Runs the load, injects the fault, heals it, and checks everything the clients were told. */
  async function scenario(name: string, inject: () => Promise<string>): Promise<void> {
    const counters = [EV, AC].flatMap((namespace) =>
      [0, 1, 2].map((i) => ({ namespace, counter: `${name}-${namespace === EV ? 'ev' : 'ac'}-${i}` })),
    );
    const load = new Load({
      urls,
      counters,
      clients: 4,
      retryForMs: ACCEPT_LIMIT_MS - 1000,
      attemptTimeoutMs: 2500,
      clearEvery: 37,
      readEvery: 5,
    });
    load.start();
    await sleep(1500);
    const faults = await inject();
    await sleep(1500);
    await load.stop();

    const events = [...(await readEventLog(log, keyspaceOf(EV))), ...(await readEventLog(log, keyspaceOf(AC)))];
    const mine = new Set(counters.map((c) => c.counter));
    const verdict = judge(
      load.sent.filter((s) => s.kind !== 'read'),
      events.filter((e) => mine.has(e.counter)),
    );
    // Eventual counts read right once a rollup passed the last event (accept limit + margin); Accurate at once.
    const reads = new Map<string, unknown>();
    const deadline = Date.now() + 30_000;
    for (;;) {
      for (const [i, c] of counters.entries()) {
        const url = urls()[i % urls().length]!;
        // A reused keep-alive connection can be reset; like the clients, read again (the loop does).
        const read = await call(url, 'GetCount', { namespace: c.namespace, counter_name: c.counter }).catch(
          (err: Error) => ({ body: { count: `read failed: ${err.message}` } }),
        );
        reads.set(c.counter, read.body.count);
      }
      if (counters.every((c) => reads.get(c.counter) === verdict.truth.get(c.counter)) || Date.now() > deadline) break;
      await sleep(500);
    }
    const mismatch = counters.reduce(
      (sum, c) => sum + Math.abs(Number(reads.get(c.counter) ?? NaN) - verdict.truth.get(c.counter)!),
      0,
    );
    const writes = load.sent.filter((s) => s.kind !== 'read');
    const report: Report = {
      scenario: name,
      faults,
      requests: load.sent.reduce((n, s) => n + s.attempts, 0),
      acknowledged: writes.filter((s) => s.outcome === 'acked').length,
      failed: writes.filter((s) => s.outcome === 'failed').length,
      retries: load.retries,
      longestUnavailableMs: load.longestGapMs(),
      lost: verdict.lost.length,
      foreign: verdict.foreign.length,
      mismatch,
      answered500: load.sent.filter((s) => s.answers.some((a) => a.startsWith('5') && a !== '503')).length,
    };
    reports.push(report);
    // No runtime died on its own (the killed one was replaced): a crash would show here, not as a read error.
    expect(runtimes.map((r) => (r.child.exitCode === null ? 'running' : r.output().slice(-2000)))).toEqual(
      runtimes.map(() => 'running'),
    );
    expect({ report, lost: verdict.lost.slice(0, 5), foreign: verdict.foreign.slice(0, 5) }).toEqual({
      report: { ...report, lost: 0, foreign: 0, mismatch: 0, answered500: 0 },
      lost: [],
      foreign: [],
    });
    // The load really ran through the fault: enough was acknowledged to have lost some.
    expect(report.acknowledged).toBeGreaterThan(50);
  }

  it('SIGSTOP Cassandra for longer than the request timeout, then SIGCONT', async () => {
    await scenario('cassandra-hang', async () => {
      const pid = stackPid('cassandra');
      process.kill(pid, 'SIGSTOP');
      await sleep(4000);
      process.kill(pid, 'SIGCONT');
      return 'Cassandra stopped (SIGSTOP) for 4 s, 4x the request timeout';
    });
  });

  it('kill -9 Memcached, then start it again', async () => {
    await scenario('memcached-kill', async () => {
      process.kill(stackPid('memcached'), 'SIGKILL');
      await sleep(2000);
      await up('test', [memcached]);
      return 'Memcached killed with SIGKILL, restarted empty after 2 s';
    });
  });

  it('kill -9 a runtime in the middle of its rollups, then start another', async () => {
    await scenario('runtime-kill', async () => {
      const victim = runtimes.pop()!;
      victim.child.kill('SIGKILL');
      await sleep(1000);
      runtimes.push(await startRuntime());
      return 'one of the two runtimes killed with SIGKILL, a new one started 1 s later';
    });
  });

  it("Cassandra's answers lost after it applied the writes", async () => {
    await scenario('replies-lost', async () => {
      proxy.dropReplies();
      await sleep(3000);
      proxy.restore();
      return 'every answer from Cassandra dropped for 3 s (requests forwarded and applied), then the connections reset';
    });
  });

  it('latency above the request timeout', async () => {
    await scenario('latency', async () => {
      proxy.delayReplies(1500);
      await sleep(3000);
      proxy.restore();
      return 'every answer from Cassandra delayed 1.5 s (the request timeout is 1 s) for 3 s';
    });
  });

  it('a third runtime whose clock is 8 s ahead joins for a while', async () => {
    await scenario('clock-ahead', async () => {
      extra.push(await startRuntime(await fakeTimeEnv('+8s')));
      await sleep(4000);
      await stopOrKill(extra.pop()!);
      return 'a runtime with its clock 8 s ahead (libfaketime) served a third of the requests for 4 s';
    });
  });
  // Last: a Cassandra that does not come back leaves the other scenarios run.
  it('kill -9 Cassandra, then start it again', async () => {
    await scenario('cassandra-kill', async () => {
      process.kill(stackPid('cassandra'), 'SIGKILL');
      await sleep(1000);
      const started = Date.now();
      await up('test', [cassandra]);
      return `Cassandra killed with SIGKILL, restarted (commit log replayed) in ${Date.now() - started} ms`;
    });
  }, 300_000);
});
