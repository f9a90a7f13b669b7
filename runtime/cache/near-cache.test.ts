import { NearCache, entryBytes } from './near-cache';

const cp = (count: number, timeMs = 1000) => ({ count, timeMs });

describe('the near cache', () => {
  it('keeps at most `entries` checkpoints, dropping the least recently used', () => {
    const near = new NearCache({ entries: 2, bytes: 1 << 20 });
    near.put('a', cp(1), 60_000);
    near.put('b', cp(2), 60_000);
    near.get('a');
    near.put('c', cp(3), 60_000);
    expect(near.size).toBe(2);
    expect(near.get('b')).toBeUndefined();
    expect(near.get('a')).toEqual(cp(1));
    expect(near.get('c')).toEqual(cp(3));
  });

  it('keeps at most about `bytes` of them', () => {
    const key = (i: number) => `ns\u0000counter-${i}`;
    const near = new NearCache({ entries: 1000, bytes: entryBytes(key(0)) * 3 });
    for (let i = 0; i < 10; i++) near.put(key(i), cp(i), 60_000);
    expect(near.size).toBe(3);
    expect(near.get(key(9))).toEqual(cp(9));
  });

  it('expires each entry after its own ttl (each namespace its own staleness)', () => {
    // lru-cache takes a start time of 0 for "no ttl": the clock starts later.
    const clock = { now: 10_000 };
    const near = new NearCache({ entries: 10, bytes: 1 << 20 }, () => clock.now);
    near.put('short', cp(1), 1000);
    near.put('long', cp(2), 5000);
    clock.now = 10_999;
    expect(near.get('short')).toEqual(cp(1));
    clock.now = 11_001;
    expect(near.get('short')).toBeUndefined();
    expect(near.get('long')).toEqual(cp(2));
    clock.now = 15_001;
    expect(near.get('long')).toBeUndefined();
  });

  it('never replaces a checkpoint with an older one', () => {
    const near = new NearCache({ entries: 10, bytes: 1 << 20 });
    near.put('c', cp(5, 2000), 60_000);
    near.put('c', cp(4, 1000), 60_000);
    expect(near.get('c')).toEqual(cp(5, 2000));
    near.put('c', cp(6, 3000), 60_000);
    expect(near.get('c')).toEqual(cp(6, 3000));
  });

  it('is off with 0 entries or 0 bytes, and stores nothing with a ttl of 0', () => {
    for (const limits of [
      { entries: 0, bytes: 1 << 20 },
      { entries: 10, bytes: 0 },
    ]) {
      const near = new NearCache(limits);
      expect(near.enabled).toBe(false);
      near.put('c', cp(1), 60_000);
      expect(near.get('c')).toBeUndefined();
    }
    const near = new NearCache({ entries: 10, bytes: 1 << 20 });
    near.put('c', cp(1), 0);
    expect(near.get('c')).toBeUndefined();
  });
});
