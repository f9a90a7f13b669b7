import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { latencyChartSvg, lineChartSvg, writePlot, type LatencySamples } from './plot';

/**
 * The benchmark report `npm run bench` writes to docs/benchmarks.md: the current results as one table, plots of
 * throughput against concurrency and of latency distributions (SVG in docs/plots/), the machine they were measured
 * on, and a fixed explanation of each workload and its baseline. Each run replaces the file, except its scale
 * section, which `npm run bench:scale` writes (between SCALE_BEGIN and SCALE_END) and a run of `npm run bench`
 * keeps. Rendering is a pure function of the results, so a unit test can render a given set of them.
 */

/** The workloads `npm run bench` measures; each has a fixed explanation in the report. */
export type WorkloadId =
  | 'addcount'
  | 'addcount-floor'
  | 'addcount-peer'
  | 'addcount-open'
  | 'besteffort'
  | 'addcounts'
  | 'getcounts'
  | 'getcount-get'
  | 'getcount-post'
  | 'auth-addcount'
  | 'auth-getcount'
  | 'rollup'
  | 'operator';

/** One side of a comparison: Tally, the HTTP + INSERT floor, or a baseline. */
export interface SideResult {
  /** Operations per second: requests, events aggregated, or CounterNamespaces made ready. */
  throughput?: number;
  p50Ms?: number;
  p99Ms?: number;
  p999Ms?: number;
  errors?: number;
  /** CPU microseconds per operation of each process the bench watched (runtime, server, cassandra, bench...). */
  cpuPerOpUs?: Record<string, number>;
}

export interface ResultRow {
  workload: WorkloadId;
  /** Where the processes ran, when the workload runs more than once (e.g. with Cassandra on CPUs of its own). */
  placement?: string;
  tally: SideResult;
  baseline: SideResult;
  /** Tally's throughput over the baseline's; computed from the throughputs when not given. */
  ratio?: number;
  /**
   * Undefined for reference rows, which are there to explain another row and have no target of their own. A p99
   * target is a bound in ms, or `baseline`: no higher than the baseline's own p99.
   */
  target?: { ratio: number; p99Ms?: number | 'baseline' };
  /** Anything else the row needs said (e.g. how far Tally is from the floor). */
  note?: string;
}

export interface Machine {
  cores: number;
  memoryGiB?: number;
  cpuModel?: string;
  node?: string;
  cassandra?: string;
  kernel?: string;
}

export interface Settings {
  concurrency: number;
  /** Measured rounds per side (the median round is reported). */
  rounds: number;
  secondsPerRound: number;
  warmupRounds: number;
}

/** One side of a concurrency sweep: its throughput and p99 at each concurrency. */
export interface SweepSide {
  name: string;
  points: Array<{ concurrency: number; throughput: number; p99Ms: number }>;
}

/** A workload and its baseline measured at several concurrencies, plotted as throughput against concurrency. */
export interface ConcurrencySweep {
  /** Names the plot: docs/plots/concurrency-<id>.svg. */
  id: string;
  /** What was measured, e.g. "AddCount (Eventual) and the native counter `UPDATE`". */
  title: string;
  tally: SweepSide;
  baseline: SweepSide;
  /** How each point was measured (rounds, seconds). */
  method: string;
}

/** Latencies of a workload and its baseline, plotted as latency by percentile. */
export interface LatencyDistribution {
  /** Names the plot: docs/plots/latency-<id>.svg. */
  id: string;
  title: string;
  /** Where the samples come from (which run, closed or open loop). */
  method: string;
  sides: LatencySamples[];
}

export interface BenchReport {
  /** When the run ended, ISO 8601. */
  date: string;
  machine: Machine;
  settings: Settings;
  rows: ResultRow[];
  /** Peak resident memory of the runtime under test. */
  runtimeRssMiB?: number;
  sweeps?: ConcurrencySweep[];
  latencies?: LatencyDistribution[];
}

