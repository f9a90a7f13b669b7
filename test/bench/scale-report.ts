import type { LineChart } from './plot';
import type { CountersResult } from './scale-counters';
import type { HotResult } from './scale-hot';
import type { NamespacesResult, OperatorScaleResult } from './scale-namespaces';
import { binQuantiles, slope } from './scale-stats';

/** What one `npm run bench:scale` measured; a workload not run is absent. */
export interface ScaleResults {
  date: string;
  minutes: number;
  settings: Record<string, string>;
  counters?: CountersResult[];
  hot?: HotResult;
  namespaces?: NamespacesResult[];
  operator?: OperatorScaleResult[];
}

/** A plot of the scale run: docs/plots/<file>, and the chart drawn into it. */
export interface ScalePlot {
  file: string;
  alt: string;
  chart: LineChart;
}

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const fix = (n: number, d = 1): string => (Number.isFinite(n) ? n.toFixed(d) : '-');
const sec = (ms: number): string => fix(ms / 1000, ms < 10_000 ? 2 : 1);

/**
 * Whether a memory curve grows with the work: the fitted growth over the whole range against a tolerance (a few MiB
 * of noise from the allocator and the JIT). `per` is the unit the growth is reported in (e.g. 100,000 counters).
 */
export function growth(
  points: readonly (readonly [number, number])[],
  per: number,
  toleranceMiB: number,
): { perUnitMiB: number; overRangeMiB: number; grows: boolean } {
  const s = slope(points);
  const xs = points.map(([x]) => x);
  const range = Math.max(...xs) - Math.min(...xs);
  const overRange = s * range;
  return {
    perUnitMiB: s * per,
    overRangeMiB: overRange,
    grows: Number.isFinite(overRange) && overRange > toleranceMiB,
  };
}

