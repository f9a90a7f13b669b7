import * as fs from 'node:fs';
import * as https from 'node:https';
import * as http from 'node:http';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Component, Endpoint, Probe } from '../component';
import { say, StackError } from '../log';
import { portOr } from '../ports';
import { cacheDir, ensureDir, stackScript, stateDir } from '../paths';
import { BRIDGE_IP, NODE_NAME, nodeEnabled, setUpHostNetwork, tearDownHostNetwork } from '../node-network';
import { isAlive, type ProcessRecord, runCommand, startProcess, stopProcess } from '../processes';
import { versions } from '../versions';
import { waitFor } from '../wait';

const ETCD = 'etcd';
const APISERVER = 'kube-apiserver';
const CONTROLLER_MANAGER = 'kube-controller-manager';

/**
 * The controllers the tests need: owned objects are garbage-collected, Jobs and CronJobs run (their pods stay Pending:
 * there is no scheduler or kubelet), namespaces finish deleting, every namespace gets its `default` ServiceAccount and
 * `kube-root-ca.crt`, and finished Jobs with a TTL go away. Names as kube-controller-manager 1.36 spells them.
 */
const CONTROLLERS = [
  'garbage-collector-controller',
  'namespace-controller',
  'job-controller',
  'cronjob-controller',
  'ttl-after-finished-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  // ClusterRoles labelled aggregate-to-view/edit/admin (the chart's counter roles) join the built-in roles.
  'clusterrole-aggregation-controller',
];

/**
 * What the single node (unless TALLY_STACK_NODE=0) needs besides: nodes lose their not-ready taint and are watched
 * (node-lifecycle, taint-eviction), Services get endpoints (endpointslice, and mirroring of hand-written Endpoints),
 * Deployments and ReplicaSets make pods, and pods of a deleted node or terminated long ago are collected.
 */
const NODE_CONTROLLERS = [
  'node-lifecycle-controller',
  'taint-eviction-controller',
  'endpointslice-controller',
  'endpointslice-mirroring-controller',
  'replicaset-controller',
  'deployment-controller',
  'pod-garbage-collector-controller',
  'statefulset-controller',
  'daemonset-controller',
  'disruption-controller',
];

/** Stable across restarts, so tokens issued before a restart still verify. */
const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

function kubeDir(): string {
  return path.resolve(stateDir(), 'kube');
}

function pkiDir(): string {
  return path.join(kubeDir(), 'pki');
}

function pki(file: string): string {
  return path.join(pkiDir(), file);
}

/** The kubeconfig of the cluster-admin user (group system:masters) that `start` writes and the tests use. */
export function adminKubeconfigPath(): string {
  return path.join(kubeDir(), 'admin.kubeconfig');
}

function controllerManagerKubeconfigPath(): string {
  return path.join(kubeDir(), 'controller-manager.kubeconfig');
}

function kubeBin(name: string): string {
  return path.join(cacheDir(), 'kube', versions().KUBE_VERSION, 'bin', name);
}

function etcdBin(): string {
  return path.join(cacheDir(), 'etcd', versions().ETCD_VERSION, 'bin', 'etcd');
}

interface HttpResult {
  status: number;
  body: string;
}