/** The machine this process runs on; the Cassandra version comes from Cassandra itself. */
export function thisMachine(cassandra?: string): Machine {
  return {
    cores: os.cpus().length,
    memoryGiB: os.totalmem() / 2 ** 30,
    cpuModel: os.cpus()[0]?.model.trim(),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    ...(cassandra ? { cassandra } : {}),
  };
}

const TITLES: Record<WorkloadId, { workload: string; baseline: string }> = {
  addcount: { workload: 'AddCount (Eventual, HTTP)', baseline: 'native counter `UPDATE`' },
  'addcount-floor': { workload: 'AddCount (Eventual, HTTP)', baseline: 'HTTP + INSERT floor' },
  'addcount-peer': { workload: 'AddCount (Eventual, HTTP)', baseline: 'HTTP + counter `UPDATE` peer' },
  'addcount-open': { workload: 'AddCount (Eventual, HTTP), open loop', baseline: 'native counter `UPDATE`, open loop' },
  besteffort: { workload: 'AddCount (BestEffort, HTTP)', baseline: 'HTTP + Redis `INCRBY` peer' },
  addcounts: { workload: 'AddCounts (Eventual, 50 adds a request)', baseline: 'native counter `UPDATE`' },
  getcounts: { workload: 'GetCounts (Eventual, cache hits, 50 a request)', baseline: 'GetCount (`POST`)' },
  'getcount-get': { workload: 'GetCount (Eventual, cache hit, `GET`)', baseline: 'node:http + memjs get' },
  'getcount-post': { workload: 'GetCount (Eventual, cache hit, `POST`)', baseline: 'node:http + memjs get' },
  'auth-addcount': { workload: 'AddCount (Eventual), authentication on', baseline: 'the same, authentication off' },
  'auth-getcount': {
    workload: 'GetCount (Eventual, cache hit, `GET`), authentication on',
    baseline: 'the same, authentication off',
  },
  rollup: { workload: 'Rollup aggregation', baseline: 'raw driver scan' },
  operator: { workload: 'CounterNamespaces to Ready (operator)', baseline: 'the same DDL back to back' },
};

