/**
 * Writes docs/status-page.png: a runtime serving the example namespaces (examples/*.yaml, by name and type, in
 * keyspaces of their own and with FAST rollups, so the stack's own keyspaces are left alone), some traffic, one
 * failure, and /status in headless chromium. `npm run docs:status-screenshot`, with the local stack up.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { repoRoot } from '../stack/paths';
import { waitFor } from '../stack/wait';
import { loadPage } from '../support/chromium';
import {
  call,
  dropKeyspaces,
  FAST,
  startInProcess,
  type InProcessRuntime,
  type TestNamespace,
} from '../support/runtime-harness';

const keyspace = (name: string): string => `tally_docs_${name.replace(/-/g, '_')}`;

function exampleNamespaces(): TestNamespace[] {
  const dir = path.join(repoRoot(), 'examples');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const doc = yaml.load(fs.readFileSync(path.join(dir, f), 'utf8')) as {
        metadata: { name: string };
        spec: { counterType: TestNamespace['counterType'] };
      };
      return {
        name: doc.metadata.name,
        counterType: doc.spec.counterType,
        spec: { ...FAST, cassandra: { keyspace: keyspace(doc.metadata.name) } },
      };
    });
}

async function traffic(rt: InProcessRuntime, namespaces: TestNamespace[]): Promise<void> {
  const counters = ['checkout', 'signup', 'refund', 'home'];
  for (let round = 0; round < 6; round++) {
    for (const ns of namespaces) {
      for (const c of counters.slice(0, 2 + (round % 3))) {
        await call(rt.url, 'AddCount', { namespace: ns.name, counter_name: c, delta: 1 + round });
      }
    }
  }
  const eventual = namespaces.filter((n) => n.counterType === 'Eventual');
  // Wait for the rollups, then read: mostly cache hits, a few misses for counters never read before.
  for (const ns of eventual) {
    await waitFor(
      `a rollup of ${ns.name}`,
      async () => (await call(rt.url, 'GetCount', { namespace: ns.name, counter_name: 'checkout' })).body.as_of,
      { timeoutMs: 30_000, intervalMs: 300 },
    );
  }
  for (let i = 0; i < 40; i++) {
    for (const ns of namespaces) await call(rt.url, 'GetCount', { namespace: ns.name, counter_name: counters[i % 4]! });
  }
  // A rejected call (a 4xx) and one server-side failure to list: an add whose token is too old to accept is a 400;
  // the 503 comes from a namespace whose event table is dropped under the runtime.
  await call(rt.url, 'AddCount', {
    namespace: 'payments',
    counter_name: 'eur',
    delta: 1,
    idempotency_token: { token: 'stale', generation_time: '2024-01-01T00:00:00Z' },
  });
}

async function main(): Promise<void> {
  const out = path.join(repoRoot(), 'docs', 'status-page.png');
  const namespaces = exampleNamespaces();
  const broken: TestNamespace = {
    name: 'invoices',
    counterType: 'Accurate',
    spec: { ...FAST, cassandra: { keyspace: keyspace('invoices') } },
  };
  const rt = await startInProcess([...namespaces, broken]);
  try {
    await traffic(rt, namespaces);
    const { eventsTable } = rt.runtime.registry.find(broken.name)!.config.cassandra;
    await rt.runtime.cassandra.execute(`DROP TABLE ${keyspace(broken.name)}.${eventsTable}`, [], {
      readTimeout: 60_000,
    });
    await call(rt.url, 'AddCount', { namespace: broken.name, counter_name: 'march', delta: 1 });
    await loadPage(`${rt.url}/status`, { screenshot: out, width: 1200, height: 800 });
    process.stderr.write(`wrote ${path.relative(process.cwd(), out)} (${fs.statSync(out).size} bytes)\n`);
  } finally {
    await rt.close();
    await dropKeyspaces(
      [...namespaces, broken].filter((n) => n.counterType !== 'BestEffort').map((n) => keyspace(n.name)),
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
