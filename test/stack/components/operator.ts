import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Component, Endpoint, Probe } from '../component';
import { repoRoot } from '../paths';
import { portOr } from '../ports';
import { isAlive, logPath, startProcess } from '../processes';
import { waitFor } from '../wait';
import { EXAMPLES_NAMESPACE, runtime } from './runtime';

const PROCESS = 'tally-operator';

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.json() };
}

/**
 * `tally operator` from dist/, against the stack's Kubernetes and Cassandra: installs the CRD, starts the operator,
 * applies the CounterNamespaces in examples/ and waits until they are Ready. The runtime then serves them from the
 * operator's ConfigMaps.
 */
export const operator: Component = {
  name: 'operator',
  phase: 1,
  externalVars: ['TALLY_OPERATOR_URL'],
  processes: [PROCESS],

  fromEnvironment(env) {
    return env.TALLY_OPERATOR_URL
      ? { address: env.TALLY_OPERATOR_URL, env: { TALLY_OPERATOR_URL: env.TALLY_OPERATOR_URL } }
      : undefined;
  },

  install: () => runtime.install(),
  fingerprint: () => runtime.fingerprint!(),

  async start(env, previous): Promise<Endpoint> {
    const k8s = await import('@kubernetes/client-node');
    const { installCounterNamespaceCrd } = await import('../../../operator/crd-install');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(env.KUBECONFIG!);
    await installCounterNamespaceCrd(kc, 'tally-stack');
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc);

    const port = await portOr(previous?.ports?.http);
    const record = startProcess(
      PROCESS,
      process.execPath,
      [path.join(repoRoot(), 'dist', 'cli', 'main.js'), 'operator'],
      {
        env: {
          ...process.env,
          ...env,
          TALLY_WATCH_NAMESPACES: EXAMPLES_NAMESPACE,
          TALLY_LEASE_NAMESPACE: EXAMPLES_NAMESPACE,
          TALLY_OPERATOR_PORT: String(port),
          TALLY_RUNTIME_IMAGE: 'tally-runtime:dev',
        },
      },
    );
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      `the operator to answer ${url}/healthz`,
      async () => (await getJson(`${url}/healthz`)).status === 200,
      {
        timeoutMs: 60_000,
        logPath: logPath(PROCESS),
        stillRunning: () => isAlive(record),
      },
    );

    const examples = fs
      .readdirSync(path.join(repoRoot(), 'examples'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => fs.readFileSync(path.join(repoRoot(), 'examples', f), 'utf8'));
    const yaml = await import('js-yaml');
    const names: string[] = [];
    for (const text of examples) {
      for (const doc of yaml.loadAll(text) as { kind?: string; metadata: { name: string; namespace?: string } }[]) {
        if (doc?.kind !== 'CounterNamespace') continue;
        doc.metadata.namespace = EXAMPLES_NAMESPACE;
        await objects.patch(doc as never, undefined, undefined, 'tally-stack', true, k8s.PatchStrategy.ServerSideApply);
        names.push(doc.metadata.name);
      }
    }
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await waitFor(
      `the example CounterNamespaces (${names.join(', ')}) to be Ready`,
      async () => {
        for (const name of names) {
          const cns = (await custom.getNamespacedCustomObject({
            group: 'tally.dev',
            version: 'v1alpha1',
            plural: 'counternamespaces',
            namespace: EXAMPLES_NAMESPACE,
            name,
          })) as {
            status?: { conditions?: { type: string; status: string }[] };
          };
          if (!cns.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) return false;
        }
        return true;
      },
      {
        timeoutMs: 120_000,
        logPath: logPath(PROCESS),
        stillRunning: () => isAlive(record),
      },
    );
    return { address: url, env: { TALLY_OPERATOR_URL: url }, ports: { http: port } };
  },

  async probe(endpoint): Promise<Probe> {
    const health = await getJson(`${endpoint.address}/healthz`);
    const leader = (health.body as { leader?: boolean }).leader;
    return { ok: health.status === 200, version: leader ? 'leader' : 'standby' };
  },
};
