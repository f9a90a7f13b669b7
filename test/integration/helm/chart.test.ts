import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { requireEnv } from '../../support/env';
import { resolveCounterNamespace } from '../../../api/resolve';
import { DEFAULT_NEAR_CACHE_LIMITS } from '../../../runtime/cache/near-cache';
import { desiredCronJob } from '../../../operator/reconcile/cronjob';
import { counterNamespace, operatorConfig } from '../../../operator/reconcile/fakes';

// The chart rendered offline (helm lint, helm template) over several value sets and checked structurally.

const chart = path.resolve(__dirname, '../../../helm/tally');
const KUBE_VERSION = '1.36.3';
const RELEASE = 'tl';
const NAMESPACE = 'tally-system';

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface RuntimePort {
  port: number;
  nodePort?: number;
}
interface PodSpec {
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
  imagePullSecrets?: { name: string }[];
  securityContext?: Record<string, unknown>;
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] } }[];
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-chart-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function helm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(requireEnv('TALLY_HELM'), args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

let counter = 0;
function templateArgs(values: object, extra: string[] = []): string[] {
  const file = path.join(tmp, `values-${counter++}.yaml`);
  fs.writeFileSync(file, yaml.dump(values));
  return ['template', RELEASE, chart, '--namespace', NAMESPACE, '--kube-version', KUBE_VERSION, '-f', file, ...extra];
}

function render(values: object = {}, extra: string[] = []): K8sObject[] {
  const res = helm(templateArgs(values, extra));
  if (res.status !== 0) throw new Error(`helm template failed (${res.status}): ${res.stderr}`);
  return yaml.loadAll(res.stdout).filter((d): d is K8sObject => d !== null && typeof d === 'object');
}

function find(objs: K8sObject[], kind: string, name: string, namespace?: string): K8sObject {
  const hit = objs.filter(
    (o) =>
      o.kind === kind && o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace),
  );
  if (hit.length !== 1) {
    const have = objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`).join(', ');
    throw new Error(`expected one ${kind} ${namespace ?? '*'}/${name}, found ${hit.length}; have: ${have}`);
  }
  return hit[0]!;
}
const kinds = (objs: K8sObject[]): string[] => [...new Set(objs.map((o) => o.kind))].sort();
const ofKind = (objs: K8sObject[], kind: string): K8sObject[] => objs.filter((o) => o.kind === kind);

function podSpec(deploy: K8sObject): PodSpec {
  return (deploy as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
}
function container(deploy: K8sObject): Container {
  const c = podSpec(deploy).containers[0];
  if (!c) throw new Error(`${deploy.metadata.name} has no container`);
  return c;
}
function env(deploy: K8sObject): Map<string, EnvVar> {
  return new Map((container(deploy).env ?? []).map((e) => [e.name, e]));
}
function envValue(deploy: K8sObject, name: string): string | undefined {
  return env(deploy).get(name)?.value;
}
function rules(obj: K8sObject): Rule[] {
  return (obj as unknown as { rules: Rule[] }).rules;
}
/** Rules as "group/resource" → sorted verbs, so the comparison is exact and order-free. */
function ruleMap(obj: K8sObject): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const r of rules(obj)) {
    for (const g of r.apiGroups) {
      for (const res of r.resources) out[`${g}/${res}`] = [...(out[`${g}/${res}`] ?? []), ...r.verbs].sort();
    }
  }
  return out;
}

/** Exactly the verbs operator/ calls; server-side apply needs create as well as patch for an object not there yet. */
const OPERATOR_RULES = {
  'tally.dev/counternamespaces': ['get', 'list', 'patch', 'watch'],
  'tally.dev/counternamespaces/status': ['patch'],
  'tally.dev/counternamespaces/finalizers': ['update'],
  '/configmaps': ['create', 'list', 'patch', 'watch'],
  'batch/cronjobs': ['create', 'list', 'patch', 'watch'],
  // The rollup Jobs' Secrets: written, never listed, watched or read.
  '/secrets': ['create', 'patch'],
  '/events': ['create'],
};
const RUNTIME_RULES = {
  '/configmaps': ['get', 'list', 'watch'],
  'tally.dev/counternamespaces': ['get', 'list', 'watch'],
};
const LEASE_RULES = { 'coordination.k8s.io/leases': ['create', 'get', 'update'] };
/** What the runtime needs to check its callers, and nothing more. */
const AUTH_RULES = {
  'authentication.k8s.io/tokenreviews': ['create'],
  'authorization.k8s.io/subjectaccessreviews': ['create'],
};
const COUNTER_ROLES = ['reader', 'writer', 'admin'];

const operatorName = `${RELEASE}-tally-operator`;
const runtimeName = `${RELEASE}-tally-runtime`;
const memcachedName = `${RELEASE}-tally-memcached`;

function expectSecurePod(deploy: K8sObject): void {
  const spec = podSpec(deploy);
  expect(spec.securityContext).toMatchObject({
    runAsNonRoot: true,
    runAsUser: 10001,
    seccompProfile: { type: 'RuntimeDefault' },
  });
  for (const c of spec.containers) {
    expect(c.securityContext).toEqual(
      expect.objectContaining({
        runAsNonRoot: true,
        runAsUser: 10001,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      }),
    );
    expect(c.resources?.requests?.cpu).toBeDefined();
    expect(c.resources?.requests?.memory).toBeDefined();
  }
}

function expectProbes(deploy: K8sObject, port: number): void {
  const c = container(deploy);
  const named = (p: string | number | undefined): number | undefined =>
    typeof p === 'number' ? p : c.ports?.find((x) => x.name === p)?.containerPort;
  expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
  expect(named(c.livenessProbe?.httpGet?.port)).toBe(port);
  expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
  expect(named(c.readinessProbe?.httpGet?.port)).toBe(port);
}

describe('helm chart (helm/tally)', () => {
  it('passes helm lint --strict', () => {
    const res = helm(['lint', '--strict', chart, '--kube-version', KUBE_VERSION]);
    expect(res.stderr + res.stdout).toContain('0 chart(s) failed');
    expect(res.status).toBe(0);
  });

  it('ships counter reader, writer and admin ClusterRoles aggregated into view, edit and admin, and an observer', () => {
    const objs = render({
      serviceMonitor: { enabled: true, prometheusServiceAccount: { name: 'prometheus', namespace: 'mon' } },
    });
    const role = (name: string) =>
      find(objs, 'ClusterRole', `${RELEASE}-tally-${name}`) as unknown as {
        metadata: { labels: Record<string, string> };
        rules: { apiGroups?: string[]; resources?: string[]; nonResourceURLs?: string[]; verbs: string[] }[];
      };
    const aggregatedInto = (name: string): string[] =>
      Object.keys(role(name).metadata.labels)
        .filter((l) => l.startsWith('rbac.authorization.k8s.io/aggregate-to-'))
        .map((l) => l.slice('rbac.authorization.k8s.io/aggregate-to-'.length))
        .sort();
    expect(role('counter-reader').rules).toEqual([
      { apiGroups: ['tally.dev'], resources: ['counternamespaces/counters'], verbs: ['get'] },
    ]);
    expect(role('counter-writer').rules[0]!.verbs).toEqual(['get', 'update']);
    expect(role('counter-admin').rules[0]!.verbs).toEqual(['get', 'update', 'delete']);
    expect(aggregatedInto('counter-reader')).toEqual(['admin', 'edit', 'view']);
    expect(aggregatedInto('counter-writer')).toEqual(['admin', 'edit']);
    expect(aggregatedInto('counter-admin')).toEqual(['admin']);
    expect(role('observer').rules).toEqual([
      { nonResourceURLs: ['/metrics', '/status', '/status.json', '/v1/namespaces'], verbs: ['get'] },
    ]);
    const prometheus = find(objs, 'ClusterRoleBinding', `${RELEASE}-tally-observer-prometheus`) as unknown as {
      roleRef: { name: string };
      subjects: unknown[];
    };
    expect(prometheus.roleRef.name).toBe(`${RELEASE}-tally-observer`);
    expect(prometheus.subjects).toEqual([{ kind: 'ServiceAccount', name: 'prometheus', namespace: 'mon' }]);
    const plain = render({ counterRoles: { aggregateToDefaultRoles: false } });
    expect(
      Object.keys(find(plain, 'ClusterRole', `${RELEASE}-tally-counter-admin`).metadata.labels ?? {}).filter((l) =>
        l.startsWith('rbac.authorization.k8s.io/'),
      ),
    ).toEqual([]);
  });

  it('authenticates callers by default, and with runtime.auth.enabled false drops the review rights', () => {
    const envOf = (objs: K8sObject[]) =>
      Object.fromEntries(
        (
          find(objs, 'Deployment', runtimeName) as unknown as {
            spec: { template: { spec: { containers: Container[] } } };
          }
        ).spec.template.spec.containers[0]!.env!.map((e) => [e.name, e.value]),
      );
    const on = render({ runtime: { auth: { cacheSeconds: 30, audiences: ['tally', 'other'] } } });
    expect(envOf(on)).toMatchObject({
      TALLY_AUTH: 'kubernetes',
      TALLY_AUTH_CACHE_SECONDS: '30',
      TALLY_AUTH_AUDIENCES: 'tally,other',
    });
    expect(ruleMap(find(on, 'ClusterRole', `${runtimeName}-auth`))).toEqual(AUTH_RULES);
    const off = render({ runtime: { auth: { enabled: false } }, serviceMonitor: { enabled: true } });
    expect(envOf(off).TALLY_AUTH).toBe('none');
    expect(ofKind(off, 'ClusterRole').some((r) => r.metadata.name === `${runtimeName}-auth`)).toBe(false);
    const mon = find(off, 'ServiceMonitor', runtimeName) as unknown as {
      spec: { endpoints: Record<string, unknown>[] };
    };
    expect(mon.spec.endpoints[0]!.bearerTokenFile).toBeUndefined();
  });

  it('ships the CRD as a copy of crds/ and renders it only with --include-crds', () => {
    const repoCrd = fs.readFileSync(path.resolve(__dirname, '../../../crds/counternamespaces.tally.dev.yaml'), 'utf8');
    expect(fs.readFileSync(path.join(chart, 'crds/counternamespaces.tally.dev.yaml'), 'utf8')).toBe(repoCrd);
    expect(ofKind(render(), 'CustomResourceDefinition')).toHaveLength(0);
    const crd = find(render({}, ['--include-crds']), 'CustomResourceDefinition', 'counternamespaces.tally.dev');
    expect((crd as unknown as { spec: { group: string } }).spec.group).toBe('tally.dev');
  });

  describe('defaults (all namespaces, bundled Memcached)', () => {
    let objs: K8sObject[];
    beforeAll(() => {
      objs = render();
    });

    it('renders the expected kinds and nothing optional', () => {
      expect(kinds(objs)).toEqual([
        'ClusterRole',
        'ClusterRoleBinding',
        'Deployment',
        'PodDisruptionBudget',
        'Role',
        'RoleBinding',
        'Service',
        'ServiceAccount',
      ]);
      expect(
        ofKind(objs, 'Deployment')
          .map((d) => d.metadata.name)
          .sort(),
      ).toEqual([memcachedName, operatorName, runtimeName].sort());
      expect(
        ofKind(objs, 'Service')
          .map((d) => d.metadata.name)
          .sort(),
      ).toEqual([memcachedName, `${operatorName}-metrics`, runtimeName].sort());
      // No credentials given: no Secret, no credential env.
      expect(ofKind(objs, 'Secret')).toHaveLength(0);
      for (const o of objs) {
        expect(o.metadata.labels).toMatchObject({
          'app.kubernetes.io/name': 'tally',
          'app.kubernetes.io/instance': RELEASE,
          'app.kubernetes.io/managed-by': 'Helm',
        });
      }
    });

    it('grants the operator exactly its verbs cluster-wide and a leader-election Role in the release namespace', () => {
      expect(ruleMap(find(objs, 'ClusterRole', operatorName))).toEqual(OPERATOR_RULES);
      const crb = find(objs, 'ClusterRoleBinding', operatorName) as unknown as {
        roleRef: { kind: string; name: string };
        subjects: { kind: string; name: string; namespace: string }[];
      };
      expect(crb.roleRef).toMatchObject({ kind: 'ClusterRole', name: operatorName });
      expect(crb.subjects).toEqual([{ kind: 'ServiceAccount', name: operatorName, namespace: NAMESPACE }]);
      const lease = find(objs, 'Role', `${operatorName}-leader-election`, NAMESPACE);
      expect(ruleMap(lease)).toEqual(LEASE_RULES);
      // get and update only on the operator's own Lease (the name the Deployment passes); create cannot be scoped.
      expect(rules(lease)).toEqual([
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          resourceNames: [operatorName],
          verbs: ['get', 'update'],
        },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      ]);
      expect(envValue(find(objs, 'Deployment', operatorName), 'TALLY_LEASE_NAME')).toBe(operatorName);
      expect(find(objs, 'RoleBinding', `${operatorName}-leader-election`, NAMESPACE)).toBeDefined();
      // The only Role is the lease one.
      expect(ofKind(objs, 'Role')).toHaveLength(1);
    });

    it('gives the runtime read-only access to ConfigMaps and CounterNamespaces, nothing more', () => {
      const role = find(objs, 'ClusterRole', runtimeName);
      expect(ruleMap(role)).toEqual(RUNTIME_RULES);
      const crb = find(objs, 'ClusterRoleBinding', runtimeName) as unknown as { subjects: { name: string }[] };
      expect(crb.subjects.map((s) => s.name)).toEqual([runtimeName]);
    });

    it('wires the operator Deployment', () => {
      const op = find(objs, 'Deployment', operatorName);
      expect(container(op).command).toEqual(['node', 'dist/cli/main.js', 'operator']);
      expect(container(op).image).toBe('tally-operator:0.1.0');
      expect(podSpec(op).serviceAccountName).toBe(operatorName);
      expect(envValue(op, 'CASSANDRA_CONTACT_POINTS')).toBe('cassandra:9042');
      expect(envValue(op, 'CASSANDRA_LOCAL_DC')).toBe('dc1');
      expect(envValue(op, 'MEMCACHED_SERVERS')).toBe(`${memcachedName}.${NAMESPACE}.svc:11211`);
      expect(envValue(op, 'TALLY_RUNTIME_IMAGE')).toBe('tally-runtime:0.1.0');
      expect(envValue(op, 'TALLY_IMAGE_PULL_POLICY')).toBe('IfNotPresent');
      expect(envValue(op, 'TALLY_IMAGE_PULL_SECRETS')).toBe('');
      expect(envValue(op, 'TALLY_WATCH_NAMESPACES')).toBe('');
      expect(envValue(op, 'TALLY_LEASE_NAMESPACE')).toBe(NAMESPACE);
      expect(envValue(op, 'TALLY_OPERATOR_PORT')).toBe('8081');
      expect(env(op).get('POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
      expect(env(op).has('CASSANDRA_USERNAME')).toBe(false);
      expect(env(op).has('TALLY_CASSANDRA_RUNTIME_ROLE')).toBe(false);
      expect(env(op).has('TALLY_CASSANDRA_SECRET')).toBe(false);
      expectSecurePod(op);
      expectProbes(op, 8081);
      const metrics = find(objs, 'Service', `${operatorName}-metrics`) as unknown as {
        spec: { ports: { port: number }[]; selector: Record<string, string> };
      };
      expect(metrics.spec.ports[0]?.port).toBe(8081);
      expect(metrics.spec.selector['app.kubernetes.io/component']).toBe('operator');
    });

    it('wires the runtime Deployment, Service and PodDisruptionBudget', () => {
      const rt = find(objs, 'Deployment', runtimeName);
      expect(container(rt).command).toEqual(['node', 'dist/cli/main.js', 'serve', '--configmaps', '--port', '8080']);
      expect(podSpec(rt).serviceAccountName).toBe(runtimeName);
      expect(envValue(rt, 'CASSANDRA_CONTACT_POINTS')).toBe('cassandra:9042');
      expect(envValue(rt, 'MEMCACHED_SERVERS')).toBe(`${memcachedName}.${NAMESPACE}.svc:11211`);
      expect(env(rt).has('TALLY_WATCH_NAMESPACES')).toBe(true);
      expect(env(rt).has('TALLY_PROVISION')).toBe(false);
      expect(container(rt).command).not.toContain('--provision');
      expectSecurePod(rt);
      expectProbes(rt, 8080);
      // The graceful shutdown: a drain of 5 s inside a grace period of 30 s, and no preStop hook.
      expect(podSpec(rt).terminationGracePeriodSeconds).toBe(30);
      expect(envValue(rt, 'TALLY_DRAIN_SECONDS')).toBe('5');
      expect(container(rt)).not.toHaveProperty('lifecycle');
      const svc = find(objs, 'Service', runtimeName) as unknown as { spec: { ports: RuntimePort[] } };
      expect(svc.spec.ports[0]?.port).toBe(8080);
      expect(svc.spec.ports[0]).not.toHaveProperty('nodePort');
      const pdb = find(objs, 'PodDisruptionBudget', runtimeName) as unknown as { spec: { minAvailable: number } };
      expect(pdb.spec.minAvailable).toBe(1);
    });

    it('runs Memcached with -m and -c from values, securely', () => {
      const mc = find(objs, 'Deployment', memcachedName);
      expect(container(mc).image).toBe('memcached:1.6');
      const args = container(mc).args ?? [];
      expect(args[args.indexOf('-m') + 1]).toBe('64');
      expect(args[args.indexOf('-c') + 1]).toBe('1024');
      expectSecurePod(mc);
    });
  });

  it('scopes RBAC to a Role per watched namespace when watchNamespaces is set', () => {
    const objs = render({ watchNamespaces: ['a', 'b'], runtime: { replicas: 1 } });
    // Cluster-scoped only: the counter roles (bound by users with RoleBindings) and what checking callers needs
    // (TokenReviews and SubjectAccessReviews are cluster-scoped).
    expect(
      ofKind(objs, 'ClusterRole')
        .map((r) => r.metadata.name)
        .sort(),
    ).toEqual(
      [
        ...COUNTER_ROLES.map((r) => `${RELEASE}-tally-counter-${r}`),
        `${RELEASE}-tally-observer`,
        `${runtimeName}-auth`,
      ].sort(),
    );
    expect(ofKind(objs, 'ClusterRoleBinding').map((r) => r.metadata.name)).toEqual([`${runtimeName}-auth`]);
    expect(ruleMap(find(objs, 'ClusterRole', `${runtimeName}-auth`))).toEqual(AUTH_RULES);
    for (const ns of ['a', 'b']) {
      expect(ruleMap(find(objs, 'Role', operatorName, ns))).toEqual(OPERATOR_RULES);
      expect(ruleMap(find(objs, 'Role', runtimeName, ns))).toEqual(RUNTIME_RULES);
      const rb = find(objs, 'RoleBinding', operatorName, ns) as unknown as {
        roleRef: { kind: string; name: string };
        subjects: { name: string; namespace: string }[];
      };
      expect(rb.roleRef).toMatchObject({ kind: 'Role', name: operatorName });
      expect(rb.subjects).toEqual([{ kind: 'ServiceAccount', name: operatorName, namespace: NAMESPACE }]);
      expect(find(objs, 'RoleBinding', runtimeName, ns)).toBeDefined();
    }
    // The leader-election Role stays in the release namespace; nothing else is namespaced elsewhere.
    expect(ruleMap(find(objs, 'Role', `${operatorName}-leader-election`, NAMESPACE))).toEqual(LEASE_RULES);
    expect(ofKind(objs, 'Role')).toHaveLength(5);
    expect(envValue(find(objs, 'Deployment', operatorName), 'TALLY_WATCH_NAMESPACES')).toBe('a,b');
    expect(envValue(find(objs, 'Deployment', runtimeName), 'TALLY_WATCH_NAMESPACES')).toBe('a,b');
    // One runtime replica: no PodDisruptionBudget.
    expect(ofKind(objs, 'PodDisruptionBudget')).toHaveLength(0);
  });

  it('passes the drain and grace period to the runtime Deployment', () => {
    const rt = find(
      render({ runtime: { drainSeconds: 0, terminationGracePeriodSeconds: 90 } }),
      'Deployment',
      runtimeName,
    );
    expect(podSpec(rt).terminationGracePeriodSeconds).toBe(90);
    expect(envValue(rt, 'TALLY_DRAIN_SECONDS')).toBe('0');
    expect(
      envValue(find(render({ runtime: { drainSeconds: 20 } }), 'Deployment', runtimeName), 'TALLY_DRAIN_SECONDS'),
    ).toBe('20');
  });

  it('renders a fixed nodePort for a NodePort or LoadBalancer Service only', () => {
    const port = (values: object): RuntimePort | undefined =>
      (find(render(values), 'Service', runtimeName) as unknown as { spec: { ports: RuntimePort[] } }).spec.ports[0];
    expect(port({ runtime: { service: { type: 'NodePort', nodePort: 30080 } } })).toMatchObject({
      port: 8080,
      nodePort: 30080,
    });
    expect(port({ runtime: { service: { type: 'LoadBalancer', nodePort: 32767 } } })?.nodePort).toBe(32767);
    // Kubernetes refuses a nodePort on a ClusterIP Service: the chart leaves it out.
    expect(port({ runtime: { service: { type: 'ClusterIP', nodePort: 30080 } } })).not.toHaveProperty('nodePort');
    expect(port({ runtime: { service: { type: 'NodePort' } } })).not.toHaveProperty('nodePort');
  });

  it('refuses a drain that does not end before the grace period, naming both values', () => {
    const res = helm(templateArgs({ runtime: { drainSeconds: 30, terminationGracePeriodSeconds: 30 } }));
    expect(res.status).not.toBe(0);
    expect(res.stderr).toContain('runtime.drainSeconds (30) must be below runtime.terminationGracePeriodSeconds (30)');
  });

  it('uses external Memcached servers when the bundled one is disabled', () => {
    const objs = render({ memcached: { enabled: false, servers: 'mc-0.cache:11211,mc-1.cache:11211' } });
    expect(ofKind(objs, 'Deployment').map((d) => d.metadata.name)).not.toContain(memcachedName);
    expect(ofKind(objs, 'Service').map((d) => d.metadata.name)).not.toContain(memcachedName);
    for (const name of [operatorName, runtimeName]) {
      expect(envValue(find(objs, 'Deployment', name), 'MEMCACHED_SERVERS')).toBe('mc-0.cache:11211,mc-1.cache:11211');
    }
  });

  it('renders the NetworkPolicy, ServiceMonitors and HorizontalPodAutoscaler when enabled', () => {
    const objs = render({
      networkPolicy: { enabled: true, allowedLabels: { 'tally-client': 'yes', team: 'payments' } },
      serviceMonitor: { enabled: true, interval: '15s', labels: { release: 'prom' } },
      runtime: { autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 7, targetCPUUtilizationPercentage: 60 } },
    });
    const np = find(objs, 'NetworkPolicy', runtimeName) as unknown as {
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        policyTypes: string[];
        ingress: { from: { podSelector: { matchLabels: Record<string, string> } }[] }[];
      };
    };
    expect(np.spec.podSelector.matchLabels['app.kubernetes.io/component']).toBe('runtime');
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.ingress).toHaveLength(1);
    expect(np.spec.ingress[0]?.from.map((f) => f.podSelector.matchLabels)).toEqual([
      { 'tally-client': 'yes', team: 'payments' },
    ]);

    // Memcached admits only the runtime's pods and the rollup Jobs' pods, as the chart and the operator label them.
    const mp = find(objs, 'NetworkPolicy', memcachedName) as unknown as {
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        ingress: {
          from: {
            namespaceSelector?: object;
            podSelector: {
              matchLabels: Record<string, string>;
              matchExpressions?: { key: string; operator: string }[];
            };
          }[];
          ports: { port: string }[];
        }[];
      };
    };
    const podLabels = (name: string) =>
      (
        find(objs, 'Deployment', name) as unknown as {
          spec: { template: { metadata: { labels: Record<string, string> } } };
        }
      ).spec.template.metadata.labels;
    const admits = (peer: (typeof mp.spec.ingress)[0]['from'][0], labels: Record<string, string>) =>
      Object.entries(peer.podSelector.matchLabels).every(([k, v]) => labels[k] === v) &&
      (peer.podSelector.matchExpressions ?? []).every((e) => e.operator === 'Exists' && e.key in labels);
    expect(Object.entries(mp.spec.podSelector.matchLabels).every(([k, v]) => podLabels(memcachedName)[k] === v)).toBe(
      true,
    );
    const [fromRuntime, fromRollups] = mp.spec.ingress[0]!.from;
    expect(fromRuntime!.namespaceSelector).toBeUndefined(); // the release's namespace only
    expect(admits(fromRuntime!, podLabels(runtimeName))).toBe(true);
    expect(admits(fromRuntime!, podLabels(operatorName))).toBe(false);
    expect(fromRollups!.namespaceSelector).toEqual({});
    const rollupPod = desiredCronJob(
      counterNamespace('orders'),
      resolveCounterNamespace(counterNamespace('orders')),
      operatorConfig(),
    ).spec!.jobTemplate.spec!.template.metadata!.labels!;
    expect(admits(fromRollups!, rollupPod)).toBe(true);
    expect(admits(fromRollups!, { 'app.kubernetes.io/part-of': 'tally' })).toBe(false);
    expect(mp.spec.ingress[0]!.ports).toEqual([{ port: 'memcached', protocol: 'TCP' }]);

    const monitors = ofKind(objs, 'ServiceMonitor');
    expect(monitors.map((m) => m.apiVersion)).toEqual(['monitoring.coreos.com/v1', 'monitoring.coreos.com/v1']);
    const opMon = find(objs, 'ServiceMonitor', operatorName) as unknown as {
      metadata: { labels: Record<string, string> };
      spec: { endpoints: { port: string; path: string; interval: string }[] };
    };
    expect(opMon.metadata.labels.release).toBe('prom');
    expect(opMon.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '15s' }]);
    // The runtime's own `namespace` label (the counter namespace) is kept, not renamed to exported_namespace.
    const rtMon = find(objs, 'ServiceMonitor', runtimeName) as unknown as typeof opMon;
    // With authentication on, Prometheus sends its own ServiceAccount token (it needs the observer role).
    expect(rtMon.spec.endpoints).toEqual([
      {
        port: 'http',
        path: '/metrics',
        interval: '15s',
        honorLabels: true,
        bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      },
    ]);

    const hpa = find(objs, 'HorizontalPodAutoscaler', runtimeName) as unknown as {
      apiVersion: string;
      spec: {
        scaleTargetRef: { kind: string; name: string };
        minReplicas: number;
        maxReplicas: number;
        metrics: { resource: { name: string; target: { averageUtilization: number } } }[];
      };
    };
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: runtimeName });
    expect([hpa.spec.minReplicas, hpa.spec.maxReplicas]).toEqual([3, 7]);
    expect(hpa.spec.metrics[0]?.resource).toEqual({
      name: 'cpu',
      target: { type: 'Utilization', averageUtilization: 60 },
    });
    // The HPA owns the replica count.
    expect((find(objs, 'Deployment', runtimeName) as unknown as { spec: { replicas?: number } }).spec.replicas).toBe(
      undefined,
    );
  });

  it('gives every pod the image pull secrets, and tells the operator to give them to the rollup Jobs', () => {
    const objs = render({ imagePullSecrets: [{ name: 'regcred' }, { name: 'backup-regcred' }] });
    for (const name of [operatorName, runtimeName, memcachedName]) {
      expect([name, podSpec(find(objs, 'Deployment', name)).imagePullSecrets]).toEqual([
        name,
        [{ name: 'regcred' }, { name: 'backup-regcred' }],
      ]);
    }
    expect(envValue(find(objs, 'Deployment', operatorName), 'TALLY_IMAGE_PULL_SECRETS')).toBe('regcred,backup-regcred');
  });

  it('reads Cassandra credentials from an existing Secret', () => {
    const objs = render({ cassandra: { existingSecret: 'cass-creds', contactPoints: 'c1:9042,c2:9042' } });
    expect(ofKind(objs, 'Secret')).toHaveLength(0);
    for (const name of [operatorName, runtimeName]) {
      const e = env(find(objs, 'Deployment', name));
      expect(e.get('CASSANDRA_CONTACT_POINTS')?.value).toBe('c1:9042,c2:9042');
      expect(e.get('CASSANDRA_USERNAME')?.valueFrom?.secretKeyRef).toEqual({ name: 'cass-creds', key: 'username' });
      expect(e.get('CASSANDRA_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({ name: 'cass-creds', key: 'password' });
    }
    // The operator's Secret is never handed to the rollup Jobs: they get a role of their own (operator/reconcile/access.ts).
    expect(env(find(objs, 'Deployment', operatorName)).has('TALLY_CASSANDRA_SECRET')).toBe(false);
  });

  it("bounds the runtime's near cache from values, the same defaults as tally serve, and refuses a zero", () => {
    const rt = (values: object = {}) => find(render(values), 'Deployment', runtimeName);
    expect([envValue(rt(), 'TALLY_NEAR_CACHE_ENTRIES'), envValue(rt(), 'TALLY_NEAR_CACHE_MB')]).toEqual([
      String(DEFAULT_NEAR_CACHE_LIMITS.entries),
      String(DEFAULT_NEAR_CACHE_LIMITS.bytes / 1024 / 1024),
    ]);
    const set = rt({ runtime: { nearCache: { entries: 5000, mb: 8 } } });
    expect([envValue(set, 'TALLY_NEAR_CACHE_ENTRIES'), envValue(set, 'TALLY_NEAR_CACHE_MB')]).toEqual(['5000', '8']);
    expect(() => render({ runtime: { nearCache: { mb: 0 } } })).toThrow(/nearCache\/mb/);
  });

  it('with a CA from an existing Secret, the operator and the runtime verify Cassandra with TLS', () => {
    const objs = render({ cassandra: { tls: { existingSecret: 'cassandra-ca', caKey: 'root.pem' } } });
    expect(ofKind(objs, 'Secret')).toHaveLength(0);
    for (const name of [operatorName, runtimeName]) {
      const deploy = find(objs, 'Deployment', name);
      const file = envValue(deploy, 'CASSANDRA_CA_FILE')!;
      const mount = container(deploy).volumeMounts!.find((m) => m.name === 'cassandra-ca')!;
      expect(file).toBe(`${mount.mountPath}/root.pem`);
      expect(mount.readOnly).toBe(true);
      expect(podSpec(deploy).volumes!.find((v) => v.name === 'cassandra-ca')?.secret).toEqual({
        secretName: 'cassandra-ca',
        items: [{ key: 'root.pem', path: 'root.pem' }],
      });
    }
  });

  it('creates the CA Secret from a PEM value, refuses a value that is no certificate, and is off by default', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const objs = render({ cassandra: { tls: { ca: pem } } });
    const secret = find(objs, 'Secret', `${RELEASE}-tally-cassandra-ca`, NAMESPACE) as unknown as {
      stringData: Record<string, string>;
    };
    expect(secret.stringData).toEqual({ 'ca.crt': pem });
    expect(
      podSpec(find(objs, 'Deployment', runtimeName)).volumes!.find((v) => v.name === 'cassandra-ca')?.secret,
    ).toMatchObject({ secretName: `${RELEASE}-tally-cassandra-ca` });
    expect(() => render({ cassandra: { tls: { ca: 'not a certificate' } } })).toThrow(/cassandra\/tls\/ca/);
    const plain = render();
    for (const name of [operatorName, runtimeName]) {
      expect(env(find(plain, 'Deployment', name)).has('CASSANDRA_CA_FILE')).toBe(false);
      expect(podSpec(find(plain, 'Deployment', name)).volumes!.map((v) => v.name)).toEqual(['tmp']);
    }
  });

  it("gives the runtime its own role's Secret and tells the operator the role to grant", () => {
    const objs = render({ cassandra: { existingSecret: 'op-creds', runtime: { existingSecret: 'rt-creds' } } });
    expect(ofKind(objs, 'Secret')).toHaveLength(0);
    const rt = env(find(objs, 'Deployment', runtimeName));
    expect(rt.get('CASSANDRA_USERNAME')?.valueFrom?.secretKeyRef).toEqual({ name: 'rt-creds', key: 'username' });
    expect(rt.get('CASSANDRA_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({ name: 'rt-creds', key: 'password' });
    const op = env(find(objs, 'Deployment', operatorName));
    expect(op.get('CASSANDRA_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({ name: 'op-creds', key: 'password' });
    expect(op.get('TALLY_CASSANDRA_RUNTIME_ROLE')?.valueFrom?.secretKeyRef).toEqual({
      name: 'rt-creds',
      key: 'username',
    });
  });

  it("creates the runtime role's Secret from credential values", () => {
    const objs = render({
      cassandra: { username: 'tally_operator', password: 'p1', runtime: { username: 'tally_runtime', password: 'p2' } },
    });
    const secret = (name: string) =>
      (find(objs, 'Secret', name, NAMESPACE) as unknown as { stringData: Record<string, string> }).stringData;
    expect(secret(`${RELEASE}-tally-cassandra`)).toEqual({ username: 'tally_operator', password: 'p1' });
    expect(secret(`${RELEASE}-tally-cassandra-runtime`)).toEqual({ username: 'tally_runtime', password: 'p2' });
    expect(env(find(objs, 'Deployment', runtimeName)).get('CASSANDRA_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({
      name: `${RELEASE}-tally-cassandra-runtime`,
      key: 'password',
    });
    expect(() => render({ cassandra: { runtime: { username: 'Bad"Role' } } })).toThrow(/username/);
  });

  it('creates a Secret from credential values and points the pods at it', () => {
    const objs = render({ cassandra: { username: 'tally', password: 's3cret' } });
    const secret = find(objs, 'Secret', `${RELEASE}-tally-cassandra`, NAMESPACE) as unknown as {
      stringData: Record<string, string>;
    };
    expect(secret.stringData).toEqual({ username: 'tally', password: 's3cret' });
    const op = find(objs, 'Deployment', operatorName);
    expect(env(op).get('CASSANDRA_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({
      name: `${RELEASE}-tally-cassandra`,
      key: 'password',
    });
    // Without runtime credentials the runtime logs in as the operator, and the operator grants nothing.
    expect(env(find(objs, 'Deployment', runtimeName)).get('CASSANDRA_USERNAME')?.valueFrom?.secretKeyRef).toEqual({
      name: `${RELEASE}-tally-cassandra`,
      key: 'username',
    });
    expect(env(op).has('TALLY_CASSANDRA_RUNTIME_ROLE')).toBe(false);
  });

  describe('values.schema.json', () => {
    it.each([
      ['an unknown top-level key', { watchNamespace: ['a'] }, 'watchNamespace'],
      ['an unknown key in a section', { runtime: { replica: 3 } }, 'replica'],
      ['a wrong type', { runtime: { replicas: 'two' } }, 'replicas'],
      ['a wrong type in memcached', { memcached: { enabled: 'yes' } }, 'enabled'],
      ['a negative drainSeconds', { runtime: { drainSeconds: -1 } }, 'drainSeconds'],
      ['a fractional drainSeconds', { runtime: { drainSeconds: 2.5 } }, 'drainSeconds'],
      [
        'a negative terminationGracePeriodSeconds',
        { runtime: { terminationGracePeriodSeconds: -5 } },
        'terminationGracePeriodSeconds',
      ],
      ['a nodePort outside 30000-32767', { runtime: { service: { type: 'NodePort', nodePort: 80 } } }, 'nodePort'],
      ['a string nodePort', { runtime: { service: { type: 'NodePort', nodePort: '30080' } } }, 'nodePort'],
    ])('rejects %s, naming the key', (_what, values, key) => {
      const res = helm(templateArgs(values));
      expect(res.status).not.toBe(0);
      expect(res.stderr).toMatch(/schema/i);
      expect(res.stderr).toContain(key);
    });

    it('documents every key of values.yaml with a comment', () => {
      const lines = fs.readFileSync(path.join(chart, 'values.yaml'), 'utf8').split('\n');
      const undocumented: string[] = [];
      lines.forEach((line, i) => {
        const m = /^(\s*)([A-Za-z][\w.-]*):/.exec(line);
        if (!m) return;
        // Keys under resources/requests/limits and allowedLabels entries are data, not settings.
        const prev = lines[i - 1] ?? '';
        if (/^\s*(requests|limits|cpu|memory|tally-client):/.test(line)) return;
        if (!/^\s*#/.test(prev)) undocumented.push(`${i + 1}: ${line.trim()}`);
      });
      expect(undocumented).toEqual([]);
    });

    it('accepts the defaults (helm lint uses them) and matches values.yaml keys', () => {
      const schema = JSON.parse(fs.readFileSync(path.join(chart, 'values.schema.json'), 'utf8')) as {
        properties: Record<string, unknown>;
      };
      const values = yaml.load(fs.readFileSync(path.join(chart, 'values.yaml'), 'utf8')) as Record<string, unknown>;
      expect(Object.keys(values).sort()).toEqual(Object.keys(schema.properties).sort());
      expect(execFileSync(requireEnv('TALLY_HELM'), templateArgs({}), { encoding: 'utf8' })).toContain(
        'kind: Deployment',
      );
    });
  });
});
