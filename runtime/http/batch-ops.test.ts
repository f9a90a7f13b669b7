import type { Express } from 'express';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { resolveCounterNamespace } from '../../api/resolve';
import type { ServedNamespace } from '../counter/registry';
import type { CounterOps } from '../counter/types';
import { UnavailableError } from '../errors';
import { createRuntimeMetrics } from '../observability/metrics';
import { BATCH_OPS, runBatch } from './batch-ops';
import { counterServer } from './counter-server';
import { RequestError } from './errors';
import { LIMITS } from './openapi';

const NOW = 1_800_000_000_000;
const config = resolveCounterNamespace({
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'CounterNamespace',
  metadata: { name: 'orders' },
  spec: { counterType: 'Accurate' },
});
const token = (t: string) => ({ token: t, generation_time: new Date(NOW - 500).toISOString() });

/** AddCounts and GetCounts through the counter server, against a fake registry and fake counter operations. */
function setup() {
  const ops = {
    config,
    add: jest.fn<Promise<void>, Parameters<CounterOps['add']>>(() => Promise.resolve()),
    addAndGet: jest.fn<ReturnType<CounterOps['addAndGet']>, Parameters<CounterOps['addAndGet']>>(),
    get: jest.fn<ReturnType<CounterOps['get']>, Parameters<CounterOps['get']>>((counter) =>
      Promise.resolve({ count: counter.length, asOfMs: NOW - 1000 }),
    ),
    clear: jest.fn<ReturnType<CounterOps['clear']>, Parameters<CounterOps['clear']>>(),
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
  const deps = { registry, metrics, log, now: () => NOW };
  const server = createServer(counterServer(deps, app));
  return { ops, registry, metrics, logged, server, deps };
}

describe('AddCounts and GetCounts', () => {
  let s: ReturnType<typeof setup>;
  let url: string;
  beforeEach(async () => {
    s = setup();
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
  });
  afterEach(() => new Promise<void>((resolve) => s.server.close(() => resolve())));

  const post = async (op: string, body: unknown) => {
    const res = await fetch(`${url}/v1/counter/${op}`, {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  };
  const counted = async (name: 'requests' | 'batchRequests') =>
    (await s.metrics[name].get()).values
      .filter((v) => v.value > 0)
      .map((v): Record<string, string | number | undefined> => ({ ...v.labels, value: v.value }));

  it('AddCounts: a result per item in order; a bad item fails alone with the single call answer', async () => {
    s.ops.add.mockImplementation((req) =>
      req.counter === 'down' ? Promise.reject(new UnavailableError('Cassandra is unavailable')) : Promise.resolve(),
    );
    const reply = await post('AddCounts', {
      items: [
        { namespace: 'orders', counter_name: 'a', delta: 2, idempotency_token: token('t-a') },
        { namespace: 'nope', counter_name: 'b', delta: 1, idempotency_token: token('t-b') },
        { namespace: 'orders', counter_name: 'c', delta: '5', idempotency_token: token('t-c') },
        { namespace: 'orders', counter_name: 'down', delta: 1, idempotency_token: token('t-d') },
        { namespace: 'pending', counter_name: 'e', delta: 1 },
        { namespace: 'orders', counter_name: 'f', delta: -3 },
      ],
    });
    expect(reply.status).toBe(200);
    const results = reply.body.results as Record<string, unknown>[];
    const made = (i: number) => (results[i]!.idempotency_token as { token: string }).token;
    expect(results).toEqual([
      { status: 200, idempotency_token: token('t-a') },
      {
        status: 404,
        error: {
          code: 'NAMESPACE_NOT_FOUND',
          message: expect.stringContaining('namespace "nope" is not served here') as unknown,
          field: 'namespace',
        },
      },
      { status: 400, error: { code: 'INVALID_ARGUMENT', message: 'delta must be integer', field: 'delta' } },
      { status: 503, error: { code: 'UNAVAILABLE', message: 'Cassandra is unavailable' }, retry_after: 1 },
      // Sent without a token: the result names the one made, also for a failure (the client resends with it).
      {
        status: 503,
        error: { code: 'UNAVAILABLE', message: 'namespace "pending" is not ready: tables do not exist yet' },
        idempotency_token: { token: made(4), generation_time: new Date(NOW).toISOString() },
        retry_after: 5,
      },
      { status: 200, idempotency_token: { token: made(5), generation_time: new Date(NOW).toISOString() } },
    ]);
    expect(made(4)).toMatch(/^[0-9a-f-]{36}$/);
    expect(made(5)).not.toBe(made(4));
    expect(s.ops.add.mock.calls.map(([r]) => [r.counter, r.delta, r.token])).toEqual([
      ['a', 2, { token: 't-a', generationTimeMs: NOW - 500 }],
      ['down', 1, { token: 't-d', generationTimeMs: NOW - 500 }],
      ['f', -3, { token: made(5), generationTimeMs: NOW }],
    ]);
  });

  it('GetCounts: counts in order, each failure its own; an unexpected error is logged and answered 500 for that item', async () => {
    s.ops.get.mockImplementationOnce(() => Promise.reject(new TypeError('x is not a function')));
    const reply = await post('GetCounts', {
      items: [
        { namespace: 'orders', counter_name: 'broken' },
        { namespace: 'orders', counter_name: 'abc' },
        { namespace: 'orders', counter_name: '' },
        { namespace: 'orders', counter_name: 'ab', delta: 1 },
      ],
    });
    expect(reply).toMatchObject({
      status: 200,
      body: {
        results: [
          { status: 500, error: { code: 'INTERNAL', message: 'internal error; see the runtime log' } },
          { status: 200, count: 3, as_of: new Date(NOW - 1000).toISOString() },
          { status: 400, error: { code: 'INVALID_ARGUMENT', field: 'counter_name' } },
          { status: 400, error: { code: 'INVALID_ARGUMENT', message: 'delta is not a known field' } },
        ],
      },
    });
    expect(s.logged.map((l) => JSON.parse(l) as { op: string; err: string })).toEqual([
      expect.objectContaining({ op: 'GetCount', err: 'x is not a function' }),
    ]);
  });

  it('answers 200 with per-item errors when every item fails for a server reason', async () => {
    s.ops.add.mockRejectedValue(new UnavailableError('Cassandra is unavailable'));
    const items = ['a', 'b'].map((c) => ({ namespace: 'orders', counter_name: c, delta: 1 }));
    const reply = await post('AddCounts', { items });
    expect(reply.status).toBe(200);
    expect((reply.body.results as { status: number }[]).map((r) => r.status)).toEqual([503, 503]);
    expect(reply.headers.get('retry-after')).toBeNull();
  });

  it.each([
    ['no items', { items: [] }, 'items must NOT have fewer than 1 items', 'items'],
    [
      `more than ${LIMITS.batchMaxItems} items`,
      { items: Array.from({ length: LIMITS.batchMaxItems + 1 }, () => ({})) },
      `items must NOT have more than ${LIMITS.batchMaxItems} items`,
      'items',
    ],
    ['an item that is not an object', { items: [{}, 3] }, 'items.1 must be object', 'items.1'],
    ['no items field', { namespace: 'orders' }, 'items is required', undefined],
    ['a body that is an array', [{}], 'the request body must be a JSON object', undefined],
  ])('refuses %s as a whole with 400, running nothing', async (_what, body, message, field) => {
    const reply = await post('AddCounts', body);
    expect([reply.status, reply.body.error]).toEqual([
      400,
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(message) as unknown }),
    ]);
    if (field) expect((reply.body.error as { field?: string }).field).toBe(field);
    expect(s.registry.find).not.toHaveBeenCalled();
  });

  it('takes bodies up to the batch limit, beyond the single calls 16 KiB, and refuses larger ones with 413', async () => {
    const item = { namespace: 'orders', counter_name: 'x'.repeat(200), delta: 1 };
    const fits = Array.from({ length: 100 }, () => item); // about 24 KiB
    expect(JSON.stringify({ items: fits }).length).toBeGreaterThan(LIMITS.bodyMaxBytes);
    expect((await post('AddCounts', { items: fits })).status).toBe(200);
    const big = await post('AddCounts', JSON.stringify({ items: [item], pad: 'x'.repeat(LIMITS.batchBodyMaxBytes) }));
    expect(big.status).toBe(413);
    expect(big.headers.get('connection')).toBe('close');
    expect(big.body.error).toEqual({
      code: 'PAYLOAD_TOO_LARGE',
      message: `the body is larger than ${LIMITS.batchBodyMaxBytes} bytes`,
    });
  });

  it('runs items concurrently, at most LIMITS.batchConcurrency at once', async () => {
    let running = 0;
    let most = 0;
    s.ops.add.mockImplementation(async () => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 2));
      running--;
    });
    const items = Array.from({ length: 100 }, (_, i) => ({ namespace: 'orders', counter_name: `c${i}`, delta: 1 }));
    const reply = await post('AddCounts', { items });
    expect((reply.body.results as unknown[]).length).toBe(100);
    expect(s.ops.add).toHaveBeenCalledTimes(100);
    expect(most).toBe(LIMITS.batchConcurrency);
  });

  it('counts each item in tally_requests_total by namespace, and the request in tally_batch_requests_total', async () => {
    await post('GetCounts', {
      items: [
        { namespace: 'orders', counter_name: 'a' },
        { namespace: 'orders', counter_name: 'b' },
        { namespace: 'nope', counter_name: 'c' },
      ],
    });
    await post('GetCounts', { items: [] });
    const items = (await counted('requests')).sort((a, b) => String(a.namespace).localeCompare(String(b.namespace)));
    expect(items).toEqual([
      { op: 'GetCounts', namespace: '(unknown)', status: '404', code: 'NAMESPACE_NOT_FOUND', value: 1 },
      { op: 'GetCounts', namespace: 'orders', status: '200', code: 'OK', value: 2 },
    ]);
    expect(await counted('batchRequests')).toEqual([
      { op: 'GetCounts', status: '200', code: 'OK', value: 1 },
      { op: 'GetCounts', status: '400', code: 'INVALID_ARGUMENT', value: 1 },
    ]);
    const sizes = (await s.metrics.batchItems.get()).values;
    expect(sizes.find((v) => v.metricName === 'tally_batch_items_sum')?.value).toBe(3);
    expect(sizes.find((v) => v.metricName === 'tally_batch_items_count')?.value).toBe(1);
  });
});

describe('runBatch', () => {
  it('runs the check for each item of a served namespace before its operation; a refusal fails that item only', async () => {
    const s = setup();
    const checked: string[] = [];
    const check = jest.fn((name: string, _op: unknown, namespace: string) => {
      checked.push(`${name} ${namespace}`);
      return namespace === 'pending'
        ? Promise.reject(new RequestError('INVALID_ARGUMENT', 'refused'))
        : Promise.resolve();
    });
    const results = await runBatch(
      BATCH_OPS.GetCounts!,
      [
        { namespace: 'orders', counter_name: 'a' },
        { namespace: 'pending', counter_name: 'b' },
        { namespace: 'nope', counter_name: 'c' },
      ],
      s.deps,
      () => undefined,
      check,
    );
    expect(results.map((r) => r.status)).toEqual([200, 400, 404]);
    expect(checked).toEqual(['GetCount orders', 'GetCount pending']);
    expect(s.ops.get).toHaveBeenCalledTimes(1);
  });
});
