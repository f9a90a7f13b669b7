import { acceptDeadline, backoffDelay, nextDelay, parseRetryAfter } from './retry';

describe('backoffDelay', () => {
  const opts = { baseDelayMs: 100, maxDelayMs: 1000 };

  it('doubles the ceiling with each retry, up to the cap', () => {
    const almostOne = () => 0.999999;
    expect([1, 2, 3, 4, 5, 6].map((r) => backoffDelay(r, opts, almostOne))).toEqual([99, 199, 399, 799, 999, 999]);
  });

  it('draws the wait uniformly below the ceiling (full jitter)', () => {
    expect(backoffDelay(3, opts, () => 0)).toBe(0);
    expect(backoffDelay(3, opts, () => 0.5)).toBe(200);
    const draws = Array.from({ length: 1000 }, () => backoffDelay(3, opts));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(400);
    expect(new Set(draws).size).toBeGreaterThan(100);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-02T03:04:05Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('5', now)).toBe(5000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });

  it('reads an HTTP date as the time until it, and a past one as now', () => {
    expect(parseRetryAfter('Fri, 02 Jan 2026 03:04:07 GMT', now)).toBe(2000);
    expect(parseRetryAfter('Fri, 02 Jan 2026 03:00:00 GMT', now)).toBe(0);
  });

  it('ignores what is not a Retry-After', () => {
    for (const bad of [null, undefined, '', '-1', '1.5', 'soon', '2026-01-02T03:04:07Z'])
      expect(parseRetryAfter(bad, now)).toBeUndefined();
  });
});

describe('acceptDeadline', () => {
  it('is the generation time plus the accept limit, less the margin', () => {
    expect(acceptDeadline(10_000, 5, 1000)).toBe(14_000);
  });

  it('keeps at least half of a short window', () => {
    expect(acceptDeadline(10_000, 1, 1000)).toBe(10_500);
  });
});

describe('nextDelay', () => {
  it('waits for Retry-After when it is longer than the backoff, else the backoff', () => {
    expect(nextDelay(150, 2000)).toBe(2000);
    expect(nextDelay(150, 0)).toBe(150);
    expect(nextDelay(150, undefined)).toBe(150);
  });
});
