import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import type { Component, Endpoint, Probe } from '../component';
import { say, StackError } from '../log';
import {
  BRIDGE,
  hostNetworkId,
  BRIDGE_IP,
  hostNetworkSetUp,
  keepStackRulesFirst,
  NODE_NAME,
  nodeDir,
  ownsNodeNetwork,
  POD_CIDR,
  run,
  SERVICE_CIDR,
} from '../node-network';
import { portOr } from '../ports';
import { cacheDir, ensureDir, stackScript, stateDir } from '../paths';
import { isAlive, type ProcessRecord, readRecord, runCommand, startProcess, stopProcess } from '../processes';
import { versions } from '../versions';
import { waitFor } from '../wait';
import { adminKubeconfigPath } from './kubernetes';

/**
 * The single node (unless TALLY_STACK_NODE=0): containerd (built from the Go module proxy) with Debian's runc and CNI
 * plugins, the kubelet, kube-proxy and kube-scheduler (built from the API server's Kubernetes source), on the host
 * network set up by node-network.ts. Pods run from images built here only (build-node-images.sh): containerd is
 * configured so that no image is ever pulled from anywhere (see writeContainerdConfig).
 *
 * Pitfalls of this machine kind, handled below: root lacks CAP_SYS_RESOURCE (containerd restrict_oom_score_adj),
 * cgroups v1 in hybrid mode (kubelet failCgroupV1: false, cgroupDriver cgroupfs, runc SystemdCgroup false), no swap
 * accounting (failSwapOn: false).
 */

const CONTAINERD = 'containerd';
const KUBELET = 'kubelet';
const KUBE_PROXY = 'kube-proxy';
const SCHEDULER = 'kube-scheduler';

export const PAUSE_IMAGE = 'tally.local/pause:1';
/** The smoke test's workload: `probe serve PORT`, `probe get URL`, `probe resolve NAME`, `probe kube`. */
export const PROBE_IMAGE = 'tally.local/probe:1';
/** Where pods find cluster DNS: the dns component's CoreDNS on the bridge address. */
export const CLUSTER_DNS = BRIDGE_IP;
export const CLUSTER_DOMAIN = 'cluster.local';

function dir(...parts: string[]): string {
  return path.join(nodeDir(), ...parts);
}

export function pki(file: string): string {
  return path.join(stateDir(), 'kube', 'pki', file);
}

function kubeBin(name: string): string {
  return path.join(cacheDir(), 'kube', versions().KUBE_VERSION, 'bin', name);
}

function containerdBinDir(): string {
  return path.join(cacheDir(), 'containerd', versions().CONTAINERD_VERSION, 'bin');
}

function crictlBin(): string {
  return path.join(cacheDir(), 'crictl', versions().CRICTL_VERSION, 'bin', 'crictl');
}

export function containerdSocket(): string {
  return dir('containerd', 'containerd.sock');
}

/** The API server as the stack's own kubernetes component wrote it into the admin kubeconfig. */
export function apiServer(env: Record<string, string>): string {
  if (env.KUBECONFIG !== adminKubeconfigPath() || !hostNetworkSetUp()) {
    throw new StackError(
      'node: needs the stack’s own kubernetes started with the node (not a cluster named by KUBECONFIG)',
    );
  }
  const doc = yaml.load(fs.readFileSync(adminKubeconfigPath(), 'utf8')) as {
    clusters: { cluster: { server: string } }[];
  };
  return doc.clusters[0]!.cluster.server;
}

/** A kubeconfig for one of the node's client certificates in the cluster's pki. */
export function writeKubeconfig(file: string, server: string, user: string, cert: string): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'tally-local', cluster: { server, 'certificate-authority': pki('ca.crt') } }],
    users: [{ name: user, user: { 'client-certificate': pki(`${cert}.crt`), 'client-key': pki(`${cert}.key`) } }],
    contexts: [{ name: 'tally-local', context: { cluster: 'tally-local', user } }],
    'current-context': 'tally-local',
  };
  fs.writeFileSync(file, yaml.dump(config), { mode: 0o600 });
}