/** One GET over HTTP(S) with the given TLS options; resolves with any status, rejects on network errors and timeout. */
function get(url: string, options: https.RequestOptions = {}, timeoutMs = 3000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    const req = client.request(url, { ...options, method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** TLS options of the admin user, straight from the certificate files (no kubeconfig needed yet). */
function adminTls(): https.RequestOptions {
  return {
    ca: fs.readFileSync(pki('ca.crt')),
    cert: fs.readFileSync(pki('admin.crt')),
    key: fs.readFileSync(pki('admin.key')),
  };
}

/** A kubeconfig with a single cluster/user/context, certificates embedded; written atomically, readable by us only. */
function writeKubeconfig(file: string, server: string, user: string, certFile: string, keyFile: string): void {
  const b64 = (f: string): string => fs.readFileSync(f).toString('base64');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'tally-local', cluster: { server, 'certificate-authority-data': b64(pki('ca.crt')) } }],
    users: [{ name: user, user: { 'client-certificate-data': b64(certFile), 'client-key-data': b64(keyFile) } }],
    contexts: [{ name: 'tally-local', context: { cluster: 'tally-local', user } }],
    'current-context': 'tally-local',
  };
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, yaml.dump(config), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/**
 * Loads a KUBECONFIG value the way kubectl does: one file, or several separated by ':' where the first file to set
 * the current context, and the first entry of each name, win (missing files in a list are skipped).
 */
async function loadKubeconfig(value: string): Promise<KubeConfig> {
  // client-node 1.x is an ES module: loaded on demand, so the rest of the stack never pays for it.
  const k8s = await import('@kubernetes/client-node');
  const files = value.split(path.delimiter).filter((f) => f.length > 0);
  if (files.length === 0) throw new Error('KUBECONFIG is empty');
  const kc = new k8s.KubeConfig();
  if (files.length === 1) {
    kc.loadFromFile(files[0]!);
    return kc;
  }
  const existing = files.filter((f) => fs.existsSync(f));
  if (existing.length === 0) throw new Error(`none of the files in KUBECONFIG exists: ${value}`);
  for (const file of existing) {
    const more = new k8s.KubeConfig();
    more.loadFromFile(file);
    if (!kc.currentContext && more.currentContext) kc.setCurrentContext(more.currentContext);
    for (const c of more.clusters) if (!kc.getCluster(c.name)) kc.addCluster(c);
    for (const u of more.users) if (!kc.getUser(u.name)) kc.addUser(u);
    for (const c of more.contexts) if (!kc.getContextObject(c.name)) kc.addContext(c);
  }
  return kc;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Waits on `probe` while `waited` and the processes it depends on run. The error names the component, the process that
 * died (if one did) or else the awaited one, and that process's log.
 */
async function waitForProcess(
  probe: () => Promise<boolean>,
  what: string,
  waited: ProcessRecord,
  alsoNeeded: ProcessRecord[],
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const all = [...alsoNeeded, waited];
  try {
    await waitFor(what, probe, {
      timeoutMs,
      intervalMs,
      logPath: waited.logPath,
      stillRunning: () => all.every((r) => isAlive(r)),
    });
  } catch (err) {
    const dead = alsoNeeded.find((r) => !isAlive(r));
    if (dead)
      throw new StackError(`kubernetes: ${dead.name} exited while waiting for ${what}; see its log at ${dead.logPath}`);
    throw new StackError(`kubernetes: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export const kubernetes: Component = {
  name: 'kubernetes',
  phase: 0,
  externalVars: ['KUBECONFIG'],
  processes: [ETCD, APISERVER, CONTROLLER_MANAGER],

  fromEnvironment(env) {
    const kubeconfig = env.KUBECONFIG;
    // The stack's own kubeconfig (exported by `. .tally/env`) names the cluster `up` manages, not an existing one.
    if (!kubeconfig || path.resolve(kubeconfig) === adminKubeconfigPath()) return undefined;
    // The address shown by `status` is the current context's server, when the (first) file can be read.
    let address = kubeconfig;
    try {
      const doc = yaml.load(fs.readFileSync(kubeconfig.split(path.delimiter)[0]!, 'utf8')) as {
        'current-context'?: string;
        contexts?: { name: string; context?: { cluster?: string } }[];
        clusters?: { name: string; cluster?: { server?: string } }[];
      };
      const context = doc.contexts?.find((c) => c.name === doc['current-context']);
      const server = doc.clusters?.find((c) => c.name === context?.context?.cluster)?.cluster?.server;
      if (server) address = server;
    } catch {
      // Shown as the path; probe() reports what is wrong with it.
    }
    return { address, env: { KUBECONFIG: kubeconfig } };
  },

  async install() {
    await runCommand('bash', [stackScript('build-go-tools.sh'), 'etcd']);
    await runCommand('bash', [stackScript('build-go-tools.sh'), 'kube']);
  },

  // A cluster for the node listens elsewhere and runs more controllers: switching restarts it, as does a change of
  // the controllers it runs.
  fingerprint() {
    return [nodeEnabled() ? 'with-node' : '', ...CONTROLLERS].join(' ');
  },

  async stop() {
    let stopped = false;
    for (const p of [CONTROLLER_MANAGER, APISERVER, ETCD]) stopped = (await stopProcess(p)) || stopped;
    await tearDownHostNetwork();
    return stopped;
  },

  async start(_env, previous): Promise<Endpoint> {
    const started = Date.now();
    const withNode = nodeEnabled();
    for (const bin of [etcdBin(), kubeBin(APISERVER), kubeBin(CONTROLLER_MANAGER)]) {
      if (!fs.existsSync(bin)) throw new StackError(`kubernetes: ${bin} is missing: run install first`);
    }
    ensureDir(kubeDir());
    // Made once per state dir and reused, so kubeconfigs and service-account tokens survive restarts.
    await runCommand('bash', [stackScript('kube-certs.sh'), pkiDir()]);
    if (withNode) {
      // The bridge must exist before the API server binds its address.
      await setUpHostNetwork();
      await runCommand('bash', [stackScript('node-certs.sh'), pkiDir(), NODE_NAME, BRIDGE_IP]);
    }
    // With the node, the API server listens on the bridge address only: pods reach it there (the `kubernetes`
    // Service's endpoint), the host too, and no other interface (node-network.ts drops packets to it from elsewhere).
    const listen = withNode ? BRIDGE_IP : '127.0.0.1';
    const ports = previous?.ports ?? {};
    const etcdClient = await portOr(ports.etcdClient);
    const etcdPeer = await portOr(ports.etcdPeer);
    const apiPort = await portOr(ports.apiserver);
    const cmPort = await portOr(ports.controllerManager);

    // etcd: one member on loopback; without fsync (test data only), so writes cost no disk flushes.
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    const etcd = startProcess(ETCD, etcdBin(), [
      '--name=tally',
      `--data-dir=${path.join(kubeDir(), 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=tally=${peerUrl}`,
      '--unsafe-no-fsync=true',
      // A lone member elects itself after one election timeout (default 1 s, on every restart): keep it short.
      '--heartbeat-interval=25',
      '--election-timeout=150',
      '--log-level=warn',
    ]);
    const server = `https://${listen}:${apiPort}`;
    const nodeFlags = [
      // The `kubernetes` Service gets this server's address (bridge address and port) as its endpoint.
      '--endpoint-reconciler-type=lease',
      // logs/exec/port-forward: the API server authenticates to the kubelet and checks the kubelet's certificate.
      `--kubelet-client-certificate=${pki('kubelet-client.crt')}`,
      `--kubelet-client-key=${pki('kubelet-client.key')}`,
      `--kubelet-certificate-authority=${pki('ca.crt')}`,
      '--kubelet-preferred-address-types=InternalIP',
      // Webhooks and aggregated APIs are called on their pods' addresses: ClusterIPs are unreachable from the host.
      '--enable-aggregator-routing=true',
    ];
    const apiserver = startProcess(APISERVER, kubeBin(APISERVER), [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${listen}`,
      `--advertise-address=${listen}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${pkiDir()}`,
      `--tls-cert-file=${pki(withNode ? 'apiserver-node.crt' : 'apiserver.crt')}`,
      `--tls-private-key-file=${pki(withNode ? 'apiserver-node.key' : 'apiserver.key')}`,
      `--client-ca-file=${pki('ca.crt')}`,
      // Node: the kubelet's own permissions (its pods, its node, their secrets), as in any cluster.
      `--authorization-mode=${withNode ? 'Node,RBAC' : 'RBAC'}`,
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${pki('sa.pub')}`,
      `--service-account-signing-key-file=${pki('sa.key')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      // Without the node nothing but this process serves the API: nobody needs the `kubernetes` Service's endpoints.
      ...(withNode ? nodeFlags : ['--endpoint-reconciler-type=none']),
      '--profiling=false',
    ]);
    writeKubeconfig(adminKubeconfigPath(), server, 'tally-admin', pki('admin.crt'), pki('admin.key'));
    writeKubeconfig(
      controllerManagerKubeconfigPath(),
      server,
      'system:kube-controller-manager',
      pki('controller-manager.crt'),
      pki('controller-manager.key'),
    );
    // The API server is started without waiting for etcd (it retries its connection while it initialises, which takes
    // longer than etcd's start); etcd is checked on its own so that a failing etcd is named as such.
    await waitForProcess(
      async () => {
        const r = await get(`${etcdUrl}/health`, {}, 2000);
        return r.status === 200 && /"health":\s*"true"/.test(r.body);
      },
      `etcd to report healthy at ${etcdUrl}/health`,
      etcd,
      [],
      30000,
    );
    const etcdReady = Date.now();
    const tls = adminTls();
    await waitForProcess(
      async () => {
        const r = await get(`${server}/readyz`, tls, 3000);
        return r.status === 200 && r.body.trim() === 'ok';
      },
      `kube-apiserver to answer "ok" on ${server}/readyz`,
      apiserver,
      [etcd],
      120000,
    );

    const apiserverReady = Date.now();
    const cmKubeconfig = controllerManagerKubeconfigPath();
    const controllerManager = startProcess(CONTROLLER_MANAGER, kubeBin(CONTROLLER_MANAGER), [
      // No --authentication/authorization-kubeconfig: its HTTPS endpoint then serves only the always-allowed
      // /healthz, /readyz and /livez, and it does not look for a request-header CA this API server does not have.
      `--kubeconfig=${cmKubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${cmPort}`,
      `--cert-dir=${path.join(kubeDir(), 'controller-manager-certs')}`,
      '--leader-elect=false',
      `--controllers=${(withNode ? [...CONTROLLERS, ...NODE_CONTROLLERS] : CONTROLLERS).join(',')}`,
      `--root-ca-file=${pki('ca.crt')}`,
      `--service-account-private-key-file=${pki('sa.key')}`,
      '--use-service-account-credentials=true',
      // Above the default 20 qps / 30 burst: deleting a namespace alone costs a list and a delete per resource type.
      '--kube-api-qps=200',
      '--kube-api-burst=400',
      '--profiling=false',
    ]);
    const cmHealth = `https://127.0.0.1:${cmPort}/healthz`;
    await waitForProcess(
      async () => {
        const r = await get(cmHealth, { rejectUnauthorized: false }, 3000);
        return r.status === 200 && r.body.trim() === 'ok';
      },
      `kube-controller-manager to answer "ok" on ${cmHealth}`,
      controllerManager,
      [etcd, apiserver],
      60000,
    );
    // Its controllers really run once the ServiceAccount controller has given namespace "default" its account: until
    // then pods (and so Jobs) in that namespace are refused by admission.
    await waitForProcess(
      async () => (await get(`${server}/api/v1/namespaces/default/serviceaccounts/default`, tls, 3000)).status === 200,
      'kube-controller-manager to create the ServiceAccount default/default',
      controllerManager,
      [etcd, apiserver],
      60000,
    );
    if (withNode) {
      // Pods reach the API server through the `kubernetes` Service: its EndpointSlice must name this server (the
      // port is new after a restart) before the node's kube-proxy programs it.
      await waitForProcess(
        async () => {
          const r = await get(`${server}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes`, tls);
          if (r.status !== 200) return false;
          const slice = JSON.parse(r.body) as { endpoints?: { addresses: string[] }[]; ports?: { port?: number }[] };
          return (
            !!slice.endpoints?.some((e) => e.addresses.includes(BRIDGE_IP)) &&
            !!slice.ports?.some((p) => p.port === apiPort)
          );
        },
        `the kubernetes Service's EndpointSlice to name ${BRIDGE_IP}:${apiPort}`,
        apiserver,
        [etcd],
        60000,
      );
    }
    const seconds = (from: number, to: number): string => ((to - from) / 1000).toFixed(1);
    say(
      `kubernetes: ready in ${seconds(started, Date.now())} s (ready after: etcd ${seconds(started, etcdReady)} s, ` +
        `kube-apiserver ${seconds(started, apiserverReady)} s, kube-controller-manager +${seconds(apiserverReady, Date.now())} s)`,
    );
    return {
      address: server,
      env: { KUBECONFIG: adminKubeconfigPath() },
      ports: { etcdClient, etcdPeer, apiserver: apiPort, controllerManager: cmPort },
    };
  },

  async probe(endpoint): Promise<Probe> {
    const kubeconfig = endpoint.env.KUBECONFIG;
    if (!kubeconfig) return { ok: false, detail: 'no KUBECONFIG in the endpoint' };
    const k8s = await import('@kubernetes/client-node');
    const kc = await loadKubeconfig(kubeconfig);
    const cluster = kc.getCurrentCluster();
    if (!cluster) return { ok: false, detail: `${kubeconfig}: no current context or cluster` };
    let info: { gitVersion: string };
    try {
      info = await withTimeout(kc.makeApiClient(k8s.VersionApi).getCode(), 10000, `GET ${cluster.server}/version`);
    } catch (err) {
      // client-node's ApiException carries the status and a multi-line message (headers included): keep it short.
      const why =
        err instanceof k8s.ApiException ? `HTTP ${err.code}` : err instanceof Error ? err.message : String(err);
      return { ok: false, detail: `GET ${cluster.server}/version as ${kubeconfig}'s current user: ${why}` };
    }
    // Any credential the kubeconfig holds (certificates, token, exec plugin) is applied to the raw /readyz request.
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const readyz = await get(`${cluster.server.replace(/\/+$/, '')}/readyz`, opts, 10000);
    const ok = readyz.status === 200 && readyz.body.trim() === 'ok';
    return {
      ok,
      version: info.gitVersion,
      ...(ok
        ? {}
        : { detail: `${cluster.server}/readyz answered ${readyz.status}: ${readyz.body.trim().slice(0, 300)}` }),
    };
  },
};
