import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { messageOf } from '../errors';
import { waitFor } from '../../test/stack/wait';
import { apiPath, Informer, objectKey, splitKey, type ListRequest, type WatchLike } from './informer';

type Obj = KubernetesObject & { data?: Record<string, string> };

function obj(namespace: string, name: string, rv: string, data?: Record<string, string>): Obj {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace, name, resourceVersion: rv }, data };
}

interface WatchCall {
  path: string;
  query: Record<string, string | number | boolean | undefined>;
  send: (type: string, object: unknown) => void;
  end: (err?: unknown) => void;
  controller: AbortController;
}

/** Stands in for client-node's Watch: each watch() call is handed to the test, which sends events or ends it. */
class FakeWatch implements WatchLike {
  readonly calls: WatchCall[] = [];
  private waiters: ((call: WatchCall) => void)[] = [];
  /** Errors to fail the next watch() calls with, as a refused connection does (done is called before it resolves). */
  refuse: unknown[] = [];

  watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const controller = new AbortController();
    if (this.refuse.length > 0) {
      done(this.refuse.shift());
      return Promise.resolve(controller);
    }
    let ended = false;
    const call: WatchCall = {
      path,
      query,
      controller,
      send: (type, object) => {
        if (!ended && !controller.signal.aborted) callback(type, object);
      },
      end: (err) => {
        if (ended) return;
        ended = true;
        done(err ?? null);
      },
    };
    this.calls.push(call);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(call);
    return Promise.resolve(controller);
  }

  /** The next watch() call from now on, or the current one when `index` names one already made. */
  next(index = this.calls.length): Promise<WatchCall> {
    const existing = this.calls[index];
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`watch #${index} never started`)), 2000);
      this.waiters.push((call) => {
        if (this.calls.indexOf(call) === index) {
          clearTimeout(timer);
          resolve(call);
        } else {
          void this.next(index).then(resolve, reject);
        }
      });
    });
  }
}

/** A list function serving whatever the test puts in `items` at `resourceVersion`, or failing while `failures` last. */
class FakeList {
  items: Obj[] = [];
  resourceVersion = '1';
  failures: Error[] = [];
  readonly requests: ListRequest[] = [];

  readonly fn = async (request: ListRequest): Promise<KubernetesListObject<Obj>> => {
    this.requests.push(request);
    const failure = this.failures.shift();
    if (failure) throw failure;
    // Like the API server's lists: items without kind/apiVersion, the list's own kind.
    return {
      apiVersion: 'v1',
      kind: 'ConfigMapList',
      metadata: { resourceVersion: this.resourceVersion },
      items: this.items.map((o) => ({ metadata: { ...o.metadata }, data: o.data })),
    };
  };
}

/** Records handler calls as readable strings. */
function record(informer: Informer<Obj>): string[] {
  const log: string[] = [];
  informer.on('add', (o) => log.push(`add ${objectKey(o)}@${o.metadata?.resourceVersion}`));
  informer.on('update', (o, old) =>
    log.push(`update ${objectKey(o)}@${old.metadata?.resourceVersion}->${o.metadata?.resourceVersion}`),
  );
  informer.on('delete', (o) => log.push(`delete ${objectKey(o)}`));
  return log;
}

