import { randomUUID } from 'node:crypto';
import { readNamespaceFiles } from '../../../runtime/namespace/file-source';
import { repoRoot } from '../../stack/paths';
import { requireEnv } from '../../support/env';
import { call } from '../../support/runtime-harness';
import * as path from 'node:path';

/** The runtime `npm run up` runs (TALLY_URL: in pods, or a host process without the node) serves every example namespace. */
describe('the runtime of the local stack', () => {
  const url = requireEnv('TALLY_URL');
  // In pods the runtime authenticates its callers: `.tally/env` has a token of the counter admin (and observer).
  const token = process.env.TALLY_TOKEN;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const examples = readNamespaceFiles(path.join(repoRoot(), 'examples'));

  it('serves every namespace in examples/, each ready', async () => {
    expect(examples.errors).toEqual([]);
    const listing = (await (await fetch(`${url}/v1/namespaces`, { headers })).json()) as {
      namespaces: { name: string; counter_type: string; ready: boolean }[];
    };
    // In the cluster the runtime serves every Kubernetes namespace: other tests' CounterNamespaces may be there too.
    const served = listing.namespaces.filter((n) => examples.namespaces.some((c) => c.name === n.name));
    expect(served.map((n) => [n.name, n.counter_type, n.ready]).sort()).toEqual(
      examples.namespaces.map((c) => [c.name, c.counterType, true]).sort(),
    );
    expect(new Set(examples.namespaces.map((c) => c.counterType))).toEqual(
      new Set(['BestEffort', 'Eventual', 'Accurate']),
    );
  });

  it('counts in each example namespace', async () => {
    for (const config of examples.namespaces) {
      const counter = `smoke-${randomUUID()}`;
      const reply = await call(
        url,
        'AddAndGetCount',
        { namespace: config.name, counter_name: counter, delta: 3 },
        token,
      );
      expect([config.name, reply.status, reply.body.count]).toEqual([config.name, 200, 3]);
    }
  });
});
