import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from 'cassandra-driver';
import { TallyClient, TallyError } from '../../../client/src';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../../store/client';
import {
  dropKeyspaces,
  keyspaceOf,
  stackEnv,
  startInProcess,
  uniqueSuffix,
  type InProcessRuntime,
} from '../../support/runtime-harness';
import { TcpProxy } from '../../support/tcp-proxy';
import type { Sent } from '../faults/load';
import { judge, readEventLog } from '../faults/truth';
import { recordingFetch, withAcceptLimit } from './support';

const LOAD_MS = 10_000;
const FAULT_EVERY_MS = 500;

/** A small seeded generator (mulberry32): the same faults in the same order on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Adds through two proxies in front of one runtime while the proxies lose answers, delay them past the client's
 * attempt timeout, or cut connections: every add the client acknowledged must be in the event log once, nothing
 * else may be there, and each counter must read what the log holds (after rollup for Eventual).
 */
describe('TallyClient under faults: every acknowledged add is counted exactly once', () => {
  const run = uniqueSuffix();
  const EV = `cll-ev-${run}`;
  const AC = `cll-ac-${run}`;
  let rt: InProcessRuntime;
  let proxies: TcpProxy[];
  let log: Client;

  beforeAll(async () => {
    rt = await startInProcess([
      { name: EV, counterType: 'Eventual', spec: withAcceptLimit(3) },
      { name: AC, counterType: 'Accurate', spec: withAcceptLimit(3) },
    ]);
    const port = Number(new URL(rt.url).port);
    proxies = await Promise.all([0, 1].map(() => new TcpProxy('127.0.0.1', port).start()));
    log = createCassandraClient(cassandraSettingsFromEnv(stackEnv()));
    await log.connect();
  });
  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await rt?.close();
    await log?.shutdown();
    await dropKeyspaces([keyspaceOf(EV), keyspaceOf(AC)]);
  });

  it('holds through lost answers, delays and cut connections', async () => {
    const random = seeded(17);
    const rec = recordingFetch();
    const urls = proxies.map((p) => `http://${p.address}`);
    const plain = new TallyClient({ url: urls, fetch: rec.fetch, attemptTimeoutMs: 400 });
    const hedging = new TallyClient({ url: urls, fetch: rec.fetch, attemptTimeoutMs: 400, hedgeAfterMs: 150 });
    const counters = [EV, AC].flatMap((namespace) =>
      [0, 1, 2].map((i) => ({ namespace, counter: `${namespace === EV ? 'ev' : 'ac'}-${i}` })),
    );
    const calls: Sent[] = [];
    const faults: string[] = [];
    let running = true;

    const loop = async (client: TallyClient, seed: number): Promise<void> => {
      for (let n = seed; running; n++) {
        const { namespace, counter } = counters[n % counters.length]!;
        const delta = 1 + (n % 9);
        const call: Sent = {
          namespace,
          counter,
          kind: 'add',
          delta,
          token: '',
          timeMs: 0,
          outcome: 'failed',
          attempts: 0,
          answers: [],
        };
        calls.push(call);
        try {
          const req = { namespace, counter_name: counter, delta };
          const { idempotency_token } = n % 4 === 0 ? await client.addAndGetCount(req) : await client.addCount(req);
          call.token = idempotency_token!.token;
          call.timeMs = Date.parse(idempotency_token!.generation_time);
          call.outcome = 'acked';
        } catch (err) {
          if (!(err instanceof TallyError) || !err.idempotencyToken) throw err;
          call.token = err.idempotencyToken.token;
          call.timeMs = Date.parse(err.idempotencyToken.generation_time);
          call.answers.push(err.code);
        }
        await sleep(10);
      }
    };
    const loops = [plain, plain, plain, hedging, hedging, hedging].map((c, i) => loop(c, i * 7));

    const started = Date.now();
    while (Date.now() - started < LOAD_MS) {
      for (const [i, p] of proxies.entries()) {
        p.restore();
        const r = random();
        if (r < 0.2) {
          p.dropReplies();
          faults.push(`${i}:drop`);
        } else if (r < 0.35) {
          p.delayReplies(600);
          faults.push(`${i}:delay600`);
        } else if (r < 0.5) {
          p.delayReplies(100);
          faults.push(`${i}:delay100`);
        } else if (r < 0.6) {
          p.cut();
          faults.push(`${i}:cut`);
        }
      }
      await sleep(FAULT_EVERY_MS);
    }
    for (const p of proxies) p.restore();
    running = false;
    await Promise.all(loops);

    const events = [...(await readEventLog(log, keyspaceOf(EV))), ...(await readEventLog(log, keyspaceOf(AC)))];
    const verdict = judge(calls, events);
    const acked = calls.filter((c) => c.outcome === 'acked');
    const failed = calls.filter((c) => c.outcome === 'failed');
    const logged = new Set(events.map((e) => `${e.counter}\0${e.token}`));
    const failedLogged = failed.filter((c) => logged.has(`${c.counter}\0${c.token}`));
    const report = {
      calls: calls.length,
      acked: acked.length,
      failed: failed.length,
      failedButCounted: failedLogged.length,
      attempts: rec.sent.length,
      timeouts: rec.sent.filter((s) => s.answer === 'TimeoutError').length,
      connectionErrors: rec.sent.filter((s) => s.answer === 'TypeError').length,
      faults: faults.length,
      lost: verdict.lost.length,
      foreign: verdict.foreign.length,
    };
    process.stderr.write(`client load report: ${JSON.stringify(report)}\n`);

    expect(verdict.lost).toEqual([]);
    expect(verdict.foreign).toEqual([]);
    // The faults were felt: attempts were retried after timeouts and connection errors.
    expect(acked.length).toBeGreaterThan(100);
    expect(report.attempts).toBeGreaterThan(calls.length);
    expect(report.timeouts).toBeGreaterThan(10);
    // Every counter reads what its log holds: the acknowledged adds once each, plus failed ones that did land.
    for (const { namespace, counter } of counters) {
      const expected = [...acked, ...failedLogged]
        .filter((c) => c.counter === counter)
        .reduce((sum, c) => sum + c.delta, 0);
      expect({ counter, logged: verdict.truth.get(counter) }).toEqual({ counter, logged: expected });
      const reader = new TallyClient({ url: rt.url });
      let count = NaN;
      for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(250)) {
        count = (await reader.getCount({ namespace, counter_name: counter })).count;
        if (count === expected) break;
      }
      expect({ namespace, counter, count }).toEqual({ namespace, counter, count: expected });
    }
  });
});
