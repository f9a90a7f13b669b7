import type { CountersResult } from './scale-counters';
import { growth, renderScaleSection, scalePlots, type ScaleResults } from './scale-report';

const sweep = (ms: number, rss: number, rolled: number) => ({
  wallMs: ms + 500,
  durationMs: ms,
  scanned: rolled,
  behind: rolled,
  rolled,
  failed: 0,
  retried: 0,
  eventsRead: rolled,
  peakRssMiB: rss,
  heapCapMiB: 128,
  errors: [],
  exitCode: 0,
});

const counters = (n: number, sweeperRss: number): CountersResult => ({
  counters: n,
  fillAddsPerSecond: 3000,
  fillFailed: 0,
  addCount: { throughput: 800, p50Ms: 30, p99Ms: 90, errors: 0, cpuUsPerAdd: 600 },
  runtimePeakRssMiB: 200,
  runtimeAfterRssMiB: 180,
  sweepBehind: sweep(n, sweeperRss, n),
  sweepCurrent: sweep(n / 10, 90, 0),
});

describe('growth', () => {
  it('fits MiB per unit and says whether the growth over the range passes the tolerance', () => {
    const flat = growth(
      [
        [1000, 100],
        [10_000, 104],
        [100_000, 101],
      ],
      100_000,
      16,
    );
    expect(flat.grows).toBe(false);
    const grows = growth(
      [
        [1000, 100],
        [10_000, 120],
        [100_000, 300],
      ],
      100_000,
      16,
    );
    expect(grows.grows).toBe(true);
    expect(grows.perUnitMiB).toBeGreaterThan(150);
  });
});

describe('the scale section', () => {
  const results = (sweeperRss: number[]): ScaleResults => ({
    date: '2026-12-01T00:00:00.000Z',
    minutes: 20,
    settings: { SCALE_COUNTERS: '1000,10000,100000' },
    counters: [counters(1000, sweeperRss[0]!), counters(10_000, sweeperRss[1]!), counters(100_000, sweeperRss[2]!)],
  });

  it('has a row per counters size, the sweeper verdict and links to the plots it draws', () => {
    const text = renderScaleSection(results([90, 91, 92]));
    expect(text).toContain('| 100,000 | 800 |');
    expect(text).toMatch(/Sweeper memory: .* flat/);
    for (const p of scalePlots(results([90, 91, 92]))) expect(text).toContain(`](plots/${p.file})`);
    expect(scalePlots(results([90, 91, 92])).map((p) => p.file)).toEqual([
      'scale-counters-addcount.svg',
      'scale-counters-memory.svg',
      'scale-counters-sweep.svg',
    ]);
  });

  it('says so when the sweeper grows with the counters written', () => {
    expect(renderScaleSection(results([90, 120, 400]))).toMatch(/\*\*it grows with the counters written\*\*/);
  });

  it('leaves out what was not run', () => {
    const text = renderScaleSection({ date: 'd', minutes: 1, settings: {} });
    expect(text).not.toContain('### Counters');
    expect(text).not.toContain('### A hot counter');
  });
});
