import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import { resolveCounterNamespace } from '../../../api/resolve';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../../store/client';
import { CounterStore } from '../../../runtime/storage/counter-store';
import { repoRoot } from '../../stack/paths';
import {
  call,
  dropKeyspaces,
  keyspaceOf,
  manifests,
  stackEnv,
  startInProcess,
  uniqueSuffix,
  type TestNamespace,
} from '../../support/runtime-harness';

/**
 * Rollup triggers live in memory and may be dropped (queues full, process restarted). The sweeper (`tally rollup`,
 * what the operator's CronJob runs) must bring such counters up to date from the rollups table alone.
 */
describe('the sweeper', () => {
  const run = uniqueSuffix();
  // Tiny queues and a long coalesce window: most triggers are dropped and none is retried soon.
  const ns: TestNamespace = {
    name: `sweep-${run}`,
    counterType: 'Eventual',
    spec: { rollup: { queueCapacity: 16, coalesceMs: 600000, settleMarginMs: 1200 } },
  };
  const main = path.join(repoRoot(), 'dist', 'cli', 'main.js');

  afterAll(async () => dropKeyspaces([keyspaceOf(ns.name)]));

  it('rolls up every counter whose triggers were dropped, and a second sweep changes nothing', async () => {
    const rt = await startInProcess([ns]);
    const expected = new Map<string, number>();
    try {
      for (let i = 0; i < 40; i++) {
        const counter = `k${i}-${randomUUID().slice(0, 6)}`;
        for (const delta of [i, -2, 5]) {
          const reply = await call(rt.url, 'AddCount', {
            namespace: ns.name,
            counter_name: counter,
            delta,
            idempotency_token: { token: randomUUID(), generation_time: new Date().toISOString() },
          });
          expect(reply.status).toBe(200);
        }
        expect((await call(rt.url, 'AddCount', { namespace: ns.name, counter_name: counter, delta: 0 })).status).toBe(
          200,
        );
        expected.set(counter, i + 3);
      }
      const metrics = await (await fetch(`${rt.url}/metrics`)).text();
      const dropped = Number(
        new RegExp(`tally_rollup_triggers_dropped_total\\{namespace="${ns.name}"\\} (\\d+)`).exec(metrics)?.[1],
      );
      expect(dropped).toBeGreaterThanOrEqual(20);
    } finally {
      // Stopping the runtime drops whatever triggers were still queued: only the sweeper is left to roll up.
      await rt.close();
    }

    const config = resolveCounterNamespace(yamlFirst(manifests([ns])));
    const client = createCassandraClient(cassandraSettingsFromEnv(stackEnv()));
    const store = new CounterStore(client, config);
    try {
      const before = await Promise.all([...expected.keys()].map((c) => store.readRow(c)));
      const behind = before.filter((r) => r.checkpoint?.count !== expected.get(r.counter));
      expect(behind.length).toBeGreaterThanOrEqual(20);

      // Past the immutable horizon (accept limit 1 s + settle margin 1.2 s), then the CronJob's command, run directly.
      await new Promise((r) => setTimeout(r, 2500));
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-sweep-'));
      fs.writeFileSync(path.join(dir, 'ns.yaml'), manifests([ns]));
      const sweep = spawnSync(process.execPath, [main, 'rollup', '--namespaces', dir, '--namespace', ns.name], {
        env: stackEnv(),
        encoding: 'utf8',
      });
      expect(sweep.status).toBe(0);
      const summary = JSON.parse(sweep.stdout.trim()) as {
        namespace: string;
        scanned: number;
        behind: number;
        rolled: number;
        failed: number;
      };
      expect(summary).toMatchObject({ namespace: ns.name, scanned: 40, failed: 0 });
      expect(summary.rolled).toBeGreaterThanOrEqual(behind.length);

      const after = await Promise.all([...expected.keys()].map((c) => store.readRow(c)));
      expect(after.filter((r) => r.checkpoint?.count !== expected.get(r.counter)).map((r) => r.counter)).toEqual([]);

      const again = spawnSync(process.execPath, [main, 'rollup', '--namespaces', dir], {
        env: stackEnv(),
        encoding: 'utf8',
      });
      expect(again.status).toBe(0);
      // Write bounds are rounded up to a 10 s grain, so counters written moments ago still look behind and are
      // rolled again; what matters is that a repeated sweep changes no count.
      expect(JSON.parse(again.stdout.trim())).toMatchObject({ scanned: 40, failed: 0 });
      const afterAgain = await Promise.all([...expected.keys()].map((c) => store.readRow(c)));
      expect(afterAgain.filter((r) => r.checkpoint?.count !== expected.get(r.counter)).map((r) => r.counter)).toEqual(
        [],
      );
      fs.rmSync(dir, { recursive: true, force: true });
    } finally {
      await client.shutdown();
    }
  });

  it('exits 1 with a message when Cassandra cannot be reached, and 2 on a usage mistake', () => {
    const bad = spawnSync(process.execPath, [main, 'rollup', '--namespaces', path.join(repoRoot(), 'examples')], {
      env: { ...stackEnv(), CASSANDRA_CONTACT_POINTS: '127.0.0.1:1' },
      encoding: 'utf8',
    });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^tally: .*127\.0\.0\.1:1/m);
    const usage = spawnSync(process.execPath, [main, 'rollup', '--bogus'], { env: stackEnv(), encoding: 'utf8' });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/Unknown option '--bogus'[\s\S]*see tally --help/);
  });
});

function yamlFirst(text: string): Parameters<typeof resolveCounterNamespace>[0] {
  return yaml.load(text.split('---\n')[0]!) as Parameters<typeof resolveCounterNamespace>[0];
}
