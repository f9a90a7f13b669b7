import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import type { Component, Endpoint, Probe } from '../component';
import { clusterImageRefs, imageEnv } from '../images/component';
import { ensureImages, type BuiltImage } from '../images/images';
import { say, StackError } from '../log';
import { ensureDir, repoRoot, stateDir } from '../paths';
import { BRIDGE_IP, run } from '../node-network';
import { waitFor } from '../wait';
import { stackCaFile } from './cassandra';
import { importImage } from './node';
import { EXAMPLES_NAMESPACE } from './runtime';

/** Where `npm run up` installs Tally: release `tally` in namespace `tally`, as the README's install section does. */
export const RELEASE = 'tally';
export const RELEASE_NAMESPACE = 'tally';
/**
 * The runtime Service's NodePort. The host cannot reach ClusterIPs (node-network.ts makes the Service range
 * unreachable outside kube-proxy's rules), so TALLY_URL is the NodePort on the node's bridge address.
 */
export const RUNTIME_NODE_PORT = 30080;

export function chartDir(): string {
  return path.join(repoRoot(), 'helm', 'tally');
}

/**
 * The chart values for the local cluster: the images built here (never pulled), Cassandra on the bridge address with
 * the stack's roles (`env`: .tally/env's CASSANDRA_* for the operator, TALLY_CASSANDRA_RUNTIME_* for the runtime) and
 * its TLS CA (CASSANDRA_CA_FILE).
 */
export function localValues(images: Record<string, string>, env: Record<string, string>): Record<string, unknown> {
  const image = (ref: string): { repository: string; tag: string; pullPolicy: string } => {
    const at = ref.lastIndexOf(':');
    return { repository: ref.slice(0, at), tag: ref.slice(at + 1), pullPolicy: 'Never' };
  };
  return {
    cassandra: {
      contactPoints: env.CASSANDRA_CONTACT_POINTS,
      username: env.CASSANDRA_USERNAME ?? '',
      password: env.CASSANDRA_PASSWORD ?? '',
      runtime: {
        username: env.TALLY_CASSANDRA_RUNTIME_ROLE ?? '',
        password: env.TALLY_CASSANDRA_RUNTIME_PASSWORD ?? '',
      },
      // The CA of the stack's Cassandra certificate: the chart puts it in a Secret the pods verify against.
      ...(env.CASSANDRA_CA_FILE ? { tls: { ca: fs.readFileSync(env.CASSANDRA_CA_FILE, 'utf8') } } : {}),
    },
    operator: { image: image(images.TALLY_IMAGE_OPERATOR!) },
    runtime: {
      image: image(images.TALLY_IMAGE_RUNTIME!),
      service: { type: 'NodePort', nodePort: RUNTIME_NODE_PORT },
    },
    memcached: { image: image(images.TALLY_IMAGE_MEMCACHED!) },
  };
}

/** kubectl against the stack's cluster. */
function kubectlFor(kubeconfig: string): (...args: string[]) => Promise<string> {
  return (...args) => run('kubectl', ['--kubeconfig', kubeconfig, ...args]);
}

/** The CounterNamespaces in examples/, by name. */
export function exampleNames(): string[] {
  const dir = path.join(repoRoot(), 'examples');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap(
      (f) =>
        yaml.loadAll(fs.readFileSync(path.join(dir, f), 'utf8')) as { kind?: string; metadata?: { name?: string } }[],
    )
    .filter((d) => d?.kind === 'CounterNamespace')
    .map((d) => d.metadata!.name!);
}

async function readyNamespaces(url: string, token: string): Promise<{ name: string; ready: boolean }[]> {
  const res = await fetch(`${url}/v1/namespaces`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(3000),
  });
  if (res.status !== 200) throw new Error(`GET ${url}/v1/namespaces answered ${res.status}`);
  return ((await res.json()) as { namespaces: { name: string; ready: boolean }[] }).namespaces;
}

/** The identity of `.tally/env`'s TALLY_TOKEN: a ServiceAccount bound cluster-wide to the counter admin role. */
export const LOCAL_ADMIN = 'tally-local-admin';

