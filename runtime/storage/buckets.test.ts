import { eventBucket, fnv1a, timeBucket, timeBucketsBetween } from './buckets';

describe('buckets', () => {
  it('puts events in time buckets by their time', () => {
    expect(timeBucket(0, 600)).toBe(0);
    expect(timeBucket(599_999, 600)).toBe(0);
    expect(timeBucket(600_000, 600)).toBe(1);
  });
  it('lists the buckets of a half-open window (from, to]', () => {
    expect(timeBucketsBetween(599_999, 600_000, 600)).toEqual([1]);
    expect(timeBucketsBetween(0, 1_800_000, 600)).toEqual([0, 1, 2, 3]);
    expect(timeBucketsBetween(10, 10, 600)).toEqual([]);
  });
  it('spreads tokens over every event bucket, deterministically', () => {
    expect(fnv1a('a')).toBe(0xe40c292c);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(eventBucket(`token-${i}`, 4));
    expect([...seen].sort()).toEqual([0, 1, 2, 3]);
    expect(eventBucket('same', 8)).toBe(eventBucket('same', 8));
  });
});
