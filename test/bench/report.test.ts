import { formatRatio, renderReport, verdict, type BenchReport, type ResultRow } from './report';

const addcount: ResultRow = {
  workload: 'addcount',
  placement: 'all processes share every CPU',
  tally: { throughput: 3200, p50Ms: 9.5, p99Ms: 21.25, cpuPerOpUs: { runtime: 110.4, cassandra: 150, bench: 40 } },
  baseline: { throughput: 5000, p50Ms: 6, p99Ms: 14, cpuPerOpUs: { cassandra: 180, bench: 30 } },
  target: { ratio: 1 },
  note: '0.95x of the HTTP + INSERT floor',
};

const report: BenchReport = {
  date: '2030-01-02T03:04:05.000Z',
  machine: {
    cores: 2,
    memoryGiB: 7.75,
    cpuModel: 'Example CPU @ 2.0GHz',
    node: 'v20.19.0',
    cassandra: '5.0.8',
    kernel: 'Linux 6.1.0',
  },
  settings: { concurrency: 32, rounds: 3, secondsPerRound: 5, warmupRounds: 3 },
  runtimeRssMiB: 139.4,
  rows: [
    addcount,
    {
      workload: 'addcount-floor',
      placement: 'all processes share every CPU',
      tally: { throughput: 3350, p50Ms: 9, p99Ms: 20 },
      baseline: addcount.baseline,
    },
    {
      workload: 'getcount-get',
      tally: { throughput: 17200, p50Ms: 1.7, p99Ms: 4.37 },
      baseline: { throughput: 20000, p50Ms: 1.5, p99Ms: 3.61 },
      target: { ratio: 0.8, p99Ms: 5 },
    },
    {
      workload: 'getcount-post',
      tally: { throughput: 16500, p50Ms: 1.9, p99Ms: 6.4 },
      baseline: { throughput: 20000, p50Ms: 1.5, p99Ms: 3.61 },
      target: { ratio: 0.8, p99Ms: 5 },
    },
    {
      workload: 'rollup',
      tally: { throughput: 545000 },
      baseline: { throughput: 500000 },
      target: { ratio: 0.8 },
    },
    {
      workload: 'operator',
      tally: { throughput: 50 / 40 },
      baseline: { throughput: 50 / 33.6 },
      ratio: 33.6 / 40,
      note: 'reconcile p99 <= 2.5 s',
    },
  ],
};

/** The table's data rows, as arrays of trimmed cells. */
function tableRows(markdown: string): string[][] {
  const lines = markdown.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| workload'));
  return lines
    .filter((l) => !/^\|\s*-/.test(l))
    .map((l) =>
      l
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    );
}

describe('renderReport', () => {
  const markdown = renderReport(report);
  const rows = tableRows(markdown).filter((r) => r.length === 9);

  it('renders one table row per result, with the ratio, both latencies, throughputs and CPU per operation', () => {
    expect(rows).toHaveLength(6);
    expect(rows[0]).toEqual([
      'AddCount (Eventual, HTTP); all processes share every CPU',
      'native counter `UPDATE`',
      '0.64x',
      '3,200/s / 5,000/s',
      '9.50 / 21.25',
      '6.00 / 14.00',
      'runtime 110, cassandra 150, bench 40',
      'cassandra 180, bench 30',
      '>= 1.0x: **missed** (ratio < 1.0x); 0.95x of the HTTP + INSERT floor',
    ]);
    expect(rows[1]![2]).toBe('0.67x');
    expect(rows[1]![8]).toBe('reference');
  });

  it('reports both GetCount targets, and which one was missed', () => {
    expect(rows[2]!.slice(2, 5)).toEqual(['0.86x', '17,200/s / 20,000/s', '1.70 / 4.37']);
    expect(rows[2]![8]).toBe('>= 0.8x, p99 <= 5 ms: met');
    expect(rows[3]![8]).toBe('>= 0.8x, p99 <= 5 ms: **missed** (p99 > 5 ms)');
  });

  it('shows rows without latencies, and the operator ratio as given (DDL time over operator time)', () => {
    expect(rows[4]!.slice(2, 9)).toEqual([
      '1.09x',
      '545,000 events/s / 500,000 events/s',
      '-',
      '-',
      '-',
      '-',
      '>= 0.8x: met',
    ]);
    expect(rows[5]![2]).toBe('0.84x');
    expect(rows[5]![8]).toBe('reported; reconcile p99 <= 2.5 s');
  });

  it('names the machine, the settings and the date of the run', () => {
    expect(markdown).toContain('2030-01-02T03:04:05.000Z');
    expect(markdown).toContain('| CPU | 2 cores, Example CPU @ 2.0GHz |');
    expect(markdown).toContain('| memory | 7.8 GiB |');
    expect(markdown).toContain('| Node.js | v20.19.0 |');
    expect(markdown).toContain('| Cassandra | 5.0.8 |');
    expect(markdown).toContain('3 measured rounds of 5 s per side');
  });

  it("derives Cassandra's CPU per add and gives the runtime's memory", () => {
    expect(markdown).toContain('Cassandra CPU per add 150 µs through Tally vs 180 µs per native counter update');
    expect(markdown).toContain('1.20x as many adds per CPU-second');
    expect(markdown).toContain('139 MiB');
  });

  it('explains only the workloads that ran', () => {
    expect(markdown).toContain('**AddCount** sends');
    const only = renderReport({ ...report, rows: [report.rows[4]!] });
    expect(only).toContain('**Rollup** counts');
    expect(only).not.toContain('**AddCount** sends');
    expect(only).not.toContain('Cassandra CPU per add');
  });

  it('is a report of one run, not a log: nothing is appended', () => {
    expect(markdown.match(/^# /gm)).toEqual(['# ']);
    expect(markdown.match(/^\| workload/gm)).toHaveLength(1);
  });
});

describe('verdict', () => {
  it('misses a target when the throughput or the p99 is unknown', () => {
    expect(verdict({ ...addcount, tally: {} })).toBe('>= 1.0x: **missed** (no ratio)');
    expect(
      verdict({
        workload: 'getcount-get',
        tally: { throughput: 9 },
        baseline: { throughput: 10 },
        target: { ratio: 0.8, p99Ms: 5 },
      }),
    ).toBe('>= 0.8x, p99 <= 5 ms: **missed** (no p99)');
  });
});

describe('formatRatio', () => {
  it('never shows a missed target as met', () => {
    expect(formatRatio(0.9955, 1)).toBe('0.996x');
    expect(formatRatio(0.9955)).toBe('1.00x');
    expect(formatRatio(1.004, 1)).toBe('1.00x');
    expect(formatRatio(0.64, 1)).toBe('0.64x');
  });
});

describe('the settings line', () => {
  it('says round or rounds as the numbers want', () => {
    const one = renderReport({ ...report, settings: { ...report.settings, rounds: 1, warmupRounds: 1 } });
    expect(one).toContain('1 unmeasured warm-up round per side, then 1 measured round of 5 s per side');
    expect(renderReport(report)).toContain('3 unmeasured warm-up rounds per side, then 3 measured rounds of 5 s');
  });
});
