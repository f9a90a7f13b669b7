import { controllerMetrics, createOperatorMetrics } from './metrics';

describe("the operator's controller metrics", () => {
  it("start every series at 0 under controller-runtime's and client-go's names, then count results", async () => {
    const metrics = createOperatorMetrics();
    const { onProcessed, queue } = controllerMetrics(metrics);
    const text = async () => metrics.registry.metrics();
    expect(await text()).toContain('controller_runtime_reconcile_errors_total{controller="counternamespace"} 0');
    for (const result of ['success', 'error', 'requeue', 'requeue_after'])
      expect(await text()).toContain(
        `controller_runtime_reconcile_total{controller="counternamespace",result="${result}"} 0`,
      );
    expect(await text()).toContain('workqueue_retries_total{name="counternamespace"} 0');

    onProcessed({ key: 'a/b', result: { kind: 'done' }, durationMs: 20 });
    onProcessed({ key: 'a/b', result: { kind: 'requeue', afterMs: 1000 }, durationMs: 20 });
    onProcessed({ key: 'a/b', result: { kind: 'error', error: new Error('x') }, durationMs: 20 });
    queue.added();
    queue.retried();
    queue.depth(3);
    queue.queued(0.5);
    const after = await text();
    expect(after).toContain('controller_runtime_reconcile_total{controller="counternamespace",result="success"} 1');
    expect(after).toContain(
      'controller_runtime_reconcile_total{controller="counternamespace",result="requeue_after"} 1',
    );
    expect(after).toContain('controller_runtime_reconcile_errors_total{controller="counternamespace"} 1');
    expect(after).toContain('controller_runtime_reconcile_time_seconds_count{controller="counternamespace"} 3');
    expect(after).toContain('workqueue_adds_total{name="counternamespace"} 1');
    expect(after).toContain('workqueue_retries_total{name="counternamespace"} 1');
    expect(after).toContain('workqueue_depth{name="counternamespace"} 3');
    expect(after).toContain('workqueue_queue_duration_seconds_bucket{le="1",name="counternamespace"} 1');
  });

  it('export the build information', async () => {
    const text = await createOperatorMetrics().registry.metrics();
    expect(text).toMatch(
      /^tally_build_info\{version="\d+\.\d+\.\d+",component="operator",nodejs_version="v[\d.]+"\} 1$/m,
    );
  });
});
