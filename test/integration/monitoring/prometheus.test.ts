import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BatchV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import * as yaml from 'js-yaml';
import pino from 'pino';
import { cronJobName } from '../../../api/names';
import { startOperator, type Operator } from '../../../operator/operator';
import { waitFor } from '../../stack/wait';
import { createNamespace, deleteNamespace, installCrd, kubeConfig } from '../../support/kube';
import { ensurePrometheus, promtool, startPrometheus, type Prometheus, type Sample } from '../../support/prometheus';
import {
  call,
  dropKeyspaces,
  startInProcess,
  uniqueSuffix,
  type InProcessRuntime,
} from '../../support/runtime-harness';
import { TcpProxy } from '../../support/tcp-proxy';
import { createCounterNamespace, stackOperatorConfig } from '../operator/reconcile-support';
import { ENABLED, OPERATOR_JOB, RUNTIME_JOB, dashboard, dataPanels, render, ruleGroups } from './rendered';

/**
 * The chart's alerts and dashboard against a real Prometheus (Debian's), scraping a runtime and an operator in this
 * process every second on loopback, after traffic: adds and reads on an Eventual namespace (rollups), adds on a
 * BestEffort one with Memcached cut off (503s), a CounterNamespace reconciled, and its rollup CronJob's status set
 * as the CronJob controller writes it after a failed run (its schedule is yearly, so the controller never runs it).
 *
 * Every alert's expression without its threshold comparison (the value it compares) and every dashboard query must
 * return data, and so must each metric selector in them: a misspelt metric or label value, or a selector for a
 * series nothing exports, leaves one empty. Thresholds are checked where this traffic crosses them
 * (TallyUnavailable, TallyRollupUnhealthy).
 */

const silent = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
/** Dashboard variables as Grafana would fill them for this release; the rate window spans the whole test. */
const VARIABLES: Record<string, string> = {
  $runtime_job: RUNTIME_JOB,
  $operator_job: OPERATOR_JOB,
  $namespace: '.*',
  $__rate_interval: '5m',
};

/** The value an alert compares: its expression without the trailing threshold comparison. */
function withoutThreshold(expr: string): string {
  const value = expr.trim().replace(/\s*(>|<|==|!=|>=|<=)\s*-?[\d.e+]+$/, '');
  if (value === expr.trim()) throw new Error(`no threshold comparison at the end of: ${expr}`);
  return value;
}

/** The metric selectors of a query (`name{matchers}`): each must find series of its own. */
function selectors(expr: string): string[] {
  return [...new Set(expr.match(/[a-zA-Z_:][\w:]*\{[^}]*\}/g) ?? [])];
}

function fill(expr: string): string {
  return Object.entries(VARIABLES).reduce((e, [name, value]) => e.split(name).join(value), expr);
}

