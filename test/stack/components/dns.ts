import * as dns from 'node:dns';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Component, Endpoint, Probe } from '../component';
import { say, StackError } from '../log';
import { BRIDGE_IP, hostNetworkId, nodeDir } from '../node-network';
import { portOr } from '../ports';
import { cacheDir, ensureDir, stackScript } from '../paths';
import { isAlive, runCommand, startProcess } from '../processes';
import { versions } from '../versions';
import { waitFor } from '../wait';
import { adminKubeconfigPath } from './kubernetes';
import { apiServer, applyRbac, CLUSTER_DOMAIN, writeKubeconfig } from './node';

/**
 * Cluster DNS for the node (unless TALLY_STACK_NODE=0): CoreDNS, built from the Go module proxy, as a host process of the
 * stack listening on the bridge address (the kubelet's clusterDNS), with its kubernetes plugin watching the API server.
 *
 * A host process rather than a pod: it is up as soon as the stack starts it, with a recorded pid like every other
 * component (no image to build, no Deployment to schedule before names resolve); pods reach it on their gateway.
 * It answers for cluster.local (and reverse lookups of the cluster's addresses) only: there is no `forward`, so no
 * query ever leaves the machine; any other name gets REFUSED.
 */

const PROCESS = 'coredns';
/** A name that exists in every cluster: the `kubernetes` Service, 10.0.0.1. */
const CHECK_NAME = `kubernetes.default.svc.${CLUSTER_DOMAIN}`;

function corednsBin(): string {
  return path.join(cacheDir(), 'coredns', versions().COREDNS_VERSION, 'bin', 'coredns');
}

/** Resolves `name` (A records) through the stack's CoreDNS only. */
export async function resolveWithClusterDns(name: string): Promise<string[]> {
  const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([BRIDGE_IP]);
  return resolver.resolve4(name);
}

export const clusterDns: Component = {
  name: 'dns',
  phase: 1,
  externalVars: [],
  processes: [PROCESS],

  fromEnvironment() {
    return undefined;
  },

  async install() {
    await runCommand('bash', [stackScript('build-go-tools.sh'), 'coredns']);
  },

  async start(env, previous): Promise<Endpoint> {
    const server = apiServer(env);
    if (!fs.existsSync(corednsBin())) throw new StackError(`dns: ${corednsBin()} is missing: run install first`);
    const dir = ensureDir(path.join(nodeDir(), 'coredns'));
    const ports = {
      health: await portOr(previous?.ports?.health),
      ready: await portOr(previous?.ports?.ready),
    };
    // What the kubernetes plugin reads: Services, their EndpointSlices, Namespaces.
    await applyRbac(server, [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'tally:coredns' },
        rules: [
          { apiGroups: [''], resources: ['services', 'endpoints', 'namespaces'], verbs: ['list', 'watch'] },
          { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
        ],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'tally:coredns' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'tally:coredns' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'tally:coredns' }],
      },
    ]);
    const kubeconfig = path.join(dir, 'coredns.kubeconfig');
    writeKubeconfig(kubeconfig, server, 'tally:coredns', 'coredns');
    const corefile = path.join(dir, 'Corefile');
    fs.writeFileSync(
      corefile,
      `# Written by the local stack (test/stack/components/dns.ts). No forward: nothing outside the cluster resolves.
${CLUSTER_DOMAIN}:53 in-addr.arpa:53 {
    bind ${BRIDGE_IP}
    errors
    health 127.0.0.1:${ports.health}
    ready 127.0.0.1:${ports.ready}
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa {
        kubeconfig ${kubeconfig} tally-local
    }
    cache 5
}
`,
    );
    const record = startProcess(PROCESS, corednsBin(), ['-conf', corefile]);
    const what = `CoreDNS on ${BRIDGE_IP}:53 to resolve ${CHECK_NAME}`;
    await waitFor(
      what,
      async () => {
        const addrs = await resolveWithClusterDns(CHECK_NAME);
        if (!addrs.includes('10.0.0.1')) throw new Error(`${CHECK_NAME} resolved to ${addrs.join(', ')}`);
        return true;
      },
      { timeoutMs: 60000, intervalMs: 250, logPath: record.logPath, stillRunning: () => isAlive(record) },
    ).catch((err: unknown) => {
      throw new StackError(`dns: ${err instanceof Error ? err.message : String(err)}`);
    });
    say(`dns: CoreDNS answers for ${CLUSTER_DOMAIN} on ${BRIDGE_IP}:53`);
    return { address: `${BRIDGE_IP}:53`, env: { TALLY_CLUSTER_DNS: BRIDGE_IP }, ports };
  },

  // Started on one setup of the bridge: when kubernetes has set it up afresh, this starts again too.
  fingerprint: hostNetworkId,

  async probe(): Promise<Probe> {
    if (!fs.existsSync(adminKubeconfigPath())) return { ok: false, detail: 'no kubeconfig' };
    const addrs = await resolveWithClusterDns(CHECK_NAME);
    const ok = addrs.includes('10.0.0.1');
    return {
      ok,
      version: `CoreDNS ${versions().COREDNS_VERSION}`,
      ...(ok ? {} : { detail: `${CHECK_NAME} resolved to ${addrs.join(', ')}` }),
    };
  },
};
