import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { say, StackError } from './log';
import { cacheDir, ensureDir, stateDir } from './paths';
import { isAlive, type ProcessRecord } from './processes';
import { versions } from './versions';

/**
 * The host side of the single node's network: a bridge of the stack's own, the kernel settings
 * pods need, and the iptables rules that keep every packet of the cluster on this machine. Set up by the kubernetes
 * component before the API server starts (it listens on the bridge address, where pods reach it) and undone by it
 * after the API server stops; the node component runs on top of it.
 *
 * What keeps traffic on the machine:
 * - Pods get the pod subnet (on-link) and a route to the Service range through the bridge, and no default route: a pod
 *   sending anywhere else gets "Network is unreachable" (CNI config in components/node.ts).
 * - The Service range is an `unreachable` route on the host: a ClusterIP packet that no kube-proxy DNAT rule rewrote
 *   is refused here and can never follow the default route out.
 * - TALLY-FORWARD, first in FORWARD: forwarding only from the bridge to itself; everything else forwarded is dropped
 *   (ip_forward was off before the stack turned it on, so nothing else on the machine relied on forwarding).
 * - TALLY-INPUT: the bridge subnet's addresses (the API server, the kubelet and DNS listen on the bridge address)
 *   accept packets only from the bridge and from the host itself, never from another interface.
 * - No NAT by the stack: the CNI bridge has ipMasq false; kube-proxy masquerades only Service traffic from outside the
 *   pod range (the host itself), whose source it rewrites to the bridge address.
 */

export const NODE_NAME = 'tally-node';
export const BRIDGE = 'tally0';
export const BRIDGE_IP = '10.244.0.1';
export const POD_CIDR = '10.244.0.0/24';
/** The API server's --service-cluster-ip-range (kubernetes.ts); 10.0.0.1 is the `kubernetes` Service. */
export const SERVICE_CIDR = '10.0.0.0/24';

const FORWARD_CHAIN = 'TALLY-FORWARD';
const INPUT_CHAIN = 'TALLY-INPUT';

/**
 * Kernel settings the node changes: ip_forward and bridge netfilter (the stack), the kubelet's kernel tunables
 * (vm.overcommit_memory, kernel.panic...), and those kube-proxy may touch. Recorded before the first change and put back
 * by tearDownHostNetwork.
 */
const SYSCTLS = [
  'net.ipv4.ip_forward',
  'net.bridge.bridge-nf-call-iptables',
  'vm.overcommit_memory',
  'vm.panic_on_oom',
  'kernel.panic',
  'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys',
  'kernel.keys.root_maxbytes',
  'net.netfilter.nf_conntrack_max',
  'net.netfilter.nf_conntrack_tcp_timeout_established',
  'net.netfilter.nf_conntrack_tcp_timeout_close_wait',
  'net.ipv4.conf.all.route_localnet',
];

/**
 * The machine-wide record of which state directory's stack runs this machine's node, with the kernel settings from
 * before it started: the bridge, its subnet and the iptables chains exist once per machine, so one stack has the node
 * and any other stack there runs without it. On /run: gone with a reboot, like the bridge.
 */
const OWNER = '/run/tally-node-owner';

interface Owner {
  stateDir: string;
  sysctls: Record<string, string>;
}