/**
 * A long-lived token (a service-account-token Secret, filled by the controller manager) of a ServiceAccount bound
 * with ClusterRoleBindings to the release's counter admin and observer roles: what the README's examples send as
 * TALLY_TOKEN. It stays valid across restarts (the service account key and issuer are stable).
 */
async function localAdminToken(
  kubectl: (...args: string[]) => Promise<string>,
  release: string,
  namespace: string,
): Promise<string> {
  const binding = (role: string): Record<string, unknown> => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `${LOCAL_ADMIN}-${role}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${release}-${role}` },
    subjects: [{ kind: 'ServiceAccount', name: LOCAL_ADMIN, namespace }],
  });
  const objects = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: LOCAL_ADMIN, namespace } },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/service-account-token',
      metadata: { name: LOCAL_ADMIN, namespace, annotations: { 'kubernetes.io/service-account.name': LOCAL_ADMIN } },
    },
    binding('counter-admin'),
    binding('observer'),
  ];
  const file = path.join(ensureDir(path.join(stateDir(), 'cluster')), `${LOCAL_ADMIN}.yaml`);
  fs.writeFileSync(file, objects.map((o) => yaml.dump(o)).join('---\n'));
  await kubectl('apply', '-f', file);
  let token = '';
  await waitFor(`the token of ServiceAccount ${namespace}/${LOCAL_ADMIN}`, async () => {
    token = Buffer.from(
      await kubectl('get', 'secret', LOCAL_ADMIN, '-n', namespace, '-o', 'jsonpath={.data.token}'),
      'base64',
    ).toString('utf8');
    return token !== '';
  });
  return token;
}

/** Imports the images into the node and `helm upgrade --install`s the chart with them, waiting for its pods. */
export async function installRelease(
  env: Record<string, string>,
  built: BuiltImage[],
  opts: { release: string; namespace: string; values?: Record<string, unknown>; timeout?: string },
): Promise<void> {
  for (const b of built) await importImage(b.ref, b.tar);
  // Two files: helm merges them key by key, the second winning.
  const dir = ensureDir(path.join(stateDir(), 'cluster'));
  const files = [
    [`${opts.release}-local-values.yaml`, localValues(imageEnv(built), env)],
    [`${opts.release}-values.yaml`, opts.values ?? {}],
  ].map(([name, values]) => {
    const file = path.join(dir, name as string);
    fs.writeFileSync(file, yaml.dump(values));
    return file;
  });
  await run(env.TALLY_HELM!, [
    'upgrade',
    '--install',
    opts.release,
    chartDir(),
    '--namespace',
    opts.namespace,
    '--create-namespace',
    ...files.flatMap((f) => ['--values', f]),
    '--wait',
    '--timeout',
    opts.timeout ?? '5m',
    '--kubeconfig',
    env.KUBECONFIG!,
  ]);
}

/**
 * Tally as its users run it (the default when the stack has a node): the images built from the Dockerfile imported
 * into the node, `helm upgrade --install` of helm/tally (release `tally` in namespace `tally`, every namespace
 * watched), the CRD applied with kubectl as the README says, examples/ applied to `default` and Ready, and TALLY_URL
 * the runtime Service's NodePort on the bridge address. No process of its own: the pods stop with the node, and the
 * release stays in the cluster (its etcd) like any installed chart, to be upgraded in place by the next `up`.
 */
