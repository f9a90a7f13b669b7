import { randomUUID } from 'node:crypto';
import {
  call,
  dropKeyspaces,
  keyspaceOf,
  startInProcess,
  uniqueSuffix,
  type InProcessRuntime,
} from '../../support/runtime-harness';
import { waitFor } from '../../stack/wait';
import { requireEnv } from '../../support/env';
import { TcpProxy } from '../../support/tcp-proxy';

/** The runtime reaches the real Cassandra and Memcached through proxies the test can cut, like a partition would. */
describe('store outages', () => {
  const run = uniqueSuffix();
  const EV = `out-ev-${run}`;
  const AC = `out-ac-${run}`;
  const BE = `out-be-${run}`;
  let cassandra: TcpProxy;
  let memcached: TcpProxy;
  let rt: InProcessRuntime;
  const token = () => ({ token: randomUUID(), generation_time: new Date().toISOString() });

  beforeAll(async () => {
    cassandra = await TcpProxy.forAddress(requireEnv('CASSANDRA_CONTACT_POINTS')).start();
    memcached = await TcpProxy.forAddress(requireEnv('MEMCACHED_SERVERS')).start();
    rt = await startInProcess(
      [
        { name: EV, counterType: 'Eventual' },
        { name: AC, counterType: 'Accurate' },
        { name: BE, counterType: 'BestEffort' },
      ],
      {
        CASSANDRA_CONTACT_POINTS: cassandra.address,
        MEMCACHED_SERVERS: memcached.address,
        CASSANDRA_REQUEST_TIMEOUT_MS: '500',
      },
    );
  });
  afterAll(async () => {
    await rt.close();
    await Promise.all([cassandra.close(), memcached.close()]);
    await dropKeyspaces([keyspaceOf(EV), keyspaceOf(AC)]);
  });

  it('with Memcached down, Eventual and Accurate reads stay correct from Cassandra and BestEffort answers 503', async () => {
    const ev = { namespace: EV, counter_name: `m-${randomUUID()}` };
    const ac = { namespace: AC, counter_name: `m-${randomUUID()}` };
    const be = { namespace: BE, counter_name: `m-${randomUUID()}` };
    for (const c of [ev, ac])
      for (const delta of [4, -1, 8])
        expect((await call(rt.url, 'AddCount', { ...c, delta, idempotency_token: token() })).status).toBe(200);
    expect((await call(rt.url, 'AddCount', { ...be, delta: 2 })).status).toBe(200);
    await waitFor('the Eventual counter to be rolled up and cached', async () => {
      const r = await call(rt.url, 'GetCount', ev);
      if (r.body.count !== 11) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
      return true;
    });

    memcached.cut();
    try {
      for (let i = 0; i < 3; i++) {
        expect((await call(rt.url, 'GetCount', ev)).body).toMatchObject({ count: 11 });
        expect((await call(rt.url, 'GetCount', ac)).body).toMatchObject({ count: 11 });
      }
      // Writes to durable counters do not need the cache either.
      expect((await call(rt.url, 'AddAndGetCount', { ...ac, delta: 1, idempotency_token: token() })).body.count).toBe(
        12,
      );
      const beRead = await call(rt.url, 'GetCount', be);
      expect(beRead.status).toBe(503);
      expect(beRead.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(beRead.body).toMatchObject({
        error: { code: 'UNAVAILABLE', message: expect.stringContaining('memcached') },
      });
      const metrics = await (await fetch(`${rt.url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`tally_cache_requests_total\\{namespace="${EV}",result="error"\\} [1-9]`));
    } finally {
      memcached.restore();
    }
    await waitFor('BestEffort to answer again', async () => (await call(rt.url, 'GetCount', be)).status === 200, {
      timeoutMs: 10_000,
    });
  });

  it('with Cassandra down, writes answer 503; once it is back, every acknowledged write is counted', async () => {
    const ev = { namespace: EV, counter_name: `c-${randomUUID()}` };
    const ac = { namespace: AC, counter_name: `c-${randomUUID()}` };
    const be = { namespace: BE, counter_name: `c-${randomUUID()}` };
    const readyz = async () => {
      const res = await fetch(`${rt.url}/readyz`);
      return { status: res.status, body: (await res.json()) as { checks: { cassandra: { ok: boolean } } } };
    };
    let acknowledged = 0;
    for (let i = 1; i <= 20; i++) {
      for (const c of [ev, ac])
        expect((await call(rt.url, 'AddCount', { ...c, delta: i, idempotency_token: token() })).status).toBe(200);
      acknowledged += i;
    }

    cassandra.cut();
    try {
      for (const c of [ev, ac]) {
        const reply = await call(rt.url, 'AddCount', { ...c, delta: 1000, idempotency_token: token() });
        expect(reply.status).toBe(503);
        expect(reply.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(reply.body).toMatchObject({
          error: { code: 'UNAVAILABLE', message: expect.stringContaining('Cassandra is unavailable') },
        });
      }
      expect((await call(rt.url, 'GetCount', ac)).status).toBe(503);
      // Still ready (it answers, and a Service keeps sending to it): /readyz reports Cassandra down in its checks.
      await waitFor('readiness to report Cassandra down', async () => !(await readyz()).body.checks.cassandra.ok, {
        timeoutMs: 10_000,
      });
      expect((await readyz()).status).toBe(200);
      // BestEffort counters need no Cassandra.
      expect((await call(rt.url, 'AddAndGetCount', { ...be, delta: 2 })).status).toBe(200);
    } finally {
      cassandra.restore();
    }

    await waitFor('readiness to report Cassandra back', async () => (await readyz()).body.checks.cassandra.ok, {
      timeoutMs: 30_000,
    });
    await waitFor('the Accurate counter to read every acknowledged write', async () => {
      const r = await call(rt.url, 'GetCount', ac);
      if (r.body.count !== acknowledged) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
      return true;
    });
    await waitFor('the Eventual counter to roll up every acknowledged write', async () => {
      const r = await call(rt.url, 'GetCount', ev);
      if (r.body.count !== acknowledged) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
      return true;
    });
  });
});
