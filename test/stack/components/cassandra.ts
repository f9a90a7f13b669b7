import { Client } from 'cassandra-driver';
import * as path from 'node:path';
import type { Component, Endpoint, Probe } from '../component';
import { stackScript, stateDir } from '../paths';
import { portOr } from '../ports';
import { isAlive, logPath, runCommand, startProcess } from '../processes';
import { waitFor } from '../wait';
import { BRIDGE_IP, nodeEnabled, setUpHostNetwork } from '../node-network';

const PROCESS = 'cassandra';
/** The datacenter cassandra-cmd.sh names in cassandra-rackdc.properties. */
const LOCAL_DC = 'dc1';

/** Asks Cassandra for its release_version over CQL: the readiness check and the version shown by `status`. */
export async function cassandraVersion(contactPoints: string, localDataCenter: string): Promise<string> {
  const client = new Client({
    contactPoints: contactPoints.split(','),
    localDataCenter,
    isMetadataSyncEnabled: false,
    socketOptions: { connectTimeout: 2000, readTimeout: 5000 },
  });
  try {
    await client.connect();
    const rs = await client.execute('SELECT release_version FROM system.local');
    return String(rs.first()?.get('release_version'));
  } finally {
    await client.shutdown();
  }
}

export const cassandra: Component = {
  name: 'cassandra',
  phase: 0,
  externalVars: ['CASSANDRA_CONTACT_POINTS'],
  processes: [PROCESS],

  fromEnvironment(env) {
    const points = env.CASSANDRA_CONTACT_POINTS;
    if (!points) return undefined;
    return {
      address: points,
      env: { CASSANDRA_CONTACT_POINTS: points, CASSANDRA_LOCAL_DC: env.CASSANDRA_LOCAL_DC ?? LOCAL_DC },
    };
  },

  async install() {
    await runCommand('bash', [stackScript('install-cassandra.sh')]);
  },

  // Pods reach Cassandra on the node's bridge address (the chart expects it outside the cluster): switching restarts it.
  fingerprint() {
    return nodeEnabled() ? 'with-node' : '';
  },

  async start(_env, previous): Promise<Endpoint> {
    // With the node, CQL listens on the bridge address, which the host reaches too and no other interface does.
    const host = nodeEnabled() ? BRIDGE_IP : '127.0.0.1';
    if (host === BRIDGE_IP) await setUpHostNetwork();
    const nativePort = await portOr(previous?.ports?.native);
    const storagePort = await portOr(previous?.ports?.storage);
    const jmxPort = await portOr(previous?.ports?.jmx);
    const dir = path.join(stateDir(), 'cassandra');
    const record = startProcess(PROCESS, 'bash', [
      stackScript('cassandra-cmd.sh'),
      dir,
      String(nativePort),
      String(storagePort),
      String(jmxPort),
      host,
    ]);
    const address = `${host}:${nativePort}`;
    await waitFor(
      `Cassandra to answer CQL on ${address}`,
      async () => (await cassandraVersion(address, LOCAL_DC)).startsWith('5.'),
      {
        timeoutMs: 180_000,
        intervalMs: 1000,
        logPath: `${path.join(dir, 'logs', 'system.log')} (console: ${logPath(PROCESS)})`,
        stillRunning: () => isAlive(record),
      },
    );
    return {
      address,
      env: { CASSANDRA_CONTACT_POINTS: address, CASSANDRA_LOCAL_DC: LOCAL_DC },
      ports: { native: nativePort, storage: storagePort, jmx: jmxPort },
    };
  },

  async probe(endpoint): Promise<Probe> {
    const version = await cassandraVersion(
      endpoint.env.CASSANDRA_CONTACT_POINTS!,
      endpoint.env.CASSANDRA_LOCAL_DC ?? LOCAL_DC,
    );
    return { ok: true, version };
  },
};