/** The fixed explanation of each workload and baseline, in the order the bench runs them. */
export const EXPLANATIONS: { workloads: WorkloadId[]; text: string }[] = [
  {
    workloads: ['addcount'],
    text:
      '**AddCount** sends `POST /v1/counter/AddCount` with a fresh idempotency token to an Eventual namespace: one ' +
      'event row per add in Cassandra, rollup triggers, write bounds and metrics, through the bench\u2019s keep-alive ' +
      'HTTP/1.1 client (`test/bench/http-client.ts`, one request in flight per connection). The baseline is what a ' +
      'service would do without Tally: a Cassandra counter column `UPDATE ... SET c = c + ?`, prepared, through ' +
      'cassandra-driver, with no HTTP hop and no idempotency (a retried update counts twice). A ratio of 1.0x means a ' +
      'durable, idempotent add over HTTP costs no throughput against the native counter. It runs twice: with every ' +
      'process free to use every CPU, and as deployed, where `taskset` gives Cassandra CPUs of its own and the servers ' +
      'under test and the load generators the rest (skipped, with the reason, without `taskset` or a Cassandra the ' +
      'stack started). The lines under the table give Cassandra\u2019s CPU per add on each side: the figure that sizes a ' +
      'Cassandra cluster, whatever runs in front of it.',
  },
  {
    workloads: ['addcount-floor'],
    text:
      '**HTTP + INSERT floor** (`test/bench/peer-server.ts insert`) is a bare node:http server that parses the same ' +
      'AddCount body and writes the same event row with one prepared INSERT, coalesced per event-loop turn as ' +
      'Tally\u2019s writes are, and does nothing else (no validation, write bounds, rollup triggers or metrics): what ' +
      'any counter service with an HTTP API and an event log in Cassandra costs at least. Target: Tally at 0.95x of it.',
  },
  {
    workloads: ['addcount-peer'],
    text:
      '**HTTP + counter UPDATE peer** (`test/bench/peer-server.ts counter`) is what a team would write instead of ' +
      'adopting Tally: the same bare node:http server doing one prepared Cassandra counter `UPDATE` per request (not ' +
      'idempotent: a retried request counts twice). Target: Tally at 1.1x of it.',
  },
  {
    workloads: ['addcount-open'],
    text:
      '**Open loop**: AddCount and the native counter `UPDATE` at a fixed offered rate, half of what the native counter ' +
      'reached closed-loop, each latency measured from when the request was due rather than when it could be sent ' +
      '(`test/bench/load.ts` openLoop), so a stall shows in the percentiles instead of lowering the load. The note ' +
      'gives p50 / p99 / p99.9 of both. Reported, with no target.',
  },
  {
    workloads: ['besteffort'],
    text:
      '**BestEffort** AddCount (Memcached `incr` behind Tally\u2019s API, no idempotency) against the peer a team would ' +
      'write for an in-memory counter: the bare node:http server doing a Redis `INCRBY` through node-redis per request ' +
      '(Debian\u2019s Redis on loopback, no persistence). Target: at least 0.9x.',
  },
  {
    workloads: ['addcounts'],
    text:
      '**AddCounts** sends `POST /v1/counter/AddCounts` with 50 adds a request to an Eventual namespace, each with ' +
      'its own idempotency token, so each add is as durable and idempotent as an AddCount; throughput and CPU per ' +
      'operation are per add, p50 and p99 per request. The baseline is the AddCount row\u2019s: a prepared Cassandra ' +
      'counter `UPDATE` through cassandra-driver, one in flight per loop, at the same number of loops. Batching is ' +
      'what a client with real volume does; the native counter has no batch that stays a counter (a counter `BATCH` ' +
      'is neither atomic nor idempotent). Target: at least 1.2x.',
  },
  {
    workloads: ['getcounts'],
    text:
      '**GetCounts** reads 50 cached Eventual counters a request through `POST /v1/counter/GetCounts`, against single ' +
      '`POST /v1/counter/GetCount` calls of the same counters at the same concurrency: counters read per second. ' +
      'Reported, with no target.',
  },
  {
    workloads: ['getcount-get', 'getcount-post'],
    text:
      '**GetCount** reads 100 Eventual counters whose checkpoints are cached, as ' +
      '`GET /v1/namespaces/{ns}/counters/{name}` and as `POST /v1/counter/GetCount` with a JSON body. The namespace has ' +
      'the default near cache (`nearCacheSeconds: 1`), so most reads are answered from the runtime\u2019s own memory ' +
      'and the rest from Memcached. The baseline (`test/bench/baseline-server.ts`) is a bare node:http server ' +
      'answering a GET with one memjs get of the same Memcached key: what a cache-backed read over HTTP costs without ' +
      'a near cache. Targets: at least 1.5x its throughput and a p99 no higher than its own, at concurrency 32 ' +
      '(the default). On a small machine the load generator, the server and Memcached share the CPUs, so both sides\u2019 ' +
      'p99 move with the machine; the target compares them within one run.',
  },
  {
    workloads: ['auth-addcount', 'auth-getcount'],
    text:
      '**Authentication** runs AddCount and cached GetCount against a second runtime started with `--auth kubernetes` ' +
      '(every call carries a bearer token, checked with a TokenReview and authorized with a SubjectAccessReview ' +
      'against the stack\u2019s API server, both answers cached for 10 s) and, alternating, against the runtime ' +
      'without authentication, same namespace and concurrency. Target: at least 0.9x, authorization within 10% of ' +
      'none once decisions are cached.',
  },
  {
    workloads: ['rollup'],
    text:
      '**Rollup** counts the events of one counter (written over the last 50 s) the way a rollup does, and compares ' +
      'the events aggregated per second with a raw driver scan of the same partitions that sums the deltas in the ' +
      'client. The two sums are checked against each other. Target: at least 0.8x.',
  },
  {
    workloads: ['operator'],
    text:
      '**Operator** applies CounterNamespaces and times them to Ready (keyspace, tables, ConfigMap, CronJob, status) ' +
      'against the same `CREATE KEYSPACE` and `CREATE TABLE` statements run back to back through cassandra-driver. ' +
      'The ratio is DDL time over operator time, so 1.0x would mean the operator adds nothing to the schema changes ' +
      'it has to wait for. Reported, with no target.',
  },
];