function owner(): Owner | undefined {
  let text: string;
  try {
    text = fs.readFileSync(OWNER, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as Owner;
  } catch {
    // The first version of this record held the state directory only.
    return text.trim() ? { stateDir: text.trim(), sysctls: {} } : undefined;
  }
}

function ours(o: Owner): boolean {
  return path.resolve(o.stateDir) === path.resolve(stateDir());
}

/**
 * The other stack that runs this machine's node, while its API server runs. One that is gone without `down` (killed,
 * or its state directory removed) left the bridge and rules behind: the next stack to start the node reclaims them.
 */
export function otherNodeOwner(): string | undefined {
  const o = owner();
  if (o) return !ours(o) && isAlive(readRecordIn(o.stateDir, 'kube-apiserver')) ? o.stateDir : undefined;
  // A bridge with no record is nobody's to take: left alone, and this stack runs without the node.
  if (fs.existsSync(`/sys/class/net/${BRIDGE}`) && !hostNetworkSetUp()) return `an unknown stack (${BRIDGE} exists)`;
  return undefined;
}

/**
 * This stack may change the machine-wide parts of the node (rules, bridge, kernel settings): no other stack's
 * record is there. A stack that is gone and was reclaimed by another must leave them to that one.
 */
export function ownsNodeNetwork(): boolean {
  const o = owner();
  return !o || ours(o);
}

/** Wanted unless TALLY_STACK_NODE=0. */
export function nodeWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TALLY_STACK_NODE !== '0';
}

/** A cluster named by KUBECONFIG other than the stack's own (kubernetes.ts fromEnvironment): it gets no node. */
function externalCluster(env: NodeJS.ProcessEnv): boolean {
  const k = env.KUBECONFIG;
  return !!k && path.resolve(k) !== path.resolve(stateDir(), 'kube', 'admin.kubeconfig');
}

/** This stack runs the node: wanted, on the stack's own cluster, and no other stack on the machine has it. */
export function nodeEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return nodeWanted(env) && !externalCluster(env) && otherNodeOwner() === undefined;
}

export function nodeDir(): string {
  return path.join(stateDir(), 'node');
}

/** Present while the host network is set up by this state directory; holds the recorded kernel settings. */
function markerPath(): string {
  return path.join(nodeDir(), 'host-network.json');
}

export function hostNetworkSetUp(): boolean {
  return fs.existsSync(markerPath());
}

/** Which setup of the host network is in place ('' when none): processes bound to the bridge belong to one. */
export function hostNetworkId(): string {
  try {
    return (JSON.parse(fs.readFileSync(markerPath(), 'utf8')) as Marker).id;
  } catch {
    return '';
  }
}

interface Marker {
  /** New each time the network is set up afresh: the node and DNS restart when it changes (fingerprint). */
  id: string;
  stateDir: string;
  sysctls: Record<string, string>;
}

/** Runs a command to completion; resolves with stdout, rejects with its stderr. */
export function run(command: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: opts.env ?? process.env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')}: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}

async function succeeds(command: string, args: string[]): Promise<boolean> {
  try {
    await run(command, args);
    return true;
  } catch {
    return false;
  }
}

function sysctlPath(key: string): string {
  return path.join('/proc/sys', ...key.split('.'));
}

function readSysctl(key: string): string | undefined {
  try {
    return fs.readFileSync(sysctlPath(key), 'utf8').trim();
  } catch {
    return undefined;
  }
}

function writeSysctl(key: string, value: string): void {
  fs.writeFileSync(sysctlPath(key), value);
}

async function bridgeExists(): Promise<boolean> {
  return succeeds('ip', ['link', 'show', 'dev', BRIDGE]);
}

function readRecordIn(dir: string, name: string): ProcessRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'pids', `${name}.json`), 'utf8')) as ProcessRecord;
  } catch {
    return undefined;
  }
}

/**
 * Removes what a stack that is gone without `down` left of its node (its processes are not running: checked by
 * otherNodeOwner): mounts under its node directory, kube-proxy's rules, the stack's chains, route and bridge. Its
 * record of the kernel settings is kept by the caller, so that this stack's `down` restores them.
 */
