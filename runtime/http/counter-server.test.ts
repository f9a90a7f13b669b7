import type { Express } from 'express';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { resolveCounterNamespace } from '../../api/resolve';
import type { ServedNamespace } from '../counter/registry';
import type { CounterOps } from '../counter/types';
import { CountOutOfRangeError, DeltaOutOfRangeError, UnavailableError } from '../errors';
import { createRuntimeMetrics } from '../observability/metrics';
import { counterServer } from './counter-server';

const NOW = 1_800_000_000_000;
const config = resolveCounterNamespace({
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'CounterNamespace',
  metadata: { name: 'orders' },
  spec: { counterType: 'Accurate' },
});

/** The counter API's HTTP handling against a fake registry and fake counter operations, on a local port. */
function setup() {
  const ops = {
    config,
    add: jest.fn<Promise<void>, Parameters<CounterOps['add']>>(() => Promise.resolve()),
    addAndGet: jest.fn<ReturnType<CounterOps['addAndGet']>, Parameters<CounterOps['addAndGet']>>(() =>
      Promise.resolve({ count: 7, asOfMs: NOW - 1000 }),
    ),
    get: jest.fn<ReturnType<CounterOps['get']>, Parameters<CounterOps['get']>>(() => Promise.resolve({ count: 3 })),
    clear: jest.fn<ReturnType<CounterOps['clear']>, Parameters<CounterOps['clear']>>((req) =>
      Promise.resolve({ count: 0, asOfMs: req.token.generationTimeMs }),
    ),
    close: () => Promise.resolve(),
  };
  const served = new Map<string, ServedNamespace>([
    ['orders', { config, ops, ready: true }],
    ['pending', { config, ops, ready: false, reason: 'tables do not exist yet' }],
  ]);
  const registry = { find: jest.fn((name: string) => served.get(name)) };
  const metrics = createRuntimeMetrics();
  const logged: string[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
  const app = ((_req, res) => {
    res.statusCode = 299;
    res.end('the express app');
  }) as Express;
  const server = createServer(counterServer({ registry, metrics, log, now: () => NOW }, app));
  return { ops, registry, metrics, logged, server };
}

describe('the counter API handlers', () => {
  let s: ReturnType<typeof setup>;
  let url: string;
  beforeEach(async () => {
    s = setup();
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
  });
  afterEach(() => new Promise<void>((resolve) => s.server.close(() => resolve())));

  const post = async (op: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}/v1/counter/${op}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  };
  const series = async () => (await s.metrics.requests.get()).values.map((v) => ({ ...v.labels, value: v.value }));
  /** The requests counted, without the failure series exported at 0. */
  const requests = async () => (await series()).filter((r) => r.value > 0);

  it('AddCount: adds with the client token and echoes it', async () => {
    const token = { token: 'tok-1', generation_time: new Date(NOW - 500).toISOString() };
    const reply = await post('AddCount', {
      namespace: 'orders',
      counter_name: 'c',
      delta: 2,
      idempotency_token: token,
    });
    expect(reply).toMatchObject({ status: 200, body: { idempotency_token: token } });
    expect(s.ops.add).toHaveBeenCalledWith({
      counter: 'c',
      delta: 2,
      token: { token: 'tok-1', generationTimeMs: NOW - 500 },
    });
  });

  it('echoes a client token as it was sent, also when its instant is outside the years 0000-9999 in UTC', async () => {
    for (const generation_time of [
      '9999-12-31T23:59:59-23:59',
      '0000-01-01T00:30:00+01:00',
      '2024-10-05t16:48:00.5z',
    ]) {
      const token = { token: 'tok-2', generation_time };
      const body = { namespace: 'orders', counter_name: 'c', delta: 1, idempotency_token: token };
      for (const op of ['AddCount', 'AddAndGetCount']) {
        expect(await post(op, body)).toMatchObject({ status: 200, body: { idempotency_token: token } });
      }
      expect(s.ops.add).toHaveBeenLastCalledWith({
        counter: 'c',
        delta: 1,
        token: { token: 'tok-2', generationTimeMs: Date.parse(generation_time) },
      });
      const cleared = await post('ClearCount', { namespace: 'orders', counter_name: 'c', idempotency_token: token });
      expect(cleared.body.idempotency_token).toEqual(token);
    }
  });

  it('refuses a generation_time that is not RFC 3339, as the document says (format date-time)', async () => {
    for (const generation_time of ['2024-10-05 14:48:00Z', '2024-10-05T14:48:00+0200', '2024-10-05T14:48:00+02']) {
      const reply = await post('AddCount', {
        namespace: 'orders',
        counter_name: 'c',
        delta: 1,
        idempotency_token: { token: 't', generation_time },
      });
      expect([reply.status, reply.body.error]).toEqual([
        400,
        {
          code: 'INVALID_ARGUMENT',
          message: 'idempotency_token.generation_time must match format "date-time"',
          field: 'idempotency_token.generation_time',
        },
      ]);
    }
    expect(s.ops.add).not.toHaveBeenCalled();
  });

  it('AddCount: makes a token now when the client sends none', async () => {
    const reply = await post('AddCount', { namespace: 'orders', counter_name: 'c', delta: 1 });
    const token = reply.body.idempotency_token as { token: string; generation_time: string };
    expect(token.generation_time).toBe(new Date(NOW).toISOString());
    expect(token.token).toMatch(/^[0-9a-f-]{36}$/);
    expect(s.ops.add.mock.calls[0]![0].token).toEqual({ token: token.token, generationTimeMs: NOW });
  });

  it('AddAndGetCount, GetCount (POST and GET) and ClearCount answer count, as_of and the token', async () => {
    expect((await post('AddAndGetCount', { namespace: 'orders', counter_name: 'c', delta: 1 })).body).toMatchObject({
      count: 7,
      as_of: new Date(NOW - 1000).toISOString(),
    });
    expect((await post('GetCount', { namespace: 'orders', counter_name: 'c' })).body).toEqual({ count: 3 });
    const got = await fetch(`${url}/v1/namespaces/orders/counters/${encodeURIComponent('a b/c')}`);
    expect(await got.json()).toEqual({ count: 3 });
    expect(s.ops.get).toHaveBeenLastCalledWith('a b/c');
    const cleared = await post('ClearCount', { namespace: 'orders', counter_name: 'c' });
    expect(cleared.body).toMatchObject({ count: 0, as_of: new Date(NOW).toISOString() });
    expect(cleared.body.idempotency_token).toMatchObject({ generation_time: new Date(NOW).toISOString() });
  });

  it('looks the namespace up once per request, after validating the body', async () => {
    await post('AddCount', { namespace: 'orders', counter_name: 'c', delta: 1 });
    expect(s.registry.find.mock.calls).toEqual([['orders']]);
    const invalid = await post('AddCount', { namespace: 'orders', counter_name: 'c', delta: '5' });
    expect(invalid).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_ARGUMENT', message: 'delta must be integer', field: 'delta' } },
    });
    expect(s.registry.find).toHaveBeenCalledTimes(1);
    expect(s.ops.add).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['a body that is not an object', '[1]', 'INVALID_ARGUMENT', 'the request body must be a JSON object'],
    ['malformed JSON', '{"namespace": ', 'INVALID_JSON', expect.stringContaining('the body is not valid JSON: ')],
    [
      'a leap-second token time',
      {
        namespace: 'orders',
        counter_name: 'c',
        delta: 1,
        idempotency_token: { token: 't', generation_time: '2016-12-31T23:59:60Z' },
      },
      'INVALID_ARGUMENT',
      expect.stringMatching(/^idempotency_token\.generation_time 2016-12-31T23:59:60Z is not a representable instant/),
    ],
  ])('answers 400 for %s', async (_what, body, code, message) => {
    const reply = await post('AddCount', body);
    expect(reply.status).toBe(400);
    expect(reply.body.error).toMatchObject({ code, message });
    expect(s.ops.add).not.toHaveBeenCalled();
  });

  it('answers 404 for a namespace not served, labelled (unknown) in the metrics', async () => {
    const reply = await post('GetCount', { namespace: 'nope', counter_name: 'c' });
    expect(reply).toMatchObject({
      status: 404,
      body: { error: { code: 'NAMESPACE_NOT_FOUND', field: 'namespace', message: expect.stringContaining('"nope"') } },
    });
    expect(await requests()).toEqual([
      { op: 'GetCount', namespace: '(unknown)', status: '404', code: 'NAMESPACE_NOT_FOUND', value: 1 },
    ]);
  });

  it('answers 503 with Retry-After 5 for a namespace not ready, labelled with its name', async () => {
    const reply = await post('GetCount', { namespace: 'pending', counter_name: 'c' });
    expect(reply.status).toBe(503);
    expect(reply.headers.get('retry-after')).toBe('5');
    expect(reply.body.error).toEqual({
      code: 'UNAVAILABLE',
      message: 'namespace "pending" is not ready: tables do not exist yet',
    });
    expect(await requests()).toEqual([
      { op: 'GetCount', namespace: 'pending', status: '503', code: 'UNAVAILABLE', value: 1 },
    ]);
  });

  it('answers the domain errors of the operations as the error table says', async () => {
    s.ops.add.mockRejectedValueOnce(new UnavailableError('Cassandra is unavailable while recording an event of c'));
    const down = await post('AddCount', { namespace: 'orders', counter_name: 'c', delta: 1 });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    s.ops.addAndGet.mockRejectedValueOnce(new DeltaOutOfRangeError(1));
    expect(await post('AddAndGetCount', { namespace: 'orders', counter_name: 'c', delta: 1 })).toMatchObject({
      status: 409,
      body: { error: { code: 'COUNT_OUT_OF_RANGE', field: 'delta' } },
    });
    s.ops.get.mockRejectedValueOnce(new CountOutOfRangeError('c', 2n ** 54n));
    expect(await post('GetCount', { namespace: 'orders', counter_name: 'c' })).toMatchObject({
      status: 409,
      body: { error: { code: 'COUNT_OUT_OF_RANGE', field: 'counter_name' } },
    });
    expect((await requests()).map((r) => [r.op, r.namespace, r.status, r.code])).toEqual([
      ['AddCount', 'orders', '503', 'UNAVAILABLE'],
      ['AddAndGetCount', 'orders', '409', 'COUNT_OUT_OF_RANGE'],
      ['GetCount', 'orders', '409', 'COUNT_OUT_OF_RANGE'],
    ]);
  });

  it('answers 500 INTERNAL for anything else, and logs it', async () => {
    s.ops.get.mockRejectedValueOnce(new TypeError('x is not a function'));
    const reply = await post('GetCount', { namespace: 'orders', counter_name: 'c' });
    expect(reply).toEqual({
      status: 500,
      headers: expect.anything() as unknown,
      body: { error: { code: 'INTERNAL', message: 'internal error; see the runtime log' } },
    });
    expect(s.logged.map((l) => JSON.parse(l) as { op: string; err: string; msg: string })).toEqual([
      expect.objectContaining({ op: 'GetCount', err: 'x is not a function', msg: 'request failed' }),
    ]);
    expect(await requests()).toEqual([
      { op: 'GetCount', namespace: 'orders', status: '500', code: 'INTERNAL', value: 1 },
    ]);
  });

  it('labels a success with code OK, and exports the server failures of an op and namespace at 0 from its first call', async () => {
    await post('AddCount', { namespace: 'orders', counter_name: 'c', delta: 1 });
    expect(await series()).toEqual(
      expect.arrayContaining([
        { op: 'AddCount', namespace: 'orders', status: '200', code: 'OK', value: 1 },
        { op: 'AddCount', namespace: 'orders', status: '503', code: 'UNAVAILABLE', value: 0 },
        { op: 'AddCount', namespace: 'orders', status: '500', code: 'INTERNAL', value: 0 },
      ]),
    );
    expect(await series()).toHaveLength(3);
  });

  it('refuses a body over the limit (closing the connection) and an encoded body', async () => {
    const big = await post('AddCount', JSON.stringify({ namespace: 'orders', pad: 'x'.repeat(20_000) }));
    expect(big.status).toBe(413);
    expect(big.headers.get('connection')).toBe('close');
    expect(big.body.error).toEqual({ code: 'PAYLOAD_TOO_LARGE', message: 'the body is larger than 16384 bytes' });
    const gzip = await post('AddCount', '{}', { 'content-encoding': 'gzip' });
    expect(gzip.status).toBe(415);
    expect(gzip.body.error).toMatchObject({ code: 'UNSUPPORTED_ENCODING' });
  });

  it('answers HEAD on the GET route as GET, without the body', async () => {
    const res = await fetch(`${url}/v1/namespaces/orders/counters/c`, { method: 'HEAD' });
    expect([res.status, res.headers.get('content-length'), await res.text()]).toEqual([200, '11', '']);
    expect(s.ops.get).toHaveBeenLastCalledWith('c');
  });

  it('leaves every other route to the express app', async () => {
    for (const path of ['/v1/counter/Increment', '/v1/namespaces', '/metrics']) {
      const res = await fetch(`${url}${path}`, { method: path.includes('counter') ? 'POST' : 'GET' });
      expect([res.status, await res.text()]).toEqual([299, 'the express app']);
    }
  });
});
