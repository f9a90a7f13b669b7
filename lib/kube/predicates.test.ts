import { specOrMetadataChanged } from './predicates';

const cronJob = (generation: number, status: unknown, labels: Record<string, string> = {}) => ({
  apiVersion: 'batch/v1',
  kind: 'CronJob',
  metadata: { name: 'x', generation, labels, resourceVersion: String(Math.random()) },
  status,
});

describe('specOrMetadataChanged', () => {
  it('ignores status-only updates', () => {
    expect(specOrMetadataChanged(cronJob(1, { lastScheduleTime: 'b' }), cronJob(1, { lastScheduleTime: 'a' }))).toBe(
      false,
    );
  });
  it('sees spec changes (generation), label, finalizer and deletion changes', () => {
    expect(specOrMetadataChanged(cronJob(2, {}), cronJob(1, {}))).toBe(true);
    expect(specOrMetadataChanged(cronJob(1, {}, { a: 'b' }), cronJob(1, {}))).toBe(true);
    const dying = { ...cronJob(1, {}), metadata: { ...cronJob(1, {}).metadata, deletionTimestamp: new Date() } };
    expect(specOrMetadataChanged(dying, cronJob(1, {}))).toBe(true);
    const held = { ...cronJob(1, {}), metadata: { ...cronJob(1, {}).metadata, finalizers: ['f'] } };
    expect(specOrMetadataChanged(held, cronJob(1, {}))).toBe(true);
  });
  it('sees data changes of objects without a generation (ConfigMaps)', () => {
    const cm = (data: Record<string, string>) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c' },
      data,
    });
    expect(specOrMetadataChanged(cm({ a: '1' }), cm({ a: '1' }))).toBe(false);
    expect(specOrMetadataChanged(cm({ a: '2' }), cm({ a: '1' }))).toBe(true);
  });
});
