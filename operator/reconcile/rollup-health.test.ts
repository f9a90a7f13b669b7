import { Reason } from '../../api/conditions';
import { MISSED_SCHEDULES, RUN_GRACE_MS, assessRollupHealth, type RollupHealthInput } from './rollup-health';

const NOW = new Date('2026-12-01T12:00:30Z');
const at = (hhmmss: string) => `2026-12-01T${hhmmss}Z`;

/** A CronJob running every minute, created at 11:00, with the status the CronJob controller would give it. */
const judge = (status: RollupHealthInput['cronJob']['status'], extra: Partial<RollupHealthInput> = {}) =>
  assessRollupHealth({
    schedule: '* * * * *',
    suspend: false,
    cronJob: { metadata: { name: 'tally-rollup-orders', creationTimestamp: new Date(at('11:00:00')) }, status },
    now: NOW,
    ...extra,
  });

describe('assessRollupHealth', () => {
  it('is True when the last run succeeded (lastSuccessfulTime is its completion, after its schedule)', () => {
    const health = judge({ lastScheduleTime: new Date(at('12:00:00')), lastSuccessfulTime: new Date(at('12:00:07')) });
    expect(health).toMatchObject({ status: 'True', reason: Reason.RollupSucceeded });
    expect(health.message).toContain('last success 2026-12-01T12:00:07Z');
    expect(health.lastSuccess).toEqual(new Date(at('12:00:07')));
  });

  it('is False at once when the last run ended without success, naming the Job to look at', () => {
    const health = judge({ lastScheduleTime: new Date(at('12:00:00')), lastSuccessfulTime: new Date(at('11:59:05')) });
    expect(health).toMatchObject({ status: 'False', reason: Reason.RollupFailed });
    // The CronJob controller names a Job after its scheduled time in minutes since the epoch.
    const job = `tally-rollup-orders-${Date.parse(at('12:00:00')) / 60_000}`;
    expect(health.message).toContain(`kubectl logs job/${job}`);
    expect(health.message).toContain('last success 2026-12-01T11:59:05Z');
  });

  it('is False when no run ever succeeded and the last one ended', () => {
    expect(judge({ lastScheduleTime: new Date(at('12:00:00')) })).toMatchObject({
      status: 'False',
      reason: Reason.RollupFailed,
    });
  });

  it('holds the previous verdict while a run is in progress, so a failing sweeper does not flap', () => {
    const previous = { status: 'False', reason: Reason.RollupFailed, message: 'the run scheduled at ... failed' };
    const running = {
      lastScheduleTime: new Date(at('12:00:00')),
      active: [{ name: 'job' }],
      lastSuccessfulTime: new Date(at('11:59:50')),
    };
    expect(judge(running, { previous })).toMatchObject(previous);
    // Without a verdict to hold, a run in progress after a success is healthy.
    expect(judge(running)).toMatchObject({ status: 'True', reason: Reason.RollupSucceeded });
  });

  it(`is overdue once ${MISSED_SCHEDULES} schedules passed (plus a grace for the run) without a success`, () => {
    // Runs hang: one is always active, none succeeds. Last success 11:50:10; grace 5 min → schedules up to 11:55:30.
    const hanging = {
      lastScheduleTime: new Date(at('12:00:00')),
      active: [{ name: 'job' }],
      lastSuccessfulTime: new Date(at('11:50:10')),
    };
    const health = judge(hanging, { previous: { status: 'True', reason: Reason.RollupSucceeded, message: '' } });
    expect(health).toMatchObject({ status: 'False', reason: Reason.RollupOverdue });
    expect(health.message).toMatch(
      /3 runs of "\* \* \* \* \*" are due since 2026-12-01T11:50:10Z.*one is still running/,
    );
    // Two schedules missed is not yet overdue: 11:53:10 + grace leaves 11:54 and 11:55 only... 11:54, 11:55 → 2.
    const recent = { ...hanging, lastSuccessfulTime: new Date(at('11:53:10')) };
    expect(
      judge(recent, { previous: { status: 'True', reason: Reason.RollupSucceeded, message: 'ok' } }),
    ).toMatchObject({
      status: 'True',
    });
    expect(RUN_GRACE_MS).toBe(5 * 60_000);
  });

  it('counts overdue schedules from the CronJob creation when runs never start at all', () => {
    expect(judge(undefined)).toMatchObject({ status: 'False', reason: Reason.RollupOverdue });
    const young = { metadata: { name: 'x', creationTimestamp: new Date(at('11:54:00')) } };
    expect(judge(undefined, { cronJob: young })).toMatchObject({ status: 'Unknown', reason: Reason.RollupPending });
  });

  it('follows the schedule: an hourly sweeper that last succeeded 2 h ago is not overdue yet', () => {
    const hourly = { lastScheduleTime: new Date(at('11:00:00')), lastSuccessfulTime: new Date(at('10:00:20')) };
    expect(judge(hourly, { schedule: '@hourly' })).toMatchObject({ status: 'False', reason: Reason.RollupFailed });
    const fine = {
      lastScheduleTime: new Date(at('12:00:00')),
      lastSuccessfulTime: new Date(at('10:00:20')),
      active: [{}],
    };
    expect(judge(fine, { schedule: '@hourly' })).toMatchObject({ status: 'True' });
    expect(judge(fine, { schedule: '*/5 * * * *' })).toMatchObject({ status: 'False', reason: Reason.RollupOverdue });
  });

  it('is Unknown while suspended (nothing runs, which the user asked for), and while waiting for the first run', () => {
    expect(judge({}, { suspend: true })).toMatchObject({ status: 'Unknown', reason: Reason.RollupSuspended });
    const young = { metadata: { name: 'x', creationTimestamp: new Date(at('12:00:10')) } };
    expect(judge({}, { cronJob: young })).toMatchObject({ status: 'Unknown', reason: Reason.RollupPending });
    expect(
      judge(
        { active: [{}], lastScheduleTime: new Date(at('12:00:00')) },
        { cronJob: { ...young, status: { active: [{}] } } },
      ),
    ).toMatchObject({
      status: 'Unknown',
      reason: Reason.RollupPending,
    });
  });
});