const num = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const known = (n: number | undefined): n is number => n !== undefined && Number.isFinite(n);
const cell = (s: string): string => s.replace(/\|/g, '\\|');
const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/** A target as written: one decimal (1.0x, 1.2x), two where it has them (0.95x). */
const targetRatio = (r: number): string => r.toFixed(Math.round(r * 100) % 10 === 0 ? 1 : 2);

/** Two decimals, or three where two would round a missed target up to it (0.996x of a 1.0x target is not 1.00x). */
export function formatRatio(ratio: number, target?: number): string {
  const two = ratio.toFixed(2);
  return target !== undefined && ratio < target && Number(two) >= target ? `${ratio.toFixed(3)}x` : `${two}x`;
}

export function ratioOf(row: ResultRow): number | undefined {
  if (row.ratio !== undefined) return row.ratio;
  const { throughput: t } = row.tally;
  const { throughput: b } = row.baseline;
  return known(t) && known(b) && b > 0 ? t / b : undefined;
}

/** "met", "missed: ...", or "reference" for rows without a target. */
export function verdict(row: ResultRow): string {
  if (!row.target) return row.workload === 'operator' || row.workload === 'addcount-open' ? 'reported' : 'reference';
  const ratio = ratioOf(row);
  const misses: string[] = [];
  if (!known(ratio)) misses.push('no ratio');
  else if (ratio < row.target.ratio) misses.push(`ratio < ${targetRatio(row.target.ratio)}x`);
  const p99Target = row.target.p99Ms;
  if (p99Target !== undefined) {
    const p99 = row.tally.p99Ms;
    const bound = p99Target === 'baseline' ? row.baseline.p99Ms : p99Target;
    if (!known(p99)) misses.push('no p99');
    else if (!known(bound)) misses.push('no baseline p99');
    else if (p99 > bound)
      misses.push(
        p99Target === 'baseline'
          ? `p99 > the baseline\u2019s: ${p99.toFixed(2)} > ${bound.toFixed(2)} ms`
          : `p99 > ${bound} ms`,
      );
  }
  const p99Wanted =
    p99Target === undefined
      ? ''
      : p99Target === 'baseline'
        ? ', p99 <= the baseline\u2019s'
        : `, p99 <= ${p99Target} ms`;
  const wanted = `>= ${targetRatio(row.target.ratio)}x${p99Wanted}`;
  return misses.length === 0 ? `${wanted}: met` : `${wanted}: **missed** (${misses.join(', ')})`;
}

function throughput(row: ResultRow, side: SideResult): string {
  if (!known(side.throughput)) return '-';
  if (row.workload === 'operator') return `${num(side.throughput, 2)} namespaces/s`;
  return row.workload === 'rollup' ? `${num(side.throughput)} events/s` : `${num(side.throughput)}/s`;
}

function latency(side: SideResult): string {
  if (!known(side.p50Ms) && !known(side.p99Ms)) return '-';
  const ms = (n: number | undefined): string => (known(n) ? n.toFixed(2) : '-');
  return `${ms(side.p50Ms)} / ${ms(side.p99Ms)}${side.errors ? ` (${side.errors} errors)` : ''}`;
}

function cpu(side: SideResult): string {
  const entries = Object.entries(side.cpuPerOpUs ?? {}).filter(([, us]) => known(us));
  return entries.length === 0 ? '-' : entries.map(([k, us]) => `${k} ${Math.round(us)}`).join(', ');
}

function workloadCell(row: ResultRow): string {
  const title = TITLES[row.workload].workload;
  return row.placement ? `${title}; ${row.placement}` : title;
}

