import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { resolveCounterNamespace } from '../../api/resolve';
import type { ServedNamespace } from '../counter/registry';
import { createRuntimeMetrics } from '../observability/metrics';
import { createApp, type Readiness } from './app';

const config = (name: string) =>
  resolveCounterNamespace({ apiVersion: 'tally.dev/v1alpha1', kind: 'CounterNamespace', metadata: { name }, spec: {} });

/** Everything but the counter operations, against a fake registry. */
describe('the express app', () => {
  let server: Server;
  let url: string;
  let readiness: Readiness;
  const served: ServedNamespace[] = [
    { config: config('a'), ops: undefined as never, ready: true },
    { config: config('b'), ops: undefined as never, ready: false, reason: 'checking schema' },
  ];

  beforeAll(async () => {
    const app = createApp({
      registry: { list: () => served, errors: ['bad.yaml: not valid YAML'] },
      metrics: createRuntimeMetrics(),
      log: pino({ level: 'silent' }),
      readiness: () => Promise.resolve(readiness),
    });
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('lists the namespaces served, with readiness, reason and settings, and the rejected documents', async () => {
    const body = (await (await fetch(`${url}/v1/namespaces`)).json()) as Record<string, unknown>;
    expect(body).toEqual({
      namespaces: [
        { name: 'a', counter_type: 'Eventual', ready: true, config: JSON.parse(JSON.stringify(served[0]!.config)) },
        {
          name: 'b',
          counter_type: 'Eventual',
          ready: false,
          reason: 'checking schema',
          config: JSON.parse(JSON.stringify(served[1]!.config)),
        },
      ],
      errors: ['bad.yaml: not valid YAML'],
    });
  });

  it('answers readiness with 200 or 503 and the checks', async () => {
    readiness = { ready: false, checks: { cassandra: { ok: false, detail: 'down' } } };
    const down = await fetch(`${url}/readyz`);
    expect([down.status, await down.json()]).toEqual([
      503,
      { status: 'not ready', checks: { cassandra: { ok: false, detail: 'down' } } },
    ]);
    readiness = { ready: true, checks: {} };
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it('answers a method a documented path lacks with 405 and Allow, and OPTIONS with Allow', async () => {
    const cases: [string, string, string][] = [
      ['PATCH', '/healthz', 'GET, HEAD, OPTIONS'],
      ['DELETE', '/v1/counter/AddCount', 'POST, OPTIONS'],
      ['GET', '/v1/counter/GetCount', 'POST, OPTIONS'],
      ['PUT', '/v1/namespaces/orders/counters/c', 'GET, HEAD, OPTIONS'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await fetch(`${url}${path}`, { method });
      expect([res.status, res.headers.get('allow'), await res.json()]).toEqual([
        405,
        allow,
        { error: { code: 'METHOD_NOT_ALLOWED', message: `${method} is not allowed on ${path}; allowed: ${allow}` } },
      ]);
      const options = await fetch(`${url}${path}`, { method: 'OPTIONS' });
      expect([options.status, options.headers.get('allow'), await options.text()]).toEqual([204, allow, '']);
    }
  });

  it('answers an unknown route with a JSON 404 NOT_FOUND', async () => {
    const res = await fetch(`${url}/v2/whatever`, { method: 'DELETE' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'no route for DELETE /v2/whatever (see /openapi.json)' },
    });
  });
});
