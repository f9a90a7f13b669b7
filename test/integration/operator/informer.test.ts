import { CoreV1Api, Watch, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { apiPath, Informer, objectKey } from '../../../lib/kube/informer';
import type { TcpProxy } from '../../support/tcp-proxy';
import { proxiedKubeConfig, Recorder, stackKubeConfig, statusOf } from './kube-support';

type Event = { type: 'add' | 'update' | 'delete'; key: string; data?: Record<string, string> };

/** An informer on ConfigMaps labelled for this run, recording its events. */
function configMapInformer(
  kc: KubeConfig,
  selector: string,
  namespace?: string,
): { informer: Informer<V1ConfigMap>; events: Recorder<Event>; errors: Recorder<unknown> } {
  const core = kc.makeApiClient(CoreV1Api);
  const informer = new Informer<V1ConfigMap>({
    path: apiPath({ version: 'v1', plural: 'configmaps', namespace }),
    list: (r) =>
      namespace
        ? core.listNamespacedConfigMap({ namespace, labelSelector: r.labelSelector }, r.options)
        : core.listConfigMapForAllNamespaces({ labelSelector: r.labelSelector }, r.options),
    watch: new Watch(kc),
    labelSelector: selector,
    backoff: { initialMs: 100, maxMs: 1000 },
  });
  const events = new Recorder<Event>();
  const errors = new Recorder<unknown>();
  informer.on('add', (o) => events.push({ type: 'add', key: objectKey(o), data: o.data }));
  informer.on('update', (o) => events.push({ type: 'update', key: objectKey(o), data: o.data }));
  informer.on('delete', (o) => events.push({ type: 'delete', key: objectKey(o) }));
  informer.on('error', (e) => errors.push(e));
  return { informer, events, errors };
}

describe('Informer against the real API server', () => {
  const kc = stackKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const run = randomUUID().slice(0, 8);
  const namespaces = [`tally-inf-a-${run}`, `tally-inf-b-${run}`];
  const [nsA, nsB] = namespaces as [string, string];
  const selector = `tally-test=${run}`;
  const labels = { 'tally-test': run };
  const informers: Informer<V1ConfigMap>[] = [];
  const proxies: TcpProxy[] = [];

  const configMap = (namespace: string, name: string, data: Record<string, string>) =>
    core.createNamespacedConfigMap({ namespace, body: { metadata: { name, labels }, data } });
  const is = (type: Event['type'], key: string) => (e: Event) => e.type === type && e.key === key;

  beforeAll(async () => {
    await Promise.all(namespaces.map((name) => core.createNamespace({ body: { metadata: { name } } })));
  });

  afterAll(async () => {
    await Promise.all(informers.map((i) => i.stop()));
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(namespaces.map((name) => statusOf(core.deleteNamespace({ name }))));
  });

  it('reports create, update and delete in one namespace, filtered by the label selector', async () => {
    // An object that exists before the informer starts arrives through the list.
    await configMap(nsA, 'existing', { v: '0' });
    const { informer, events } = configMapInformer(kc, selector, nsA);
    informers.push(informer);
    informer.start();
    await informer.waitForSync(10_000);
    expect(informer.get(nsA, 'existing')?.data).toEqual({ v: '0' });
    expect(events.items).toEqual([{ type: 'add', key: `${nsA}/existing`, data: { v: '0' } }]);

    await core.createNamespacedConfigMap({ namespace: nsA, body: { metadata: { name: 'unlabelled' }, data: {} } });
    await configMap(nsB, 'other-namespace', { v: '0' }); // outside the watched namespace
    await configMap(nsA, 'one', { v: '1' });
    await events.waitFor(is('add', `${nsA}/one`), 'add event');

    const current = await core.readNamespacedConfigMap({ namespace: nsA, name: 'one' });
    await core.replaceNamespacedConfigMap({ namespace: nsA, name: 'one', body: { ...current, data: { v: '2' } } });
    const update = await events.waitFor(is('update', `${nsA}/one`), 'update event');
    expect(update.data).toEqual({ v: '2' });
    expect(informer.get(nsA, 'one')?.data).toEqual({ v: '2' });

    await core.deleteNamespacedConfigMap({ namespace: nsA, name: 'one' });
    await events.waitFor(is('delete', `${nsA}/one`), 'delete event');
    expect(informer.get(nsA, 'one')).toBeUndefined();

    // Events of one watch arrive in order, so the objects created before 'one' would have shown up by now.
    expect(events.items.map((e) => `${e.type} ${e.key}`)).toEqual([
      `add ${nsA}/existing`,
      `add ${nsA}/one`,
      `update ${nsA}/one`,
      `delete ${nsA}/one`,
    ]);
    expect(informer.list().map(objectKey)).toEqual([`${nsA}/existing`]);
  });

  it('recovers by itself after its connection is cut, and sees what happened during the outage', async () => {
    const through = await proxiedKubeConfig(kc);
    proxies.push(through.proxy);
    // All namespaces this time; only this run's label.
    const { informer, events, errors } = configMapInformer(through.kubeConfig, selector);
    informers.push(informer);
    informer.start();
    await informer.waitForSync(10_000);
    await configMap(nsB, 'doomed', { v: '1' });
    await configMap(nsB, 'changed', { v: '1' });
    await events.waitFor(is('add', `${nsB}/changed`), 'add before the outage');
    const watchesBefore = informer.stats.watches;

    through.proxy.cut();
    // The informer notices: the broken stream and the refused reconnections are reported (and retried).
    await errors.waitFor(() => true, 'an error reported after the cut', 10_000);
    const mark = events.items.length;
    // Changes made while the informer cannot see the server (through a direct connection).
    await core.deleteNamespacedConfigMap({ namespace: nsB, name: 'doomed' });
    const changed = await core.readNamespacedConfigMap({ namespace: nsB, name: 'changed' });
    await core.replaceNamespacedConfigMap({ namespace: nsB, name: 'changed', body: { ...changed, data: { v: '2' } } });
    await configMap(nsA, 'born-during-outage', { v: '1' });
    await errors.waitFor(() => true, 'a failed reconnection during the outage', 10_000, errors.items.length);
    expect(events.items.length).toBe(mark); // nothing can arrive while the proxy refuses connections

    through.proxy.restore();
    await events.waitFor(is('delete', `${nsB}/doomed`), 'the deletion made during the outage', 15_000, mark);
    await events.waitFor(is('add', `${nsA}/born-during-outage`), 'the creation made during the outage', 15_000, mark);
    const update = await events.waitFor(is('update', `${nsB}/changed`), 'the update during the outage', 15_000, mark);
    expect(update.data).toEqual({ v: '2' });

    // And it keeps watching: a change after the outage arrives too.
    await configMap(nsB, 'after', { v: '1' });
    await events.waitFor(is('add', `${nsB}/after`), 'a creation after the outage', 15_000, mark);
    expect(informer.get(nsB, 'doomed')).toBeUndefined();
    expect(informer.stats.watches).toBeGreaterThan(watchesBefore);
    expect(informer.list().map(objectKey).sort()).toEqual(
      [
        `${nsA}/born-during-outage`,
        `${nsA}/existing`,
        `${nsB}/after`,
        `${nsB}/changed`,
        `${nsB}/other-namespace`,
      ].sort(),
    );
  });
});
