import * as fs from 'node:fs';
import * as path from 'node:path';
// vega-lite's types are named only in its package exports, which this project's module resolution (node) does not
// read; the file they point to is named instead.
import type { TopLevelSpec } from 'vega-lite/build/index';

/**
 * The benchmark plots: line charts rendered to SVG by vega-lite and vega, headless, without a canvas or a browser.
 * `npm run bench` (report.ts) and `npm run bench:scale` draw with these.
 */

/** One line of a chart: its legend name and its [x, y] points (drawn in x order). */
export interface Series {
  name: string;
  points: Array<[number, number]>;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  logX?: boolean;
  logY?: boolean;
}

/** A latency distribution to plot: a legend name and latencies in milliseconds, in any order. */
export interface LatencySamples {
  name: string;
  samplesMs: number[];
}

interface Libraries {
  vega: typeof import('vega');
  vegaLite: typeof import('vega-lite/build/index');
}

/**
 * vega 6 ships only ES modules, and vega-canvas, which it imports, awaits at its top level, so Node cannot require()
 * it: it takes an import(). tsc, compiling to CommonJS, turns `import()` into `require()`, so the import goes through
 * a Function that tsc does not see. Jest runs tests in vm contexts that have no import() (without
 * --experimental-vm-modules); there require() loads vega, which jest.config.js transpiles to CommonJS, giving
 * vega-canvas its browser build (no top-level await; neither build has a canvas here, and SVG needs none).
 */
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

let libraries: Promise<Libraries> | undefined;

function loadLibraries(): Promise<Libraries> {
  libraries ??= (async () => {
    try {
      const [vega, vegaLite] = await Promise.all([nativeImport('vega'), nativeImport('vega-lite')]);
      return { vega, vegaLite } as Libraries;
    } catch (err) {
      if (!String((err as NodeJS.ErrnoException).code).startsWith('ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING')) throw err;
      /* eslint-disable @typescript-eslint/no-require-imports */
      return { vega: require('vega'), vegaLite: require('vega-lite') };
      /* eslint-enable @typescript-eslint/no-require-imports */
    }
  })();
  return libraries;
}

/** Renders a vega-lite spec to an SVG document. */
async function render(spec: TopLevelSpec): Promise<string> {
  const { vega, vegaLite } = await loadLibraries();
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Tick values of an axis, each with the label it shows. */
type Ticks = Array<[number, string]>;

/** What a chart of this file's own draws differently from a plain line chart. */
interface Drawing {
  /** Marks each point (default: yes). */
  points?: boolean;
  /** The x axis's ticks; by default, on a log x axis with few distinct x values, those values. */
  xTicks?: Ticks;
  /** The x axis's extent; by default the data's, rounded out. */
  xDomain?: [number, number];
}

/** Points a log axis cannot place (zero, negative) or no axis can (NaN, infinity) are left out. */
function drawable(chart: LineChart): Array<{ series: string; x: number; y: number }> {
  const ok = (v: number, log?: boolean): boolean => Number.isFinite(v) && (!log || v > 0);
  return chart.series.flatMap((s) =>
    s.points.filter(([x, y]) => ok(x, chart.logX) && ok(y, chart.logY)).map(([x, y]) => ({ series: s.name, x, y })),
  );
}

function xAxis(values: ReturnType<typeof drawable>, chart: LineChart, drawing: Drawing): object {
  if (drawing.xTicks) {
    const labelExpr = drawing.xTicks
      .map(([v, label]) => `datum.value === ${v} ? ${JSON.stringify(label)} : `)
      .join('')
      .concat("''");
    return { axis: { values: drawing.xTicks.map(([v]) => v), labelExpr } };
  }
  // A log axis's own ticks (1, 2, 3 ... 10, 20 ...) hide which x values were measured (1, 4, 16, 32, 64).
  const xs = [...new Set(values.map((v) => v.x))].sort((a, b) => a - b);
  return chart.logX && xs.length <= 12 ? { axis: { values: xs } } : {};
}

function lineSpec(chart: LineChart, drawing: Drawing = {}): TopLevelSpec {
  const values = drawable(chart);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: chart.title,
    width: 560,
    height: 300,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: drawing.points ?? true },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: chart.xLabel,
        scale: {
          ...(chart.logX ? { type: 'log' } : { zero: false }),
          ...(drawing.xDomain ? { domain: drawing.xDomain, nice: false } : {}),
        },
        ...xAxis(values, chart, drawing),
      },
      y: {
        field: 'y',
        type: 'quantitative',
        title: chart.yLabel,
        scale: chart.logY ? { type: 'log' } : {},
      },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        // The legend and the colours follow the order the series are given in.
        scale: { domain: chart.series.map((s) => s.name) },
        legend: { orient: 'bottom', direction: 'vertical', labelLimit: 0 },
      },
    },
  };
}

/** A line chart of the given series as an SVG document. */
export function lineChartSvg(chart: LineChart): Promise<string> {
  return render(lineSpec(chart));
}

/**
 * The latency of each percentile, as [x, ms] points where x = 1 / (1 - percentile/100): 1 for the fastest request, 2
 * for p50, 10 for p90, 100 for p99, 1,000 for p99.9. On a log axis that gives each nine the same width, so the tail
 * is as readable as the median. A percentile is the nearest rank (as test/bench/load.ts reports them), up to the
 * highest the number of samples resolves; `points` of them, evenly spaced on that axis.
 */
export function percentileCurve(samplesMs: number[], points = 60): Array<[number, number]> {
  const sorted = [...samplesMs].filter(Number.isFinite).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return [];
  const curve: Array<[number, number]> = [];
  for (let k = 0; k < points; k++) {
    // x runs from 1 (the minimum) to n (the maximum), evenly on a log scale.
    const x = points === 1 ? 1 : n ** (k / (points - 1));
    const p = 1 - 1 / x;
    curve.push([x, sorted[Math.min(n - 1, Math.floor(p * n))]!]);
  }
  return curve;
}

const PERCENTILE_TICKS: Ticks = [
  [2, 'p50'],
  [10, 'p90'],
  [100, 'p99'],
  [1000, 'p99.9'],
  [10000, 'p99.99'],
  [100000, 'p99.999'],
];

/** Latency by percentile of each set of samples (see percentileCurve), latency on a log axis, as an SVG document. */
export function latencyChartSvg(opts: { title: string; series: LatencySamples[] }): Promise<string> {
  const series = opts.series.map((s) => ({ name: s.name, points: percentileCurve(s.samplesMs) }));
  const n = Math.max(2, ...opts.series.map((s) => s.samplesMs.length));
  return render(
    lineSpec(
      { title: opts.title, xLabel: 'percentile', yLabel: 'latency (ms)', series, logX: true, logY: true },
      { points: false, xTicks: PERCENTILE_TICKS.filter(([x]) => x <= n), xDomain: [1, n] },
    ),
  );
}

/** Writes an SVG document to `file`, making its directory if needed. */
export async function writePlot(file: string, svg: string): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  await fs.promises.writeFile(file, svg);
}