function adminTls(): https.RequestOptions {
  return {
    ca: fs.readFileSync(pki('ca.crt')),
    cert: fs.readFileSync(pki('admin.crt')),
    key: fs.readFileSync(pki('admin.key')),
  };
}

/** One request to the API server as the admin user; resolves with status and body. */
export function kubeRequest(
  server: string,
  method: string,
  urlPath: string,
  body?: string,
  contentType = 'application/json',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${server}${urlPath}`,
      {
        ...adminTls(),
        method,
        timeout: 10000,
        headers: body === undefined ? {} : { 'content-type': contentType },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Server-side apply of cluster-scoped RBAC objects (idempotent). */
export async function applyRbac(server: string, objects: Record<string, unknown>[]): Promise<void> {
  for (const obj of objects) {
    const kind = obj.kind === 'ClusterRole' ? 'clusterroles' : 'clusterrolebindings';
    const name = (obj.metadata as { name: string }).name;
    const r = await kubeRequest(
      server,
      'PATCH',
      `/apis/rbac.authorization.k8s.io/v1/${kind}/${name}?fieldManager=tally-stack&force=true`,
      JSON.stringify(obj),
      'application/apply-patch+yaml',
    );
    if (r.status !== 200 && r.status !== 201) {
      throw new StackError(
        `node: applying ${obj.kind as string} ${name} failed: HTTP ${r.status} ${r.body.slice(0, 300)}`,
      );
    }
  }
}

interface NodeStatus {
  ready: boolean;
  kubelet?: string;
  runtime?: string;
  why?: string;
}

/** `since`: a Ready condition the kubelet last reported before then is stale (a Node object left in etcd). */
async function nodeStatus(server: string, since = 0): Promise<NodeStatus> {
  const r = await kubeRequest(server, 'GET', `/api/v1/nodes/${NODE_NAME}`);
  if (r.status === 404) return { ready: false, why: `node ${NODE_NAME} is not registered` };
  if (r.status !== 200) return { ready: false, why: `GET node ${NODE_NAME}: HTTP ${r.status}` };
  const node = JSON.parse(r.body) as {
    status?: {
      conditions?: { type: string; status: string; message?: string; lastHeartbeatTime?: string }[];
      nodeInfo?: { kubeletVersion?: string; containerRuntimeVersion?: string };
    };
  };
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  // Heartbeats have whole seconds.
  const fresh = Date.parse(ready?.lastHeartbeatTime ?? '') >= Math.floor(since / 1000) * 1000;
  return {
    ready: ready?.status === 'True' && fresh,
    kubelet: node.status?.nodeInfo?.kubeletVersion,
    runtime: node.status?.nodeInfo?.containerRuntimeVersion,
    why: !ready
      ? 'no Ready condition yet'
      : fresh
        ? `Ready=${ready.status}: ${ready.message ?? ''}`
        : `no heartbeat from this kubelet yet (last ${ready.lastHeartbeatTime ?? 'never'})`,
  };
}

/**
 * containerd v2 (config schema version 3): its own root, state and socket; the CRI plugin with the pinned local
 * pause image, runc without systemd, CNI from Debian's plugins and the stack's conflist.
 *
 * No image is ever pulled: every registry host resolves, through the hosts directory's `_default` entry (used for any
 * host without a directory of its own, the default registry included), to a closed port on loopback. A pod whose image
 * is not imported (a CronJob left in etcd by earlier tests lands on the node at once) fails with ErrImagePull
 * ("connection refused" on 127.0.0.1:9) and nothing leaves the machine.
 */
function writeContainerdConfig(): string {
  const hosts = ensureDir(dir('containerd', 'hosts', '_default'));
  fs.writeFileSync(
    path.join(hosts, 'hosts.toml'),
    [
      '# Written by the local stack: no registry is ever reached. Every host resolves to a closed port on loopback.',
      'server = "http://127.0.0.1:9"',
      '',
      '[host."http://127.0.0.1:9"]',
      '  capabilities = ["pull", "resolve"]',
      '',
    ].join('\n'),
  );
  const state = dir('containerd', 'state');
  const toml = `# Written by the local stack (test/stack/components/node.ts).
version = 3
root = ${JSON.stringify(dir('containerd', 'root'))}
state = ${JSON.stringify(state)}

[grpc]
  address = ${JSON.stringify(containerdSocket())}

[debug]
  level = "info"

[plugins]
  # Kept under the stack's root instead of /opt/containerd.
  [plugins.'io.containerd.internal.v1.opt']
    path = ${JSON.stringify(dir('containerd', 'opt'))}
  # No NRI socket under /var/run/nri: nothing here uses it.
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.transfer.v1.local']
    config_path = ${JSON.stringify(dir('containerd', 'hosts'))}
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = ${JSON.stringify(PAUSE_IMAGE)}
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = ${JSON.stringify(dir('containerd', 'hosts'))}
  [plugins.'io.containerd.cri.v1.runtime']
    # Root here lacks CAP_SYS_RESOURCE and cannot lower oom_score_adj (the kubelet asks -998 for sandboxes): without
    # this no sandbox starts ("runc create failed: ... can't get final child's PID from pipe: EOF").
    restrict_oom_score_adj = true
    # Network namespaces under the state directory, not /var/run/netns.
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          Root = ${JSON.stringify(path.join(state, 'runc'))}
          # cgroups v1 with the cgroupfs driver, like the kubelet: no systemd here.
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["/usr/lib/cni"]
      conf_dir = ${JSON.stringify(dir('cni', 'net.d'))}
      max_conf_num = 1
  [plugins.'io.containerd.grpc.v1.cri']
    # exec/attach/port-forward streams, proxied by the kubelet: loopback only.
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
`;
  const file = dir('containerd', 'config.toml');
  fs.writeFileSync(file, toml);
  return file;
}

/**
 * The pod network: the stack's bridge as the pods' gateway (isGateway), no masquerading, host-local addresses from the
 * pod range kept in the stack's directory, and routes only to the Service range (through the bridge): no default
 * route, so a pod cannot send to any address off this machine.
 */
function writeCniConfig(): void {
  const netd = ensureDir(dir('cni', 'net.d'));
  const conflist = {
    cniVersion: '1.0.0',
    name: 'tally',
    plugins: [
      {
        type: 'bridge',
        bridge: BRIDGE,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          dataDir: dir('cni', 'ipam'),
          ranges: [[{ subnet: POD_CIDR, gateway: BRIDGE_IP }]],
          routes: [{ dst: SERVICE_CIDR }],
        },
      },
      { type: 'loopback' },
    ],
  };
  fs.writeFileSync(path.join(netd, '10-tally.conflist'), JSON.stringify(conflist, null, 2));
}

function writeKubeletConfig(ports: Record<string, number>): string {
  // Pods get the cluster DNS and search path from the kubelet; this file gives them no host nameserver.
  const resolv = dir('kubelet-resolv.conf');
  fs.writeFileSync(resolv, '# Written by the local stack: pods get no nameserver of the host.\n');
  const config = {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // The API server reaches the kubelet on the bridge address (the node's InternalIP), never an outside interface.
    address: BRIDGE_IP,
    port: ports.kubelet,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: ports.kubeletHealthz,
    tlsCertFile: pki('kubelet-serving.crt'),
    tlsPrivateKeyFile: pki('kubelet-serving.key'),
    // logs/exec: the API server's client certificate is checked against the cluster CA, and what it may do is asked
    // of the API server (SubjectAccessReview); no anonymous access.
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: pki('ca.crt') },
    },
    authorization: { mode: 'Webhook' },
    containerRuntimeEndpoint: `unix://${containerdSocket()}`,
    // cgroups v1 (hybrid) on this machine kind: the kubelet refuses v1 unless told, and there is no systemd.
    cgroupDriver: 'cgroupfs',
    failCgroupV1: false,
    failSwapOn: false,
    clusterDNS: [CLUSTER_DNS],
    clusterDomain: CLUSTER_DOMAIN,
    resolvConf: resolv,
    podLogsDir: dir('pod-logs'),
    // A test machine's disk and memory run fuller than a server's: evict only when really short.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
    // Never remove the images imported at start (they cannot be pulled again).
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    rotateCertificates: false,
    serverTLSBootstrap: false,
    registerNode: true,
    maxPods: 50,
    // Status reaches the API server quickly after start.
    nodeStatusReportFrequency: '10s',
    syncFrequency: '10s',
  };
  const file = dir('kubelet-config.yaml');
  fs.writeFileSync(file, yaml.dump(config));
  return file;
}

