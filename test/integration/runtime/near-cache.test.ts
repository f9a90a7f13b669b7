import { randomUUID } from 'node:crypto';
import type { EventualCounters } from '../../../runtime/counter/eventual';
import {
  call,
  dropKeyspaces,
  keyspaceOf,
  startInProcess,
  uniqueSuffix,
  type InProcessRuntime,
} from '../../support/runtime-harness';

/**
 * Two runtimes (two near caches) serving the same namespaces on the real stack: how long one answers a checkpoint
 * after the other rolled up a newer one, and that a runtime sees its own rollups at once.
 */
describe('the near cache of Eventual reads', () => {
  const sfx = uniqueSuffix();
  const NEAR_SECONDS = 4;
  const near = `near-${sfx}`;
  const direct = `direct-${sfx}`;
  const own = `own-${sfx}`;
  const namespaces = [
    { name: near, counterType: 'Eventual' as const, spec: { cache: { nearCacheSeconds: NEAR_SECONDS } } },
    { name: direct, counterType: 'Eventual' as const, spec: { cache: { nearCacheSeconds: 0 } } },
    { name: own, counterType: 'Eventual' as const, spec: { cache: { nearCacheSeconds: 30 } } },
  ];
  let a: InProcessRuntime;
  let b: InProcessRuntime;

  beforeAll(async () => {
    a = await startInProcess(namespaces);
    b = await startInProcess(namespaces);
    // A rolls nothing up itself in these two namespaces, so what it answers after B's rollups comes from its near
    // cache or from memcached (its own rollups would otherwise refresh its near cache too).
    for (const name of [near, direct]) await (a.runtime.registry.find(name)!.ops as EventualCounters).queues.stop();
  }, 120_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await dropKeyspaces(namespaces.map((n) => keyspaceOf(n.name)));
  });

  const add = async (url: string, namespace: string, counter: string, delta: number) =>
    expect((await call(url, 'AddCount', { namespace, counter_name: counter, delta })).status).toBe(200);
  const get = async (url: string, namespace: string, counter: string) => {
    const reply = await call(url, 'GetCount', { namespace, counter_name: counter });
    expect(reply.status).toBe(200);
    return { count: reply.body.count as number, asOf: Date.parse(reply.body.as_of as string) };
  };
  /** Polls until the runtime answers `count`; returns when it did. */
  const until = async (url: string, namespace: string, counter: string, count: number, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if ((await get(url, namespace, counter)).count === count) return Date.now();
      if (Date.now() > deadline) throw new Error(`${namespace}/${counter} did not reach ${count} in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it(`answers another process's newer checkpoint within nearCacheSeconds, with the old checkpoint's own as_of until then`, async () => {
    const counter = `c-${randomUUID()}`;
    await add(b.url, near, counter, 1);
    await until(b.url, near, counter, 1);
    const old = await get(a.url, near, counter);
    expect(old.count).toBe(1);
    await add(b.url, near, counter, 10);
    const bSaw = await until(b.url, near, counter, 11);
    const stale = await get(a.url, near, counter);
    if (stale.count === 1) expect(stale.asOf).toBe(old.asOf);
    const aSaw = await until(a.url, near, counter, 11, NEAR_SECONDS * 1000 + 10_000);
    // A filled its near cache before B's rollup: the entry is gone at most nearCacheSeconds later (+ a poll).
    expect(aSaw - bSaw).toBeLessThanOrEqual(NEAR_SECONDS * 1000 + 500);
    const hits = (await a.runtime.metrics.nearCache.get()).values.find(
      (v) => v.labels.namespace === near && v.labels.result === 'hit',
    );
    expect(hits?.value ?? 0).toBeGreaterThan(0);
  }, 60_000);

  it('reads through to memcached at once with nearCacheSeconds 0', async () => {
    const counter = `c-${randomUUID()}`;
    await add(b.url, direct, counter, 1);
    await until(b.url, direct, counter, 1);
    expect((await get(a.url, direct, counter)).count).toBe(1);
    await add(b.url, direct, counter, 10);
    await until(b.url, direct, counter, 11);
    // B's rollup wrote memcached before B could answer 11.
    expect((await get(a.url, direct, counter)).count).toBe(11);
  }, 60_000);

  it("sees its own rollup at once, however long the namespace's near cache lasts", async () => {
    const counter = `c-${randomUUID()}`;
    await add(a.url, own, counter, 1);
    await until(a.url, own, counter, 1);
    await add(a.url, own, counter, 10);
    // Settle (2.2 s with FAST) + coalesce, far less than the 30 s an entry may live.
    await until(a.url, own, counter, 11, 10_000);
  }, 60_000);
});
