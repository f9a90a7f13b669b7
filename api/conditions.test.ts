import { setCondition } from './conditions';
import { boundedName, cronJobName } from './names';

describe('setCondition', () => {
  const t1 = () => new Date('2026-01-01T00:00:00Z');
  const t2 = () => new Date('2026-01-02T00:00:00Z');

  it('adds a condition with its transition time', () => {
    expect(
      setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Reconciling', message: 'm' }, t1),
    ).toEqual([
      {
        type: 'Ready',
        status: 'False',
        reason: 'Reconciling',
        message: 'm',
        lastTransitionTime: '2026-01-01T00:00:00.000Z',
      },
    ]);
  });

  it('keeps lastTransitionTime while the status stays, and moves it when the status changes', () => {
    const first = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'A', message: '' }, t1);
    const same = setCondition(first, { type: 'Ready', status: 'False', reason: 'B', message: 'new' }, t2);
    expect(same[0]).toMatchObject({ reason: 'B', message: 'new', lastTransitionTime: '2026-01-01T00:00:00.000Z' });
    const flipped = setCondition(same, { type: 'Ready', status: 'True', reason: 'Ready', message: '' }, t2);
    expect(flipped[0]!.lastTransitionTime).toBe('2026-01-02T00:00:00.000Z');
    expect(first[0]!.reason).toBe('A'); // the input is not modified
  });

  it('keys conditions by type', () => {
    let list = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'A', message: '' }, t1);
    list = setCondition(list, { type: 'TablesReady', status: 'True', reason: 'B', message: '' }, t1);
    list = setCondition(list, { type: 'Ready', status: 'True', reason: 'C', message: '' }, t1);
    expect(list.map((c) => [c.type, c.status])).toEqual([
      ['Ready', 'True'],
      ['TablesReady', 'True'],
    ]);
  });
});

describe('owned object names', () => {
  it('keeps short names readable', () => {
    expect(cronJobName('orders')).toBe('tally-rollup-orders');
  });
  it('cuts long names to the limit with a stable hash, keeping distinct names distinct', () => {
    const a = cronJobName('a'.repeat(63));
    const b = cronJobName(`${'a'.repeat(62)}b`);
    expect(a.length).toBeLessThanOrEqual(52);
    expect(a).toMatch(/^tally-rollup-a+-[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
    expect(cronJobName('a'.repeat(63))).toBe(a);
    expect(boundedName('p', 'x-'.repeat(20), 20)).not.toMatch(/--/);
  });
});