describe('Informer', () => {
  let watch: FakeWatch;
  let lister: FakeList;
  let informer: Informer<Obj>;

  function make(extra: Partial<ConstructorParameters<typeof Informer<Obj>>[0]> = {}): Informer<Obj> {
    informer = new Informer<Obj>({
      path: '/api/v1/configmaps',
      list: lister.fn,
      watch,
      backoff: { initialMs: 1, maxMs: 4 },
      ...extra,
    });
    return informer;
  }

  beforeEach(() => {
    watch = new FakeWatch();
    lister = new FakeList();
  });

  afterEach(async () => {
    await informer?.stop();
  });

  it('lists, then watches from the list’s resourceVersion, keeping a cache and reporting each change', async () => {
    lister.items = [obj('a', 'one', '5'), obj('b', 'two', '6')];
    lister.resourceVersion = '7';
    make({ labelSelector: 'app=tally', fieldSelector: 'metadata.name!=x' });
    const log = record(informer);
    expect(informer.hasSynced).toBe(false);
    informer.start();
    await informer.waitForSync(1000);
    expect(informer.hasSynced).toBe(true);
    expect(lister.requests[0]).toMatchObject({ labelSelector: 'app=tally', fieldSelector: 'metadata.name!=x' });

    const w = await watch.next(0);
    expect(w.path).toBe('/api/v1/configmaps');
    expect(w.query).toMatchObject({
      resourceVersion: '7',
      allowWatchBookmarks: true,
      labelSelector: 'app=tally',
      fieldSelector: 'metadata.name!=x',
    });
    expect(w.query.timeoutSeconds).toBeGreaterThanOrEqual(300);
    expect(w.query.timeoutSeconds).toBeLessThan(600);
    // List items get the kind and apiVersion that watch events carry.
    expect(informer.get('a', 'one')).toMatchObject({ kind: 'ConfigMap', apiVersion: 'v1' });

    w.send('ADDED', obj('a', 'three', '8'));
    w.send('MODIFIED', obj('a', 'one', '9', { k: 'v' }));
    w.send('MODIFIED', obj('a', 'one', '9', { k: 'v' })); // same version again: no event
    w.send('DELETED', obj('b', 'two', '10'));
    w.send('DELETED', obj('b', 'never-seen', '11')); // not cached: no event
    w.send('BOOKMARK', { kind: 'ConfigMap', metadata: { resourceVersion: '12' } });

    expect(log).toEqual(['add a/one@5', 'add b/two@6', 'add a/three@8', 'update a/one@5->9', 'delete b/two']);
    expect(informer.get('a', 'one')?.data).toEqual({ k: 'v' });
    expect(informer.get('b', 'two')).toBeUndefined();
    expect(informer.list().map(objectKey).sort()).toEqual(['a/one', 'a/three']);
    expect(informer.list('b')).toEqual([]);
    expect(informer.lastSyncResourceVersion).toBe('12');
  });

  it('restarts a watch that fails from the last resourceVersion, without relisting', async () => {
    make();
    const errors: unknown[] = [];
    informer.on('error', (e) => errors.push(e));
    informer.start();
    const first = await watch.next(0);
    first.send('ADDED', obj('a', 'one', '3'));
    first.end(new Error('Premature close')); // the connection broke

    const second = await watch.next(1);
    expect(second.query.resourceVersion).toBe('3');
    expect(first.controller.signal.aborted).toBe(true);
    // Connections refused meanwhile are retried too.
    watch.refuse = [new Error('ECONNREFUSED'), Object.assign(new Error('Forbidden'), { statusCode: 403 })];
    second.end(new Error('socket hang up'));
    const third = await watch.next(2);
    expect(third.query.resourceVersion).toBe('3');
    expect(lister.requests).toHaveLength(1);
    expect(errors.map(messageOf)).toEqual(['Premature close', 'socket hang up', 'ECONNREFUSED', 'Forbidden']);
    expect(informer.stats).toMatchObject({ lists: 1, watches: 5, errors: 4, lastError: 'watch: Forbidden' });
  });

  it('relists after 410 Gone and reports what changed meanwhile, including deletions', async () => {
    lister.items = [obj('a', 'stays', '1'), obj('a', 'changes', '1'), obj('a', 'goes', '1')];
    lister.resourceVersion = '1';
    make();
    const log = record(informer);
    informer.start();
    const first = await watch.next(0);
    log.length = 0;

    lister.items = [obj('a', 'stays', '1'), obj('a', 'changes', '20'), obj('a', 'new', '21')];
    lister.resourceVersion = '22';
    first.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    const second = await watch.next(1);
    expect(first.controller.signal.aborted).toBe(true);
    expect(second.query.resourceVersion).toBe('22');
    expect(log.sort()).toEqual(['add a/new@21', 'delete a/goes', 'update a/changes@1->20']);
    expect(informer.list().map(objectKey).sort()).toEqual(['a/changes', 'a/new', 'a/stays']);

    // A 410 as the HTTP status of the watch request relists as well.
    second.end(Object.assign(new Error('Gone'), { statusCode: 410 }));
    await watch.next(2);
    expect(lister.requests).toHaveLength(3);
    expect(informer.stats.errors).toBe(0);
  });

  it('backs off when every watch is answered with 410 at once, instead of relisting in a tight loop', async () => {
    let watches = 0;
    const gone: WatchLike = {
      watch: (_path, _query, callback) => {
        // A guard so that a broken informer fails this test instead of spinning forever: stop answering.
        if (++watches > 200) return new Promise<AbortController>(() => undefined);
        callback('ERROR', { kind: 'Status', code: 410, message: 'too old resource version' });
        return Promise.resolve(new AbortController());
      },
    };
    informer = new Informer<Obj>({
      path: '/api/v1/configmaps',
      list: lister.fn,
      watch: gone,
      backoff: { initialMs: 50 },
    });
    informer.start();
    await new Promise((r) => setTimeout(r, 300));
    // Delays of 25–50 ms, then 50–100 ms, …: a handful of relists in 300 ms, not hundreds.
    expect(lister.requests.length).toBeGreaterThanOrEqual(2);
    expect(lister.requests.length).toBeLessThanOrEqual(8);
  });

  it('retries a failing list with backoff and is synced only once it succeeds', async () => {
    lister.failures = [new Error('connection refused'), new Error('connection refused')];
    lister.items = [obj('a', 'one', '1')];
    make();
    informer.start();
    await informer.waitForSync(1000);
    expect(lister.requests).toHaveLength(3);
    expect(informer.stats).toMatchObject({ lists: 1, errors: 2 });
    expect(informer.get('a', 'one')).toBeDefined();
  });

  it('rejects waitForSync after its timeout while the list keeps failing', async () => {
    lister.failures = Array.from({ length: 1000 }, () => new Error('down'));
    make();
    informer.start();
    await expect(informer.waitForSync(30)).rejects.toThrow(/not synced after 30 ms/);
    expect(informer.hasSynced).toBe(false);
  });

  it('abandons a watch that delivers nothing for the idle timeout and starts another', async () => {
    make({ idleTimeoutMs: 40 });
    informer.start();
    const first = await watch.next(0);
    const second = await watch.next(1);
    expect(first.controller.signal.aborted).toBe(true);
    expect(second.query.resourceVersion).toBe('1');
    expect(informer.stats.lastError).toMatch(/watch idle for 40 ms/);
  });

  it('stop() aborts the open watch, stops retrying and rejects pending waits', async () => {
    lister.failures = [new Error('down')];
    make({ backoff: { initialMs: 60_000, maxMs: 60_000 } });
    informer.start();
    const waiting = informer.waitForSync(5000);
    await waitFor('the first list', () => lister.requests.length === 1, { timeoutMs: 2000, intervalMs: 2 });
    const started = Date.now();
    await informer.stop(); // must not wait out the 60 s backoff
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(waiting).rejects.toThrow(/stopped/);
    expect(lister.requests).toHaveLength(1);

    watch = new FakeWatch();
    lister = new FakeList();
    make();
    informer.start();
    const w = await watch.next(0);
    await informer.stop();
    expect(w.controller.signal.aborted).toBe(true);
    w.send('ADDED', obj('a', 'late', '9'));
    expect(informer.list()).toEqual([]);
    expect(watch.calls).toHaveLength(1);
  });

  it('keeps going when a handler throws', async () => {
    make();
    const seen: string[] = [];
    informer.on('add', () => {
      throw new Error('handler bug');
    });
    informer.on('add', (o) => seen.push(objectKey(o)));
    informer.start();
    const w = await watch.next(0);
    w.send('ADDED', obj('a', 'one', '2'));
    w.send('ADDED', obj('a', 'two', '3'));
    expect(seen).toEqual(['a/one', 'a/two']);
  });

  it('resumes at once after the server ends a long-running watch normally', async () => {
    make({ backoff: { initialMs: 60_000, maxMs: 60_000 } });
    informer.start();
    const first = await watch.next(0);
    await new Promise((r) => setTimeout(r, 1100)); // the watch must have lived past the 1 s threshold
    first.end();
    const second = await watch.next(1);
    expect(second.query.resourceVersion).toBe('1');
  });
});

describe('paths and keys', () => {
  it('builds core and group paths, cluster-wide or namespaced', () => {
    expect(apiPath({ version: 'v1', plural: 'configmaps' })).toBe('/api/v1/configmaps');
    expect(apiPath({ version: 'v1', plural: 'configmaps', namespace: 'x' })).toBe('/api/v1/namespaces/x/configmaps');
    expect(apiPath({ group: 'tally.dev', version: 'v1alpha1', plural: 'counternamespaces', namespace: 'x' })).toBe(
      '/apis/tally.dev/v1alpha1/namespaces/x/counternamespaces',
    );
  });

  it('keys objects like client-go and splits keys back', () => {
    expect(objectKey({ metadata: { namespace: 'ns', name: 'n' } })).toBe('ns/n');
    expect(objectKey({ metadata: { name: 'cluster-scoped' } })).toBe('cluster-scoped');
    expect(splitKey('ns/n')).toEqual({ namespace: 'ns', name: 'n' });
    expect(splitKey('n')).toEqual({ namespace: undefined, name: 'n' });
  });
});
