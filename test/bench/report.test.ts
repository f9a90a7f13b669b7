import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  EMPTY_SCALE_SECTION,
  formatRatio,
  renderReport,
  replaceSection,
  SCALE_BEGIN,
  SCALE_END,
  scaleSection,
  nextReport,
  verdict,
  writePlots,
  type BenchReport,
  type ConcurrencySweep,
  type LatencyDistribution,
  type ResultRow,
} from './report';

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
      tally: { throughput: 31000, p50Ms: 0.9, p99Ms: 3.2 },
      baseline: { throughput: 20000, p50Ms: 1.5, p99Ms: 3.61 },
      target: { ratio: 1.5, p99Ms: 'baseline' },
    },
    {
      workload: 'getcount-post',
      tally: { throughput: 29000, p50Ms: 1.9, p99Ms: 6.4 },
      baseline: { throughput: 20000, p50Ms: 1.5, p99Ms: 3.61 },
      target: { ratio: 1.5, p99Ms: 'baseline' },
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

  it("reports both GetCount targets (1.5x and a p99 no higher than the baseline's), and which one was missed", () => {
    expect(rows[2]!.slice(2, 5)).toEqual(['1.55x', '31,000/s / 20,000/s', '0.90 / 3.20']);
    expect(rows[2]![8]).toBe('>= 1.5x, p99 <= the baseline\u2019s: met');
    expect(rows[3]![8]).toBe(
      '>= 1.5x, p99 <= the baseline\u2019s: **missed** (ratio < 1.5x, p99 > the baseline\u2019s: 6.40 > 3.61 ms)',
    );
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
    expect(
      verdict({
        workload: 'getcount-get',
        tally: { throughput: 16, p99Ms: 1 },
        baseline: { throughput: 10 },
        target: { ratio: 1.5, p99Ms: 'baseline' },
      }),
    ).toBe('>= 1.5x, p99 <= the baseline\u2019s: **missed** (no baseline p99)');
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

const sweep: ConcurrencySweep = {
  id: 'addcount',
  title: 'AddCount (Eventual) and the native counter `UPDATE`',
  method: '2 rounds of 2 s per side and concurrency, alternating',
  tally: {
    name: 'AddCount',
    points: [
      { concurrency: 1, throughput: 210, p99Ms: 9 },
      { concurrency: 16, throughput: 900, p99Ms: 40 },
    ],
  },
  baseline: {
    name: 'native counter UPDATE',
    points: [
      { concurrency: 1, throughput: 420, p99Ms: 4 },
      { concurrency: 16, throughput: 1000, p99Ms: 35.5 },
    ],
  },
};

const latencies: LatencyDistribution = {
  id: 'getcount',
  title: 'GetCount (`GET`) and node:http + memjs',
  method: 'closed loop at concurrency 32, the median round of each',
  sides: [
    { name: 'GetCount (GET)', samplesMs: Array.from({ length: 500 }, (_, i) => 1 + i / 100) },
    { name: 'node:http + memjs', samplesMs: Array.from({ length: 500 }, (_, i) => 2 + i / 50) },
  ],
};

describe('the plots', () => {
  const markdown = renderReport({ ...report, sweeps: [sweep], latencies: [latencies] });

  it('embeds each plot with a relative image link and says what it shows', () => {
    const images = [...markdown.matchAll(/^!\[([^\]]+)\]\(([^)]+)\)$/gm)].map((m) => m[2]);
    expect(images).toEqual(['plots/concurrency-addcount.svg', 'plots/latency-getcount.svg']);
    const captions = markdown.split('\n').filter((_, i, all) => all[i - 2]?.startsWith('!['));
    expect(captions).toEqual([
      'Throughput of AddCount and native counter UPDATE at concurrency 1, 16. 2 rounds of 2 s per side and ' +
        'concurrency, alternating.',
      'Latency by percentile of GetCount (GET) and node:http + memjs, closed loop at concurrency 32, the median ' +
        'round of each.',
    ]);
  });

  it('gives the sweep as a table too, with the ratio at each concurrency', () => {
    const sweepRows = tableRows(markdown).filter((r) => r.length === 6 && r[0] !== 'concurrency');
    expect(sweepRows).toEqual([
      ['1', '210', '420', '0.50x', '9.00', '4.00'],
      ['16', '900', '1,000', '0.90x', '40.00', '35.50'],
    ]);
  });

  it('has no plot sections when the run had no sweep or samples', () => {
    expect(renderReport(report)).not.toContain('](plots/');
    expect(renderReport(report)).not.toContain('## Latency distributions');
  });
});

describe('the scale section', () => {
  const body = '## How cost grows with the work\n\n| counters | adds/s |\n| --- | --- |\n| 1000 | 900 |';

  it('is the placeholder in a report rendered alone', () => {
    const markdown = renderReport(report);
    expect(scaleSection(markdown)).toBe(EMPTY_SCALE_SECTION);
    expect(EMPTY_SCALE_SECTION).toContain('Run `npm run bench:scale` to fill this section.');
    // Before the machine and the explanations, after the results.
    expect(markdown.indexOf(SCALE_BEGIN)).toBeGreaterThan(markdown.indexOf('## Results'));
    expect(markdown.indexOf(SCALE_END)).toBeLessThan(markdown.indexOf('## Machine'));
  });

  it('replaceSection puts a body between the markers, leaving the rest of the document as it was', () => {
    const markdown = renderReport(report);
    const replaced = replaceSection(markdown, body);
    expect(scaleSection(replaced)).toBe(body);
    expect(replaced).not.toContain('Run `npm run bench:scale`');
    const [before, after] = [markdown.indexOf(SCALE_BEGIN), markdown.length - markdown.indexOf(SCALE_END)];
    expect(replaced.slice(0, before)).toBe(markdown.slice(0, before));
    expect(replaced.slice(-after)).toBe(markdown.slice(-after));
    // Again: one section, the newer body.
    const twice = replaceSection(replaced, 'newer');
    expect(twice.split(SCALE_BEGIN)).toHaveLength(2);
    expect(scaleSection(twice)).toBe('newer');
  });

  it('replaceSection appends the markers to a document without them, and refuses broken ones', () => {
    const doc = replaceSection('# Benchmarks\n\ntext\n', body);
    expect(doc).toBe(`# Benchmarks\n\ntext\n\n${SCALE_BEGIN}\n\n${body}\n\n${SCALE_END}\n`);
    expect(() => replaceSection(`a\n${SCALE_BEGIN}\nb\n`, body)).toThrow(/not one pair/);
    expect(() => replaceSection(`${SCALE_END}\n${SCALE_BEGIN}\n`, body)).toThrow(/not one pair/);
    expect(scaleSection(`a\n${SCALE_BEGIN}\nb\n`)).toBeUndefined();
    expect(scaleSection('no markers')).toBeUndefined();
  });
});

describe('nextReport', () => {
  it('keeps the scale section of the report it replaces, and has the placeholder when there is none', () => {
    expect(scaleSection(nextReport(undefined, report))).toBe(EMPTY_SCALE_SECTION);
    expect(scaleSection(nextReport('# Benchmarks\n\nan old report without markers\n', report))).toBe(
      EMPTY_SCALE_SECTION,
    );
    const empty = `# Benchmarks\n\n${SCALE_BEGIN}\n\n${SCALE_END}\n`;
    expect(scaleSection(nextReport(empty, report))).toBe(EMPTY_SCALE_SECTION);

    const body =
      '## How cost grows with the work\n\n| counters | adds/s |\n| -------- | ------ |\n| 1000     | 900    |';
    const previous = replaceSection(renderReport(report), body);
    const next = nextReport(previous, { ...report, date: '2031-01-01T00:00:00.000Z' });
    expect(next).toContain('2031-01-01T00:00:00.000Z');
    expect(next).not.toContain(report.date);
    expect(scaleSection(next)).toBe(body);
    expect(next.split(SCALE_BEGIN)).toHaveLength(2);
  });
});

describe('writePlots', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-report-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('draws every plot the report links, under the name it links', async () => {
    const withPlots = { ...report, sweeps: [sweep], latencies: [latencies] };
    await writePlots(path.join(dir, 'plots'), withPlots);
    const links = [...renderReport(withPlots).matchAll(/\]\((plots\/[^)]+)\)/g)].map((m) => m[1]!);
    expect(links).toHaveLength(2);
    for (const link of links) expect(fs.readFileSync(path.join(dir, link), 'utf8').startsWith('<svg')).toBe(true);
    expect(fs.readdirSync(path.join(dir, 'plots')).sort()).toEqual([
      'concurrency-addcount.svg',
      'latency-getcount.svg',
    ]);
    const concurrency = fs.readFileSync(path.join(dir, 'plots', 'concurrency-addcount.svg'), 'utf8');
    expect(concurrency).toContain('>AddCount (Eventual) and the native counter UPDATE<');
    expect(concurrency).toContain('>concurrency (requests in flight)<');
    expect(concurrency).toContain('>native counter UPDATE<');
  }, 180_000);
});
