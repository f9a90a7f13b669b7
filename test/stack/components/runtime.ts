import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Component, Endpoint, Probe } from '../component';
import { repoRoot } from '../paths';
import { portOr } from '../ports';
import { isAlive, logPath, startProcess } from '../processes';
import { waitFor } from '../wait';

const PROCESS = 'tally-runtime';
/** The Kubernetes namespace `npm run up` applies examples/ to, where the operator and the runtime look. */
export const EXAMPLES_NAMESPACE = 'default';
// A host process for development (the stack without a node): no authentication, as the README says of that mode.
const SERVE_ARGS = ['serve', '--configmaps', '--watch-namespaces', EXAMPLES_NAMESPACE, '--auth', 'none'];

/** The compiled product folders (everything `tally` runs), not the tests. */
const PRODUCT_DIRS = ['api', 'lib', 'store', 'runtime', 'operator', 'cli'];

function distDir(): string {
  return path.join(repoRoot(), 'dist');
}

function listFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? listFiles(full) : e.name.endsWith('.js') ? [full] : [];
  });
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.json() };
}

/**
 * `tally serve` from the compiled dist/, serving the namespaces the operator publishes as ConfigMaps (examples/,
 * applied by the operator component), against the stack's Cassandra and Memcached. `npm run up` builds first, so
 * this is always the code in the working tree.
 */
export const runtime: Component = {
  name: 'runtime',
  phase: 2,
  externalVars: ['TALLY_URL'],
  processes: [PROCESS],

  fromEnvironment(env) {
    return env.TALLY_URL ? { address: env.TALLY_URL, env: { TALLY_URL: env.TALLY_URL } } : undefined;
  },

  install() {
    if (!fs.existsSync(path.join(distDir(), 'cli', 'main.js'))) {
      return Promise.reject(
        new Error('runtime: dist/cli/main.js is missing; run `npm run build` (npm run up and npm test do)'),
      );
    }
    return Promise.resolve();
  },

  /** The compiled `tally` command: the runtime and operator components restart when any of it changes. */
  fingerprint() {
    const hash = createHash('sha256').update(JSON.stringify(SERVE_ARGS));
    const files = PRODUCT_DIRS.flatMap((dir) => listFiles(path.join(distDir(), dir))).sort();
    for (const file of files) hash.update(file).update(fs.readFileSync(file));
    return hash.digest('hex').slice(0, 16);
  },

  async start(env, previous): Promise<Endpoint> {
    const port = await portOr(previous?.ports?.http);
    const record = startProcess(
      PROCESS,
      process.execPath,
      [path.join(distDir(), 'cli', 'main.js'), ...SERVE_ARGS, '--port', String(port), '--host', '127.0.0.1'],
      { env: { ...process.env, ...env } },
    );
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      `the Tally runtime to be ready at ${url}/readyz`,
      async () => (await getJson(`${url}/readyz`)).status === 200,
      {
        timeoutMs: 60_000,
        logPath: logPath(PROCESS),
        stillRunning: () => isAlive(record),
      },
    );
    return { address: url, env: { TALLY_URL: url }, ports: { http: port } };
  },

  async probe(endpoint): Promise<Probe> {
    const ready = await getJson(`${endpoint.address}/readyz`);
    const list = (await getJson(`${endpoint.address}/v1/namespaces`)).body as {
      namespaces: { name: string; ready: boolean }[];
    };
    const served = list.namespaces.map((n) => `${n.name}${n.ready ? '' : ' (not ready)'}`).join(', ');
    return {
      ok: ready.status === 200,
      version: `serving ${served || 'no namespace'}`,
      detail: JSON.stringify(ready.body),
    };
  },
};