/** The charts of each scale curve the run measured. */
export function scalePlots(r: ScaleResults): ScalePlot[] {
  const plots: ScalePlot[] = [];
  const c = r.counters;
  if (c && c.length > 0) {
    const xs = (f: (x: CountersResult) => number): [number, number][] => c.map((x) => [x.counters, f(x)]);
    plots.push(
      {
        file: 'scale-counters-addcount.svg',
        alt: 'AddCount throughput against counters written',
        chart: {
          title: 'AddCount over N counters (Eventual, one namespace)',
          xLabel: 'distinct counters written',
          yLabel: 'adds per second',
          logX: true,
          series: [
            { name: 'AddCount, closed loop', points: xs((x) => x.addCount.throughput) },
            { name: 'AddCounts fill (50 a request)', points: xs((x) => x.fillAddsPerSecond) },
          ],
        },
      },
      {
        file: 'scale-counters-memory.svg',
        alt: 'Runtime and sweeper memory against counters written',
        chart: {
          title: 'Resident memory over N counters',
          xLabel: 'distinct counters written',
          yLabel: 'RSS (MiB)',
          logX: true,
          series: [
            { name: 'runtime, peak', points: xs((x) => x.runtimePeakRssMiB) },
            { name: 'runtime, queues drained', points: xs((x) => x.runtimeAfterRssMiB) },
            { name: 'sweeper, all behind', points: xs((x) => x.sweepBehind.peakRssMiB) },
            { name: 'sweeper, all current', points: xs((x) => x.sweepCurrent.peakRssMiB) },
          ],
        },
      },
      {
        file: 'scale-counters-sweep.svg',
        alt: 'Sweeper duration against counters written',
        chart: {
          title: 'Sweeper duration over N counters',
          xLabel: 'distinct counters written',
          yLabel: 'seconds',
          logX: true,
          logY: true,
          series: [
            { name: 'all behind (each rolled up)', points: xs((x) => x.sweepBehind.durationMs / 1000) },
            { name: 'all current (scan only)', points: xs((x) => x.sweepCurrent.durationMs / 1000) },
          ],
        },
      },
    );
  }
  const h = r.hot;
  if (h) {
    plots.push(
      {
        file: 'scale-hot-rollup-lag.svg',
        alt: 'Rollup lag of a hot counter over time',
        chart: {
          title: `One hot counter at ${int(h.addsPerSecond)} adds/s: rollup lag`,
          xLabel: 'seconds into the run',
          yLabel: 'seconds',
          series: [
            { name: `tally_rollup_lag_seconds p99 per ${h.windowSeconds} s`, points: h.rollupLagP99 },
            { name: `checkpoint age p99 per ${h.windowSeconds} s`, points: h.checkpointAgeP99 },
          ],
        },
      },
      {
        file: 'scale-hot-getcount.svg',
        alt: 'Accurate GetCount latency of a hot counter over time',
        chart: {
          title: 'Accurate GetCount of the hot counter over time',
          xLabel: 'seconds into the run',
          yLabel: 'latency (ms)',
          series: [
            { name: `p50 per ${h.windowSeconds} s`, points: h.getP50 },
            { name: `p99 per ${h.windowSeconds} s`, points: h.getP99 },
          ],
        },
      },
      {
        file: 'scale-hot-getcount-events.svg',
        alt: 'Accurate GetCount latency against the events after the checkpoint',
        chart: {
          title: 'Accurate GetCount against un-rolled events',
          xLabel: 'events after the checkpoint (about)',
          yLabel: 'latency (ms)',
          series: [
            { name: 'p50', points: binQuantiles(h.getVsUnrolled, unrolledBin(h), 0.5) },
            { name: 'p99', points: binQuantiles(h.getVsUnrolled, unrolledBin(h), 0.99) },
          ],
        },
      },
      {
        file: 'scale-hot-rate.svg',
        alt: 'Adds per second to the hot counter over time',
        chart: {
          title: 'Adds acknowledged per second, one counter',
          xLabel: 'seconds into the run',
          yLabel: 'adds per second',
          series: [{ name: 'AddCount', points: h.rate }],
        },
      },
    );
  }
  const n = r.namespaces;
  if (n && n.length > 0) {
    const types = [...new Set(n.map((x) => x.counterType))];
    const xs = (t: string, f: (x: NamespacesResult) => number): [number, number][] =>
      n.filter((x) => x.counterType === t).map((x) => [x.namespaces, f(x)]);
    plots.push(
      {
        file: 'scale-namespaces-memory.svg',
        alt: 'Runtime memory against namespaces served',
        chart: {
          title: 'Runtime memory over N namespaces',
          xLabel: 'namespaces served',
          yLabel: 'RSS (MiB)',
          logX: true,
          series: types.flatMap((t) => [
            { name: `${t}, all ready`, points: xs(t, (x) => x.readyRssMiB) },
            { name: `${t}, after one add in each`, points: xs(t, (x) => x.afterAddsRssMiB) },
          ]),
        },
      },
      {
        file: 'scale-namespaces-startup.svg',
        alt: 'Runtime start-up time against namespaces served',
        chart: {
          title: 'Runtime start-up over N namespaces',
          xLabel: 'namespaces served',
          yLabel: 'seconds from spawn',
          logX: true,
          series: types.flatMap((t) => [
            { name: `${t}, listening`, points: xs(t, (x) => x.listeningMs / 1000) },
            { name: `${t}, all ready`, points: xs(t, (x) => x.readyMs / 1000) },
          ]),
        },
      },
      {
        file: 'scale-namespaces-idle-cpu.svg',
        alt: 'Idle runtime CPU against namespaces served',
        chart: {
          title: 'Idle runtime CPU over N namespaces',
          xLabel: 'namespaces served',
          yLabel: '% of one core',
          logX: true,
          series: types.map((t) => ({ name: t, points: xs(t, (x) => x.idleCpuPercent) })),
        },
      },
    );
  }
  const o = r.operator;
  if (o && o.length > 1) {
    const xs = (f: (x: OperatorScaleResult) => number): [number, number][] => o.map((x) => [x.count, f(x)]);
    plots.push({
      file: 'scale-operator.svg',
      alt: 'Operator time to Ready against CounterNamespaces',
      chart: {
        title: 'Operator: N CounterNamespaces to Ready',
        xLabel: 'CounterNamespaces applied at once',
        yLabel: 'seconds',
        series: [
          { name: 'all Ready', points: xs((x) => x.readySeconds) },
          { name: 'reconcile p99 (bucket bound)', points: xs((x) => x.reconcileP99Seconds) },
        ],
      },
    });
  }
  return plots;
}

/** Bins of the un-rolled events axis: about 12 over the range seen. */
function unrolledBin(h: HotResult): number {
  return Math.max(1, Math.ceil(h.maxUnrolled / 12 / 100) * 100);
}