/** The lines under the table that give figures derived from the rows. */
function derived(report: BenchReport): string[] {
  const lines: string[] = [];
  if (known(report.runtimeRssMiB))
    lines.push(`- Runtime resident memory under load (peak RSS of \`tally serve\`): ${num(report.runtimeRssMiB)} MiB.`);
  for (const row of report.rows.filter((r) => r.workload === 'addcount')) {
    const tally = row.tally.cpuPerOpUs?.cassandra;
    const native = row.baseline.cpuPerOpUs?.cassandra;
    if (!known(tally) || !known(native) || tally <= 0) continue;
    lines.push(
      `- AddCount${row.placement ? `, ${row.placement}` : ''}: Cassandra CPU per add ${Math.round(tally)} µs through ` +
        `Tally vs ${Math.round(native)} µs per native counter update, so Cassandra serves ${(native / tally).toFixed(2)}x ` +
        'as many adds per CPU-second through Tally.',
    );
  }
  return lines;
}

function machineTable(m: Machine, s: Settings): string[] {
  const rows: [string, string][] = [
    ['CPU', `${m.cores} cores${m.cpuModel ? `, ${m.cpuModel}` : ''}`],
    ['memory', known(m.memoryGiB) ? `${m.memoryGiB.toFixed(1)} GiB` : '-'],
    ['kernel', m.kernel ?? '-'],
    ['Node.js', m.node ?? '-'],
    ['Cassandra', m.cassandra ?? '-'],
    [
      'load',
      `concurrency ${s.concurrency}; ${plural(s.warmupRounds, 'unmeasured warm-up round', 'unmeasured warm-up rounds')} ` +
        `per side, then ${plural(s.rounds, 'measured round', 'measured rounds')} of ${s.secondsPerRound} s per side, ` +
        'alternating; the median round is reported',
    ],
  ];
  return ['|  |  |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${cell(v)} |`)];
}

/** A plot of the report: docs/plots/<file>, the chart drawn into it, and what the report says of it. */
interface Plot {
  file: string;
  alt: string;
  caption: string;
  svg: () => Promise<string>;
}

/** Markdown code spans read as plain text in a chart. */
const plain = (s: string): string => s.replace(/`/g, '');

function sweepPlot(sweep: ConcurrencySweep): Plot {
  const concurrencies = [...new Set(sweep.tally.points.map((p) => p.concurrency))].sort((a, b) => a - b);
  return {
    file: `concurrency-${sweep.id}.svg`,
    alt: `Throughput against concurrency: ${plain(sweep.title)}`,
    caption:
      `Throughput of ${sweep.tally.name} and ${sweep.baseline.name} at concurrency ${concurrencies.join(', ')}. ` +
      `${sweep.method}.`,
    svg: () =>
      lineChartSvg({
        title: plain(sweep.title),
        xLabel: 'concurrency (requests in flight)',
        yLabel: 'requests/s',
        logX: true,
        series: [sweep.tally, sweep.baseline].map((side) => ({
          name: side.name,
          points: side.points.map((p): [number, number] => [p.concurrency, p.throughput]),
        })),
      }),
  };
}

function latencyPlot(d: LatencyDistribution): Plot {
  const names = d.sides.map((s) => s.name);
  return {
    file: `latency-${d.id}.svg`,
    alt: `Latency by percentile: ${plain(d.title)}`,
    caption: `Latency by percentile of ${names.join(' and ')}, ${d.method}.`,
    svg: () => latencyChartSvg({ title: plain(d.title), series: d.sides }),
  };
}

/** The plots a report has, in the order it shows them. */
function plotsOf(report: BenchReport): Plot[] {
  return [...(report.sweeps ?? []).map(sweepPlot), ...(report.latencies ?? []).map(latencyPlot)];
}

const image = (p: Plot): string[] => [`![${p.alt}](plots/${p.file})`, '', p.caption, ''];

function sweepTable(sweep: ConcurrencySweep): string[] {
  const baseline = new Map(sweep.baseline.points.map((p) => [p.concurrency, p]));
  const ms = (n: number | undefined): string => (known(n) ? n.toFixed(2) : '-');
  return [
    `| concurrency | ${cell(sweep.tally.name)}, /s | ${cell(sweep.baseline.name)}, /s | ratio | p99 ms, Tally | p99 ms, baseline |`,
    `|${' --- |'.repeat(6)}`,
    ...sweep.tally.points.map((t) => {
      const b = baseline.get(t.concurrency);
      const ratio = b && b.throughput > 0 ? formatRatio(t.throughput / b.throughput) : '-';
      return `| ${t.concurrency} | ${num(t.throughput)} | ${b ? num(b.throughput) : '-'} | ${ratio} | ${ms(t.p99Ms)} | ${ms(b?.p99Ms)} |`;
    }),
  ];
}

/** The sections of the plots: throughput against concurrency, then latency distributions. */
function plotSections(report: BenchReport): string[] {
  const out: string[] = [];
  const sweeps = report.sweeps ?? [];
  if (sweeps.length > 0) {
    out.push(
      '## Throughput against concurrency',
      '',
      'Requests answered per second, closed loop, at each concurrency (requests in flight, on a log axis): where a ' +
        'curve flattens, more requests in flight only wait longer. Each table gives the ratio and both p99s.',
      '',
    );
    for (const sweep of sweeps)
      out.push(`### ${sweep.title}`, '', ...image(sweepPlot(sweep)), ...sweepTable(sweep), '');
  }
  const latencies = report.latencies ?? [];
  if (latencies.length > 0) {
    out.push(
      '## Latency distributions',
      '',
      'Each curve gives the latency (ms, on a log axis) within which that share of requests was answered, each nine ' +
        '(p90, p99, p99.9) as wide as the one before, so the tail reads as clearly as the median. Lower is faster; a ' +
        'curve ends at its slowest request.',
      '',
    );
    for (const d of latencies) out.push(`### ${d.title}`, '', ...image(latencyPlot(d)));
  }
  return out;
}

