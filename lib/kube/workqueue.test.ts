import { waitFor } from '../../test/stack/wait';
import {
  ExponentialBackoff,
  WorkQueue,
  type ProcessedInfo,
  type QueueResult,
  type WorkQueueMetrics,
} from './workqueue';

const done: QueueResult = { kind: 'done' };

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets queued microtasks and resolved promises run (the queue dispatches keys on a microtask). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('ExponentialBackoff', () => {
  it('starts at 5 ms, doubles per failure, caps at 1000 s, and is per key', () => {
    const backoff = new ExponentialBackoff();
    const delays = Array.from({ length: 8 }, () => backoff.when('a'));
    expect(delays).toEqual([5, 10, 20, 40, 80, 160, 320, 640]);
    expect(backoff.when('b')).toBe(5);
    for (let i = 0; i < 40; i++) backoff.when('a');
    expect(backoff.when('a')).toBe(1_000_000);
    expect(backoff.retries('a')).toBe(49);
  });

  it('starts again from the base once the key is forgotten', () => {
    const backoff = new ExponentialBackoff(5, 1000);
    backoff.when('a');
    backoff.when('a');
    backoff.forget('a');
    expect(backoff.retries('a')).toBe(0);
    expect(backoff.when('a')).toBe(5);
  });
});