function table(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${' --- |'.repeat(header.length)}`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

const image = (p: ScalePlot): string => `![${p.alt}](plots/${p.file})`;

/** The scale section of docs/benchmarks.md (between its scale markers), as Markdown. */
export function renderScaleSection(r: ScaleResults): string {
  const plots = new Map(scalePlots(r).map((p) => [p.file, p]));
  const img = (file: string): string[] => (plots.has(file) ? [image(plots.get(file)!), ''] : []);
  const out: string[] = [
    '## How cost grows with the work',
    '',
    `Written by \`npm run bench:scale\` (test/bench/scale.ts), which writes this section alone and leaves the rest of the file as it is; this run ended ${r.date} ` +
      `and took ${fix(r.minutes)} min. Settings: ${Object.entries(r.settings)
        .map(([k, v]) => `\`${k}=${v}\``)
        .join(', ')}.`,
    '',
  ];
  if (r.counters && r.counters.length > 0) {
    const c = r.counters;
    out.push(
      '### Counters',
      '',
      'One Eventual namespace per size. Its counters are first written once each through AddCounts (50 adds a request); ' +
        'AddCount then runs closed-loop with each add to a counter picked uniformly among them. The runtime’s resident ' +
        'memory is sampled every 200 ms (peak), and read again once its rollup queues are empty. Then, with the runtime ' +
        'stopped, one event per counter is written straight to the tables, so every counter is behind its checkpoint, ' +
        'and the sweeper the rollup CronJob runs (`tally rollup`) is run as a process of its own: once with every ' +
        'counter behind, once right after with every counter current (a scan of the rollups table only). Its duration ' +
        'is its own summary’s `durationMs`; its memory is sampled every 100 ms, with its V8 heap capped at ' +
        `${c[0]!.sweepBehind.heapCapMiB} MiB (\`--max-old-space-size\`), so a sweeper holding anything per counter would run out of ` +
        'heap and fail the run, where RSS alone also counts garbage not yet collected.',
      '',
      ...table(
        [
          'counters',
          'AddCount /s',
          'AddCount p50 / p99 ms',
          'runtime CPU µs per add',
          'fill, adds/s',
          'runtime RSS peak / drained MiB',
          'sweep, all behind: s / rolled / failed / retried / peak RSS MiB',
          'sweep, all current: s / peak RSS MiB',
        ],
        c.map((x) => [
          int(x.counters),
          int(x.addCount.throughput),
          `${fix(x.addCount.p50Ms, 2)} / ${fix(x.addCount.p99Ms, 2)}`,
          int(x.addCount.cpuUsPerAdd),
          int(x.fillAddsPerSecond) + (x.fillFailed > 0 ? ` (${int(x.fillFailed)} refused)` : ''),
          `${int(x.runtimePeakRssMiB)} / ${int(x.runtimeAfterRssMiB)}`,
          [x.sweepBehind.durationMs / 1000, x.sweepBehind.rolled, x.sweepBehind.failed, x.sweepBehind.retried]
            .map((v, i) => (i === 0 ? sec(v * 1000) : int(v)))
            .concat(int(x.sweepBehind.peakRssMiB))
            .join(' / '),
          `${sec(x.sweepCurrent.durationMs)} / ${int(x.sweepCurrent.peakRssMiB)}`,
        ]),
      ),
      '',
    );
    if (c.length > 1) {
      const per = 100_000;
      const sweeper = growth(
        c.map((x) => [x.counters, x.sweepBehind.peakRssMiB]),
        per,
        16,
      );
      const runtime = growth(
        c.map((x) => [x.counters, x.runtimeAfterRssMiB]),
        per,
        16,
      );
      const rate = c.map((x) => x.sweepBehind.rolled / (x.sweepBehind.durationMs / 1000));
      out.push(
        `- Sweeper memory: ${fix(sweeper.perUnitMiB)} MiB per 100,000 counters (fitted), ` +
          `${fix(sweeper.overRangeMiB)} MiB from ${int(c[0]!.counters)} to ${int(c.at(-1)!.counters)} counters: ` +
          (sweeper.grows
            ? '**it grows with the counters written** (more than 16 MiB over the range).'
            : 'flat (within 16 MiB over the range): it pages through the rollups table and keeps no per-counter state.'),
        `- Sweeper rate, all behind: ${rate.map((x) => int(x)).join(' / ')} counters rolled up per second.`,
        `- Runtime memory once drained: ${fix(runtime.perUnitMiB)} MiB per 100,000 counters (fitted); its per-counter ` +
          'state (write bounds, rollup queues, near cache) is bounded by their limits (100,000 counters each by default).',
        '',
      );
    }
    out.push(
      ...img('scale-counters-addcount.svg'),
      ...img('scale-counters-memory.svg'),
      ...img('scale-counters-sweep.svg'),
    );
  }
  const h = r.hot;
  if (h) {
    const p = h.partitions;
    const widest = Math.max(0, ...p.rows.map((x) => x.rows));
    out.push(
      '### A hot counter',
      '',
      `One Accurate counter under closed-loop AddCount at concurrency ${h.concurrency} for ${fix(h.seconds, 0)} s: ` +
        `${int(h.adds)} adds, ${int(h.addsPerSecond)}/s, p99 ${fix(h.addP99Ms)} ms, ${int(h.errors)} errors. Meanwhile ` +
        'an Accurate GetCount every 100 ms, the counter’s checkpoint read from the rollups table every second (its age: ' +
        'now minus its time), and the runtime’s `tally_rollup_lag_seconds` histogram scraped every ' +
        `${h.windowSeconds} s (its p99 per window is the upper bound of the bucket it falls in).`,
      '',
      `- Accurate GetCount: ${int(h.getCount.reads)} reads, p50 ${fix(h.getCount.p50Ms)} ms, p99 ` +
        `${fix(h.getCount.p99Ms)} ms, max ${fix(h.getCount.maxMs)} ms, with up to about ${int(h.maxUnrolled)} events ` +
        'after the checkpoint to add (a rollup every coalesce window, 10 s by default, behind the settle delay).',
      `- Rollup lag p99 per window: ${h.rollupLagP99.map(([, v]) => fix(v, 0)).join(', ') || '-'} s; checkpoint age ` +
        `p99 per window: ${h.checkpointAgeP99.map(([, v]) => fix(v, 1)).join(', ') || '-'} s.`,
      `- Event partitions (time bucket of ${int(p.secondsPerBucket)} s x ${p.bucketsPerCounter} event buckets): ` +
        `${p.rows.length} written, the widest ${int(widest)} rows. A partition holds one time bucket’s share of one ` +
        `event bucket, so it is bounded by rate x secondsPerBucket / bucketsPerCounter: at this run’s rate a whole ` +
        `time bucket puts about ${int(p.fullBucketRows)} rows in each partition. The bound is fixed per namespace ` +
        '(both settings are immutable) and grows with the rate; the bucket count does not adapt to it.',
      `- Runtime peak RSS: ${int(h.runtimePeakRssMiB)} MiB.`,
      '',
      ...table(
        ['time bucket', 'event bucket', 'rows'],
        p.rows.map((x) => [String(x.timeBucket), String(x.eventBucket), int(x.rows)]),
      ),
      '',
      ...img('scale-hot-rate.svg'),
      ...img('scale-hot-rollup-lag.svg'),
      ...img('scale-hot-getcount.svg'),
      ...img('scale-hot-getcount-events.svg'),
    );
  }
  if (r.namespaces && r.namespaces.length > 0) {
    out.push(
      '### Namespaces',
      '',
      'A runtime (`tally serve --namespaces DIR`) serving N namespaces: BestEffort ones (Memcached only, no tables) ' +
        'up to the largest size, and Eventual ones, each with its own keyspace and two tables (as the operator makes them), up to the ' +
        'number of tables this Cassandra (1 GiB heap, shared) holds comfortably; each Eventual namespace also runs ' +
        'its rollup queues. Start-up is timed ' +
        'from spawning the process to its listening line and to `/readyz` with every namespace ready; memory once all ' +
        'are ready and again after one AddCount in each; idle CPU over the seconds after start-up, with no requests.',
      '',
      ...table(
        [
          'type',
          'namespaces',
          'to listening s',
          'to all ready s',
          'RSS ready MiB',
          'RSS after one add each MiB',
          'idle CPU % of a core',
        ],
        r.namespaces.map((x) => [
          x.counterType,
          int(x.namespaces),
          sec(x.listeningMs),
          sec(x.readyMs),
          int(x.readyRssMiB),
          int(x.afterAddsRssMiB),
          fix(x.idleCpuPercent),
        ]),
      ),
      '',
      ...img('scale-namespaces-memory.svg'),
      ...img('scale-namespaces-startup.svg'),
      ...img('scale-namespaces-idle-cpu.svg'),
    );
  }
  if (r.operator && r.operator.length > 0) {
    out.push(
      '### The operator',
      '',
      'The operator (in the bench’s process, as `npm run bench` runs it) with N CounterNamespaces applied at once: time ' +
        'until all are Ready (keyspace, tables, ConfigMap, CronJob, status), the p99 of its reconcile histogram (the ' +
        'upper bound of the bucket it falls in), and the bench process’s memory (before, and the peak while the ' +
        'operator ran).',
      '',
      ...table(
        [
          'CounterNamespaces',
          'all Ready s',
          'Ready /s',
          'reconcile p99 s',
          'reconciles',
          'RSS before / peak MiB',
          'heap peak MiB',
          'with clean-up s',
        ],
        r.operator.map((x) => [
          int(x.count),
          fix(x.readySeconds),
          fix(x.count / x.readySeconds, 2),
          fix(x.reconcileP99Seconds, 1),
          int(x.reconciles),
          `${int(x.rssBeforeMiB)} / ${int(x.rssPeakMiB)}`,
          int(x.heapPeakMiB),
          fix(x.totalSeconds, 0),
        ]),
      ),
      '',
      ...img('scale-operator.svg'),
    );
  }
  return out.join('\n');
}