/** The markers of the scale section: `npm run bench:scale` writes between them, `npm run bench` keeps what is there. */
export const SCALE_BEGIN = '<!-- scale:begin -->';
export const SCALE_END = '<!-- scale:end -->';
/** The scale section until `npm run bench:scale` has written it. */
export const EMPTY_SCALE_SECTION = '## How cost grows with the work\n\nRun `npm run bench:scale` to fill this section.';

const occurrences = (doc: string, s: string): number => doc.split(s).length - 1;

/** Where doc's scale section is; undefined when doc has no markers; an error when they are not one pair in order. */
function scaleMarkers(doc: string): { begin: number; end: number } | undefined {
  const [begins, ends] = [occurrences(doc, SCALE_BEGIN), occurrences(doc, SCALE_END)];
  if (begins === 0 && ends === 0) return undefined;
  const begin = doc.indexOf(SCALE_BEGIN);
  const end = doc.indexOf(SCALE_END);
  if (begins !== 1 || ends !== 1 || end < begin)
    throw new Error(`the scale section's markers (${SCALE_BEGIN} ... ${SCALE_END}) are not one pair in order`);
  return { begin, end };
}

/** What doc holds between its scale markers, trimmed; undefined when it has no scale section (or a broken one). */
export function scaleSection(doc: string): string | undefined {
  let m: ReturnType<typeof scaleMarkers>;
  try {
    m = scaleMarkers(doc);
  } catch {
    return undefined;
  }
  return m ? doc.slice(m.begin + SCALE_BEGIN.length, m.end).trim() : undefined;
}

const scaleBlock = (body: string): string => `${SCALE_BEGIN}\n\n${body.trim()}\n\n${SCALE_END}`;

/**
 * doc with `body` (Markdown) as its scale section, between the markers; a doc without the markers gets them, around
 * body, at its end. What `npm run bench:scale` writes its section with; throws if doc's markers are broken (one
 * without the other, or out of order), which would leave a stray marker.
 */
export function replaceSection(doc: string, body: string): string {
  const m = scaleMarkers(doc);
  if (!m) return `${doc.trimEnd()}\n\n${scaleBlock(body)}\n`;
  return doc.slice(0, m.begin) + scaleBlock(body) + doc.slice(m.end + SCALE_END.length);
}

/**
 * The report as Markdown (not yet formatted by prettier; `writeReport` formats it), with `scale` (Markdown) as its
 * scale section.
 */
