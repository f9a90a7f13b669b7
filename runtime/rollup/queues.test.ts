import { ApiError } from '../counter/errors';
import { RollupQueues, type RollupQueueOptions } from './queues';

const opts = (o: Partial<RollupQueueOptions> = {}): RollupQueueOptions => ({
  queues: 4,
  capacity: 100,
  batchSize: 8,
  concurrency: 2,
  coalesceMs: 0,
  ...o,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('RollupQueues', () => {
  let queues: RollupQueues | undefined;
  afterEach(async () => queues?.stop());

  it('rolls each triggered counter up, once per burst of triggers', async () => {
    const runs: string[] = [];
    queues = new RollupQueues(opts(), async (c) => void runs.push(c));
    const at = Date.now() + 50;
    for (let i = 0; i < 5; i++) for (const c of ['a', 'b', 'c']) queues.trigger(c, at);
    expect(queues.depth).toBe(3);
    queues.start();
    await until(() => runs.length === 3);
    await sleep(100);
    expect(runs.sort()).toEqual(['a', 'b', 'c']);
  });

  it('waits until notBefore', async () => {
    let ranAt = 0;
    queues = new RollupQueues(opts(), async () => void (ranAt = Date.now()));
    queues.start();
    const asked = Date.now();
    queues.trigger('x', asked + 150);
    await until(() => ranAt > 0);
    expect(ranAt - asked).toBeGreaterThanOrEqual(140);
  });

  it('coalesces: a counter rolled up recently waits out the window', async () => {
    const times: number[] = [];
    queues = new RollupQueues(opts({ coalesceMs: 200 }), async () => void times.push(Date.now()));
    queues.start();
    queues.trigger('x');
    await until(() => times.length === 1);
    queues.trigger('x');
    await until(() => times.length === 2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(190);
  });

  it('drops triggers beyond capacity and counts them', () => {
    const dropped: string[] = [];
    queues = new RollupQueues(opts({ capacity: 16 }), async () => undefined, { onDrop: (c) => dropped.push(c) });
    for (let i = 0; i < 20; i++) queues.trigger(`c${i}`);
    expect(queues.depth).toBe(16);
    expect(queues.dropped).toBe(4);
    expect(dropped).toEqual(['c16', 'c17', 'c18', 'c19']);
  });

  it('never runs more rollups at once than the concurrency bound', async () => {
    let inFlight = 0;
    let peak = 0;
    let done = 0;
    queues = new RollupQueues(opts({ concurrency: 3, batchSize: 10 }), async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await sleep(20);
      inFlight--;
      done++;
    });
    for (let i = 0; i < 40; i++) queues.trigger(`c${i}`);
    queues.start();
    await until(() => done === 40);
    expect(peak).toBe(3);
  });

  it('retries a failed rollup later and reports the error', async () => {
    let attempts = 0;
    const errors: unknown[] = [];
    queues = new RollupQueues(
      opts(),
      async () => {
        attempts++;
        if (attempts === 1) throw new Error('cassandra down');
      },
      { onError: (_c, e) => errors.push(e) },
    );
    queues.start();
    queues.trigger('x');
    await until(() => attempts === 2, 4000);
    expect(errors).toHaveLength(1);
  });

  it('rolls up again for a write due after the queued rollup, once per coalesce window', async () => {
    const runs: number[] = [];
    queues = new RollupQueues(opts({ coalesceMs: 100 }), async () => void runs.push(Date.now()));
    const t0 = Date.now();
    queues.trigger('a', t0 + 50);
    // Two later writes while the first rollup is still queued: one follow-up at the latest of them covers both.
    queues.trigger('a', t0 + 80);
    queues.trigger('a', t0 + 120);
    expect(queues.depth).toBe(1);
    queues.start();
    await until(() => runs.length === 2);
    await sleep(200);
    expect(runs).toHaveLength(2);
    expect(runs[0]! - t0).toBeGreaterThanOrEqual(50);
    expect(runs[1]! - t0).toBeGreaterThanOrEqual(120);
    // The follow-up still waits out the coalesce window after the first rollup.
    expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(100);
  });

  it('does not retry a rollup that failed with a client error (a count out of range) until triggered again', async () => {
    let runs = 0;
    queues = new RollupQueues(opts(), async () => {
      runs++;
      throw new ApiError(409, 'COUNT_OUT_OF_RANGE', 'out of range');
    });
    queues.start();
    queues.trigger('a');
    await until(() => runs === 1);
    await sleep(1300);
    expect(runs).toBe(1);
    expect(queues.depth).toBe(0);
  });
});
