import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import pino from 'pino';
import { Histogram, Registry } from 'prom-client';
import { resolveCounterNamespace } from '../../api/resolve';
import type { ServedNamespace } from '../counter/registry';
import { createRuntimeMetrics } from '../observability/metrics';
import { RecentErrors } from '../observability/recent-errors';
import { createApp, type Readiness } from './app';
import { openApiDocument } from './openapi';
import { collectStatus, histogramQuantile, renderStatusPage, type StatusReport } from './status-page';

const served = (name: string, counterType: string, extra: Partial<ServedNamespace> = {}): ServedNamespace => ({
  config: resolveCounterNamespace({
    apiVersion: 'tally.dev/v1alpha1',
    kind: 'CounterNamespace',
    metadata: { name },
    spec: { counterType },
  }),
  ops: undefined as never,
  ready: true,
  ...extra,
});

const readiness: Readiness = {
  ready: true,
  checks: {
    cassandra: { ok: true, detail: 'reachable' },
    clock: { ok: true, detail: "Cassandra's clock is 1.2 ms from this process's" },
    namespaces: { ok: true, detail: '3 of 3 ready' },
    memcached: { ok: false, detail: 'cooling down after a failure' },
  },
};

function report(overrides: Partial<StatusReport> = {}): StatusReport {
  return {
    generated_at: '2024-10-05T14:48:00.000Z',
    ready: true,
    checks: readiness.checks as StatusReport['checks'],
    clock: { offset_seconds: 0.0012, uncertainty_seconds: 0.0004 },
    namespaces: [],
    config_errors: [],
    recent_errors: [],
    ...overrides,
  };
}

const eventual = (name: string, hitRatio: number | null): StatusReport['namespaces'][number] => ({
  name,
  counter_type: 'Eventual',
  keyspace: `tally_${name}`,
  ready: true,
  requests: { total: 12345, client_errors: 2, server_errors: 1 },
  cache: { hits: 934, misses: 66, errors: 0, hit_ratio: hitRatio },
  rollup: { lag_p50_seconds: 0.85, lag_p99_seconds: 2.4, rolled: 40, queue_depth: 3, triggers_dropped: 0 },
});

const statusSchema = openApiDocument.paths['/status.json'].get.responses['200'].content['application/json'].schema;
// strictRequired off: /readyz's checks are required by name but described by additionalProperties.
const ajv = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false });
addFormats(ajv);
const matchesDocument = ajv.compile(statusSchema);