/**
 * Waits on `probe` while `waited` and the processes it depends on run; the error names the process that died (if
 * one did) and its log.
 */
async function waitForProcess(
  what: string,
  probe: () => Promise<boolean>,
  waited: ProcessRecord,
  alsoNeeded: ProcessRecord[],
  timeoutMs: number,
  intervalMs = 250,
): Promise<void> {
  try {
    await waitFor(what, probe, {
      timeoutMs,
      intervalMs,
      logPath: waited.logPath,
      stillRunning: () => [waited, ...alsoNeeded].every((r) => isAlive(r)),
    });
  } catch (err) {
    const dead = alsoNeeded.find((r) => !isAlive(r));
    if (dead)
      throw new StackError(`node: ${dead.name} exited while waiting for ${what}; see its log at ${dead.logPath}`);
    throw new StackError(`node: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The status of a GET, without verifying the server's certificate (health endpoints of the node's processes). */
function getInsecure(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    const req = client.request(url, { method: 'GET', timeout: 3000, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within 3 s`)));
    req.on('error', reject);
    req.end();
  });
}

function ctr(args: string[]): Promise<string> {
  return run(path.join(containerdBinDir(), 'ctr'), ['--address', containerdSocket(), '--namespace', 'k8s.io', ...args]);
}

/**
 * Puts an image archive (docker-archive tar) into the node's containerd unless an image of that name is there: pods
 * can only run what is imported, nothing is ever pulled.
 */