async function reclaim(stale: Owner): Promise<void> {
  say(`node: removing the node network left by a stack that is gone (${stale.stateDir})`);
  const root = path.join(stale.stateDir, 'node');
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === root || p.startsWith(`${root}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run('umount', ['-l', m]).catch(() => undefined);
  const proxy = path.join(cacheDir(), 'kube', versions().KUBE_VERSION, 'bin', 'kube-proxy');
  if (fs.existsSync(proxy)) await run(proxy, ['--cleanup']).catch(() => undefined);
  await removeStackRules();
}

let settingUp: Promise<void> | undefined;

/**
 * Idempotent: a second call (a restarted API server) finds everything in place and only checks it. Kubernetes and
 * Cassandra (which listens on the bridge address) start in parallel and both call it: one set-up runs at a time.
 */
export function setUpHostNetwork(): Promise<void> {
  const next = (settingUp ?? Promise.resolve()).catch(() => undefined).then(setUpHostNetworkOnce);
  settingUp = next;
  return next;
}

async function setUpHostNetworkOnce(): Promise<void> {
  ensureDir(nodeDir());
  let marker: Marker | undefined;
  try {
    marker = JSON.parse(fs.readFileSync(markerPath(), 'utf8')) as Marker;
  } catch {
    marker = undefined;
  }
  if (!marker) {
    // The bridge, its subnet and the chains are machine-wide: only one stack's node can run on a machine.
    const other = otherNodeOwner();
    if (other) {
      throw new StackError(
        `node: the stack in ${other} runs this machine's node; start this one with TALLY_STACK_NODE=0`,
      );
    }
    const stale = owner();
    if (stale) await reclaim(stale);
    const routes = await run('ip', ['-4', 'route', 'show', 'table', 'all']);
    for (const cidr of [POD_CIDR, SERVICE_CIDR]) {
      if (routes.split('\n').some((l) => l.split(/\s+/).includes(cidr))) {
        throw new StackError(
          `node: the host already has a route for ${cidr}; the node's network would collide with it`,
        );
      }
    }
    // The settings from before any stack's node: a reclaimed owner's record has them, else they are read now.
    const sysctls: Record<string, string> = { ...stale?.sysctls };
    for (const key of SYSCTLS) {
      const value = readSysctl(key);
      if (value !== undefined && !(key in sysctls)) sysctls[key] = value;
    }
    marker = { id: new Date().toISOString(), stateDir: stateDir(), sysctls };
    // Written before the first change, so a failure half-way is still undone by tearDownHostNetwork.
    fs.writeFileSync(markerPath(), JSON.stringify(marker, null, 2));
    fs.writeFileSync(OWNER, JSON.stringify({ stateDir: stateDir(), sysctls } satisfies Owner, null, 2));
    say(`node: setting up the bridge ${BRIDGE} (${BRIDGE_IP}) and the host's forwarding rules`);
  }
  if (!(await bridgeExists())) await run('ip', ['link', 'add', 'name', BRIDGE, 'type', 'bridge']);
  // No IPv6 on the bridge: no router solicitations or link-local addresses, only the IPv4 subnet below.
  writeSysctl(`net.ipv6.conf.${BRIDGE}.disable_ipv6`, '1');
  const addrs = await run('ip', ['-4', '-o', 'addr', 'show', 'dev', BRIDGE]);
  if (!addrs.includes(`${BRIDGE_IP}/`)) await run('ip', ['addr', 'add', `${BRIDGE_IP}/24`, 'dev', BRIDGE]);
  await run('ip', ['link', 'set', 'dev', BRIDGE, 'up']);
  const unreachable = await run('ip', ['-4', 'route', 'show', 'type', 'unreachable', SERVICE_CIDR]);
  if (!unreachable.trim()) await run('ip', ['route', 'add', 'unreachable', SERVICE_CIDR]);
  await ensureChains();
  // Pods' packets are routed between veths of the one bridge; bridged packets pass iptables too, so that a Service's
  // reply from a pod on the same bridge is un-DNATed (kube-proxy needs it).
  writeSysctl('net.ipv4.ip_forward', '1');
  writeSysctl('net.bridge.bridge-nf-call-iptables', '1');
}