describe('the status page (rendering)', () => {
  it('escapes every string it shows: namespace names, reasons, details, error messages, config problems', () => {
    const evil = '<script>alert("x")</script>&\'';
    const page = renderStatusPage(
      report({
        checks: { ...report().checks, cassandra: { ok: false, detail: evil } },
        namespaces: [{ ...eventual('x', 0.5), name: `a"><img src=x onerror=alert(1)>`, ready: false, reason: evil }],
        config_errors: [evil],
        recent_errors: [{ time: '2024-10-05T14:47:59.123Z', namespace: 'orders', code: evil, message: evil, count: 1 }],
      }),
    );
    expect(page).not.toContain('<script');
    expect(page).not.toContain('<img');
    expect(page).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
    // Inside an attribute too: the quote cannot close it.
    expect(page).toContain('data-namespace="a&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"');
    // Only the page's own markup is left: the reason and the message appear escaped, once each per place.
    expect(page.match(/&lt;script&gt;/g)).toHaveLength(5);
  });

  it('shows the empty state: no namespaces yet, no errors', () => {
    const page = renderStatusPage(report());
    expect(page).toContain('No namespaces served yet.');
    expect(page).toContain('No server errors or failed rollups since the process started.');
    expect(page).not.toContain('<table');
  });

  it('formats the numbers: a percentage, ms, seconds, thousands, repeats, a dash for what is unknown', () => {
    const page = renderStatusPage(
      report({
        recent_errors: [
          { time: '2024-10-05T14:47:59.123Z', namespace: 'orders', code: 'ROLLUP_FAILED', message: 'x', count: 12 },
          { time: '2024-10-05T14:47:58.000Z', namespace: 'orders', code: 'UNAVAILABLE', message: 'y', count: 1 },
        ],
        namespaces: [
          eventual('orders', 0.934),
          {
            ...eventual('fresh', null),
            requests: { total: null, client_errors: 0, server_errors: 0 },
            rollup: { lag_p50_seconds: 0.0042, lag_p99_seconds: null, rolled: 0, queue_depth: 0, triggers_dropped: 0 },
          },
        ],
      }),
    );
    const card = (name: string): string => page.slice(page.indexOf(`data-namespace="${name}"`)).split('</section>')[0]!;
    expect(card('orders')).toContain('<b class="hit-ratio">93.4 %</b>');
    expect(card('orders')).toContain('style="width:93.4%"');
    expect(card('orders')).toContain('<span>lag p50</span><b>850 ms</b>');
    expect(card('orders')).toContain('<span>lag p99</span><b>2.4 s</b>');
    expect(card('orders')).toContain('<span>requests</span><b>12,345</b>');
    expect(card('orders')).toContain('<div class="stat warn"><span>5xx</span><b>1</b>');
    expect(card('fresh')).toContain('<b class="hit-ratio">—</b>');
    expect(card('fresh')).toContain('<span>requests</span><b>—</b>');
    expect(card('fresh')).toContain('<span>lag p50</span><b>4.2 ms</b>');
    expect(card('fresh')).toContain('<span>lag p99</span><b>—</b>');
    expect(page).toContain('<td class="code">ROLLUP_FAILED <span class="times">×12</span></td>');
    expect(page).toContain('<td class="code">UNAVAILABLE</td>');
  });

  it('is one self-contained document: no script, no external asset, a meta refresh', () => {
    const page = renderStatusPage(report({ namespaces: [eventual('orders', 0.5)] }));
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<meta http-equiv="refresh" content="10">');
    expect(page).not.toMatch(/<script|<link|src=|url\(|@import/i);
  });
});

describe('the status data (from the metrics registry)', () => {
  it('estimates histogram quantiles as Prometheus does: linear in the bucket, the top finite bound for +Inf', async () => {
    const registry = new Registry();
    const h = new Histogram({
      name: 'h',
      help: 'h',
      labelNames: ['namespace'],
      buckets: [1, 2, 4],
      registers: [registry],
    });
    for (const v of [0.5, 1.5, 1.5, 3]) h.observe({ namespace: 'a' }, v);
    h.observe({ namespace: 'b' }, 100);
    const samples = (await registry.getSingleMetric('h')!.get()).values;
    // a: 1 in (0,1], 2 in (1,2], 1 in (2,4]. The median's rank 2 falls halfway through (1,2].
    expect(histogramQuantile(0.5, samples, 'a')).toBeCloseTo(1.5);
    expect(histogramQuantile(0.99, samples, 'a')).toBeCloseTo(2 + 2 * ((3.96 - 3) / 1));
    expect(histogramQuantile(0.5, samples, 'b')).toBe(4);
    expect(histogramQuantile(0.5, samples, 'nobody')).toBeNull();
    expect(histogramQuantile(0.5, undefined, 'a')).toBeNull();
  });

  it('reads per namespace: requests by class, cache hit ratio, rollups; BestEffort has no keyspace, cache or rollup', async () => {
    const metrics = createRuntimeMetrics();
    metrics.cache.inc({ namespace: 'orders', result: 'hit' }, 3);
    metrics.cache.inc({ namespace: 'orders', result: 'miss' }, 1);
    metrics.cache.inc({ namespace: 'orders', result: 'error' }, 2);
    metrics.cache.inc({ namespace: 'other', result: 'hit' }, 50);
    for (const [status, n] of [
      ['200', 5],
      ['400', 2],
      ['503', 1],
    ] as const)
      metrics.requests.inc({ op: 'GetCount', namespace: 'orders', status, code: 'X' }, n);
    metrics.rollupLag.observe({ namespace: 'orders' }, 0.7);
    metrics.rollups.inc({ namespace: 'orders', result: 'rolled' }, 4);
    metrics.queueDepth.set({ namespace: 'orders' }, 3);
    metrics.triggersDropped.inc({ namespace: 'orders' }, 2);
    const errors = new RecentErrors();
    errors.record({ namespace: 'orders', code: 'UNAVAILABLE', message: 'Cassandra is unavailable' });
    const r = await collectStatus({
      registry: { list: () => [served('orders', 'Eventual'), served('views', 'BestEffort')], errors: ['bad.yaml'] },
      metrics,
      readiness: () => Promise.resolve(readiness),
      recentErrors: errors,
      now: () => Date.parse('2024-10-05T14:48:00Z'),
    });
    expect(r.namespaces[0]).toEqual({
      name: 'orders',
      counter_type: 'Eventual',
      keyspace: 'tally_orders',
      ready: true,
      requests: { total: 8, client_errors: 2, server_errors: 1 },
      cache: { hits: 3, misses: 1, errors: 2, hit_ratio: 0.75 },
      rollup: {
        lag_p50_seconds: 0.75,
        lag_p99_seconds: expect.any(Number),
        rolled: 4,
        queue_depth: 3,
        triggers_dropped: 2,
      },
    });
    expect(r.namespaces[1]).toEqual({
      name: 'views',
      counter_type: 'BestEffort',
      keyspace: null,
      ready: true,
      requests: { total: 0, client_errors: 0, server_errors: 0 },
      cache: null,
      rollup: null,
    });
    expect(r.recent_errors).toEqual([
      {
        time: expect.any(String),
        namespace: 'orders',
        code: 'UNAVAILABLE',
        message: 'Cassandra is unavailable',
        count: 1,
      },
    ]);
    expect(r.generated_at).toBe('2024-10-05T14:48:00.000Z');
    expect(r.config_errors).toEqual(['bad.yaml']);
    expect(matchesDocument(r)).toBe(true);
  });

  it('shows a blank, not an error, for a metric that is not registered (renamed)', async () => {
    const r = await collectStatus({
      registry: { list: () => [served('orders', 'Eventual')], errors: [] },
      metrics: { registry: new Registry() },
      readiness: () => Promise.resolve(readiness),
      recentErrors: new RecentErrors(),
    });
    expect(r.namespaces[0]!.cache).toEqual({ hits: null, misses: null, errors: null, hit_ratio: null });
    expect(r.namespaces[0]!.rollup!.lag_p50_seconds).toBeNull();
    expect(r.clock).toEqual({ offset_seconds: null, uncertainty_seconds: null });
    expect(matchesDocument(r)).toBe(true);
    expect(renderStatusPage(r)).toContain('<b class="hit-ratio">—</b>');
  });
});

describe('the recent errors', () => {
  it('keeps the newest, newest first, each message cut to a glance', () => {
    let t = 0;
    const errors = new RecentErrors(3, () => (t += 1000));
    for (let i = 1; i <= 5; i++) errors.record({ namespace: 'orders', code: 'UNAVAILABLE', message: `#${i}` });
    expect(errors.list().map((e) => e.message)).toEqual(['#5', '#4', '#3']);
    expect(errors.list()[0]!.time).toBe('1970-01-01T00:00:05.000Z');
    errors.record({ code: 'INTERNAL', message: 'x'.repeat(1000) });
    expect(errors.list()[0]!.message).toHaveLength(300);
    expect(errors.list()[0]).not.toHaveProperty('namespace');
  });

  it('counts a repeat instead of listing it again, and moves it to the top', () => {
    let t = 0;
    const errors = new RecentErrors(3, () => (t += 1000));
    const retried = { namespace: 'orders', code: 'ROLLUP_FAILED', message: 'checkout: timed out' };
    errors.record(retried);
    errors.record({ namespace: 'orders', code: 'UNAVAILABLE', message: 'memcached is unavailable' });
    for (let i = 0; i < 10; i++) errors.record(retried);
    // The same message in another namespace is another failure.
    errors.record({ ...retried, namespace: 'payments' });
    expect(errors.list()).toEqual([
      { time: '1970-01-01T00:00:13.000Z', ...retried, namespace: 'payments', count: 1 },
      { time: '1970-01-01T00:00:12.000Z', ...retried, count: 11 },
      {
        time: '1970-01-01T00:00:02.000Z',
        namespace: 'orders',
        code: 'UNAVAILABLE',
        message: 'memcached is unavailable',
        count: 1,
      },
    ]);
  });
});

describe('GET /status and /status.json', () => {
  let server: Server;
  let url: string;

  beforeAll(async () => {
    const recentErrors = new RecentErrors();
    recentErrors.record({ namespace: 'orders', code: 'ROLLUP_FAILED', message: 'checkout: timed out' });
    const app = createApp({
      registry: { list: () => [served('orders', 'Eventual')], errors: [] },
      metrics: createRuntimeMetrics(),
      log: pino({ level: 'silent' }),
      readiness: () => Promise.resolve(readiness),
      recentErrors,
    });
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('answers the page as HTML that may run no script, and the same data as JSON the document describes', async () => {
    const page = await fetch(`${url}/status`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'");
    const text = await page.text();
    expect(text).toContain('data-namespace="orders"');
    expect(text).toContain('checkout: timed out');

    const json = await fetch(`${url}/status.json`);
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await json.json()) as StatusReport;
    expect(body.namespaces.map((n) => n.name)).toEqual(['orders']);
    expect(body.recent_errors[0]).toMatchObject({ namespace: 'orders', code: 'ROLLUP_FAILED' });
    expect(matchesDocument(body)).toBe(true);
  });

  it('answers 405 for a method /status.json does not have', async () => {
    const res = await fetch(`${url}/status.json`, { method: 'POST' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
  });
});
