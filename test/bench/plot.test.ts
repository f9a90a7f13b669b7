import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { latencyChartSvg, lineChartSvg, percentileCurve, writePlot, type LineChart } from './plot';

const sweep: LineChart = {
  title: 'AddCount throughput & concurrency',
  xLabel: 'concurrency',
  yLabel: 'requests/s',
  series: [
    {
      name: 'Tally AddCount',
      points: [
        [1, 210],
        [4, 640],
        [16, 900],
        [64, 940],
      ],
    },
    {
      name: 'native counter UPDATE',
      points: [
        [16, 1300],
        [1, 400],
        [4, 1000],
        [64, 1310],
      ],
    },
    { name: 'a third', points: [[1, 100]] },
  ],
};

/** The <path> elements vega draws for line marks: one per series with points. */
const lines = (svg: string): string[] => svg.match(/<path[^>]*aria-roledescription="line mark"[^>]*>/g) ?? [];
const points = (svg: string): string[] => svg.match(/<path[^>]*aria-roledescription="point"[^>]*>/g) ?? [];
/** The scale an axis says it has, from its accessible label ("X-axis titled 'a' for a log scale ..."). */
const scaleOf = (svg: string, axis: 'X' | 'Y'): string | undefined =>
  new RegExp(`aria-label="${axis}-axis titled '[^']*' for a (\\w+) scale`).exec(svg)?.[1];
/** The text of every <text> element. */
const texts = (svg: string): string[] => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);

describe('lineChartSvg', () => {
  let linear: string;
  let logs: string;
  // The first render loads vega, which jest transpiles on a first run (tens of seconds; cached after).
  beforeAll(async () => {
    linear = await lineChartSvg(sweep);
    logs = await lineChartSvg({ ...sweep, logX: true, logY: true });
  }, 180_000);

  it('is one SVG document with the title, the axis titles and every series name', () => {
    expect(linear.startsWith('<svg')).toBe(true);
    expect(linear.trimEnd().endsWith('</svg>')).toBe(true);
    expect(linear.match(/<svg/g)).toHaveLength(1);
    const t = texts(linear);
    expect(t).toEqual(
      expect.arrayContaining([
        'AddCount throughput &amp; concurrency',
        'concurrency',
        'requests/s',
        'Tally AddCount',
        'native counter UPDATE',
        'a third',
      ]),
    );
    // The legend keeps the order the series were given in (vega-lite's own would be sorted).
    const legend = t.filter((x) => sweep.series.some((s) => s.name === x));
    expect(legend).toEqual(['Tally AddCount', 'native counter UPDATE', 'a third']);
  });

  it('draws a line per series, each its own colour, and a point per data point', () => {
    const paths = lines(linear);
    expect(paths).toHaveLength(3);
    const strokes = paths.map((p) => /stroke="([^"]+)"/.exec(p)?.[1]);
    expect(new Set(strokes).size).toBe(3);
    expect(points(linear)).toHaveLength(9);
    // A series of one point is a line of one point: a move, no segment.
    expect(paths.map((p) => (/ d="([^"]*)"/.exec(p)?.[1] ?? '').split('L').length)).toEqual([4, 4, 1]);
  });

  it('uses linear axes unless asked for log ones', () => {
    expect([scaleOf(linear, 'X'), scaleOf(linear, 'Y')]).toEqual(['linear', 'linear']);
    expect([scaleOf(logs, 'X'), scaleOf(logs, 'Y')]).toEqual(['log', 'log']);
  });

  it('ticks a log x axis at the measured x values', () => {
    expect(texts(logs)).toEqual(expect.arrayContaining(['1', '4', '16', '64']));
    expect(texts(logs)).not.toContain('2');
  });

  it('leaves out the points a log axis cannot place', async () => {
    const svg = await lineChartSvg({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      logY: true,
      series: [
        {
          name: 's',
          points: [
            [1, 0],
            [2, 5],
            [3, NaN],
            [4, 7],
          ],
        },
      ],
    });
    expect(points(svg)).toHaveLength(2);
    expect(lines(svg)).toHaveLength(1);
  });
});

describe('percentileCurve', () => {
  // 1, 2, ..., 1000 ms, shuffled.
  const samples = Array.from({ length: 1000 }, (_, i) => ((i * 7919) % 1000) + 1);

  it('runs from the fastest sample to the slowest, never falling', () => {
    const curve = percentileCurve(samples, 31);
    expect(curve).toHaveLength(31);
    expect(curve[0]).toEqual([1, 1]);
    expect(curve.at(-1)).toEqual([1000, 1000]);
    for (let i = 1; i < curve.length; i++) {
      expect(curve[i]![0]).toBeGreaterThan(curve[i - 1]![0]);
      expect(curve[i]![1]).toBeGreaterThanOrEqual(curve[i - 1]![1]);
    }
  });

  it('puts each percentile at x = 1 / (1 - p), by nearest rank', () => {
    // Four points over 1..1000 on a log scale: x = 1, 10, 100, 1000, that is min, p90, p99, max.
    const curve = percentileCurve(samples, 4).map(([x, ms]) => [Math.round(x), ms]);
    expect(curve).toEqual([
      [1, 1],
      [10, 901],
      [100, 991],
      [1000, 1000],
    ]);
    expect(samples).not.toEqual([...samples].sort((a, b) => a - b));
  });

  it('is empty without samples', () => {
    expect(percentileCurve([])).toEqual([]);
  });
});

describe('latencyChartSvg', () => {
  it('draws a percentile curve per side on log axes, ticked at the nines the samples reach', async () => {
    const fast = Array.from({ length: 2000 }, (_, i) => 1 + (i % 100) / 10);
    const svg = await latencyChartSvg({
      title: 'GetCount latency',
      series: [
        { name: 'Tally', samplesMs: fast },
        { name: 'node:http + memjs', samplesMs: fast.map((ms) => ms * 2) },
      ],
    });
    expect(lines(svg)).toHaveLength(2);
    expect(points(svg)).toHaveLength(0);
    expect([scaleOf(svg, 'X'), scaleOf(svg, 'Y')]).toEqual(['log', 'log']);
    const t = texts(svg);
    expect(t).toEqual(
      expect.arrayContaining(['GetCount latency', 'Tally', 'node:http + memjs', 'p50', 'p90', 'p99', 'p99.9']),
    );
    // 2,000 samples resolve p99.9 but not p99.99.
    expect(t).not.toContain('p99.99');
  });
});

describe('writePlot', () => {
  it('makes the directory and writes the file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-plot-'));
    try {
      const file = path.join(dir, 'a', 'b', 'x.svg');
      await writePlot(file, '<svg/>');
      expect(fs.readFileSync(file, 'utf8')).toBe('<svg/>');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
