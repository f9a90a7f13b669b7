import pino from 'pino';
import type { ClockOffset } from '../../store/clock';
import { ClockUntrustedError } from '../errors';
import { ClockGuard } from './clock-guard';

/** A guard over a fake measurement, wall clock and monotonic clock, all set by the test. */
function setup() {
  const t = { wall: 1_800_000_000_000, mono: 1000, pauseAfterNextMonoRead: 0 };
  const next: { result: ClockOffset | Error } = { result: new Error('no answer') };
  let measured = 0;
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
  const guard = new ClockGuard({
    measure: () => {
      measured++;
      const r = next.result;
      return r instanceof Error ? Promise.reject(r) : Promise.resolve({ ...r, measuredAtMs: t.wall });
    },
    log,
    now: () => t.wall,
    monotonic: () => {
      const read = t.mono;
      // The process descheduled right after this read: both clocks move on before the next one.
      t.wall += t.pauseAfterNextMonoRead;
      t.mono += t.pauseAfterNextMonoRead;
      t.pauseAfterNextMonoRead = 0;
      return read;
    },
    maxAgeMs: 60_000,
  });
  const advance = (ms: number) => {
    t.wall += ms;
    t.mono += ms;
  };
  const offset = (offsetMs: number, uncertaintyMs: number) => {
    next.result = { offsetMs, uncertaintyMs, measuredAtMs: 0 };
  };
  return { t, next, guard, advance, offset, measured: () => measured, warnings };
}

describe('ClockGuard', () => {
  it('trusts nothing before a measurement, and says why', async () => {
    const s = setup();
    await s.guard.start();
    s.guard.stop();
    expect(s.guard.check(100)).toEqual({
      ok: false,
      detail: "offset from Cassandra's clock unknown: measuring it failed: no answer",
    });
    expect(() => s.guard.assertWithin(100, 'ns', 'writing checkpoints')).toThrow(ClockUntrustedError);
  });

  it('holds what the offset plus its uncertainty puts beyond the bound', async () => {
    const s = setup();
    s.offset(-30, 2);
    await s.guard.start();
    s.guard.stop();
    expect(s.guard.check(100)).toEqual({
      ok: true,
      detail: "Cassandra's clock is -30.0 ms from this process's (± 2.0 ms), within the 100 ms bound",
    });
    expect(s.guard.check(31).ok).toBe(false);
    expect(s.guard.check(32).ok).toBe(true);
    expect(() => s.guard.assertWithin(100, 'ns', 'accepting events')).not.toThrow();
    expect(() => s.guard.assertWithin(20, 'ns', 'accepting events')).toThrow(
      "accepting events is held in namespace ns: Cassandra's clock is -30.0 ms from this process's (± 2.0 ms), beyond the 20 ms bound",
    );
  });

  it('keeps a better reading over a slower later one, its uncertainty growing with age', async () => {
    const s = setup();
    s.offset(5, 1);
    await s.guard.start();
    s.guard.stop();
    s.advance(10_000);
    s.offset(40, 50);
    await s.guard.measureNow();
    const r = s.guard.current()!;
    expect(r.offsetMs).toBe(5);
    expect(r.uncertaintyMs).toBeCloseTo(1 + 10_000 * 1e-4);
    s.offset(7, 0.5);
    await s.guard.measureNow();
    expect(s.guard.current()).toMatchObject({ offsetMs: 7, uncertaintyMs: 0.5 });
  });

  it('forgets a reading once it is too old, follows a step of the wall clock, and measures again', async () => {
    const s = setup();
    s.offset(5, 1);
    await s.guard.start();
    s.guard.stop();
    s.advance(60_001);
    const before = s.measured();
    expect(s.guard.check(100)).toMatchObject({ ok: false, detail: expect.stringContaining('too old') });
    expect(s.measured()).toBe(before + 1);
    await s.guard.measureNow();
    expect(s.guard.check(100).ok).toBe(true);

    // Stepped 3 s ahead (the monotonic clock did not move): the offset moves with it at once, and is measured again.
    s.t.wall += 3000;
    s.offset(-3001, 5);
    const measuredBefore = s.measured();
    expect(s.guard.check(100)).toMatchObject({ ok: false, detail: expect.stringContaining('-2995.0 ms') });
    expect(s.measured()).toBe(measuredBefore + 1);
    await s.guard.measureNow();
    // The new measurement wins although its round trip was slower: it confirms the step.
    expect(s.guard.check(100)).toMatchObject({ ok: false, detail: expect.stringContaining('-3001.0 ms') });
  });

  it('does not take being descheduled between two clock reads for a step', async () => {
    const s = setup();
    s.offset(5, 1);
    await s.guard.start();
    s.guard.stop();
    const measured = s.measured();
    s.t.pauseAfterNextMonoRead = 40;
    expect(s.guard.check(100)).toMatchObject({ ok: true, detail: expect.stringContaining('+5.0 ms') });
    expect(s.measured()).toBe(measured);
  });

  it('logs a hold at most every 30 s per namespace and operation', async () => {
    const s = setup();
    await s.guard.start();
    s.guard.stop();
    for (let i = 0; i < 5; i++) expect(() => s.guard.assertWithin(100, 'ns', 'writing checkpoints')).toThrow();
    expect(() => s.guard.assertWithin(100, 'other', 'writing checkpoints')).toThrow();
    expect(s.warnings).toHaveLength(2);
    s.advance(30_000);
    expect(() => s.guard.assertWithin(100, 'ns', 'writing checkpoints')).toThrow();
    expect(s.warnings).toHaveLength(3);
  });
});
