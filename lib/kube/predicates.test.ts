import type { KubernetesObject } from '@kubernetes/client-node';
import { cronJobRunEnded, specOrMetadataChanged } from './predicates';

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

describe('cronJobRunEnded', () => {
  const cronJob = (status: object): KubernetesObject => ({ metadata: { generation: 1 }, status }) as KubernetesObject;
  it('is true when the active list empties or lastSuccessfulTime moves, not when a run starts', () => {
    const idle = cronJob({ lastSuccessfulTime: '2026-12-01T12:00:07Z' });
    const running = cronJob({ lastSuccessfulTime: '2026-12-01T12:00:07Z', active: [{ name: 'j' }] });
    const succeeded = cronJob({ lastSuccessfulTime: '2026-12-01T12:01:06Z' });
    expect(cronJobRunEnded(running, idle)).toBe(false);
    expect(cronJobRunEnded(idle, running)).toBe(true); // ended without success: failed
    expect(cronJobRunEnded(succeeded, running)).toBe(true);
    expect(cronJobRunEnded(idle, idle)).toBe(false);
  });
});

describe('cronJobRunEnded across a list and a watch', () => {
  it('takes the same time as a Date (listed) and as a string (watched) for the same', () => {
    const listed = {
      metadata: {},
      status: { lastSuccessfulTime: new Date('2026-12-01T12:00:07Z') },
    } as KubernetesObject;
    const watched = { metadata: {}, status: { lastSuccessfulTime: '2026-12-01T12:00:07Z' } } as KubernetesObject;
    expect(cronJobRunEnded(watched, listed)).toBe(false);
  });
});