async function ensureChains(): Promise<void> {
  for (const chain of [FORWARD_CHAIN, INPUT_CHAIN]) {
    if (!(await succeeds('iptables', ['-w', '-S', chain]))) await run('iptables', ['-w', '-N', chain]);
    await run('iptables', ['-w', '-F', chain]);
  }
  const rules: [string, string[]][] = [
    [FORWARD_CHAIN, ['-i', BRIDGE, '-o', BRIDGE, '-j', 'ACCEPT']],
    [FORWARD_CHAIN, ['-j', 'DROP']],
    [INPUT_CHAIN, ['-i', BRIDGE, '-j', 'RETURN']],
    [INPUT_CHAIN, ['-i', 'lo', '-j', 'RETURN']],
    [INPUT_CHAIN, ['-d', POD_CIDR, '-j', 'DROP']],
  ];
  for (const [chain, rule] of rules) {
    await run('iptables', ['-w', '-A', chain, ...rule, '-m', 'comment', '--comment', 'tally local stack']);
  }
  await putJumpFirst('FORWARD', FORWARD_CHAIN);
  await putJumpFirst('INPUT', INPUT_CHAIN);
}

/** Makes `-j chain` the first rule of `builtin`, once (kube-proxy prepends its own jumps when it starts). */
async function putJumpFirst(builtin: string, chain: string): Promise<void> {
  const rules = (await run('iptables', ['-w', '-S', builtin])).split('\n').filter((l) => l.startsWith('-A '));
  if (rules[0] === `-A ${builtin} -j ${chain}` && rules.filter((r) => r.endsWith(`-j ${chain}`)).length === 1) return;
  while (await succeeds('iptables', ['-w', '-D', builtin, '-j', chain]));
  await run('iptables', ['-w', '-I', builtin, '1', '-j', chain]);
}

/** After kube-proxy has added its jumps (KUBE-FORWARD accepts marked and established packets): ours come first. */
export async function keepStackRulesFirst(): Promise<void> {
  await putJumpFirst('FORWARD', FORWARD_CHAIN);
  await putJumpFirst('INPUT', INPUT_CHAIN);
}

/** The stack's chains and their jumps, the Service-range route and the bridge. */
async function removeStackRules(): Promise<void> {
  for (const [builtin, chain] of [
    ['FORWARD', FORWARD_CHAIN],
    ['INPUT', INPUT_CHAIN],
  ] as const) {
    while (await succeeds('iptables', ['-w', '-D', builtin, '-j', chain]));
    if (await succeeds('iptables', ['-w', '-S', chain])) {
      await run('iptables', ['-w', '-F', chain]);
      await run('iptables', ['-w', '-X', chain]);
    }
  }
  while (await succeeds('ip', ['route', 'del', 'unreachable', SERVICE_CIDR]));
  if (await bridgeExists()) await run('ip', ['link', 'del', 'dev', BRIDGE]);
}

/** Undoes setUpHostNetwork: rules, route, bridge, kernel settings. Safe to call when nothing is set up. */
export async function tearDownHostNetwork(): Promise<void> {
  let marker: Marker;
  try {
    marker = JSON.parse(fs.readFileSync(markerPath(), 'utf8')) as Marker;
  } catch {
    return;
  }
  if (!ownsNodeNetwork()) {
    // Reclaimed by the stack that runs the node now: its bridge and rules are not ours to remove.
    fs.rmSync(markerPath(), { force: true });
    return;
  }
  await removeStackRules();
  for (const [key, value] of Object.entries(marker.sysctls)) {
    try {
      if (readSysctl(key) !== value) writeSysctl(key, value);
    } catch (err) {
      say(`node: could not restore ${key}=${value}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  fs.rmSync(markerPath(), { force: true });
  const o = owner();
  if (o && ours(o)) fs.rmSync(OWNER, { force: true });
  say(`node: removed the bridge ${BRIDGE} and the host's forwarding rules, restored the kernel settings`);
}
