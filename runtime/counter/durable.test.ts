import pino from 'pino';
import { resolveCounterNamespace } from '../../api/resolve';
import { ClockUntrustedError, EventTimeRefusedError, UnavailableError } from '../errors';
import { createRuntimeMetrics } from '../observability/metrics';
import { MemoryCounterStore } from '../storage/memory-store';
import { AccurateCounters } from './accurate';
import { BOUND_GRAIN_MS } from './write-bounds';

/** What Eventual and Accurate share (durable.ts), through Accurate, against an in-memory store and a fake clock. */
const config = resolveCounterNamespace({
  apiVersion: 'tally.dev/v1alpha1',
  kind: 'CounterNamespace',
  metadata: { name: 'd' },
  spec: {
    counterType: 'Accurate',
    eventStorage: { acceptLimitSeconds: 5, maxFutureSkewSeconds: 2 },
    rollup: { settleMarginMs: 1500 },
  },
});
const NOW = 1_800_000_000_000;
const token = (t = NOW, id = `t${t}`) => ({ token: id, generationTimeMs: t });

/** A clock guard whose verdict the test sets, recording the bounds it was asked about. */
function fakeTrust() {
  const trust = {
    trusted: true,
    asked: [] as { boundMs: number; doing: string }[],
    assertWithin(boundMs: number, _namespace: string, doing: string) {
      trust.asked.push({ boundMs, doing });
      if (!trust.trusted) throw new ClockUntrustedError(`${doing} is held`);
    },
  };
  return trust;
}

function setup() {
  const memory = new MemoryCounterStore(config);
  const clock = { now: NOW };
  const trust = fakeTrust();
  const counters = new AccurateCounters({
    store: memory.store,
    cache: undefined,
    metrics: createRuntimeMetrics(),
    log: pino({ level: 'silent' }),
    clock: trust,
    requestTimeoutMs: 1000,
    now: () => clock.now,
  });
  return { memory, clock, trust, counters };
}

