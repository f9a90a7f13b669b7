import * as net from 'node:net';
import type { Component, Endpoint, Probe } from '../component';
import { portOr } from '../ports';
import { isAlive, logPath, runCommand, startProcess } from '../processes';
import { stackScript } from '../paths';
import { waitFor } from '../wait';

const PROCESS = 'memcached';

/** Sends `version` over the text protocol and returns what the server says ("1.6.18"). */
export function memcachedVersion(address: string, timeoutMs = 2000): Promise<string> {
  const [host, port] = splitHostPort(address, 11211);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let buffer = '';
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(timeoutMs, () =>
      fail(new Error(`memcached at ${address} did not answer within ${timeoutMs} ms`)),
    );
    socket.once('error', fail);
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      const line = /^(.*)\r\n/.exec(buffer);
      if (!line) return;
      socket.destroy();
      const m = /^VERSION (\S+)/.exec(line[1]!);
      if (m) resolve(m[1]!);
      else reject(new Error(`memcached at ${address} answered "${line[1]}" to version`));
    });
    socket.once('connect', () => socket.write('version\r\n'));
  });
}

export function splitHostPort(address: string, defaultPort: number): [string, number] {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(address.trim());
  if (!m) throw new Error(`not a host:port address: "${address}"`);
  return [m[1]!, m[2] ? Number(m[2]) : defaultPort];
}

export const memcached: Component = {
  name: 'memcached',
  phase: 0,
  externalVars: ['MEMCACHED_SERVERS'],
  processes: [PROCESS],

  fromEnvironment(env) {
    const servers = env.MEMCACHED_SERVERS;
    return servers ? { address: servers, env: { MEMCACHED_SERVERS: servers } } : undefined;
  },

  async install() {
    await runCommand('bash', [stackScript('install-apt.sh'), 'memcached', 'memcached']);
  },

  async start(_env, previous): Promise<Endpoint> {
    const port = await portOr(previous?.ports?.memcached);
    // memcached refuses to run as root without -u; 64 MiB is plenty for tests.
    const asUser = process.getuid?.() === 0 ? ['-u', 'root'] : [];
    const record = startProcess(PROCESS, 'memcached', [
      ...asUser,
      '-l',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      '0',
      '-m',
      '64',
      '-c',
      '1024',
      '-t',
      '2',
    ]);
    const address = `127.0.0.1:${port}`;
    await waitFor(
      `memcached to answer "version" on ${address}`,
      async () => (await memcachedVersion(address)).length > 0,
      {
        timeoutMs: 15000,
        logPath: logPath(PROCESS),
        stillRunning: () => isAlive(record),
      },
    );
    return { address, env: { MEMCACHED_SERVERS: address }, ports: { memcached: port } };
  },

  async probe(endpoint): Promise<Probe> {
    // MEMCACHED_SERVERS may list several servers; every one must answer.
    const versions = await Promise.all(endpoint.address.split(',').map((s) => memcachedVersion(s)));
    return { ok: true, version: [...new Set(versions)].join(',') };
  },
};
