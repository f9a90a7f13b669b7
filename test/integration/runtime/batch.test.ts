import { randomUUID } from 'node:crypto';
import { LIMITS } from '../../../runtime/http/openapi';
import { createCassandraClient, cassandraSettingsFromEnv } from '../../../store/client';
import { waitFor } from '../../stack/wait';
import {
  call,
  dropKeyspaces,
  FAST,
  keyspaceOf,
  stackEnv,
  startInProcess,
  uniqueSuffix,
  type InProcessRuntime,
} from '../../support/runtime-harness';
import { TcpProxy } from '../../support/tcp-proxy';
import { readEventLog } from '../faults/truth';

const run = uniqueSuffix();
const EV = `batch-ev-${run}`;
const AC = `batch-ac-${run}`;
const BE = `batch-be-${run}`;
/** Accept tokens 30 s old, so that a batch can be sent again well after its tokens were made. */
const RETRY = { eventStorage: { ...FAST.eventStorage, acceptLimitSeconds: 30, maxFutureSkewSeconds: 5 } };
const EV_R = `batch-evr-${run}`;
const AC_R = `batch-acr-${run}`;
const DURABLE = [EV, AC, EV_R, AC_R];

const token = () => ({ token: randomUUID(), generation_time: new Date().toISOString() });

interface Result {
  status: number;
  count?: number;
  as_of?: string;
  idempotency_token?: { token: string; generation_time: string };
  error?: { code: string; message: string; field?: string };
}

