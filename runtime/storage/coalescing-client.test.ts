import type { Client, QueryOptions } from 'cassandra-driver';
import { CoalescingClient, MAX_WRITES_PER_BATCH } from './coalescing-client';

type Call =
  | { kind: 'execute'; query: string; params: unknown[] }
  | { kind: 'batch'; queries: { query: string; params: unknown[] }[]; options: QueryOptions };

/** Records what would reach the driver; `fail` makes the named kind of call reject. */
function fakeDriver(fail?: 'execute' | 'batch') {
  const calls: Call[] = [];
  const client = {
    execute(query: string, params: unknown[]) {
      calls.push({ kind: 'execute', query, params });
      return fail === 'execute' ? Promise.reject(new Error('execute failed')) : Promise.resolve({ query });
    },
    batch(queries: { query: string; params: unknown[] }[], options: QueryOptions) {
      calls.push({ kind: 'batch', queries, options });
      return fail === 'batch' ? Promise.reject(new Error('batch failed')) : Promise.resolve({ batch: queries.length });
    },
  };
  return { calls, client: client as unknown as Client };
}

const WRITE = 'INSERT INTO ks.events (a) VALUES (?)';
const READ = 'SELECT a FROM ks.events WHERE a = ?';
const options = { prepare: true, isIdempotent: true };

describe('CoalescingClient', () => {
  it('sends nothing until the turn ends, then groups the writes of the turn into unlogged batches of bounded size', async () => {
    const { calls, client } = fakeDriver();
    const c = new CoalescingClient(client);
    const n = 2 * MAX_WRITES_PER_BATCH + 5;
    const writes = Array.from({ length: n }, (_, i) => c.write(WRITE, [i], options));
    expect(calls).toHaveLength(0);
    await Promise.all(writes);
    expect(calls.map((x) => (x.kind === 'batch' ? x.queries.length : 'execute'))).toEqual([
      MAX_WRITES_PER_BATCH,
      MAX_WRITES_PER_BATCH,
      5,
    ]);
    const batches = calls.filter((x) => x.kind === 'batch');
    expect(batches.flatMap((b) => b.queries.map((q) => q.params[0]))).toEqual(Array.from({ length: n }, (_, i) => i));
    for (const b of batches) expect(b.options).toMatchObject({ ...options, logged: false });
  });

  it('sends a lone write and every read as a plain statement', async () => {
    const { calls, client } = fakeDriver();
    const c = new CoalescingClient(client);
    await Promise.all([c.write(WRITE, [1], options), c.execute(READ, [2], options), c.execute(READ, [3], options)]);
    expect(calls).toEqual([
      { kind: 'execute', query: READ, params: [2] },
      { kind: 'execute', query: READ, params: [3] },
      { kind: 'execute', query: WRITE, params: [1] },
    ]);
  });

  it('fails every write of a failed batch, so none of them is acknowledged', async () => {
    const { client } = fakeDriver('batch');
    const c = new CoalescingClient(client);
    const results = await Promise.allSettled([c.write(WRITE, [1], options), c.write(WRITE, [2], options)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });

  it('starts a new group in the next turn', async () => {
    const { calls, client } = fakeDriver();
    const c = new CoalescingClient(client);
    await c.write(WRITE, [1], options);
    await Promise.all([c.write(WRITE, [2], options), c.write(WRITE, [3], options)]);
    expect(calls.map((x) => x.kind)).toEqual(['execute', 'batch']);
  });
});
