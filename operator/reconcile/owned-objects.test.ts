import { ApiException } from '@kubernetes/client-node';
import { ConditionType, EventReason, Reason } from '../../api/conditions';
import { configMapName, cronJobName } from '../../api/names';
import type { ReconcileContext } from './context';
import { FakeKubeApi, FakeSchemaStore, contextFor, counterNamespace, finalized, operatorConfig } from './fakes';
import { REJECTED_RECHECK_MS, applyConfigMap, applyCronJob, markReady } from './owned-objects';
import { resolveSpec } from './schema';

const conditionOf = (ctx: ReconcileContext, type: string) => ctx.status.conditions?.find((c) => c.type === type);
const apiError = (code: number, message: string) => new ApiException(code, 'x', JSON.stringify({ message }), {});

describe('applying the owned objects', () => {
  let kube: FakeKubeApi;
  beforeEach(() => {
    kube = new FakeKubeApi();
  });

  async function resolved(
    spec: Record<string, unknown> = {},
    memcached = 'memcached:11211',
  ): Promise<ReconcileContext> {
    const ctx = contextFor(
      finalized(counterNamespace('orders', spec)),
      kube,
      new FakeSchemaStore(),
      operatorConfig({ memcachedServers: memcached }),
    );
    expect(await resolveSpec(ctx)).toEqual({ kind: 'continue' });
    return ctx;
  }

  it('applies the ConfigMap and says which Memcached it names', async () => {
    const ctx = await resolved();
    expect(await applyConfigMap(ctx)).toEqual({ kind: 'continue' });
    expect([...kube.applied.keys()]).toEqual([`ConfigMap/team-a/${configMapName('orders')}`]);
    expect(ctx.status.configMapName).toBe(configMapName('orders'));
    expect(conditionOf(ctx, ConditionType.CacheConfigured)).toMatchObject({
      status: 'True',
      reason: Reason.ConfigMapApplied,
      message: `ConfigMap ${configMapName('orders')} (Memcached memcached:11211)`,
    });
  });

  it('applies the CronJob, and reports a suspended schedule as such', async () => {
    const ctx = await resolved({ rollup: { suspend: true } });
    expect(await applyCronJob(ctx)).toEqual({ kind: 'continue' });
    expect([...kube.applied.keys()]).toEqual([`CronJob/team-a/${cronJobName('orders')}`]);
    expect(ctx.status.cronJobName).toBe(cronJobName('orders'));
    expect(conditionOf(ctx, ConditionType.RollupScheduled)).toMatchObject({
      status: 'True',
      reason: Reason.RollupSuspended,
    });
  });

  it('treats an object the API rejects as invalid as permanent for this generation: no hot retry, one Warning', async () => {
    kube.failures.apply = [apiError(422, 'spec.schedule: Invalid value')];
    const ctx = await resolved();
    expect(await applyCronJob(ctx)).toEqual({
      kind: 'requeue',
      afterMs: REJECTED_RECHECK_MS,
      why: `CronJob ${cronJobName('orders')} rejected as invalid`,
    });
    const message = `the Kubernetes API rejected CronJob ${cronJobName('orders')}: HTTP 422: spec.schedule: Invalid value`;
    expect(conditionOf(ctx, ConditionType.RollupScheduled)).toMatchObject({
      status: 'False',
      reason: Reason.ApplyRejected,
      message,
    });
    expect(conditionOf(ctx, ConditionType.Ready)).toMatchObject({
      status: 'False',
      reason: Reason.ApplyRejected,
      message,
    });
    expect(kube.events).toEqual([{ type: 'Warning', reason: EventReason.ApplyRejected, message }]);
  });

  it('retries any other failure with backoff, keeping the cause', async () => {
    const err = apiError(503, 'etcdserver: leader changed');
    kube.failures.apply = [err];
    const ctx = await resolved();
    const result = await applyConfigMap(ctx);
    expect(result.kind).toBe('error');
    const error = (result as { error: Error }).error;
    expect(error.message).toBe(
      `while applying ConfigMap ${configMapName('orders')}: HTTP 503: etcdserver: leader changed`,
    );
    expect(error.cause).toBe(err);
    expect(conditionOf(ctx, ConditionType.CacheConfigured)).toMatchObject({
      status: 'False',
      reason: Reason.ApplyFailed,
    });
    expect(conditionOf(ctx, ConditionType.Ready)).toMatchObject({ status: 'False', reason: Reason.ApplyFailed });
    expect(kube.events).toEqual([]);
  });

  it('marks the namespace Ready, naming its counter type and keyspace', async () => {
    const ctx = await resolved();
    expect(await markReady(ctx)).toEqual({ kind: 'continue' });
    expect(conditionOf(ctx, ConditionType.Ready)).toMatchObject({
      status: 'True',
      reason: Reason.Ready,
      message: `counters of type ${ctx.config!.counterType} are served from keyspace tally_orders`,
    });
  });
});