describe("the chart's alerts and dashboard against Prometheus", () => {
  const run = uniqueSuffix();
  const ns = `tally-mon-${run}`;
  const ev = `ev-${run}`;
  const be = `be-${run}`;
  const cns = `cns-${run}`;
  const keyspaces = [ev, be, cns].map((n) => `tally_${n.replace(/-/g, '_')}`);
  const groups = ruleGroups(render(ENABLED));
  const alerts = groups.flatMap((g) => g.rules);
  const panels = dataPanels(dashboard(render(ENABLED)));
  let kc: KubeConfig;
  let memcached: TcpProxy;
  let runtime: InProcessRuntime;
  let operator: Operator;
  let prometheus: Prometheus;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-rules-'));

  beforeAll(async () => {
    await ensurePrometheus();
    kc = kubeConfig();
    await installCrd(kc);
    await createNamespace(kc, ns);
    memcached = await TcpProxy.forAddress(process.env.MEMCACHED_SERVERS!).start();
    runtime = await startInProcess(
      [
        { name: ev, counterType: 'Eventual' },
        { name: be, counterType: 'BestEffort' },
      ],
      { MEMCACHED_SERVERS: memcached.address },
    );
    operator = await startOperator({
      config: stackOperatorConfig({ watchNamespaces: [ns], leaseNamespace: ns, leaseName: 'tally-operator', port: 0 }),
      kc,
      log: silent,
      lease: { durationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 300 },
    });
    prometheus = await startPrometheus(
      [
        { job: RUNTIME_JOB, address: `127.0.0.1:${runtime.runtime.port}` },
        { job: OPERATOR_JOB, address: `127.0.0.1:${operator.port}` },
      ],
      { scrapeSeconds: 1, ruleGroups: groups },
    );

    await waitFor('the operator to lead', () => operator.isLeader, { timeoutMs: 15_000 });
    await createCounterNamespace(kc, ns, cns, { counterType: 'Eventual', rollup: { schedule: '0 0 1 1 *' } });
    // Traffic over a few scrapes: rates need two samples in their window.
    for (let second = 0; second < 6; second++) {
      for (let i = 0; i < 10; i++) {
        const counter = `c-${i}`;
        expect((await call(runtime.url, 'AddCount', { namespace: ev, counter_name: counter, delta: 1 })).status).toBe(
          200,
        );
        await call(runtime.url, 'GetCount', { namespace: ev, counter_name: counter });
        await call(runtime.url, 'AddCount', { namespace: be, counter_name: counter, delta: 1 });
      }
      if (second === 2) memcached.cut(); // BestEffort needs Memcached: its adds answer 503 from here on
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect((await call(runtime.url, 'AddCount', { namespace: be, counter_name: 'x', delta: 1 })).status).toBe(503);

    // A failed sweeper run, as the CronJob controller records one: scheduled after the last success, none active.
    const batch = kc.makeApiClient(BatchV1Api);
    await waitFor('the rollup CronJob', () => batch.readNamespacedCronJob({ namespace: ns, name: cronJobName(cns) }), {
      timeoutMs: 30_000,
    });
    const now = Date.now();
    await batch.patchNamespacedCronJobStatus(
      {
        namespace: ns,
        name: cronJobName(cns),
        body: {
          status: {
            lastScheduleTime: new Date(now - 60_000).toISOString(),
            lastSuccessfulTime: new Date(now - 3_600_000).toISOString(),
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await waitFor(
      'the operator to report the failed sweeper',
      async () => /tally_operator_rollup_healthy\{[^}]*\} 0/.test(await operator.metrics.registry.metrics()),
      { timeoutMs: 30_000 },
    );
    await prometheus.waitForScrapes(10);
    await new Promise((r) => setTimeout(r, 2000)); // the gauge's scrape, then a rule evaluation after it
  });

  afterAll(async () => {
    await prometheus?.stop();
    await runtime?.close();
    await operator?.stop();
    await memcached?.close();
    if (kc) await deleteNamespace(kc, ns, false);
    await dropKeyspaces(keyspaces);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Asserts the query returns at least one sample, and one with a number (a quantile over nothing is NaN). */
  const expectData = async (what: string, expr: string): Promise<Sample[]> => {
    const samples = await prometheus.query(expr);
    const finite = samples.filter((s) => Number.isFinite(Number(s.value[1])));
    expect({ what, expr, samples: samples.length > 0, finite: finite.length > 0 }).toEqual({
      what,
      expr,
      samples: true,
      finite: true,
    });
    return samples;
  };

  it('promtool check rules passes the rendered PrometheusRule, and fails a broken one', () => {
    const file = path.join(tmp, 'rules.yaml');
    fs.writeFileSync(file, yaml.dump({ groups }));
    const ok = promtool(['check', 'rules', file]);
    expect(ok).toEqual({
      status: 0,
      output: expect.stringContaining(`SUCCESS: ${alerts.length} rules found`) as unknown,
    });

    const broken = structuredClone(groups);
    broken[0]!.rules[0]!.expr = broken[0]!.rules[0]!.expr.replace('[5m]', '[5m');
    fs.writeFileSync(file, yaml.dump({ groups: broken }));
    expect(promtool(['check', 'rules', file]).status).toBe(1);
  });

  it("every alert's compared value, and each selector in it, returns data", async () => {
    expect(alerts.length).toBe(8);
    for (const alert of alerts) {
      await expectData(alert.alert, withoutThreshold(alert.expr));
      for (const selector of selectors(alert.expr)) await expectData(`${alert.alert}: ${selector}`, selector);
    }
  });

  it('Prometheus evaluates every rule without error, and this traffic makes two alerts pending', async () => {
    const rules = await prometheus.rules();
    const byName = (a: string[], b: string[]) => a[0]!.localeCompare(b[0]!);
    expect(rules.map((r) => [r.name, r.health, r.lastError ?? '']).sort(byName)).toEqual(
      alerts.map((a) => [a.alert, 'ok', '']).sort(byName),
    );
    const state = new Map(rules.map((r) => [r.name, r]));
    expect(state.get('TallyUnavailable')?.alerts?.map((a) => [a.labels.namespace, a.state])).toEqual([[be, 'pending']]);
    expect(state.get('TallyRollupUnhealthy')?.alerts?.map((a) => [a.labels.counternamespace, a.state])).toEqual([
      [`${ns}/${cns}`, 'pending'],
    ]);
    // With a leader, no errors, no dropped triggers and a clock in sync, the others stay inactive.
    for (const name of ['TallyOperatorNoLeader', 'TallyServerErrors', 'TallyRollupTriggersDropped', 'TallyClockOffset'])
      expect([name, state.get(name)?.state]).toEqual([name, 'inactive']);
  });

  it("every dashboard panel's queries, and each selector in them, return data", async () => {
    expect(panels.length).toBeGreaterThanOrEqual(15);
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        const expr = fill(target.expr);
        expect(expr).not.toContain('$');
        await expectData(`${panel.title} ${target.refId}`, expr);
        for (const selector of selectors(expr))
          await expectData(`${panel.title} ${target.refId}: ${selector}`, selector);
      }
    }
  });

  it("the dashboard's variables find this release's jobs and namespaces", async () => {
    const variables = dashboard(render(ENABLED)).templating.list.filter((v) => v.type === 'query');
    const found: Record<string, string[]> = {};
    for (const v of variables) {
      const query = typeof v.query === 'string' ? v.query : v.query!.query;
      const m = /^label_values\((.+), (\w+)\)$/.exec(query);
      if (!m) throw new Error(`${v.name}: not a label_values(selector, label) query: ${query}`);
      const samples = await prometheus.query(fill(m[1]!));
      found[v.name] = [...new Set(samples.map((s) => s.metric[m[2]!]!))].sort();
    }
    expect(found).toEqual({
      runtime_job: [RUNTIME_JOB],
      operator_job: [OPERATOR_JOB],
      namespace: [be, ev].sort(),
    });
  });

  it('a query for a metric nothing exports finds nothing (the checks above can fail)', async () => {
    expect(await prometheus.query(`tally_requests_totl{job="${RUNTIME_JOB}"}`)).toEqual([]);
    expect(await prometheus.query(`tally_requests_total{job="${RUNTIME_JOB}", code="UNAVAILABL"}`)).toEqual([]);
  });
});
