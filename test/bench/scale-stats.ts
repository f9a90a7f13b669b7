/** The scale bench's pure arithmetic: sizes from the environment, percentiles over time windows, histogram deltas. */

const SUFFIXES: Record<string, number> = { '': 1, k: 1e3, m: 1e6 };

/**
 * A list of sizes such as `1000,100K,1M` (K and M are thousands and millions, either case): positive integers, in
 * the order given, without repeats. Throws on anything else, naming the variable, rather than guessing.
 */
export function parseSizes(text: string, name: string): number[] {
  const sizes: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$/.exec(part);
    if (!m) throw new Error(`${name}: "${part.trim()}" is not a size (e.g. 1000, 100K, 1M)`);
    const n = Number(m[1]) * SUFFIXES[m[2]!.toLowerCase()]!;
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: "${part.trim()}" is not a positive whole number`);
    if (!sizes.includes(n)) sizes.push(n);
  }
  return sizes;
}

/** A whole number of seconds or a size from the environment, with its default; refuses anything else. */
export function sizeFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value.trim() === '') return fallback;
  const sizes = parseSizes(value, name);
  if (sizes.length !== 1) throw new Error(`${name}: one size expected, got ${value}`);
  return sizes[0]!;
}

/** The nearest-rank p-quantile (0 < p <= 1) of values, which it does not change; NaN for none. */
export function quantile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** A measurement at a time: [ms since the start, value]. */
export type Sample = readonly [number, number];

/**
 * The p-quantile of the samples' values in each bin of `width` along x from 0: one point per bin that holds samples,
 * at the bin's end.
 */
export function binQuantiles(samples: readonly Sample[], width: number, p: number): [number, number][] {
  const bins = new Map<number, number[]>();
  for (const [x, v] of samples) {
    const b = Math.floor(x / width);
    let list = bins.get(b);
    if (!list) bins.set(b, (list = []));
    list.push(v);
  }
  return [...bins.entries()].sort(([a], [b]) => a - b).map(([b, vs]) => [(b + 1) * width, quantile(vs, p)]);
}

/**
 * The p-quantile of samples [ms, value] in each window of `windowMs` from 0, at the window's end in seconds, so a
 * curve shows how the value moved over the run.
 */
export function windowQuantiles(samples: readonly Sample[], windowMs: number, p: number): [number, number][] {
  return binQuantiles(samples, windowMs, p).map(([end, q]) => [end / 1000, q]);
}

/** A Prometheus histogram's cumulative buckets (le -> count) for one metric and label set. */
export type Buckets = Map<number, number>;

/**
 * The cumulative buckets of histogram `name` in a Prometheus text exposition, for the series whose labels include
 * every one in `labels` (summed over the others).
 */
export function histogramBuckets(text: string, name: string, labels: Record<string, string> = {}): Buckets {
  const out: Buckets = new Map();
  const prefix = `${name}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const close = line.lastIndexOf('}');
    const body = line.slice(prefix.length, close);
    const found: Record<string, string> = {};
    for (const m of body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[m[1]!] = m[2]!;
    if (!Object.entries(labels).every(([k, v]) => found[k] === v) || found.le === undefined) continue;
    const le = found.le === '+Inf' ? Infinity : Number(found.le);
    const count = Number(
      line
        .slice(close + 1)
        .trim()
        .split(/\s+/)[0],
    );
    out.set(le, (out.get(le) ?? 0) + count);
  }
  return out;
}

/**
 * The p-quantile of what a histogram observed between two scrapes, as the upper bound of the bucket it falls in
 * (Infinity past the last finite bound), and how many observations there were; NaN when there were none.
 */
export function quantileBetween(before: Buckets, after: Buckets, p: number): { value: number; count: number } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const delta = bounds.map((le) => [le, (after.get(le) ?? 0) - (before.get(le) ?? 0)] as const);
  const count = delta.at(-1)?.[1] ?? 0;
  if (count <= 0) return { value: NaN, count: 0 };
  const found = delta.find(([, n]) => n >= p * count);
  return { value: found?.[0] ?? Infinity, count };
}

/** The counter values of `name` in a Prometheus text exposition whose labels include `labels`, summed. */
export function counterValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const close = line.lastIndexOf('}');
    const body = close > 0 ? line.slice(name.length + 1, close) : '';
    const found: Record<string, string> = {};
    for (const m of body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[m[1]!] = m[2]!;
    if (!Object.entries(labels).every(([k, v]) => found[k] === v)) continue;
    sum += Number(
      line
        .slice(close > 0 ? close + 1 : name.length)
        .trim()
        .split(/\s+/)[0],
    );
  }
  return sum;
}

/** How many of the sorted times are greater than t (binary search). */
export function countAfter(sortedTimes: readonly number[], t: number): number {
  let lo = 0;
  let hi = sortedTimes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sortedTimes[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return sortedTimes.length - lo;
}

/** Least-squares slope of y over x: how fast a value grows with the work (e.g. MiB per 1,000 counters). */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}
