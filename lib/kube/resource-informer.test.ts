import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { ListRequest, WatchLike } from './informer';
import { ResourceInformer } from './resource-informer';

const cm = (namespace: string, name: string): KubernetesObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { namespace, name, resourceVersion: '1' },
});

/** A watch that records each request and stays open, delivering nothing, until aborted. */
class OpenWatch implements WatchLike {
  readonly paths: string[] = [];
  readonly selectors: unknown[] = [];
  readonly controllers: AbortController[] = [];
  watch(path: string, query: Record<string, unknown>): Promise<AbortController> {
    this.paths.push(path);
    this.selectors.push(query.labelSelector);
    this.controllers.push(new AbortController());
    return Promise.resolve(this.controllers.at(-1)!);
  }
}

function make(namespaces: string[], items: Record<string, KubernetesObject[]>) {
  const watch = new OpenWatch();
  const lists: [string | undefined, ListRequest][] = [];
  const informer = new ResourceInformer<KubernetesObject>({
    resource: { version: 'v1', plural: 'configmaps' },
    namespaces,
    list: (namespace, request) => {
      lists.push([namespace, request]);
      const list: KubernetesListObject<KubernetesObject> = {
        apiVersion: 'v1',
        kind: 'ConfigMapList',
        metadata: { resourceVersion: '1' },
        items: structuredClone(items[namespace ?? '*'] ?? []),
      };
      return Promise.resolve(list);
    },
    watch,
    labelSelector: 'app=x',
    name: 'test ConfigMaps',
  });
  return { informer, watch, lists };
}

describe('ResourceInformer', () => {
  it('watches each namespace given with its own list and watch, and reads them as one cache', async () => {
    const { informer, watch, lists } = make(['a', 'b'], { a: [cm('a', 'one')], b: [cm('b', 'two')] });
    const added: string[] = [];
    informer.on('add', (o) => added.push(`${o.metadata?.namespace}/${o.metadata?.name}`));
    informer.start();
    await informer.waitForSync(1000);
    expect(lists.map(([ns, r]) => [ns, r.labelSelector])).toEqual([
      ['a', 'app=x'],
      ['b', 'app=x'],
    ]);
    await new Promise((r) => setImmediate(r)); // the watches start after the lists
    expect(watch.paths).toEqual(['/api/v1/namespaces/a/configmaps', '/api/v1/namespaces/b/configmaps']);
    expect(watch.selectors).toEqual(['app=x', 'app=x']);
    expect(added.sort()).toEqual(['a/one', 'b/two']);
    expect(informer.list().map((o) => o.metadata?.name)).toEqual(['one', 'two']);
    expect(informer.get('b', 'two')?.metadata?.name).toBe('two');
    expect(informer.get('a', 'two')).toBeUndefined();
    expect(informer.informers.map((i) => i.stats.lists)).toEqual([1, 1]);
    await informer.stop();
  });

  it('watches all namespaces with one informer when given none', async () => {
    const { informer, watch, lists } = make([], { '*': [cm('a', 'one'), cm('b', 'two')] });
    informer.start();
    await informer.waitForSync(1000);
    await new Promise((r) => setImmediate(r));
    expect(informer.informers).toHaveLength(1);
    expect(lists.map(([ns]) => ns)).toEqual([undefined]);
    expect(watch.paths).toEqual(['/api/v1/configmaps']);
    expect(informer.list()).toHaveLength(2);
    await informer.stop();
    expect(watch.controllers.map((c) => c.signal.aborted)).toEqual([true]);
  });
});
