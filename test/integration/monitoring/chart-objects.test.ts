import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CHART,
  ENABLED,
  NAMESPACE,
  OPERATOR_JOB,
  RUNTIME_JOB,
  dashboard,
  dashboardConfigMap,
  dataPanels,
  helmTemplate,
  ofKind,
  render,
  ruleGroups,
} from './rendered';

// The chart's PrometheusRule and Grafana dashboard ConfigMap, rendered offline with helm template. Whether their
// queries find data is prometheus.test.ts's business.

const ALERTS = [
  'TallyUnavailable',
  'TallyServerErrors',
  'TallyRollupLagHigh',
  'TallyRollupTriggersDropped',
  'TallyClockOffset',
  'TallyOperatorNoLeader',
  'TallyReconcileErrors',
  'TallyRollupUnhealthy',
];

describe("the chart's monitoring objects", () => {
  it('are not rendered unless enabled', () => {
    const objects = render();
    expect(ofKind(objects, 'PrometheusRule')).toEqual([]);
    expect(ofKind(objects, 'ConfigMap').map((c) => c.metadata.name)).not.toContain('tl-tally-dashboard');
  });

  it("render a PrometheusRule whose alerts select this release's Services as the ServiceMonitors scrape them", () => {
    const objects = render({ ...ENABLED, 'monitoring.prometheusRule.labels': { release: 'kube-prometheus' } });
    const [rule] = ofKind(objects, 'PrometheusRule');
    expect(rule).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      metadata: { namespace: NAMESPACE, labels: { release: 'kube-prometheus', 'app.kubernetes.io/instance': 'tl' } },
    });
    const rules = ruleGroups(objects).flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(ALERTS);
    // The ServiceMonitors' job label is the Service's name: the selectors must name the Services the chart renders.
    const services = ofKind(objects, 'Service').map((s) => s.metadata.name);
    expect(services).toEqual(expect.arrayContaining([RUNTIME_JOB, OPERATOR_JOB]));
    for (const r of rules) {
      const jobs = [...r.expr.matchAll(/job="([^"]*)"/g)].map((m) => m[1]);
      expect({ alert: r.alert, jobs: [...new Set(jobs)] }).toEqual({
        alert: r.alert,
        jobs: [r.alert.match(/Operator|Reconcile|RollupUnhealthy/) ? OPERATOR_JOB : RUNTIME_JOB],
      });
      // Every metric selector is scoped: no bare metric name that would match another release's series.
      expect(r.expr.replace(/\{[^}]*\}/g, '{}')).not.toMatch(
        /\b(tally|controller_runtime|workqueue|leader_election)_\w+\b(?!\{)/,
      );
      expect(r.labels?.severity).toMatch(/^(warning|critical)$/);
      expect(r.annotations).toMatchObject({
        summary: expect.any(String),
        description: expect.any(String),
        runbook_url: expect.stringContaining(`docs/monitoring.md#${r.alert.toLowerCase()}`),
      });
    }
  });

  it('takes thresholds, extra alert labels and selectors from the values', () => {
    const rules = ruleGroups(
      render({
        ...ENABLED,
        'monitoring.prometheusRule.unavailableRatio': 0.2,
        'monitoring.prometheusRule.serverErrorRatio': 0.002,
        'monitoring.prometheusRule.rollupLagSeconds': 90,
        'monitoring.prometheusRule.clockOffsetSeconds': 0.4,
        'monitoring.prometheusRule.rollupUnhealthyFor': '1h',
        'monitoring.prometheusRule.alertLabels': { team: 'platform' },
        'monitoring.prometheusRule.runtimeSelector': 'app="tally-runtime"',
        'monitoring.prometheusRule.operatorSelector': 'app="tally-operator"',
      }),
    ).flatMap((g) => g.rules);
    const by = new Map(rules.map((r) => [r.alert, r]));
    expect(by.get('TallyUnavailable')!.expr).toMatch(/> 0\.2\s*$/);
    expect(by.get('TallyServerErrors')!.expr).toMatch(/> 0\.002\s*$/);
    expect(by.get('TallyRollupLagHigh')!.expr).toMatch(/> 90\s*$/);
    expect(by.get('TallyClockOffset')!.expr).toMatch(/> 0\.4\s*$/);
    expect(by.get('TallyRollupUnhealthy')!.for).toBe('1h');
    for (const r of rules) {
      expect(r.labels).toMatchObject({ team: 'platform', severity: expect.any(String) });
      expect(r.expr).not.toContain('job=');
      expect(r.expr).toContain(
        r.alert.match(/Operator|Reconcile|RollupUnhealthy/) ? 'app="tally-operator"' : 'app="tally-runtime"',
      );
    }
  });

  it('refuses monitoring values the schema does not admit', () => {
    for (const bad of [
      { 'monitoring.prometheusRule.unavailableRatio': 2 },
      { 'monitoring.prometheusRule.rollupUnhealthyFor': '15 minutes' },
      { 'monitoring.grafanaDashboard.sidecarLabel': '' },
      { 'monitoring.grafanaDashboard.folder': 'x' },
    ]) {
      const res = helmTemplate(bad);
      expect({ bad, status: res.status }).toEqual({ bad, status: 1 });
      expect(res.stderr).toContain("values don't meet the specifications of the schema");
    }
  });

  it("render the dashboard file unchanged in a ConfigMap Grafana's sidecar picks up", () => {
    const objects = render({
      ...ENABLED,
      'monitoring.grafanaDashboard.namespace': 'grafana',
      'monitoring.grafanaDashboard.annotations': { grafana_folder: 'Tally' },
    });
    const cm = dashboardConfigMap(objects);
    expect(cm.metadata).toMatchObject({
      namespace: 'grafana',
      labels: { grafana_dashboard: '1' },
      annotations: { grafana_folder: 'Tally' },
    });
    expect(cm.data['tally.json']).toBe(fs.readFileSync(path.join(CHART, 'dashboards', 'tally.json'), 'utf8').trimEnd());
    const d = dashboard(objects);
    expect(d.uid).toBe('tally-overview');
    const panels = dataPanels(d);
    expect(panels.length).toBeGreaterThanOrEqual(15);
    expect(new Set(d.panels.map((p) => p.id)).size).toBe(d.panels.length);
    for (const p of panels) {
      expect({ title: p.title, uid: p.datasource?.uid }).toEqual({ title: p.title, uid: '${datasource}' });
      expect({ title: p.title, targets: p.targets?.length ?? 0 }).not.toEqual({ title: p.title, targets: 0 });
      // Scoped by the job variables, as the alerts are by the job label.
      for (const t of p.targets ?? []) expect(t.expr).toMatch(/job=~"\$(runtime_job|operator_job)/);
    }
    expect(d.templating.list.map((v) => v.name)).toEqual(['datasource', 'runtime_job', 'operator_job', 'namespace']);
  });

  it('moves the sidecar label when told to', () => {
    const cm = dashboardConfigMap(
      render({
        ...ENABLED,
        'monitoring.grafanaDashboard.sidecarLabel': 'grafana.io/dashboard',
        'monitoring.grafanaDashboard.sidecarLabelValue': 'tally',
      }),
    );
    expect(cm.metadata.labels).toMatchObject({ 'grafana.io/dashboard': 'tally' });
    expect(cm.metadata.labels).not.toHaveProperty('grafana_dashboard');
  });
});
