import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { messageOf } from '../../lib/errors';
import { cassandraSettingsFromEnv, createCassandraClient } from '../../store/client';
import { setOperatorReplicas } from '../stack/components/cluster';
import { repoRoot } from '../stack/paths';
import { up } from '../stack/stack';
import { lineChartSvg, writePlot } from './plot';
import { replaceSection } from './report';
import { benchCounters, type CountersResult } from './scale-counters';
import { benchHot } from './scale-hot';
import { benchNamespaces, benchOperatorScale, type OperatorScaleResult } from './scale-namespaces';
import { progress, withRetry } from './scale-process';
import { renderScaleSection, scalePlots, type ScaleResults } from './scale-report';
import { parseSizes, sizeFromEnv } from './scale-stats';

/**
 * `npm run bench:scale`: how cost grows with the work (issue 16), on the local stack. Long: it has a command of its
 * own, and sizes that fit a 2-core machine by default, larger ones as options:
 *   SCALE_COUNTERS=1K,10K,30K       distinct counters in one namespace (e.g. 1K,100K,1M)
 *   SCALE_SECONDS=10                closed-loop AddCount per counters size
 *   SCALE_HOT_SECONDS=60            the hot counter's run
 *   SCALE_NAMESPACES=1,100,1000     BestEffort namespaces one runtime serves (no tables)
 *   SCALE_DURABLE_NAMESPACES=1,10,50  Eventual namespaces one runtime serves, a keyspace each
 *   SCALE_IDLE_SECONDS=10           idle CPU measured after each runtime start
 *   SCALE_OPERATOR_NAMESPACES=100   CounterNamespaces applied to the operator at once (a list draws a curve, e.g. 100,500)
 *   SCALE_CONCURRENCY=32, SCALE_WINDOW_SECONDS=5
 *   SCALE_ONLY=counters,hot,namespaces,operator
 *   SCALE_DOCS_DIR=docs             where benchmarks.md (its scale section) and plots/scale-*.svg are written
 *   SCALE_RESULTS_JSON=FILE         also the raw results, as JSON
 * Progress: JSON lines on stderr. The section goes between the scale markers of benchmarks.md, and to stdout.
 */
const env0 = process.env;
const SETTINGS = {
  counters: parseSizes(env0.SCALE_COUNTERS ?? '1K,10K,30K', 'SCALE_COUNTERS'),
  seconds: sizeFromEnv(env0, 'SCALE_SECONDS', 10),
  hotSeconds: sizeFromEnv(env0, 'SCALE_HOT_SECONDS', 60),
  namespaces: parseSizes(env0.SCALE_NAMESPACES ?? '1,100,1000', 'SCALE_NAMESPACES'),
  durableNamespaces: parseSizes(env0.SCALE_DURABLE_NAMESPACES ?? '1,10,50', 'SCALE_DURABLE_NAMESPACES'),
  idleSeconds: sizeFromEnv(env0, 'SCALE_IDLE_SECONDS', 10),
  operator: parseSizes(env0.SCALE_OPERATOR_NAMESPACES ?? '100', 'SCALE_OPERATOR_NAMESPACES'),
  concurrency: sizeFromEnv(env0, 'SCALE_CONCURRENCY', 32),
  windowSeconds: sizeFromEnv(env0, 'SCALE_WINDOW_SECONDS', 5),
};
const WORKLOADS = ['counters', 'hot', 'namespaces', 'operator'];
const ONLY = new Set((env0.SCALE_ONLY ?? WORKLOADS.join(',')).split(',').map((s) => s.trim()));
for (const w of ONLY) if (!WORKLOADS.includes(w)) throw new Error(`SCALE_ONLY: unknown workload ${w}`);
const DOCS = path.resolve(env0.SCALE_DOCS_DIR ?? path.join(repoRoot(), 'docs'));

