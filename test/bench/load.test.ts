import { closedLoop, openLoop } from './load';

describe('openLoop', () => {
  it('keeps to the offered rate and counts latency from when a request was due (no coordinated omission)', async () => {
    // 200 requests a second for 1 s, each answered in about 10 ms; at request 50 the process stalls for 600 ms
    // (the loop blocked), so the ~120 requests due meanwhile, most of them, go out late.
    const sent: number[] = [];
    const result = await openLoop({ rate: 200, seconds: 1, warmupSeconds: 0 }, async (i) => {
      sent.push(Date.now());
      if (i === 50) for (const until = Date.now() + 600; Date.now() < until;);
      await new Promise((r) => setTimeout(r, 10));
    });
    expect([result.requests, result.errors]).toEqual([200, 0]);
    // The schedule went on: the last request was sent about 1 s after the first, not 1.6 s.
    expect(sent.at(-1)! - sent[0]!).toBeLessThan(1300);
    // Measured from when they were due, most requests show the stall; from when they were sent, most would take
    // 10 ms (a closed loop, or a clock started at sending, hides it).
    expect(result.p50Ms).toBeGreaterThan(100);
  });
});

describe('closedLoop', () => {
  it('keeps the latency of every measured request, sorted, for the latency distributions', async () => {
    const result = await closedLoop({ concurrency: 4, seconds: 0.3, warmupSeconds: 0.1 }, async (loop) => {
      await new Promise((r) => setTimeout(r, 5 + loop * 5));
    });
    expect(result.latenciesMs).toHaveLength(result.requests);
    expect(result.requests).toBeGreaterThan(10);
    expect(result.latenciesMs).toEqual([...result.latenciesMs].sort((a, b) => a - b));
    expect(result.latenciesMs[0]).toBeGreaterThanOrEqual(3);
    expect(result.latenciesMs.at(-1)).toBeGreaterThanOrEqual(15);
    expect(result.p99Ms).toBe(result.latenciesMs[Math.floor(0.99 * result.requests)]);
  });
});
