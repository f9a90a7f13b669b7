import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { requireEnv } from '../../support/env';

/** The chart's monitoring objects as `helm template` renders them, for the render and the Prometheus tests. */

export const CHART = path.resolve(__dirname, '../../../helm/tally');
export const RELEASE = 'tl';
export const NAMESPACE = 'tally-system';
/** The job labels the chart's ServiceMonitors give the targets: the Services' names. */
export const RUNTIME_JOB = `${RELEASE}-tally-runtime`;
export const OPERATOR_JOB = `${RELEASE}-tally-operator-metrics`;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleGroup {
  name: string;
  rules: AlertRule[];
}

export interface DashboardTarget {
  expr: string;
  refId: string;
  legendFormat?: string;
}
export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: DashboardTarget[];
  panels?: DashboardPanel[];
}
export interface Dashboard {
  uid: string;
  title: string;
  panels: DashboardPanel[];
  templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
}

/** `helm template` with --set-json pairs; throws with helm's stderr when it fails. */
export function helmTemplate(setJson: Record<string, unknown> = {}): {
  status: number | null;
  objects: K8sObject[];
  stderr: string;
} {
  const args = ['template', RELEASE, CHART, '--namespace', NAMESPACE, '--kube-version', '1.36.3'];
  for (const [key, value] of Object.entries(setJson)) args.push('--set-json', `${key}=${JSON.stringify(value)}`);
  const res = spawnSync(requireEnv('TALLY_HELM'), args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const objects =
    res.status === 0 ? yaml.loadAll(res.stdout).filter((d): d is K8sObject => d !== null && typeof d === 'object') : [];
  return { status: res.status, objects, stderr: res.stderr };
}

export function render(setJson: Record<string, unknown> = {}): K8sObject[] {
  const res = helmTemplate(setJson);
  if (res.status !== 0) throw new Error(`helm template failed (${res.status}): ${res.stderr}`);
  return res.objects;
}

export const ENABLED = { 'monitoring.prometheusRule.enabled': true, 'monitoring.grafanaDashboard.enabled': true };

export function ofKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

export function ruleGroups(objects: K8sObject[]): RuleGroup[] {
  const [rule, ...more] = ofKind(objects, 'PrometheusRule');
  if (!rule || more.length) throw new Error(`expected one PrometheusRule, found ${more.length + (rule ? 1 : 0)}`);
  return (rule as unknown as { spec: { groups: RuleGroup[] } }).spec.groups;
}

export function dashboardConfigMap(objects: K8sObject[]): K8sObject & { data: Record<string, string> } {
  const found = ofKind(objects, 'ConfigMap').filter((o) => o.metadata.name === `${RELEASE}-tally-dashboard`);
  if (found.length !== 1) throw new Error(`expected one dashboard ConfigMap, found ${found.length}`);
  return found[0] as K8sObject & { data: Record<string, string> };
}

export function dashboard(objects: K8sObject[]): Dashboard {
  return JSON.parse(dashboardConfigMap(objects).data['tally.json']!) as Dashboard;
}

/** Every panel that shows data (rows hold panels of their own when collapsed). */
export function dataPanels(d: Dashboard): DashboardPanel[] {
  return d.panels.flatMap((p) => (p.type === 'row' ? (p.panels ?? []) : [p]));
}
