import { CountOutOfRangeError, UnavailableError } from '../errors';
import { RollupQueues, type RollupQueueOptions } from './queues';

const opts = (o: Partial<RollupQueueOptions> = {}): RollupQueueOptions => ({
  queues: 4,
  capacity: 100,
  batchSize: 8,
  concurrency: 2,
  coalesceMs: 0,
  ...o,
});

// A fake clock: jest's timers stand in for setTimeout and Date, and the queues read the same clock through `now`.
const now = (): number => Date.now();
const T0 = 1_800_000_000_000;
const advance = (ms: number) => jest.advanceTimersByTimeAsync(ms);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RollupQueues', () => {
  let queues: RollupQueues | undefined;
  beforeEach(() => jest.useFakeTimers({ now: T0 }));
  afterEach(async () => {
    await queues?.stop();
    queues = undefined;
    jest.useRealTimers();
  });

  it('rolls each triggered counter up, once per burst of triggers', async () => {
    const runs: string[] = [];
    queues = new RollupQueues(opts(), async (c) => void runs.push(c), {}, now);
    for (let i = 0; i < 5; i++) for (const c of ['a', 'b', 'c']) queues.trigger(c, T0 + 50);
    expect(queues.depth).toBe(3);
    queues.start();
    await advance(49);
    expect(runs).toEqual([]);
    await advance(1);
    expect(runs.sort()).toEqual(['a', 'b', 'c']);
    await advance(1000);
    expect(runs).toHaveLength(3);
    expect(queues.depth).toBe(0);
  });

  it('waits until notBefore', async () => {
    const ranAt: number[] = [];
    queues = new RollupQueues(opts(), async () => void ranAt.push(now()), {}, now);
    queues.start();
    queues.trigger('x', T0 + 150);
    await advance(149);
    expect(ranAt).toEqual([]);
    await advance(1);
    expect(ranAt).toEqual([T0 + 150]);
  });

  it('coalesces: a counter rolled up recently waits out the window', async () => {
    const times: number[] = [];
    queues = new RollupQueues(opts({ coalesceMs: 200 }), async () => void times.push(now()), {}, now);
    queues.start();
    queues.trigger('x');
    await advance(0);
    expect(times).toEqual([T0]);
    queues.trigger('x');
    await advance(199);
    expect(times).toEqual([T0]);
    await advance(1);
    expect(times).toEqual([T0, T0 + 200]);
  });

  it('drops triggers beyond capacity and counts them', () => {
    const dropped: string[] = [];
    queues = new RollupQueues(opts({ capacity: 16 }), async () => undefined, { onDrop: (c) => dropped.push(c) }, now);
    for (let i = 0; i < 20; i++) expect(queues.trigger(`c${i}`)).toBe(i < 16);
    expect(queues.depth).toBe(16);
    expect(queues.dropped).toBe(4);
    expect(dropped).toEqual(['c16', 'c17', 'c18', 'c19']);
  });

  it('never runs more rollups at once than the concurrency bound', async () => {
    let inFlight = 0;
    let peak = 0;
    let done = 0;
    queues = new RollupQueues(
      opts({ concurrency: 3, batchSize: 10 }),
      async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await sleep(20);
        inFlight--;
        done++;
      },
      {},
      now,
    );
    for (let i = 0; i < 40; i++) queues.trigger(`c${i}`);
    queues.start();
    // 40 rollups of 20 ms, 3 at a time: 14 rounds.
    await advance(14 * 20 - 1);
    expect(done).toBe(39);
    await advance(1);
    expect(done).toBe(40);
    expect(peak).toBe(3);
  });

  it('retries a failed rollup a second later and reports the error', async () => {
    const attempts: number[] = [];
    const errors: unknown[] = [];
    queues = new RollupQueues(
      opts(),
      async () => {
        attempts.push(now());
        if (attempts.length === 1) throw new Error('cassandra down');
      },
      { onError: (_c, e) => errors.push(e) },
      now,
    );
    queues.start();
    queues.trigger('x');
    await advance(999);
    expect(attempts).toEqual([T0]);
    expect(errors).toEqual([new Error('cassandra down')]);
    await advance(1);
    expect(attempts).toEqual([T0, T0 + 1000]);
    await advance(5000);
    expect(attempts).toHaveLength(2);
  });

  it('rolls up again for a write due after the queued rollup, once per coalesce window', async () => {
    const runs: number[] = [];
    queues = new RollupQueues(opts({ coalesceMs: 100 }), async () => void runs.push(now()), {}, now);
    queues.trigger('a', T0 + 50);
    // Two later writes while the first rollup is still queued: one follow-up at the latest of them covers both.
    queues.trigger('a', T0 + 80);
    queues.trigger('a', T0 + 120);
    expect(queues.depth).toBe(1);
    queues.start();
    await advance(50);
    expect(runs).toEqual([T0 + 50]);
    // The follow-up is due at 120 but still waits out the coalesce window after the first rollup.
    await advance(99);
    expect(runs).toEqual([T0 + 50]);
    await advance(1);
    expect(runs).toEqual([T0 + 50, T0 + 150]);
    await advance(1000);
    expect(runs).toHaveLength(2);
  });

  it('does not retry a rollup that failed with an error that is not retryable (a count out of range)', async () => {
    let runs = 0;
    queues = new RollupQueues(
      opts(),
      async () => {
        runs++;
        throw new CountOutOfRangeError('a', 2n ** 60n);
      },
      {},
      now,
    );
    queues.start();
    queues.trigger('a');
    await advance(0);
    expect(runs).toBe(1);
    await advance(5000);
    expect(runs).toBe(1);
    expect(queues.depth).toBe(0);
    // Until triggered again (the counter's next write or read).
    queues.trigger('a');
    await advance(0);
    expect(runs).toBe(2);
  });

  it('retries a rollup that failed with a retryable domain error (unavailable)', async () => {
    let runs = 0;
    queues = new RollupQueues(
      opts(),
      async () => {
        if (++runs === 1) throw new UnavailableError('Cassandra is unavailable');
      },
      {},
      now,
    );
    queues.start();
    queues.trigger('a');
    await advance(1000);
    expect(runs).toBe(2);
  });
});

