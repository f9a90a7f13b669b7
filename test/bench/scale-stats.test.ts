import {
  countAfter,
  counterValue,
  histogramBuckets,
  parseSizes,
  quantile,
  quantileBetween,
  sizeFromEnv,
  slope,
  windowQuantiles,
} from './scale-stats';

describe('parseSizes', () => {
  it('reads plain numbers and K/M suffixes in the order given, without repeats', () => {
    expect(parseSizes('1000, 100K,1m,1k', 'SCALE_COUNTERS')).toEqual([1000, 100_000, 1_000_000]);
    expect(parseSizes('1.5K', 'X')).toEqual([1500]);
  });

  it('refuses what is not a positive whole number, naming the variable', () => {
    expect(() => parseSizes('10,abc', 'SCALE_COUNTERS')).toThrow(/SCALE_COUNTERS: "abc" is not a size/);
    expect(() => parseSizes('0', 'X')).toThrow(/not a positive whole number/);
    expect(() => parseSizes('1.0001K', 'X')).toThrow(/not a positive whole number/);
    expect(() => parseSizes('', 'X')).toThrow(/is not a size/);
  });

  it('sizeFromEnv takes one size, or the default when unset', () => {
    expect(sizeFromEnv({}, 'S', 60)).toBe(60);
    expect(sizeFromEnv({ S: ' ' }, 'S', 60)).toBe(60);
    expect(sizeFromEnv({ S: '2K' }, 'S', 60)).toBe(2000);
    expect(() => sizeFromEnv({ S: '1,2' }, 'S', 60)).toThrow(/one size expected/);
  });
});

describe('quantile and windowQuantiles', () => {
  it('takes the nearest rank', () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(quantile(v, 0.5)).toBe(50);
    expect(quantile(v, 0.99)).toBe(99);
    expect(quantile(v, 1)).toBe(100);
    expect(quantile([7], 0.99)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
    expect(v[0]).toBe(100); // not sorted in place
  });

  it('gives one point per window that has samples, at the window end in seconds', () => {
    const samples: [number, number][] = [
      [100, 1],
      [900, 3],
      [500, 2],
      [2100, 10], // window 2; window 1 has none and gets no point
      [2999, 20],
    ];
    expect(windowQuantiles(samples, 1000, 0.99)).toEqual([
      [1, 3],
      [3, 20],
    ]);
    expect(windowQuantiles(samples, 1000, 0.5)).toEqual([
      [1, 2],
      [3, 10],
    ]);
  });
});

const exposition = (b: Record<string, [number, number]>) =>
  [
    '# HELP tally_rollup_lag_seconds How far behind.',
    '# TYPE tally_rollup_lag_seconds histogram',
    ...Object.entries(b).flatMap(([ns, [small, large]]) => [
      `tally_rollup_lag_seconds_bucket{le="1",namespace="${ns}"} ${small}`,
      `tally_rollup_lag_seconds_bucket{le="10",namespace="${ns}"} ${small + large}`,
      `tally_rollup_lag_seconds_bucket{le="+Inf",namespace="${ns}"} ${small + large}`,
      `tally_rollup_lag_seconds_sum{namespace="${ns}"} 0`,
      `tally_rollup_lag_seconds_count{namespace="${ns}"} ${small + large}`,
    ]),
    'tally_rollups_total{namespace="a",result="rolled"} 5',
    'tally_rollups_total{namespace="a",result="current"} 2',
    'tally_rollups_total{namespace="b",result="rolled"} 1',
    'process_resident_memory_bytes 1024',
  ].join('\n');

describe('histogram deltas', () => {
  it('reads the cumulative buckets of one label set', () => {
    const text = exposition({ a: [3, 1], b: [0, 5] });
    expect([...histogramBuckets(text, 'tally_rollup_lag_seconds', { namespace: 'a' })]).toEqual([
      [1, 3],
      [10, 4],
      [Infinity, 4],
    ]);
    // Without the label: summed over namespaces.
    expect(histogramBuckets(text, 'tally_rollup_lag_seconds').get(10)).toBe(9);
  });

  it('takes the quantile of what was observed between two scrapes only', () => {
    const before = histogramBuckets(exposition({ a: [100, 0] }), 'tally_rollup_lag_seconds');
    // Since then: 1 fast rollup, 9 slow ones. Over all time p99 would be in le=10 too, but p50 would be le=1.
    const after = histogramBuckets(exposition({ a: [101, 9] }), 'tally_rollup_lag_seconds');
    expect(quantileBetween(before, after, 0.5)).toEqual({ value: 10, count: 10 });
    expect(quantileBetween(before, after, 0.05)).toEqual({ value: 1, count: 10 });
    expect(quantileBetween(after, after, 0.99)).toEqual({ value: NaN, count: 0 });
  });

  it('says Infinity when the quantile is past the last finite bound', () => {
    const before = new Map([
      [1, 0],
      [Infinity, 0],
    ]);
    const after = new Map([
      [1, 1],
      [Infinity, 10],
    ]);
    expect(quantileBetween(before, after, 0.99).value).toBe(Infinity);
  });

  it('sums counter series matching the labels', () => {
    const text = exposition({});
    expect(counterValue(text, 'tally_rollups_total', { namespace: 'a' })).toBe(7);
    expect(counterValue(text, 'tally_rollups_total', { result: 'rolled' })).toBe(6);
    expect(counterValue(text, 'process_resident_memory_bytes')).toBe(1024);
    expect(counterValue(text, 'missing')).toBe(0);
  });
});

describe('countAfter and slope', () => {
  it('counts sorted times after t', () => {
    const times = [1, 2, 2, 3, 5];
    expect(countAfter(times, 0)).toBe(5);
    expect(countAfter(times, 2)).toBe(2);
    expect(countAfter(times, 5)).toBe(0);
    expect(countAfter([], 1)).toBe(0);
  });

  it('fits a least-squares slope', () => {
    expect(
      slope([
        [0, 1],
        [10, 21],
        [20, 41],
      ]),
    ).toBeCloseTo(2);
    expect(slope([[1, 1]])).toBeNaN();
  });
});
