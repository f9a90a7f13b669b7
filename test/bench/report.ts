import * as fs from 'node:fs';
import * as os from 'node:os';

/**
 * The benchmark report `npm run bench` writes to docs/benchmarks.md: the current results as one table, the machine
 * they were measured on, and a fixed explanation of each workload and its baseline. Each run replaces the file.
 * Rendering is a pure function of the results, so a unit test can render a given set of them.
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
  /** Undefined for reference rows, which are there to explain another row and have no target of their own. */
  target?: { ratio: number; p99Ms?: number };
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

export interface BenchReport {
  /** When the run ended, ISO 8601. */
  date: string;
  machine: Machine;
  settings: Settings;
  rows: ResultRow[];
  /** Peak resident memory of the runtime under test. */
  runtimeRssMiB?: number;
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
      '**GetCount** reads 100 Eventual counters whose checkpoints are in the rollup cache, as ' +
      '`GET /v1/namespaces/{ns}/counters/{name}` and as `POST /v1/counter/GetCount` with a JSON body. The baseline ' +
      '(`test/bench/baseline-server.ts`) is a bare node:http server answering a GET with one memjs get of the same ' +
      'Memcached key: the least a cache-backed read over HTTP costs. Targets: a ratio of at least 0.8x and a p99 of at ' +
      'most 5 ms. On a small machine the load generator, the server and Memcached share the CPUs, so the p99 moves ' +
      'with the machine: compare it with the baseline\u2019s own.',
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
  if (row.target.p99Ms !== undefined) {
    const p99 = row.tally.p99Ms;
    if (!known(p99)) misses.push('no p99');
    else if (p99 > row.target.p99Ms) misses.push(`p99 > ${row.target.p99Ms} ms`);
  }
  const wanted = `>= ${targetRatio(row.target.ratio)}x${row.target.p99Ms !== undefined ? `, p99 <= ${row.target.p99Ms} ms` : ''}`;
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

/** The report as Markdown (not yet formatted by prettier; `writeReport` formats it). */
export function renderReport(report: BenchReport): string {
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
      '`BENCH_ROLLUP_EVENTS`; `BENCH_ONLY=addcount,open,besteffort,getcount,addcounts,auth,rollup,operator` picks ' +
      'workloads. Measure on a quiet machine: the figures move with anything else using the CPUs.',
    '',
  ].join('\n');
}

/** Renders, formats with the repository's prettier settings (the file is format-checked by `npm test`) and writes. */
export async function writeReport(file: string, report: BenchReport): Promise<void> {
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(file)) ?? {};
  fs.writeFileSync(file, await prettier.format(renderReport(report), { ...options, filepath: file }));
}