export function renderReport(report: BenchReport, scale: string = EMPTY_SCALE_SECTION): string {
  const present = new Set(report.rows.map((r) => r.workload));
  const header =
    '| workload | baseline | ratio | throughput, Tally / baseline | p50 / p99 ms, Tally | p50 / p99 ms, baseline | ' +
    'CPU µs per op, Tally | CPU µs per op, baseline | target |';
  const table = [
    header,
    `|${' --- |'.repeat(9)}`,
    ...report.rows.map((r) => {
      const ratio = ratioOf(r);
      const target = verdict(r) + (r.note ? `; ${r.note}` : '');
      return `| ${[
        workloadCell(r),
        TITLES[r.workload].baseline,
        known(ratio) ? formatRatio(ratio, r.target?.ratio) : '-',
        known(r.tally.throughput) || known(r.baseline.throughput)
          ? `${throughput(r, r.tally)} / ${throughput(r, r.baseline)}`
          : '-',
        latency(r.tally),
        latency(r.baseline),
        cpu(r.tally),
        cpu(r.baseline),
        target,
      ]
        .map(cell)
        .join(' | ')} |`;
    }),
  ];
  const extra = derived(report);
  return [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\`, which runs each workload beside its baseline on the local stack; each run ` +
      `replaces this file. This run ended ${report.date}.`,
    '',
    '## Results',
    '',
    'The ratio is Tally\u2019s throughput over the baseline\u2019s (for the operator: DDL time over operator time); ' +
      'above 1.0x Tally is faster. CPU per operation is per process the bench watched (`runtime` is Tally, `server` ' +
      'a bare server, `bench` the load generator).',
    '',
    ...table,
    ...(extra.length > 0 ? ['', ...extra] : []),
    '',
    ...plotSections(report),
    scaleBlock(scale),
    '',
    '## Machine',
    '',
    ...machineTable(report.machine, report.settings),
    '',
    '## What each workload measures',
    '',
    ...EXPLANATIONS.filter((e) => e.workloads.some((w) => present.has(w))).flatMap((e) => [e.text, '']),
    'Each side runs in rounds alternating with its baseline\u2019s, so a slow phase of the machine hits both alike; ' +
      'unmeasured warm-up rounds come first, because Cassandra\u2019s JIT needs tens of seconds after a start. ' +
      'Settings: `BENCH_SECONDS`, `BENCH_ROUNDS`, `BENCH_WARMUP_ROUNDS`, `BENCH_CONCURRENCY`, `BENCH_NAMESPACES`, ' +
      '`BENCH_ROLLUP_EVENTS`, and for the concurrency sweeps `BENCH_SWEEP_CONCURRENCY`, `BENCH_SWEEP_SECONDS`, ' +
      '`BENCH_SWEEP_ROUNDS`; `BENCH_ONLY=addcount,open,besteffort,addcounts,getcount,sweep,auth,rollup,operator` ' +
      'picks workloads. Measure on a quiet machine: the figures move with anything else using the CPUs.',
    '',
  ].join('\n');
}

/** Draws the report's plots into `dir` (docs/plots), making it if needed. */
export async function writePlots(dir: string, report: BenchReport): Promise<void> {
  for (const plot of plotsOf(report)) await writePlot(path.join(dir, plot.file), await plot.svg());
}

/**
 * The report that replaces `previous` (the file's text, undefined when there is none): `report` rendered with the
 * scale section `previous` has, or the placeholder when it has none or an empty one.
 */
export function nextReport(previous: string | undefined, report: BenchReport): string {
  return renderReport(report, (previous !== undefined ? scaleSection(previous) : undefined) || EMPTY_SCALE_SECTION);
}

/**
 * Draws the plots into `plots/` beside `file`, renders the report keeping the scale section of the file it replaces,
 * formats it with the repository's prettier settings (the file is format-checked by `npm test`) and writes it.
 */
export async function writeReport(file: string, report: BenchReport): Promise<void> {
  await writePlots(path.join(path.dirname(file), 'plots'), report);
  const markdown = nextReport(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined, report);
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(file)) ?? {};
  fs.writeFileSync(file, await prettier.format(markdown, { ...options, filepath: file }));
}
