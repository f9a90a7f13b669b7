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
import { cacheKey } from '../../../runtime/cache/keys';

const run = uniqueSuffix();
const EV = `api-ev-${run}`;
const AC = `api-ac-${run}`;
const BE = `api-be-${run}`;
/** Its events table is dropped by a test. */
const DROPPED = `api-dr-${run}`;

const token = (offsetMs = 0) => ({
  token: randomUUID(),
  generation_time: new Date(Date.now() + offsetMs).toISOString(),
});

describe('counter HTTP API', () => {
  let rt: InProcessRuntime;

  beforeAll(async () => {
    rt = await startInProcess([
      // No near cache: the cache tests below count memcached's hits and misses.
      { name: EV, counterType: 'Eventual', spec: { cache: { nearCacheSeconds: 0 } } },
      { name: AC, counterType: 'Accurate' },
      { name: BE, counterType: 'BestEffort' },
      { name: DROPPED, counterType: 'Accurate' },
    ]);
  });
  afterAll(async () => {
    await rt.close();
    await dropKeyspaces([keyspaceOf(EV), keyspaceOf(AC), keyspaceOf(DROPPED)]);
  });

  describe('rejects bad requests with a 4xx and a JSON error naming what is wrong', () => {
    const valid = { namespace: EV, counter_name: 'c', delta: 1 };
    const cases: [string, string, unknown, number, string, string | RegExp][] = [
      ['malformed JSON', 'AddCount', '{"namespace": ', 400, 'INVALID_JSON', /not valid JSON/],
      ['a JSON array', 'AddCount', '[1]', 400, 'INVALID_ARGUMENT', /must be a JSON object/],
      [
        'a missing namespace',
        'AddCount',
        { counter_name: 'c', delta: 1 },
        400,
        'INVALID_ARGUMENT',
        'namespace is required',
      ],
      [
        'a missing delta',
        'AddCount',
        { namespace: EV, counter_name: 'c' },
        400,
        'INVALID_ARGUMENT',
        'delta is required',
      ],
      ['a string delta', 'AddCount', { ...valid, delta: '5' }, 400, 'INVALID_ARGUMENT', 'delta must be integer'],
      ['a fractional delta', 'AddCount', { ...valid, delta: 1.5 }, 400, 'INVALID_ARGUMENT', 'delta must be integer'],
      [
        'an unsafe integer delta',
        'AddCount',
        { ...valid, delta: 2 ** 60 },
        400,
        'INVALID_ARGUMENT',
        /^delta must be <= 9007199254740991/,
      ],
      [
        'an empty counter name',
        'GetCount',
        { namespace: EV, counter_name: '' },
        400,
        'INVALID_ARGUMENT',
        /^counter_name must NOT have fewer than 1 characters/,
      ],
      [
        'an oversized counter name',
        'GetCount',
        { namespace: EV, counter_name: 'x'.repeat(257) },
        400,
        'INVALID_ARGUMENT',
        /^counter_name must NOT have more than 256/,
      ],
      [
        'a counter name with a newline',
        'GetCount',
        { namespace: EV, counter_name: 'a\nb' },
        400,
        'INVALID_ARGUMENT',
        /^counter_name must match pattern/,
      ],
      [
        'an unknown field',
        'GetCount',
        { namespace: EV, counter_name: 'c', counterName: 'c' },
        400,
        'INVALID_ARGUMENT',
        'counterName is not a known field',
      ],
      [
        'an invalid namespace name',
        'GetCount',
        { namespace: 'Bad NS', counter_name: 'c' },
        400,
        'INVALID_ARGUMENT',
        /^namespace must match pattern/,
      ],
      [
        'an oversized token',
        'AddCount',
        { ...valid, idempotency_token: { token: 't'.repeat(129), generation_time: new Date().toISOString() } },
        400,
        'INVALID_ARGUMENT',
        /^idempotency_token\.token must NOT have more than 128/,
      ],
      [
        'a token without generation_time',
        'AddCount',
        { ...valid, idempotency_token: { token: 't' } },
        400,
        'INVALID_ARGUMENT',
        'idempotency_token.generation_time is required',
      ],
      [
        'a generation_time that is not a time',
        'AddCount',
        { ...valid, idempotency_token: { token: 't', generation_time: 'yesterday' } },
        400,
        'INVALID_ARGUMENT',
        /^idempotency_token\.generation_time must match format "date-time"/,
      ],
      [
        // JSON Schema's date-time admits leap seconds; a JavaScript date cannot hold one. BestEffort counts before
        // it answers, so this must fail before anything is counted.
        'a leap-second generation_time',
        'AddCount',
        { ...valid, namespace: BE, idempotency_token: { token: 't', generation_time: '2016-12-31T23:59:60Z' } },
        400,
        'INVALID_ARGUMENT',
        /^idempotency_token\.generation_time 2016-12-31T23:59:60Z is not a representable instant/,
      ],
      [
        'a generation_time too old',
        'AddCount',
        { ...valid, idempotency_token: token(-60_000) },
        400,
        'INVALID_ARGUMENT',
        /^idempotency_token\.generation_time .* is outside the accepted window \[.*\] \(namespace .* accepts events up to 1 s old and 1 s ahead\)/,
      ],
      [
        'a generation_time too far ahead',
        'ClearCount',
        { namespace: AC, counter_name: 'c', idempotency_token: token(60_000) },
        400,
        'INVALID_ARGUMENT',
        /outside the accepted window/,
      ],
      [
        'an unknown namespace',
        'AddCount',
        { ...valid, namespace: 'no-such-namespace' },
        404,
        'NAMESPACE_NOT_FOUND',
        /"no-such-namespace" is not served here/,
      ],
      [
        'a body over the limit',
        'AddCount',
        JSON.stringify({ ...valid, pad: 'x'.repeat(20_000) }),
        413,
        'PAYLOAD_TOO_LARGE',
        /larger than 16384 bytes/,
      ],
    ];
    it.each(cases)('%s', async (_what, op, body, status, code, message) => {
      const reply = await call(rt.url, op, body);
      expect(reply.status).toBe(status);
      const error = (reply.body as { error: { code: string; message: string; field?: string } }).error;
      expect(error.code).toBe(code);
      if (typeof message === 'string') expect(error.message).toBe(message);
      else expect(error.message).toMatch(message);
    });

    it('answers 404 with JSON for an unknown route', async () => {
      const res = await fetch(`${rt.url}/v1/counter/Increment`, { method: 'POST', body: '{}' });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({
        error: { code: 'NOT_FOUND', message: expect.stringContaining('no route for POST /v1/counter/Increment') },
      });
    });

    it('names the field in error.field', async () => {
      const reply = await call(rt.url, 'AddCount', { ...valid, delta: 'x' });
      expect((reply.body.error as { field: string }).field).toBe('delta');
    });
  });

  it('Accurate: exact counts at once, negative deltas, clears, AddAndGetCount', async () => {
    const c = { namespace: AC, counter_name: `acc-${randomUUID()}` };
    expect((await call(rt.url, 'GetCount', c)).body.count).toBe(0);
    expect((await call(rt.url, 'AddAndGetCount', { ...c, delta: 5, idempotency_token: token() })).body.count).toBe(5);
    expect((await call(rt.url, 'AddAndGetCount', { ...c, delta: -12, idempotency_token: token() })).body.count).toBe(
      -7,
    );
    const cleared = await call(rt.url, 'ClearCount', { ...c, idempotency_token: token() });
    expect(cleared.status).toBe(200);
    expect(cleared.body.count).toBe(0);
    await new Promise((r) => setTimeout(r, 5)); // the next event must be after the clear's millisecond
    await call(rt.url, 'AddCount', { ...c, delta: 3, idempotency_token: token() });
    const got = await call(rt.url, 'GetCount', c);
    expect(got.body.count).toBe(3);
    expect(typeof got.body.as_of).toBe('string');
  });

  it('Eventual: GetCount catches up after the rollup, from the cache', async () => {
    const c = { namespace: EV, counter_name: `ev-${randomUUID()}` };
    for (const delta of [10, -3, 7])
      expect((await call(rt.url, 'AddCount', { ...c, delta, idempotency_token: token() })).status).toBe(200);
    await waitFor('the rollup to reach 14', async () => {
      const r = await call(rt.url, 'GetCount', c);
      if (r.body.count !== 14) throw new Error(`count ${String(r.body.count)}`);
      return true;
    });
    const cacheReads = async (): Promise<{ hit: number; miss: number }> => {
      const text = await (await fetch(`${rt.url}/metrics`)).text();
      const read = (result: string): number =>
        Number(
          new RegExp(`tally_cache_requests_total\\{namespace="${EV}",result="${result}"\\} (\\d+)`).exec(text)?.[1] ??
            0,
        );
      return { hit: read('hit'), miss: read('miss') };
    };
    const before = await cacheReads();
    const curl = await fetch(`${rt.url}/v1/namespaces/${EV}/counters/${encodeURIComponent(c.counter_name)}`);
    expect(((await curl.json()) as { count: number }).count).toBe(14);
    expect((await call(rt.url, 'GetCount', { namespace: EV, counter_name: `never-${randomUUID()}` })).body.count).toBe(
      0,
    );
    // One read answered from the cache, one that found nothing there.
    expect(await cacheReads()).toEqual({ hit: before.hit + 1, miss: before.miss + 1 });
    const metrics = await (await fetch(`${rt.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`tally_rollups_total\\{namespace="${EV}",result="rolled"\\} [1-9]`));
  });

  it('without a token the server makes one and returns it, so the client can retry with it', async () => {
    const c = { namespace: AC, counter_name: `tok-${randomUUID()}` };
    const first = await call(rt.url, 'AddAndGetCount', { ...c, delta: 4 });
    expect(first.body.count).toBe(4);
    const used = first.body.idempotency_token as { token: string; generation_time: string };
    expect(used.token).toMatch(/^[0-9a-f-]{36}$/);
    const retry = await call(rt.url, 'AddAndGetCount', { ...c, delta: 4, idempotency_token: used });
    expect(retry.body.count).toBe(4);
  });

  it('BestEffort: counts below zero, clears, and is not idempotent (documented)', async () => {
    const c = { namespace: BE, counter_name: `be-${randomUUID()}` };
    expect((await call(rt.url, 'AddAndGetCount', { ...c, delta: -5 })).body.count).toBe(-5);
    expect((await call(rt.url, 'AddAndGetCount', { ...c, delta: 2 })).body.count).toBe(-3);
    expect((await call(rt.url, 'AddAndGetCount', { ...c, delta: 9_000_000_000_000 })).body.count).toBe(
      8_999_999_999_997,
    );
    expect((await call(rt.url, 'GetCount', c)).body.count).toBe(8_999_999_999_997);
    expect((await call(rt.url, 'ClearCount', c)).body.count).toBe(0);
    expect((await call(rt.url, 'GetCount', c)).body.count).toBe(0);
    const overflow = await call(rt.url, 'AddAndGetCount', { ...c, delta: Number.MAX_SAFE_INTEGER });
    expect(overflow.status).toBe(200);
    const beyond = await call(rt.url, 'AddAndGetCount', { ...c, delta: 1 });
    expect(beyond.status).toBe(409);
    expect((beyond.body.error as { code: string }).code).toBe('COUNT_OUT_OF_RANGE');
    expect((await call(rt.url, 'GetCount', c)).body.count).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('BestEffort: a value under its key that is not a count answers 409 COUNT_CORRUPT, only for that counter', async () => {
    const c = { namespace: BE, counter_name: `foreign-${randomUUID()}` };
    const cache = rt.runtime.cache!;
    // Another client of the same memcached writes under the counter's key.
    await cache.set(cacheKey('tally', BE, 'be', c.counter_name), 'not a number', 60);
    for (const [op, body] of [
      ['GetCount', c],
      ['AddCount', { ...c, delta: 1 }],
      ['AddAndGetCount', { ...c, delta: 1 }],
    ] as const) {
      const reply = await call(rt.url, op, body);
      expect([op, reply.status, reply.body.error]).toEqual([
        op,
        409,
        expect.objectContaining({ code: 'COUNT_CORRUPT', field: 'counter_name' }),
      ]);
    }
    // The server answered: no cool-down, other counters count on.
    expect(cache.available).toBe(true);
    const other = await call(rt.url, 'AddAndGetCount', { namespace: BE, counter_name: `ok-${randomUUID()}`, delta: 2 });
    expect([other.status, other.body.count]).toEqual([200, 2]);
    // ClearCount resets it.
    expect((await call(rt.url, 'ClearCount', c)).status).toBe(200);
    expect((await call(rt.url, 'AddAndGetCount', { ...c, delta: 4 })).body.count).toBe(4);
  });

  it('a namespace whose table was dropped answers 503 UNAVAILABLE naming it, not 500', async () => {
    const c = { namespace: DROPPED, counter_name: 'c' };
    expect((await call(rt.url, 'AddCount', { ...c, delta: 1, idempotency_token: token() })).status).toBe(200);
    // DDL takes longer than the runtime's request timeout.
    await rt.runtime.cassandra.execute(`DROP TABLE ${keyspaceOf(DROPPED)}.events`, [], { readTimeout: 60_000 });
    // An insert whose prepared statement is gone fails as "no host could run it": unavailable either way.
    const add = await call(rt.url, 'AddCount', { ...c, delta: 1, idempotency_token: token() });
    expect([add.status, add.body.error]).toEqual([503, expect.objectContaining({ code: 'UNAVAILABLE' })]);
    // A read that prepares afresh hears "table events does not exist" (it answered 500).
    const get = await call(rt.url, 'GetCount', c);
    expect([get.status, get.body.error]).toEqual([
      503,
      expect.objectContaining({
        code: 'UNAVAILABLE',
        message: expect.stringContaining(`the tables of namespace ${DROPPED} are missing`) as unknown,
      }),
    ]);
    expect(get.headers.get('retry-after')).toBe('30');
  });

  it('Accurate: a count beyond ±(2^53 - 1) answers 409 COUNT_OUT_OF_RANGE, never 500 or a rounded count', async () => {
    const c = { namespace: AC, counter_name: `huge-${randomUUID()}` };
    expect((await call(rt.url, 'AddCount', { ...c, delta: Number.MAX_SAFE_INTEGER })).status).toBe(200);
    expect((await call(rt.url, 'AddCount', { ...c, delta: 2 })).status).toBe(200);
    const get = await call(rt.url, 'GetCount', c);
    expect(get.status).toBe(409);
    expect(get.body.error).toMatchObject({
      code: 'COUNT_OUT_OF_RANGE',
      field: 'counter_name',
      message: expect.stringContaining(`is ${2n ** 53n + 1n}, outside`) as unknown,
    });
    expect((await call(rt.url, 'AddAndGetCount', { ...c, delta: -3 })).body.count).toBe(Number.MAX_SAFE_INTEGER - 1);
    expect((await call(rt.url, 'ClearCount', c)).status).toBe(200);
    expect((await call(rt.url, 'GetCount', c)).body.count).toBe(0);
  });

  it('lists its namespaces with type and settings', async () => {
    const body = (await (await fetch(`${rt.url}/v1/namespaces`)).json()) as {
      namespaces: { name: string; counter_type: string; ready: boolean; config: { cassandra: { keyspace: string } } }[];
    };
    const listed = body.namespaces.filter((n) => n.name !== DROPPED);
    expect(listed.map((n) => [n.name, n.counter_type, n.ready]).sort()).toEqual(
      [
        [AC, 'Accurate', true],
        [BE, 'BestEffort', true],
        [EV, 'Eventual', true],
      ].sort(),
    );
    expect(body.namespaces.find((n) => n.name === EV)?.config.cassandra.keyspace).toBe(keyspaceOf(EV));
  });

  it('publishes the OpenAPI document its validation is built from', async () => {
    const doc = (await (await fetch(`${rt.url}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, { properties?: Record<string, { maxLength?: number }> }> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/counter/AddCount',
        '/v1/counter/AddAndGetCount',
        '/v1/counter/GetCount',
        '/v1/counter/ClearCount',
      ]),
    );
    expect(doc.components.schemas.GetCountRequest!.properties!.counter_name!.maxLength).toBe(256);
  });

  it('reports health and readiness', async () => {
    expect((await fetch(`${rt.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${rt.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      checks: { cassandra: { ok: true }, namespaces: { ok: true }, memcached: { ok: true } },
    });
  });
});
