import { parseArgs } from 'node:util';
import { Cache, cacheSettingsFromEnv } from '../runtime/cache/memcached';
import { RollupCache } from '../runtime/cache/rollup-cache';
import { readNamespaceFiles } from '../runtime/namespace/file-source';
import { sweep, type SweepSummary } from '../runtime/rollup/sweeper';
import { cassandraSettingsFromEnv, createCassandraClient } from '../store/client';
import { measureClockOffset } from '../store/clock';
import { ClockGuard } from '../runtime/clock/clock-guard';
import { createLogger } from '../lib/log';
import { CounterStore } from '../runtime/storage/counter-store';
import { stringOption } from './options';
import { messageOf } from '../lib/errors';

export const rollupHelp = `usage: tally rollup [options]

Rolls up every counter whose last write is newer than its checkpoint, in the given namespaces, then prints a JSON
summary per namespace. Exit code 0 when every rollup succeeded, 1 otherwise. This is what the rollup CronJob runs.

options:
  --namespaces PATH   namespace file or directory, as for serve                     [TALLY_NAMESPACES]
  --namespace NAME    only this namespace (repeatable; default: every durable namespace in PATH)
  -h, --help          this text

environment: CASSANDRA_CONTACT_POINTS, CASSANDRA_LOCAL_DC (required), CASSANDRA_USERNAME/PASSWORD, CASSANDRA_CA_FILE
(TLS), MEMCACHED_SERVERS (optional: refreshes the rollup cache too).`;

export async function runRollup(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      namespaces: { type: 'string' },
      namespace: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${rollupHelp}\n`);
    return 0;
  }
  const path = stringOption(values.namespaces, 'TALLY_NAMESPACES');
  if (!path)
    throw Object.assign(new Error('--namespaces PATH (or TALLY_NAMESPACES) is required'), {
      code: 'ERR_PARSE_ARGS_USAGE',
    });
  const snapshot = readNamespaceFiles(path);
  for (const e of snapshot.errors) process.stderr.write(`tally rollup: skipping: ${e}\n`);
  const wanted = values.namespace ?? [];
  const unknown = wanted.filter((n) => !snapshot.namespaces.some((c) => c.name === n));
  if (unknown.length > 0) throw new Error(`namespace(s) ${unknown.join(', ')} not found in ${path}`);
  const configs = snapshot.namespaces.filter(
    (c) => c.counterType !== 'BestEffort' && (wanted.length === 0 || wanted.includes(c.name)),
  );

  const settings = cassandraSettingsFromEnv();
  const client = createCassandraClient(settings, { applicationName: 'tally-rollup' });
  // stdout carries the summaries; a held namespace is logged on stderr (warn), and its summary says why.
  const log = createLogger('tally-rollup', process.env.LOG_LEVEL ?? 'warn', 2);
  const clock = new ClockGuard({ measure: () => measureClockOffset(client), log });
  const cacheSettings = cacheSettingsFromEnv();
  const cache = cacheSettings ? new Cache(cacheSettings) : undefined;
  let failed = 0;
  try {
    await client.connect();
    await clock.measureNow();
    for (const config of configs) {
      let summary: SweepSummary;
      try {
        summary = await sweep(new CounterStore(client, config), cache ? new RollupCache(cache, config) : undefined, {
          concurrency: config.rollup.concurrency,
          clock,
          requestTimeoutMs: settings.requestTimeoutMs,
        });
      } catch (err) {
        process.stdout.write(`${JSON.stringify({ namespace: config.name, error: messageOf(err) })}\n`);
        failed++;
        continue;
      }
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      if (summary.failed > 0) failed++;
    }
  } finally {
    cache?.close();
    await client.shutdown();
  }
  return failed > 0 ? 1 : 0;
}