describe('AddCounts and GetCounts against the real stack', () => {
  let rt: InProcessRuntime;
  const cassandra = createCassandraClient(cassandraSettingsFromEnv(stackEnv()));

  beforeAll(async () => {
    rt = await startInProcess([
      { name: EV, counterType: 'Eventual' },
      { name: AC, counterType: 'Accurate' },
      { name: BE, counterType: 'BestEffort' },
      { name: EV_R, counterType: 'Eventual', spec: RETRY },
      { name: AC_R, counterType: 'Accurate', spec: RETRY },
    ]);
  });
  afterAll(async () => {
    await rt.close();
    await cassandra.shutdown();
    await dropKeyspaces(DURABLE.map(keyspaceOf));
  });

  const batch = async (op: 'AddCounts' | 'GetCounts', items: unknown[], url = rt.url) => {
    const reply = await call(url, op, { items });
    expect(reply.status).toBe(200);
    return reply.body.results as Result[];
  };
  const counts = async (items: { namespace: string; counter_name: string }[]) =>
    (
      await batch(
        'GetCounts',
        items.map(({ namespace, counter_name }) => ({ namespace, counter_name })),
      )
    ).map((r) => r.count ?? r.error?.code);
  /** Each counter's events in the log of a namespace: [counter, how many, their sum]. */
  const logged = async (namespace: string, counters: string[]) => {
    const events = await readEventLog(cassandra, keyspaceOf(namespace));
    return counters.map((c) => {
      const mine = events.filter((e) => e.counter === c);
      return [c, mine.length, mine.reduce((sum, e) => sum + e.delta, 0)];
    });
  };

  it('answers a result per item, in the order of the items, across Eventual, Accurate and BestEffort', async () => {
    const [ev, ac, be] = [EV, AC, BE].map((namespace) => ({ namespace, counter_name: `c-${randomUUID()}` }));
    const sent: { namespace: string; counter_name: string; delta: number; idempotency_token?: { token: string } }[] = [
      { ...ev!, delta: 3, idempotency_token: token() },
      { ...ac!, delta: 5, idempotency_token: token() },
      { ...be!, delta: 7 },
      { ...ac!, delta: -2, idempotency_token: token() },
      { ...ev!, delta: 4, idempotency_token: token() },
    ];
    const results = await batch('AddCounts', sent);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(results.map((r) => r.idempotency_token?.token)).toEqual([
      sent[0]!.idempotency_token!.token,
      sent[1]!.idempotency_token!.token,
      expect.stringMatching(/^[0-9a-f-]{36}$/),
      sent[3]!.idempotency_token!.token,
      sent[4]!.idempotency_token!.token,
    ]);
    const never = { namespace: AC, counter_name: `never-${randomUUID()}` };
    expect(await counts([ac!, be!, never])).toEqual([3, 7, 0]);
    // Eventual reads the last rollup: the batch's adds arrive with it.
    await waitFor('the Eventual counter to roll up to 7', async () => {
      const [count] = await counts([ev!]);
      if (count !== 7) throw new Error(`count ${String(count)}`);
      return true;
    });
    const read = await batch('GetCounts', [be, ev, ac]);
    expect(read.map((r) => [r.status, r.count, typeof r.as_of])).toEqual([
      [200, 7, 'undefined'],
      [200, 7, 'string'],
      [200, 3, 'string'],
    ]);
  });

  it('fails a bad item alone, with the single call answer, and applies the others', async () => {
    const c = (namespace: string) => ({ namespace, counter_name: `mixed-${randomUUID()}` });
    const [good, alsoGood, be] = [c(AC), c(AC), c(BE)];
    const results = await batch('AddCounts', [
      { ...good, delta: 2, idempotency_token: token() },
      { ...c('no-such-namespace'), delta: 1 },
      { ...c(AC), delta: 'x' },
      { ...c(AC), delta: 1.5, idempotency_token: token() },
      { ...c(AC), delta: 1, idempotency_token: { token: 'old', generation_time: new Date(Date.now() - 60_000) } },
      { ...be, delta: -4 },
      { ...alsoGood, delta: 9, idempotency_token: token() },
    ]);
    expect(results.map((r) => [r.status, r.error?.code, r.error?.field])).toEqual([
      [200, undefined, undefined],
      [404, 'NAMESPACE_NOT_FOUND', 'namespace'],
      [400, 'INVALID_ARGUMENT', 'delta'],
      [400, 'INVALID_ARGUMENT', 'delta'],
      [400, 'INVALID_ARGUMENT', 'idempotency_token.generation_time'],
      [200, undefined, undefined],
      [200, undefined, undefined],
    ]);
    expect(results[1]!.error!.message).toMatch(/"no-such-namespace" is not served here/);
    expect(results[4]!.error!.message).toMatch(/outside the accepted window/);
    expect(await counts([good, be, alsoGood])).toEqual([2, -4, 9]);
    const reads = await batch('GetCounts', [
      good,
      { namespace: 'no-such-namespace', counter_name: 'x' },
      { ...be, x: 1 },
    ]);
    expect(reads.map((r) => [r.status, r.error?.code])).toEqual([
      [200, undefined],
      [404, 'NAMESPACE_NOT_FOUND'],
      [400, 'INVALID_ARGUMENT'],
    ]);
  });

  it(`refuses more than ${LIMITS.batchMaxItems} items with 400 and a body over ${LIMITS.batchBodyMaxBytes} bytes with 413, counting nothing`, async () => {
    const counter = { namespace: AC, counter_name: `limits-${randomUUID()}` };
    const items = (n: number) => Array.from({ length: n }, () => ({ ...counter, delta: 1 }));
    const tooMany = await call(rt.url, 'AddCounts', { items: items(LIMITS.batchMaxItems + 1) });
    expect([tooMany.status, tooMany.body.error]).toEqual([
      400,
      {
        code: 'INVALID_ARGUMENT',
        message: `items must NOT have more than ${LIMITS.batchMaxItems} items`,
        field: 'items',
      },
    ]);
    const padded = JSON.stringify({ items: items(1), pad: 'x'.repeat(LIMITS.batchBodyMaxBytes) });
    const tooLarge = await call(rt.url, 'AddCounts', padded);
    expect([tooLarge.status, tooLarge.body.error]).toEqual([
      413,
      { code: 'PAYLOAD_TOO_LARGE', message: `the body is larger than ${LIMITS.batchBodyMaxBytes} bytes` },
    ]);
    expect(await counts([counter])).toEqual([0]);
    // The limit is the batch's, not the single calls' 16 KiB.
    const big = items(LIMITS.batchMaxItems).map((i, n) => ({ ...i, counter_name: `${i.counter_name}-${n}` }));
    expect(JSON.stringify({ items: big }).length).toBeGreaterThan(3 * LIMITS.bodyMaxBytes);
    expect((await batch('AddCounts', big)).every((r) => r.status === 200)).toBe(true);
  });

  it('counts each item of a batch sent twice with the same tokens once', async () => {
    const items = [EV_R, AC_R, EV_R, AC_R].map((namespace, i) => ({
      namespace,
      counter_name: `twice-${i}-${randomUUID()}`,
      delta: i + 1,
      idempotency_token: token(),
    }));
    const first = await batch('AddCounts', items);
    const again = await batch('AddCounts', items);
    expect(again).toEqual(first);
    expect(first.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(await counts([items[1]!, items[3]!])).toEqual([2, 4]);
    const names = items.map((i) => i.counter_name);
    expect([...(await logged(EV_R, names)), ...(await logged(AC_R, names))].filter(([, n]) => n !== 0)).toEqual([
      [names[0], 1, 1],
      [names[2], 1, 3],
      [names[1], 1, 2],
      [names[3], 1, 4],
    ]);
  });

  it('counts each item once when a batch is sent again after its connection was cut mid-way', async () => {
    const proxy = await new TcpProxy('127.0.0.1', Number(new URL(rt.url).port)).start();
    try {
      const items = Array.from({ length: 200 }, (_, i) => ({
        namespace: i % 2 ? AC_R : EV_R,
        counter_name: `cut-${i}-${randomUUID()}`,
        delta: (i % 7) + 1,
        idempotency_token: token(),
      }));
      const body = JSON.stringify({ items });
      const sent = fetch(`http://${proxy.address}/v1/counter/AddCounts`, { method: 'POST', body });
      // Cut once the runtime has counted some of the items, and not yet all (16 run at a time).
      const itemsDone = async () => {
        const text = await (await fetch(`${rt.url}/metrics`)).text();
        return [...text.matchAll(/^tally_requests_total\{op="AddCounts",[^}]*\} (\d+)$/gm)].reduce(
          (sum, m) => sum + Number(m[1]),
          0,
        );
      };
      const before = await itemsDone();
      await waitFor('some items to be counted', async () => (await itemsDone()) > before || undefined, {
        timeoutMs: 10_000,
        intervalMs: 2,
      });
      proxy.cut();
      const cutAfter = (await itemsDone()) - before;
      await expect(sent).rejects.toThrow();
      expect(cutAfter).toBeLessThan(items.length);
      proxy.restore();
      const retried = await call(`http://${proxy.address}`, 'AddCounts', body);
      expect(retried.status).toBe(200);
      const results = retried.body.results as Result[];
      expect(results.every((r) => r.status === 200)).toBe(true);
      expect(results.map((r) => r.idempotency_token)).toEqual(items.map((i) => i.idempotency_token));
      const names = items.map((i) => i.counter_name);
      const log = [...(await logged(EV_R, names)), ...(await logged(AC_R, names))].filter(([, n]) => n !== 0);
      const expected = items.map((i) => [i.counter_name, 1, i.delta]);
      const byName = (a: unknown[], b: unknown[]) => String(a[0]).localeCompare(String(b[0]));
      expect(log.sort(byName)).toEqual(expected.sort(byName));
      const accurate = items.filter((i) => i.namespace === AC_R);
      expect(await counts(accurate)).toEqual(accurate.map((i) => i.delta));
    } finally {
      await proxy.close();
    }
  });

  it('names the token it made for an add sent without one; sent again with it, the add counts once', async () => {
    const counter = { namespace: AC_R, counter_name: `made-${randomUUID()}` };
    const [first] = await batch('AddCounts', [{ ...counter, delta: 6 }]);
    expect(first!.status).toBe(200);
    const [again] = await batch('AddCounts', [{ ...counter, delta: 6, idempotency_token: first!.idempotency_token }]);
    expect(again).toEqual(first);
    expect(await counts([counter])).toEqual([6]);
  });
});