describe('durable counters (Accurate)', () => {
  let counters: AccurateCounters | undefined;
  afterEach(async () => counters?.close());

  it('writes the bounds, then the event, and answers the exact count', async () => {
    const s = setup();
    counters = s.counters;
    expect(await s.counters.addAndGet({ counter: 'c', delta: 5, token: token(NOW - 100) })).toEqual({
      count: 5,
      asOfMs: NOW,
    });
    expect(s.memory.calls.slice(0, 2).map((c) => c.method)).toEqual(['widenBounds', 'insertEvent']);
    const row = s.memory.table.get('c')!;
    expect(row.firstWriteMs).toBeLessThanOrEqual(NOW - 100);
    expect(row.lastWriteMs).toBeGreaterThanOrEqual(NOW - 100);
    expect(row.lastWriteMs! - row.firstWriteMs!).toBeLessThanOrEqual(BOUND_GRAIN_MS);
  });

  it('accepts no event and writes no checkpoint while the clock guard holds them', async () => {
    const s = setup();
    counters = s.counters;
    await s.counters.queues.stop();
    await s.counters.add({ counter: 'c', delta: 2, token: token(NOW - 4000) });
    s.clock.now = NOW + 3000;
    s.trust.trusted = false;
    await expect(s.counters.add({ counter: 'c', delta: 5, token: token(NOW + 3000) })).rejects.toThrow(
      ClockUntrustedError,
    );
    await expect(s.counters.rollup('c')).rejects.toThrow(ClockUntrustedError);
    expect(s.memory.callsOf('insertEvent')).toHaveLength(1);
    expect(s.memory.callsOf('writeCheckpoint')).toEqual([]);
    // The bound: (settle margin 1500 − request timeout 1000) / 2.
    expect(new Set(s.trust.asked.map((a) => a.boundMs))).toEqual(new Set([250]));
    expect(new Set(s.trust.asked.map((a) => a.doing))).toEqual(new Set(['accepting events', 'writing checkpoints']));

    s.trust.trusted = true;
    expect((await s.counters.rollup('c')).checkpoint).toEqual({ count: 2, timeMs: NOW + 3000 - 6500 });
  });

  it('counts a retried add (same token, same time) once', async () => {
    const s = setup();
    counters = s.counters;
    await s.counters.add({ counter: 'c', delta: 3, token: token(NOW, 'same') });
    await s.counters.add({ counter: 'c', delta: 3, token: token(NOW, 'same') });
    expect(await s.counters.get('c')).toEqual({ count: 3, asOfMs: NOW });
  });

  it('refuses a token time outside the accept window before writing anything', async () => {
    const s = setup();
    counters = s.counters;
    const old = s.counters.add({ counter: 'c', delta: 1, token: token(NOW - 5001) });
    await expect(old).rejects.toBeInstanceOf(EventTimeRefusedError);
    await expect(old).rejects.toThrow(
      `idempotency_token.generation_time ${new Date(NOW - 5001).toISOString()} is outside the accepted window ` +
        `[${new Date(NOW - 5000).toISOString()}, ${new Date(NOW + 2000).toISOString()}] (namespace d accepts events up to 5 s old and 2 s ahead)`,
    );
    await expect(s.counters.clear({ counter: 'c', token: token(NOW + 2001) })).rejects.toBeInstanceOf(
      EventTimeRefusedError,
    );
    expect(s.memory.calls).toEqual([]);
    // The window's edges are in it.
    await s.counters.add({ counter: 'c', delta: 1, token: token(NOW - 5000) });
    await s.counters.add({ counter: 'c', delta: 1, token: token(NOW + 2000) });
    expect(s.memory.events.size).toBe(2);
  });

  it('refuses to insert an event that waited past the accept limit for its bounds: unavailable, nothing inserted', async () => {
    const s = setup();
    counters = s.counters;
    s.memory.before.widenBounds = () => void (s.clock.now += 5001);
    const late = s.counters.add({ counter: 'c', delta: 1, token: token(NOW) });
    await expect(late).rejects.toBeInstanceOf(UnavailableError);
    await expect(late).rejects.toThrow(/waited past the namespace's accept limit before it could be written/);
    expect(s.memory.events.size).toBe(0);
  });

  it('answers unavailable, keeping the cause, when Cassandra is down or slow; other errors pass unchanged', async () => {
    const s = setup();
    counters = s.counters;
    const down = Object.assign(new Error('All host(s) tried for query failed'), { name: 'NoHostAvailableError' });
    s.memory.failNext('insertEvent', down);
    const err: unknown = await s.counters.add({ counter: 'c', delta: 1, token: token() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err).toMatchObject({
      message: 'Cassandra is unavailable while recording an event of c: All host(s) tried for query failed',
      cause: down,
      retryable: true,
      retryAfterSeconds: 1,
    });
    const bug = new Error('a bug');
    s.memory.failNext('readRow', bug);
    await expect(s.counters.get('c')).rejects.toBe(bug);
  });

  it('records a clear with its exact time, answers 0 as of it, and counts only what came after', async () => {
    const s = setup();
    counters = s.counters;
    await s.counters.add({ counter: 'c', delta: 7, token: token(NOW - 300) });
    expect(await s.counters.clear({ counter: 'c', token: token(NOW - 200) })).toEqual({ count: 0, asOfMs: NOW - 200 });
    expect(s.memory.table.get('c')?.lastClearMs).toBe(NOW - 200);
    await s.counters.add({ counter: 'c', delta: 2, token: token(NOW - 100) });
    expect((await s.counters.get('c')).count).toBe(2);
  });

  it('asks for a rollup once the event is immutable (its time + accept limit + settle margin)', async () => {
    const s = setup();
    counters = s.counters;
    await s.counters.queues.stop();
    const trigger = jest.spyOn(s.counters.queues, 'trigger');
    await s.counters.add({ counter: 'c', delta: 1, token: token(NOW - 1000) });
    expect(trigger).toHaveBeenCalledWith('c', NOW - 1000 + 6500);
  });
});

describe('Accurate reads', () => {
  it('count the checkpoint plus every event after it, up to now, and trigger a rollup', async () => {
    const s = setup();
    await s.counters.queues.stop();
    await s.memory.writeCheckpoint('c', { count: 40, timeMs: NOW - 10_000 });
    await s.counters.add({ counter: 'c', delta: 2, token: token(NOW - 4000) });
    await s.counters.add({ counter: 'c', delta: 1, token: token(NOW + 1500) });
    expect(await s.counters.get('c')).toEqual({ count: 43, asOfMs: NOW });
    expect(s.counters.queues.depth).toBe(1);
  });
});