export const cluster: Component = {
  name: 'tally',
  phase: 2,
  externalVars: ['TALLY_URL'],
  processes: [],

  fromEnvironment(env) {
    if (!env.TALLY_URL) return undefined;
    return {
      address: env.TALLY_URL,
      env: { TALLY_URL: env.TALLY_URL, ...(env.TALLY_TOKEN ? { TALLY_TOKEN: env.TALLY_TOKEN } : {}) },
    };
  },

  async install() {
    await ensureImages();
  },

  // New images (a change of the product or its Dockerfile) upgrade the release, and so does a new Cassandra CA (the
  // chart's values carry it; pods holding the old one could not connect).
  fingerprint() {
    const ca = stackCaFile();
    const caHash = fs.existsSync(ca) ? createHash('sha256').update(fs.readFileSync(ca)).digest('hex').slice(0, 16) : '';
    return `${clusterImageRefs()} ca:${caHash}`;
  },

  stop: () => Promise.resolve(false),

  async start(env): Promise<Endpoint> {
    if (!env.KUBECONFIG || !env.TALLY_HELM || !env.CASSANDRA_CONTACT_POINTS) {
      throw new StackError('tally: needs the stack’s kubernetes, helm and cassandra first');
    }
    const started = Date.now();
    const built = await ensureImages();
    const kubectl = kubectlFor(env.KUBECONFIG);
    // The CRD as the README installs it (helm installs crds/ only on a first install and never upgrades it).
    await kubectl('apply', '--server-side', '--force-conflicts', '-f', path.join(repoRoot(), 'crds'));
    say(`tally: helm upgrade --install ${RELEASE} (namespace ${RELEASE_NAMESPACE}) with the local images`);
    await installRelease(env, built, { release: RELEASE, namespace: RELEASE_NAMESPACE });
    await kubectl('apply', '-n', EXAMPLES_NAMESPACE, '-f', path.join(repoRoot(), 'examples'));
    const names = exampleNames();
    await kubectl(
      'wait',
      '-n',
      EXAMPLES_NAMESPACE,
      '--for=condition=Ready',
      '--timeout=180s',
      ...names.map((n) => `counternamespaces.tally.dev/${n}`),
    );
    const url = `http://${BRIDGE_IP}:${RUNTIME_NODE_PORT}`;
    const token = await localAdminToken(kubectl, RELEASE, RELEASE_NAMESPACE);
    await waitFor(
      `the runtime at ${url} (NodePort of ${RELEASE}-runtime) to serve ${names.join(', ')}`,
      async () => {
        const served = await readyNamespaces(url, token);
        return names.every((n) => served.some((s) => s.name === n && s.ready));
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    say(`tally: running in pods, examples Ready, in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return {
      address: url,
      env: { TALLY_URL: url, TALLY_TOKEN: token, TALLY_RELEASE: RELEASE, TALLY_RELEASE_NAMESPACE: RELEASE_NAMESPACE },
    };
  },

  async probe(endpoint): Promise<Probe> {
    const res = await fetch(`${endpoint.address}/readyz`, { signal: AbortSignal.timeout(3000) });
    return res.status === 200
      ? { ok: true, version: 'in pods' }
      : { ok: false, detail: `/readyz answered ${res.status}` };
  },
};

/**
 * A test run's tests run operators of their own, in namespaces of their own; the stack's in-cluster operator watches
 * every namespace and would reconcile their CounterNamespaces too. While tests run it is scaled to zero (what is
 * already reconciled keeps working: the runtime serves the ConfigMaps); the last test run to finish scales it back.
 */
export async function setOperatorReplicas(env: Record<string, string | undefined>, replicas: number): Promise<void> {
  if (!env.TALLY_RELEASE || !env.KUBECONFIG) return;
  const ns = env.TALLY_RELEASE_NAMESPACE ?? RELEASE_NAMESPACE;
  const deployment = `deployment/${env.TALLY_RELEASE}-operator`;
  const inNs = kubectlFor(env.KUBECONFIG);
  const kubectl = (...args: string[]): Promise<string> => inNs('-n', ns, ...args);
  await kubectl('scale', deployment, `--replicas=${replicas}`);
  await kubectl('rollout', 'status', deployment, '--timeout=120s');
  if (replicas === 0) {
    await waitFor(`the pods of ${deployment} to be gone`, async () => {
      const pods = await kubectl(
        'get',
        'pods',
        '-l',
        `app.kubernetes.io/instance=${env.TALLY_RELEASE},app.kubernetes.io/component=operator`,
        '-o',
        'name',
      );
      return pods.trim() === '';
    });
  }
}
