import * as fs from 'node:fs';
import { messageOf } from '../../lib/errors';

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  /** The latency (ms) of every measured request, sorted: what the report's latency distributions are drawn from. */
  latenciesMs: number[];
  firstError?: string;
}

/** The p50, p99 and p99.9 of latencies (ms), and the latencies, sorted (in place). */
function percentiles(latencies: number[]): Pick<LoadResult, 'p50Ms' | 'p99Ms' | 'p999Ms' | 'latenciesMs'> {
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { p50Ms: pct(0.5), p99Ms: pct(0.99), p999Ms: pct(0.999), latenciesMs: latencies };
}

/** Closed-loop load: `concurrency` loops each send one request at a time for `seconds`, after a warm-up. */
export async function closedLoop(
  opts: { concurrency: number; seconds: number; warmupSeconds: number },
  request: (loop: number, i: number) => Promise<void>,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let measuring = false;
  let stop = false;
  const loops = Array.from({ length: opts.concurrency }, async (_, loop) => {
    for (let i = 0; !stop; i++) {
      const t0 = process.hrtime.bigint();
      try {
        await request(loop, i);
        if (measuring) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (err) {
        if (measuring) {
          errors++;
          firstError ??= messageOf(err);
        }
      }
    }
  });
  await new Promise((r) => setTimeout(r, opts.warmupSeconds * 1000));
  measuring = true;
  const started = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, opts.seconds * 1000));
  measuring = false;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  stop = true;
  await Promise.all(loops);
  return {
    requests: latencies.length,
    errors,
    seconds,
    throughput: latencies.length / seconds,
    ...percentiles(latencies),
    ...(firstError ? { firstError } : {}),
  };
}

/** Requests in flight beyond which an open loop counts a request as failed instead of sending it. */
const OPEN_LOOP_MAX_IN_FLIGHT = 4096;

/**
 * Open-loop load, as users arrive: `rate` requests a second sent on a fixed schedule whatever the answers do, each
 * one's latency measured from when it was due (not when it could be sent), so a stall shows in the percentiles
 * instead of silently lowering the load (coordinated omission). After `warmupSeconds` of the same load.
 */
export async function openLoop(
  opts: { rate: number; seconds: number; warmupSeconds: number },
  request: (i: number) => Promise<void>,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const total = Math.round(opts.rate * (opts.warmupSeconds + opts.seconds));
  const warm = Math.round(opts.rate * opts.warmupSeconds);
  const start = process.hrtime.bigint();
  const dueNs = (i: number): bigint => start + BigInt(Math.round((i * 1e9) / opts.rate));
  for (let i = 0; i < total; i++) {
    const wait = Number(dueNs(i) - process.hrtime.bigint()) / 1e6;
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const measured = i >= warm;
    if (inFlight >= OPEN_LOOP_MAX_IN_FLIGHT) {
      if (measured) {
        errors++;
        firstError ??= `more than ${OPEN_LOOP_MAX_IN_FLIGHT} requests in flight`;
      }
      continue;
    }
    const due = dueNs(i);
    inFlight++;
    const p = request(i).then(
      () => {
        if (measured) latencies.push(Number(process.hrtime.bigint() - due) / 1e6);
      },
      (err: unknown) => {
        if (measured) {
          errors++;
          firstError ??= messageOf(err);
        }
      },
    );
    const tracked = p.finally(() => {
      inFlight--;
      pending.delete(tracked);
    });
    pending.add(tracked);
  }
  await Promise.all(pending);
  const seconds = Number(process.hrtime.bigint() - dueNs(warm)) / 1e9;
  return {
    requests: latencies.length,
    errors,
    seconds,
    throughput: latencies.length / seconds,
    ...percentiles(latencies),
    ...(firstError ? { firstError } : {}),
  };
}

/** Resident memory of a process in MiB, from /proc. */
export function rssMiB(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return kb / 1024;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Unmeasured rounds per side before the measured ones (BENCH_WARMUP_ROUNDS). */
export const WARMUP_ROUNDS = Number(process.env.BENCH_WARMUP_ROUNDS ?? 3);

export interface RoundsResult extends LoadResult {
  /** Every round's throughput, in order. */
  rounds: number[];
  /** CPU microseconds per request of each watched process, over all rounds. */
  cpuPerOp: Record<string, number>;
}

/**
 * After warm-up rounds, runs the workload and its baseline in alternating rounds (W B W B ...), so slow phases of a noisy machine (a
 * compaction, another process) hit both alike, and reports per side the round with the median throughput.
 */
export async function alternate(
  rounds: number,
  sides: { name: string; run: () => Promise<LoadResult>; watch: Record<string, number> }[],
): Promise<RoundsResult[]> {
  interface Side {
    runs: LoadResult[];
    cpu: Record<string, number>;
  }
  const results: Side[] = sides.map(() => ({ runs: [], cpu: {} }));
  // Unmeasured rounds first, alternating like the measured ones: the JIT of every process involved (Cassandra's most
  // of all, which needs tens of seconds after a start) warms up on both statements before either side is measured,
  // instead of in whichever side runs first. One short round was not enough: a run reported 1.04x for AddCount
  // against a Cassandra still warming up.
  for (let w = 1; w <= WARMUP_ROUNDS; w++) {
    for (const side of sides) {
      const warm = await side.run();
      process.stderr.write(
        `[bench]   warm-up ${w}/${WARMUP_ROUNDS} ${side.name}: ${Math.round(warm.throughput)}/s (not counted)\n`,
      );
    }
  }
  for (let r = 0; r < rounds; r++) {
    for (const [i, side] of sides.entries()) {
      const before = Object.fromEntries(Object.entries(side.watch).map(([k, pid]) => [k, cpuSeconds(pid)]));
      const result = await side.run();
      for (const [k, pid] of Object.entries(side.watch))
        results[i]!.cpu[k] = (results[i]!.cpu[k] ?? 0) + cpuSeconds(pid) - before[k]!;
      results[i]!.runs.push(result);
      process.stderr.write(
        `[bench]   round ${r + 1}/${rounds} ${side.name}: ${Math.round(result.throughput)}/s, p99 ${result.p99Ms.toFixed(1)} ms\n`,
      );
    }
  }
  return results.map(({ runs, cpu }) => {
    const sorted = [...runs].sort((a, b) => a.throughput - b.throughput);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    // Warm-up requests are not counted in `requests`, so CPU per request is slightly overstated, alike for both sides.
    const total = runs.reduce((n, x) => n + x.requests, 0);
    return {
      ...median,
      rounds: runs.map((x) => x.throughput),
      cpuPerOp: Object.fromEntries(Object.entries(cpu).map(([k, s]) => [k, (s * 1e6) / total])),
    };
  });
}