export async function importImage(ref: string, tar: string): Promise<void> {
  const present = (await ctr(['images', 'ls', '-q'])).split('\n').map((l) => l.trim());
  // containerd names a short reference in full (docker.io/library/...): ours always carry their registry part.
  if (present.includes(ref)) return;
  await ctr(['images', 'import', tar]);
}

function crictl(args: string[]): Promise<string> {
  return run(crictlBin(), ['--runtime-endpoint', `unix://${containerdSocket()}`, '--timeout', '20s', ...args]);
}

/** The directory build-node-images.sh wrote pause.tar and probe.tar into. */
async function imagesDir(): Promise<string> {
  return (await run('bash', [stackScript('build-node-images.sh')])).trim().split('\n').pop()!;
}

/** Paths of the mounts under `root` (deepest first), from /proc/self/mountinfo. */
function mountsUnder(roots: string[]): string[] {
  const lines = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const points = lines
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => roots.some((r) => p === r || p.startsWith(`${r}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** The kubelet's pod cgroups (cgroupfs driver, v1): one `kubepods` tree per controller hierarchy. */
function removeKubepodsCgroups(): void {
  const base = '/sys/fs/cgroup';
  let controllers: string[] = [];
  try {
    controllers = fs.readdirSync(base);
  } catch {
    return;
  }
  const rmTree = (d: string): void => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) rmTree(path.join(d, e.name));
    try {
      fs.rmdirSync(d);
    } catch {
      // Still in use or already gone: left as it is.
    }
  };
  for (const c of controllers) rmTree(path.join(base, c, 'kubepods'));
}

/** Symlinks the kubelet made in /var/log/containers (a fixed path) to logs of this node. */
function removeContainerLogLinks(): void {
  const links = '/var/log/containers';
  let names: string[] = [];
  try {
    names = fs.readdirSync(links);
  } catch {
    return;
  }
  for (const name of names) {
    const link = path.join(links, name);
    try {
      if (fs.readlinkSync(link).startsWith(`${dir('pod-logs')}/`)) fs.rmSync(link);
    } catch {
      // Not a link of ours.
    }
  }
}

/**
 * Removes every pod of this node through the CRI (containers stopped, CNI teardown, network namespaces gone) while
 * containerd runs; then stops it. A containerd that is gone while its runc state still lists containers is started
 * once more for that.
 */
async function removePodsAndStopContainerd(): Promise<boolean> {
  let stopped = false;
  const runcRoot = dir('containerd', 'state', 'runc', 'k8s.io');
  const leftovers = (): boolean => {
    try {
      return fs.readdirSync(runcRoot).length > 0;
    } catch {
      return false;
    }
  };
  if (!isAlive(readRecord(CONTAINERD)) && leftovers() && fs.existsSync(dir('containerd', 'config.toml'))) {
    say('node: containerd is gone but containers are left: starting it to remove them');
    await startContainerd();
  }
  if (isAlive(readRecord(CONTAINERD))) {
    try {
      await crictl(['rmp', '--all', '--force']);
    } catch (err) {
      say(`node: removing the pods failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    stopped = true;
  }
  return (await stopProcess(CONTAINERD)) || stopped;
}

async function startContainerd(): Promise<ProcessRecord> {
  const config = writeContainerdConfig();
  fs.rmSync(containerdSocket(), { force: true });
  // Its own shim first on PATH: containerd looks the runtime's shim up by name.
  const env = { ...process.env, PATH: `${containerdBinDir()}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  const record = startProcess(CONTAINERD, path.join(containerdBinDir(), 'containerd'), ['--config', config], { env });
  await waitForProcess(
    `containerd to answer on ${containerdSocket()}`,
    async () => {
      await ctr(['version']);
      return true;
    },
    record,
    [],
    60000,
  );
  return record;
}

/**
 * The kubelet's own iptables chains (IPv4 and IPv6), which kube-proxy --cleanup leaves: KUBE-FIREWALL (drops outside
 * packets to 127.0.0.0/8) with its jumps from INPUT and OUTPUT, the canary chains it watches for flushes, and the
 * KUBE-IPTABLES-HINT that tells other tools which iptables backend it used.
 */
async function removeKubeletChains(): Promise<void> {
  const chains: Record<string, string[]> = {
    filter: ['KUBE-FIREWALL', 'KUBE-KUBELET-CANARY'],
    nat: ['KUBE-KUBELET-CANARY'],
    mangle: ['KUBE-IPTABLES-HINT', 'KUBE-KUBELET-CANARY'],
  };
  for (const tool of ['iptables', 'ip6tables']) {
    for (const [table, names] of Object.entries(chains)) {
      let rules: string[];
      try {
        rules = (await run(tool, ['-w', '-t', table, '-S'])).split('\n');
      } catch {
        continue;
      }
      for (const name of names) {
        for (const rule of rules.filter((r) => r.startsWith('-A ') && r.endsWith(`-j ${name}`))) {
          const [, chain, ...spec] = rule.split(' ');
          if (chain && !names.includes(chain)) await run(tool, ['-w', '-t', table, '-D', chain, ...spec]);
        }
      }
      for (const name of names) {
        if (!rules.includes(`-N ${name}`)) continue;
        await run(tool, ['-w', '-t', table, '-F', name]);
        await run(tool, ['-w', '-t', table, '-X', name]);
      }
    }
  }
}

/**
 * Runs after the kubelet is stopped, and on a failed start: leaves nothing of the node on the machine. The
 * machine-wide parts (iptables, fixed directories) only while no other stack runs the node now.
 */
async function cleanUp(): Promise<void> {
  for (const mount of mountsUnder([nodeDir()])) {
    try {
      await run('umount', [mount]);
    } catch {
      await run('umount', ['-l', mount]).catch(() => undefined);
    }
  }
  // Links to this stack's pod logs, whoever runs the node now.
  removeContainerLogLinks();
  if (!ownsNodeNetwork()) return;
  if (fs.existsSync(kubeBin(KUBE_PROXY))) {
    try {
      // Removes kube-proxy's chains and rules (iptables, and nftables if any); ours are node-network.ts's.
      await run(kubeBin(KUBE_PROXY), ['--cleanup']);
    } catch (err) {
      say(`node: kube-proxy --cleanup failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  await removeKubeletChains().catch((err: unknown) =>
    say(`node: removing the kubelet's iptables chains failed: ${err instanceof Error ? err.message : String(err)}`),
  );
  removeKubepodsCgroups();
  // Fixed paths that no setting moves, removed when empty: the shims' sockets (/run/containerd/s), the CNI result
  // cache, the kubelet's device-plugin directory (with its own socket) and its log links.
  fs.rmSync('/var/lib/kubelet/device-plugins/kubelet.sock', { force: true });
  for (const d of [
    '/run/containerd/s',
    '/run/containerd/fifo',
    '/run/containerd',
    '/var/lib/cni/results',
    '/var/lib/cni',
    '/var/lib/kubelet/device-plugins',
    '/var/lib/kubelet',
    '/var/log/containers',
  ]) {
    try {
      fs.rmdirSync(d);
    } catch {
      // Not empty (another containerd) or not there.
    }
  }
}

async function stopNode(): Promise<boolean> {
  let stopped = false;
  for (const p of [SCHEDULER, KUBE_PROXY, KUBELET]) stopped = (await stopProcess(p)) || stopped;
  stopped = (await removePodsAndStopContainerd()) || stopped;
  // Also before every start: what a killed stack left (kube-proxy's and the kubelet's chains, mounts) goes first.
  await cleanUp();
  return stopped;
}

export const node: Component = {
  name: 'node',
  phase: 1,
  externalVars: [],
  processes: [CONTAINERD, KUBELET, KUBE_PROXY, SCHEDULER],

  fromEnvironment() {
    return undefined;
  },

  async install() {
    // One after the other: apt-get holds a lock.
    for (const [command, pkg] of [
      ['runc', 'runc'],
      ['/usr/lib/cni/bridge', 'containernetworking-plugins'],
      ['iptables', 'iptables'],
      ['conntrack', 'conntrack'],
    ]) {
      await runCommand('bash', [stackScript('install-apt.sh'), command!, pkg!]);
    }
    for (const target of ['node', 'containerd', 'crictl']) {
      await runCommand('bash', [stackScript('build-go-tools.sh'), target]);
    }
    await imagesDir();
  },

  async start(env, previous): Promise<Endpoint> {
    const started = Date.now();
    const server = apiServer(env);
    for (const bin of [kubeBin(KUBELET), kubeBin(KUBE_PROXY), kubeBin(SCHEDULER), crictlBin()]) {
      if (!fs.existsSync(bin)) throw new StackError(`node: ${bin} is missing: run install first`);
    }
    // Whatever an earlier start left (a crash, a killed `up`) is gone by now: the stack calls stop() first.
    ensureDir(nodeDir());
    const old = previous?.ports ?? {};
    const ports: Record<string, number> = {
      kubelet: await portOr(old.kubelet),
      kubeletHealthz: await portOr(old.kubeletHealthz),
      proxyHealthz: await portOr(old.proxyHealthz),
      proxyMetrics: await portOr(old.proxyMetrics),
      scheduler: await portOr(old.scheduler),
    };
    writeCniConfig();
    const containerd = await startContainerd();
    // Every image the node runs is imported before anything references it (the sandbox image first of all).
    const images = await imagesDir();
    // One archive per call: ctr reads only the first file it is given.
    for (const tar of ['pause.tar', 'probe.tar']) await ctr(['images', 'import', path.join(images, tar)]);
    const containerdReady = Date.now();

    await applyRbac(server, [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'tally:kube-apiserver-kubelet-client' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:kubelet-api-admin' },
        subjects: [
          { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'tally:kube-apiserver-kubelet-client' },
        ],
      },
    ]);
    const kubeletKubeconfig = dir('kubelet.kubeconfig');
    writeKubeconfig(kubeletKubeconfig, server, `system:node:${NODE_NAME}`, 'kubelet');
    const kubeletStarted = Date.now();
    const kubelet = startProcess(KUBELET, kubeBin(KUBELET), [
      `--config=${writeKubeletConfig(ports)}`,
      `--kubeconfig=${kubeletKubeconfig}`,
      `--root-dir=${dir('kubelet')}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${BRIDGE_IP}`,
      '--v=1',
    ]);
    let last: NodeStatus = { ready: false };
    await waitForProcess(
      `node ${NODE_NAME} to be Ready`,
      async () => {
        last = await nodeStatus(server, kubeletStarted);
        if (!last.ready) throw new Error(last.why);
        return true;
      },
      kubelet,
      [containerd],
      120000,
      500,
    );
    const kubeletReady = Date.now();

    const proxyKubeconfig = dir('kube-proxy.kubeconfig');
    writeKubeconfig(proxyKubeconfig, server, 'system:kube-proxy', 'kube-proxy');
    const proxy = startProcess(KUBE_PROXY, kubeBin(KUBE_PROXY), [
      `--kubeconfig=${proxyKubeconfig}`,
      `--hostname-override=${NODE_NAME}`,
      '--proxy-mode=iptables',
      `--cluster-cidr=${POD_CIDR}`,
      // NodePorts only on the bridge address, none on loopback (that would need route_localnet) or other interfaces.
      `--nodeport-addresses=${BRIDGE_IP}/32`,
      '--iptables-localhost-nodeports=false',
      // Leave the machine's conntrack settings alone.
      '--conntrack-max-per-core=0',
      '--conntrack-tcp-timeout-established=0',
      '--conntrack-tcp-timeout-close-wait=0',
      `--healthz-bind-address=127.0.0.1:${ports.proxyHealthz}`,
      `--metrics-bind-address=127.0.0.1:${ports.proxyMetrics}`,
    ]);
    await waitForProcess(
      `kube-proxy to answer 200 on 127.0.0.1:${ports.proxyHealthz}/healthz`,
      async () => (await getInsecure(`http://127.0.0.1:${ports.proxyHealthz}/healthz`)) === 200,
      proxy,
      [containerd, kubelet],
      60000,
    );
    // kube-proxy prepends its jumps to INPUT and FORWARD on its first sync (after it answers healthz): only then can
    // the stack's rules be put back in front of them (KUBE-FORWARD accepts marked and established packets).
    await waitForProcess(
      'kube-proxy to add its jumps to FORWARD and INPUT',
      async () => {
        const rules = (await run('iptables', ['-w', '-S', 'FORWARD'])) + (await run('iptables', ['-w', '-S', 'INPUT']));
        return [
          'KUBE-FORWARD',
          'KUBE-SERVICES',
          'KUBE-EXTERNAL-SERVICES',
          'KUBE-PROXY-FIREWALL',
          'KUBE-NODEPORTS',
        ].every((c) => rules.includes(`-j ${c}`));
      },
      proxy,
      [containerd, kubelet],
      30000,
    );
    await keepStackRulesFirst();

    const schedulerKubeconfig = dir('kube-scheduler.kubeconfig');
    writeKubeconfig(schedulerKubeconfig, server, 'system:kube-scheduler', 'kube-scheduler');
    const scheduler = startProcess(SCHEDULER, kubeBin(SCHEDULER), [
      `--kubeconfig=${schedulerKubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${ports.scheduler}`,
      '--leader-elect=false',
      '--profiling=false',
    ]);
    await waitForProcess(
      `kube-scheduler to answer 200 on 127.0.0.1:${ports.scheduler}/healthz`,
      async () => (await getInsecure(`https://127.0.0.1:${ports.scheduler}/healthz`)) === 200,
      scheduler,
      [containerd, kubelet, proxy],
      60000,
    );
    const s = (from: number, to: number): string => ((to - from) / 1000).toFixed(1);
    say(
      `node: ${NODE_NAME} ready in ${s(started, Date.now())} s (containerd + images ${s(started, containerdReady)} s, ` +
        `kubelet Ready +${s(containerdReady, kubeletReady)} s, kube-proxy and kube-scheduler +${s(kubeletReady, Date.now())} s)`,
    );
    return {
      address: `${NODE_NAME} ${BRIDGE_IP}`,
      env: { TALLY_NODE_NAME: NODE_NAME, TALLY_NODE_IP: BRIDGE_IP, TALLY_NODE_IMAGE_PROBE: PROBE_IMAGE },
      ports,
    };
  },

  // Started on one setup of the bridge: when kubernetes has set it up afresh, this starts again too.
  fingerprint: hostNetworkId,

  stop: stopNode,

  async probe(): Promise<Probe> {
    const server = apiServer({ KUBECONFIG: adminKubeconfigPath() });
    const st = await nodeStatus(server);
    return {
      ok: st.ready,
      version: `${st.kubelet ?? '?'} ${st.runtime ?? '?'}`,
      ...(st.ready ? {} : { detail: st.why }),
    };
  },
};
