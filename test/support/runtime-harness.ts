import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import pino from 'pino';
import { FileNamespaceSource } from '../../runtime/namespace/file-source';
import { startRuntime, type Runtime } from '../../runtime/server';
import { createCassandraClient, cassandraSettingsFromEnv } from '../../store/client';
import { dropKeyspace } from '../../store/ensure';
import { repoRoot } from '../stack/paths';
import { waitFor } from '../stack/wait';
import { requireEnv } from './env';

/** A short random suffix: test namespaces and keyspaces never collide across runs or files. */
export function uniqueSuffix(): string {
  return randomBytes(4).toString('hex');
}

/** Settings that make rollups happen within about a second, for tests. */
export const FAST = {
  eventStorage: {
    acceptLimitSeconds: 1,
    maxFutureSkewSeconds: 1,
    secondsPerBucket: 60,
    bucketsPerCounter: 4,
    retentionSeconds: 3600,
  },
  // The settle margin stays above the Cassandra request timeout (1 s by default), as production settings must.
  rollup: { coalesceMs: 100, settleMarginMs: 1200 },
};

export interface TestNamespace {
  name: string;
  counterType: 'BestEffort' | 'Eventual' | 'Accurate';
  spec?: Record<string, unknown>;
  /** The Kubernetes namespace of its CounterNamespace, where a runtime with --auth kubernetes authorizes callers. */
  home?: string;
}

/** CounterNamespace manifests, as a user would write them, with FAST timings unless the spec says otherwise. */
export function manifests(namespaces: TestNamespace[]): string {
  return namespaces
    .map((ns) =>
      yaml.dump({
        apiVersion: 'tally.dev/v1alpha1',
        kind: 'CounterNamespace',
        metadata: { name: ns.name, ...(ns.home ? { namespace: ns.home } : {}) },
        spec: { counterType: ns.counterType, ...FAST, ...(ns.spec ?? {}) },
      }),
    )
    .join('---\n');
}

export function writeNamespaces(namespaces: TestNamespace[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-it-'));
  fs.writeFileSync(path.join(dir, 'namespaces.yaml'), manifests(namespaces));
  return dir;
}

/** The environment a runtime needs to reach the stack; overrides point it elsewhere (e.g. through a TcpProxy). */
export function stackEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CASSANDRA_CONTACT_POINTS: requireEnv('CASSANDRA_CONTACT_POINTS'),
    CASSANDRA_LOCAL_DC: requireEnv('CASSANDRA_LOCAL_DC'),
    MEMCACHED_SERVERS: requireEnv('MEMCACHED_SERVERS'),
    ...overrides,
  };
}

export interface InProcessRuntime {
  runtime: Runtime;
  url: string;
  dir: string;
  close(): Promise<void>;
}

/** A runtime in this process (for tests that look inside it), provisioning its namespaces' tables. */
export async function startInProcess(
  namespaces: TestNamespace[],
  env: Record<string, string> = {},
): Promise<InProcessRuntime> {
  const dir = writeNamespaces(namespaces);
  const runtime = await startRuntime({
    source: new FileNamespaceSource(dir, 200),
    port: 0,
    host: '127.0.0.1',
    provision: true,
    env: stackEnv(env),
    log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  });
  const url = `http://127.0.0.1:${runtime.port}`;
  await waitReady(
    url,
    namespaces.map((n) => n.name),
  );
  return {
    runtime,
    url,
    dir,
    async close() {
      await runtime.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ChildRuntime {
  child: ChildProcess;
  url: string;
  output: () => string;
  stop(): Promise<number | null>;
}

/** `tally serve` as its own process, exactly as the package's bin runs it. */
export async function startProcess(
  dir: string,
  namespaceNames: string[],
  env: Record<string, string> = {},
  /** The bearer token readiness is checked with, for a runtime that authenticates its callers. */
  token?: string,
): Promise<ChildRuntime> {
  const main = path.join(repoRoot(), 'dist', 'cli', 'main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first (npm test does)`);
  const child = spawn(
    process.execPath,
    [main, 'serve', '--namespaces', dir, '--port', '0', '--host', '127.0.0.1', '--provision'],
    {
      // No drain delay by default: no load balancer sends it traffic (the drain has its own test).
      env: stackEnv({ LOG_LEVEL: 'info', TALLY_DRAIN_SECONDS: '0', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tally serve did not start within 30 s:\n${out}`)), 30_000);
    const look = (): void => {
      const m = /"port":(\d+)[^\n]*tally runtime listening/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', look);
    child.once('exit', (code) => reject(new Error(`tally serve exited with ${code}:\n${out}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, namespaceNames, 60_000, token);
  return {
    child,
    url,
    output: () => out,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill('SIGTERM');
      }),
  };
}

/** Waits until /readyz is 200 and every named namespace is served and ready. */
export async function waitReady(url: string, names: string[], timeoutMs = 60_000, token?: string): Promise<void> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  await waitFor(
    `the runtime at ${url} to be ready with ${names.join(', ')}`,
    async () => {
      const ready = await fetch(`${url}/readyz`);
      const list = (await (await fetch(`${url}/v1/namespaces`, { headers })).json()) as {
        namespaces: { name: string; ready: boolean }[];
      };
      const served = new Set(list.namespaces.filter((n) => n.ready).map((n) => n.name));
      if (ready.status !== 200 || !names.every((n) => served.has(n)))
        throw new Error(`readyz ${ready.status}, ready namespaces ${[...served].join(',')}`);
      return true;
    },
    { timeoutMs, intervalMs: 200 },
  );
}

export interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

export async function call(url: string, op: string, body: unknown, token?: string): Promise<Reply> {
  const res = await fetch(`${url}/v1/counter/${op}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

/** Drops the keyspaces tests created. */
export async function dropKeyspaces(keyspaces: string[]): Promise<void> {
  const client = createCassandraClient(cassandraSettingsFromEnv(stackEnv()));
  try {
    for (const ks of keyspaces) await dropKeyspace(client, ks);
  } finally {
    await client.shutdown();
  }
}

export const keyspaceOf = (name: string): string => `tally_${name.replace(/-/g, '_')}`;
