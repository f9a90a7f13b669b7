import { resolveCounterNamespace } from '../../api/resolve';
import { MemoryCounterStore } from '../storage/memory-store';
import { ClockUntrustedError } from '../errors';
import { sweep } from './sweeper';

const config = resolveCounterNamespace({
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'CounterNamespace',
  metadata: { name: 's' },
  spec: { counterType: 'Eventual', eventStorage: { acceptLimitSeconds: 5 }, rollup: { settleMarginMs: 1000 } },
});
const NOW = 1_800_000_000_000;
const trusted = { assertWithin: () => undefined };
const opts = (concurrency: number) => ({ concurrency, clock: trusted, requestTimeoutMs: 500, now: () => NOW });
const OLD = NOW - 60_000;

/** `n` counters, each with one event of delta 1 long before the horizon; `rolled` of them already rolled up. */
async function counters(memory: MemoryCounterStore, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `c${i}`);
  for (const [i, counter] of names.entries()) {
    await memory.widenBounds(counter, { firstWriteMs: OLD + i, lastWriteMs: OLD + i });
    await memory.insertEvent({ counter, eventTimeMs: OLD + i, eventId: 'e', kind: 'add', delta: 1 });
  }
  return names;
}

describe('sweep', () => {
  it('rolls up every counter behind its checkpoint and skips the others', async () => {
    const memory = new MemoryCounterStore(config);
    const names = await counters(memory, 6);
    await memory.writeCheckpoint('c0', { count: 1, timeMs: OLD + 10 });
    await memory.writeCheckpoint('c1', { count: 1, timeMs: OLD + 10 });
    const summary = await sweep(memory.store, undefined, opts(2));
    expect(summary).toMatchObject({
      namespace: 's',
      scanned: 6,
      behind: 4,
      rolled: 4,
      current: 0,
      failed: 0,
      eventsRead: 4,
      errors: [],
    });
    for (const counter of names) expect(memory.table.get(counter)?.checkpoint?.count).toBe(1);
    expect(memory.callsOf('readRow')).toHaveLength(4);
  });

  it('never runs more rollups at once than its concurrency, and waits for the last of them', async () => {
    const memory = new MemoryCounterStore(config);
    await counters(memory, 10);
    let running = 0;
    let peak = 0;
    memory.before.readRow = async () => {
      peak = Math.max(peak, ++running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
    };
    const summary = await sweep(memory.store, undefined, opts(3));
    expect(peak).toBe(3);
    expect(running).toBe(0);
    expect(summary.rolled).toBe(10);
  });

  it('counts the failures, names the first ten, and carries on', async () => {
    const memory = new MemoryCounterStore(config);
    await counters(memory, 14);
    let reads = 0;
    memory.before.readRow = () => {
      if (++reads <= 12) throw new Error('read timed out');
    };
    const summary = await sweep(memory.store, undefined, opts(4));
    expect(summary).toMatchObject({ scanned: 14, behind: 14, failed: 12, rolled: 2 });
    expect(summary.errors).toHaveLength(10);
    expect(summary.errors[0]).toMatch(/^c\d+: read timed out$/);
  });

  it('tries a rollup that timed out again, twice, and counts what still fails', async () => {
    const memory = new MemoryCounterStore(config);
    await counters(memory, 3);
    const timedOut = (): Error => Object.assign(new Error('timed out'), { name: 'OperationTimedOutError' });
    // c0 times out once, c1 twice, c2 on every attempt.
    const attempts = new Map<string, number>();
    const readRow = memory.store.readRow.bind(memory.store);
    memory.store.readRow = (counter: string) => {
      const n = (attempts.get(counter) ?? 0) + 1;
      attempts.set(counter, n);
      if (n <= { c0: 1, c1: 2, c2: 99 }[counter]!) return Promise.reject(timedOut());
      return readRow(counter);
    };
    const summary = await sweep(memory.store, undefined, opts(3));
    expect(summary).toMatchObject({ behind: 3, rolled: 2, failed: 1, retried: 1 + 2 + 2 });
    expect(Object.fromEntries(attempts)).toEqual({ c0: 2, c1: 3, c2: 3 });
    expect(summary.errors).toEqual(['c2: timed out']);
  });

  it('writes no checkpoint while the clock guard holds them, before or during the scan', async () => {
    const memory = new MemoryCounterStore(config);
    await counters(memory, 6);
    const held = {
      assertWithin: (boundMs: number) => {
        // (settle margin 1000 − request timeout 500) / 2
        expect(boundMs).toBe(250);
        throw new ClockUntrustedError('writing checkpoints is held');
      },
    };
    await expect(sweep(memory.store, undefined, { ...opts(2), clock: held })).rejects.toThrow(ClockUntrustedError);
    let asked = 0;
    const holdsAfterTwo = { assertWithin: () => void (++asked > 3 && held.assertWithin(250)) };
    const summary = await sweep(memory.store, undefined, { ...opts(1), clock: holdsAfterTwo });
    expect(summary).toMatchObject({ scanned: 6, rolled: 2, failed: 4 });
    expect(summary.errors[0]).toMatch(/writing checkpoints is held/);
    expect(memory.callsOf('writeCheckpoint')).toHaveLength(2);
  });
});