describe('WorkQueue', () => {
  let queue: WorkQueue;

  afterEach(async () => {
    jest.useRealTimers();
    await queue?.shutDown();
  });

  it('holds a key once however often it is added before it is processed', async () => {
    queue = new WorkQueue({ concurrency: 4 });
    for (const key of ['a', 'b', 'a', 'a', 'c', 'b']) queue.add(key);
    expect(queue.depth).toBe(3);
    const seen: string[] = [];
    queue.start(async (key) => {
      seen.push(key);
      return done;
    });
    await waitFor('three keys processed', () => seen.length === 3 && queue.inFlight === 0);
    await settle();
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(queue.depth).toBe(0);
  });

  it('never processes one key in two workers, while different keys run in parallel up to the bound', async () => {
    queue = new WorkQueue({ concurrency: 2 });
    const running = new Set<string>();
    let maxParallel = 0;
    const overlaps: string[] = [];
    const releases = new Map<string, (r: QueueResult) => void>();
    const runs: string[] = [];
    queue.start((key) => {
      if (running.has(key)) overlaps.push(key);
      running.add(key);
      runs.push(key);
      maxParallel = Math.max(maxParallel, running.size);
      const gate = deferred<QueueResult>();
      releases.set(key, gate.resolve);
      return gate.promise.finally(() => running.delete(key));
    });
    const release = (key: string): void => {
      const r = releases.get(key)!;
      releases.delete(key);
      r(done);
    };

    queue.add('a');
    queue.add('b');
    queue.add('c');
    await waitFor('two keys running', () => running.size === 2);
    expect([...running]).toEqual(['a', 'b']);
    expect(queue.depth).toBe(1); // c waits for a free worker

    // 'a' is added again (three times) while it is processed: marked dirty, not handed to the idle capacity.
    queue.add('a');
    queue.add('a');
    queue.add('a');
    await settle();
    expect(running.size).toBe(2);
    expect(queue.depth).toBe(1);

    release('b'); // frees a worker: c runs, the dirty a must still wait for its own run to end
    await waitFor('c runs', () => running.has('c'));
    expect([...running].sort()).toEqual(['a', 'c']);
    expect(runs).toEqual(['a', 'b', 'c']);

    release('a'); // a's first run ends: it is processed again, once
    await waitFor('a processed again', () => runs.length === 4);
    expect(runs[3]).toBe('a');
    release('a');
    release('c');
    await waitFor('all done', () => running.size === 0 && queue.inFlight === 0);
    await settle();
    expect(runs).toEqual(['a', 'b', 'c', 'a']);
    expect(overlaps).toEqual([]);
    expect(maxParallel).toBe(2);
  });

  it('retries a failing key with growing delays and resets the backoff once it succeeds', async () => {
    jest.useFakeTimers();
    queue = new WorkQueue({ rateLimiter: new ExponentialBackoff(100, 1000) });
    const attempts: number[] = [];
    let failuresLeft = 5;
    const start = Date.now();
    queue.start(async () => {
      attempts.push(Date.now() - start);
      if (failuresLeft-- > 0) return { kind: 'error', error: new Error('not yet') };
      return done;
    });
    queue.add('k');
    await jest.advanceTimersByTimeAsync(5000);
    // Failures at 0, 100, 300, 700, 1500 (delays 100, 200, 400, 800), then the cap: 1000 → success at 2500.
    expect(attempts).toEqual([0, 100, 300, 700, 1500, 2500]);
    expect(queue.numRequeues('k')).toBe(0);

    // The next failure starts from the base delay again.
    failuresLeft = 1;
    queue.add('k');
    await jest.advanceTimersByTimeAsync(99);
    expect(attempts).toHaveLength(7);
    await jest.advanceTimersByTimeAsync(1);
    expect(attempts).toHaveLength(8);
    expect(attempts[7]! - attempts[6]!).toBe(100);
  });

  it('treats a thrown error like an error result and reports every result', async () => {
    jest.useFakeTimers();
    const reports: ProcessedInfo[] = [];
    queue = new WorkQueue({ rateLimiter: new ExponentialBackoff(50, 1000), onProcessed: (i) => reports.push(i) });
    let calls = 0;
    queue.start(async () => {
      if (calls++ === 0) throw new Error('boom');
      return done;
    });
    queue.add('k');
    await jest.advanceTimersByTimeAsync(0);
    expect(queue.numRequeues('k')).toBe(1);
    await jest.advanceTimersByTimeAsync(50);
    expect(calls).toBe(2);
    expect(reports.map((r) => r.result.kind)).toEqual(['error', 'done']);
    expect((reports[0]!.result as { error: Error }).error.message).toBe('boom');
    expect(queue.numRequeues('k')).toBe(0);
  });

  it("reports client-go's workqueue metrics: adds, retries, depth, time queued and time worked", async () => {
    jest.useFakeTimers();
    const seen = { added: 0, retried: 0, queued: [] as number[], worked: [] as number[], depth: [] as number[] };
    const metrics: WorkQueueMetrics = {
      added: () => seen.added++,
      retried: () => seen.retried++,
      queued: (s) => seen.queued.push(s),
      worked: (s) => seen.worked.push(s),
      depth: (n) => seen.depth.push(n),
    };
    queue = new WorkQueue({ rateLimiter: new ExponentialBackoff(100, 1000), metrics });
    queue.add('a');
    queue.add('a'); // already waiting: not an add
    queue.add('b');
    expect([seen.added, seen.depth]).toEqual([2, [1, 2]]);
    let failA = true;
    queue.start(async (key) => {
      await new Promise((r) => setTimeout(r, 30));
      if (key === 'a' && failA) {
        failA = false;
        return { kind: 'error', error: new Error('not yet') };
      }
      return done;
    });
    await jest.advanceTimersByTimeAsync(1000);
    // a fails and comes back after 100 ms (a retry, then an add); b waits the 30 ms a takes.
    expect(seen.retried).toBe(1);
    expect(seen.added).toBe(3);
    expect(seen.queued.map((s) => Math.round(s * 1000))).toEqual([0, 30, 0]);
    expect(seen.worked.map((s) => Math.round(s * 1000))).toEqual([30, 30, 30]);
    expect(seen.depth.at(-1)).toBe(0);
  });

  it('adds a key after the given delay, keeping the earlier of two delayed adds', async () => {
    jest.useFakeTimers();
    queue = new WorkQueue();
    const seen: [string, number][] = [];
    const start = Date.now();
    queue.start(async (key) => {
      seen.push([key, Date.now() - start]);
      return done;
    });
    queue.addAfter('late', 1000);
    queue.addAfter('early', 500);
    queue.addAfter('early', 800); // later than the pending add: ignored
    queue.addAfter('moved', 900);
    queue.addAfter('moved', 300); // earlier: replaces the pending add
    await jest.advanceTimersByTimeAsync(299);
    expect(seen).toEqual([]);
    await jest.advanceTimersByTimeAsync(2000);
    expect(seen).toEqual([
      ['moved', 300],
      ['early', 500],
      ['late', 1000],
    ]);
  });

  it('processes a key again after a requeue result', async () => {
    jest.useFakeTimers();
    queue = new WorkQueue();
    const at: number[] = [];
    const start = Date.now();
    queue.start(async () => {
      at.push(Date.now() - start);
      return at.length < 3 ? { kind: 'requeue', afterMs: 250, why: 'polling' } : done;
    });
    queue.add('k');
    await jest.advanceTimersByTimeAsync(2000);
    expect(at).toEqual([0, 250, 500]);
  });

  it('on shutdown waits for keys being processed, then drops queued and delayed ones', async () => {
    jest.useFakeTimers();
    queue = new WorkQueue({ concurrency: 1 });
    const gate = deferred<QueueResult>();
    const seen: string[] = [];
    let finished = false;
    queue.start(async (key) => {
      seen.push(key);
      const result = await gate.promise;
      finished = true;
      return result;
    });
    queue.add('a');
    queue.add('b');
    queue.addAfter('c', 10);
    await settle(); // fake timers: the queue dispatches a on a microtask
    expect(seen).toEqual(['a']);

    let shutDown = false;
    const stopping = queue.shutDown().then(() => (shutDown = true));
    queue.add('d');
    await settle();
    expect(shutDown).toBe(false); // a is still in flight
    gate.resolve({ kind: 'error', error: new Error('requeue must be ignored while shutting down') });
    await stopping;
    expect(finished).toBe(true);
    await jest.advanceTimersByTimeAsync(1000); // past c's delay and a's backoff: dropped timers must not fire
    expect(seen).toEqual(['a']);
    expect(queue.depth).toBe(0);
  });
});