describe('RollupQueues.stop', () => {
  beforeEach(() => jest.useFakeTimers({ now: T0 }));
  afterEach(() => jest.useRealTimers());

  it('runs every due rollup once, within the concurrency bound, and drops the ones not due yet', async () => {
    const runs: string[] = [];
    let inFlight = 0;
    let peak = 0;
    const queues = new RollupQueues(
      opts({ concurrency: 2 }),
      async (c) => {
        peak = Math.max(peak, ++inFlight);
        await Promise.resolve();
        inFlight--;
        runs.push(c);
      },
      {},
      now,
    );
    for (const c of ['a', 'b', 'c', 'd']) queues.trigger(c, T0 - 10);
    queues.trigger('later', T0 + 5000);
    expect(await queues.stop()).toEqual({ flushed: 4, failed: 0, dropped: 1 });
    expect(runs.sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(peak).toBe(2);
    expect(queues.depth).toBe(0);
    await advance(10_000);
    expect(runs).toHaveLength(4);
  });

  it('reports a rollup that fails during the flush and does not retry it', async () => {
    const runs: string[] = [];
    const errors: string[] = [];
    const queues = new RollupQueues(
      opts(),
      async (c) => {
        runs.push(c);
        if (c === 'bad') throw new Error('cassandra down');
      },
      { onError: (c) => errors.push(c) },
      now,
    );
    queues.start();
    await advance(0);
    queues.trigger('bad');
    queues.trigger('good');
    expect(await queues.stop()).toEqual({ flushed: 2, failed: 1, dropped: 0 });
    expect(errors).toEqual(['bad']);
    expect(queues.depth).toBe(0);
    queues.start();
    await advance(5000);
    expect(runs.sort()).toEqual(['bad', 'good']);
    await queues.stop();
  });
});