/** The settings as the report shows them. */
function shownSettings(): Record<string, string> {
  const list = (xs: number[]): string => xs.join(',');
  const shown: Record<string, string> = {};
  if (ONLY.has('counters')) {
    shown.SCALE_COUNTERS = list(SETTINGS.counters);
    shown.SCALE_SECONDS = String(SETTINGS.seconds);
  }
  if (ONLY.has('hot')) shown.SCALE_HOT_SECONDS = String(SETTINGS.hotSeconds);
  if (ONLY.has('namespaces')) {
    shown.SCALE_NAMESPACES = list(SETTINGS.namespaces);
    shown.SCALE_DURABLE_NAMESPACES = list(SETTINGS.durableNamespaces);
  }
  if (ONLY.has('operator')) shown.SCALE_OPERATOR_NAMESPACES = list(SETTINGS.operator);
  shown.SCALE_CONCURRENCY = String(SETTINGS.concurrency);
  return shown;
}

/** Replaces the scale section of benchmarks.md, formatted as `npm run format:check` wants it. */
async function writeSection(file: string, body: string): Promise<void> {
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(file)) ?? {};
  // A scratch SCALE_DOCS_DIR may have no benchmarks.md yet: the section is then the whole file.
  const doc = replaceSection(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '', body);
  fs.writeFileSync(file, await prettier.format(doc, { ...options, filepath: file }));
}

async function main(): Promise<void> {
  const t0 = Date.now();
  progress('stack', 'bringing the local stack up (or using the one that is up)', { settings: SETTINGS });
  const stack = await up();
  const env: NodeJS.ProcessEnv = { ...process.env, ...stack.env, LOG_LEVEL: 'warn' };
  const client = createCassandraClient(cassandraSettingsFromEnv(env));
  await withRetry('connecting to Cassandra', () => client.connect());
  const run = randomUUID().slice(0, 6);
  const results: ScaleResults = { date: '', minutes: 0, settings: shownSettings() };
  try {
    if (ONLY.has('counters')) {
      const counters: CountersResult[] = [];
      for (const n of SETTINGS.counters) {
        counters.push(
          await benchCounters(env, client, n, { concurrency: SETTINGS.concurrency, seconds: SETTINGS.seconds, run }),
        );
      }
      results.counters = counters;
    }
    if (ONLY.has('hot')) {
      results.hot = await benchHot(env, client, {
        concurrency: SETTINGS.concurrency,
        seconds: SETTINGS.hotSeconds,
        run,
        windowSeconds: SETTINGS.windowSeconds,
      });
    }
    if (ONLY.has('namespaces')) {
      const idleSeconds = SETTINGS.idleSeconds;
      results.namespaces = [
        ...(await benchNamespaces(env, client, SETTINGS.namespaces, { run, idleSeconds, counterType: 'BestEffort' })),
        ...(await benchNamespaces(env, client, SETTINGS.durableNamespaces, {
          run,
          idleSeconds,
          counterType: 'Eventual',
        })),
      ];
    }
    if (ONLY.has('operator')) {
      // The in-cluster operator watches every namespace: it would reconcile the bench's CounterNamespaces too.
      await setOperatorReplicas(stack.env, 0);
      try {
        const operator: OperatorScaleResult[] = [];
        for (const count of SETTINGS.operator) operator.push(await benchOperatorScale(env, client, count));
        results.operator = operator;
      } finally {
        await setOperatorReplicas(stack.env, 1);
      }
    }
  } finally {
    await client.shutdown();
  }
  results.date = new Date().toISOString();
  results.minutes = (Date.now() - t0) / 60_000;
  if (env0.SCALE_RESULTS_JSON) fs.writeFileSync(env0.SCALE_RESULTS_JSON, JSON.stringify(results, null, 1));
  for (const plot of scalePlots(results)) {
    await writePlot(path.join(DOCS, 'plots', plot.file), await lineChartSvg(plot.chart));
  }
  const body = renderScaleSection(results);
  const file = path.join(DOCS, 'benchmarks.md');
  await writeSection(file, body);
  process.stdout.write(`${body}\n`);
  progress('report', 'written', { file, plots: path.join(DOCS, 'plots'), minutes: results.minutes });
}

process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

main().then(
  () => process.exit(0),
  (err: unknown) => {
    progress('failed', messageOf(err), { stack: (err as Error).stack });
    process.exit(1);
  },
);
