import { randomUUID } from 'node:crypto';
import {
  AcceptWindowExceededError,
  CountOutOfRangeError,
  InvalidArgumentError,
  NamespaceNotFoundError,
  PayloadTooLargeError,
  RequestTimeoutError,
  TallyClient,
  UnavailableError,
  type TallyClientOptions,
} from '../../../client/src';
import { requireEnv } from '../../support/env';
import {
  dropKeyspaces,
  keyspaceOf,
  startInProcess,
  uniqueSuffix,
  type InProcessRuntime,
} from '../../support/runtime-harness';
import { TcpProxy } from '../../support/tcp-proxy';
import { recordingFetch, withAcceptLimit, type Sent } from './support';

/**
 * The client against a real runtime: in front of it a proxy that loses, delays or cuts the runtime's answers, behind
 * it a proxy to Cassandra that the test cuts for real 503s.
 */
describe('TallyClient against the runtime', () => {
  const run = uniqueSuffix();
  const AC = `cl-ac-${run}`; // Accurate, 10 s accept limit: room for retries, exact reads at once
  const SHORT = `cl-short-${run}`; // Accurate, 2 s accept limit
  const EV = `cl-ev-${run}`; // Eventual, FAST (1 s)
  const BE = `cl-be-${run}`;
  let cassandra: TcpProxy;
  let front: TcpProxy;
  let rt: InProcessRuntime;

  beforeAll(async () => {
    cassandra = await TcpProxy.forAddress(requireEnv('CASSANDRA_CONTACT_POINTS')).start();
    rt = await startInProcess(
      [
        { name: AC, counterType: 'Accurate', spec: withAcceptLimit(10) },
        { name: SHORT, counterType: 'Accurate', spec: withAcceptLimit(2) },
        { name: EV, counterType: 'Eventual' },
        { name: BE, counterType: 'BestEffort' },
      ],
      { CASSANDRA_CONTACT_POINTS: cassandra.address, CASSANDRA_REQUEST_TIMEOUT_MS: '500' },
    );
    front = await new TcpProxy('127.0.0.1', Number(new URL(rt.url).port)).start();
  });
  afterEach(() => {
    cassandra.restore();
    front.restore();
  });
  afterAll(async () => {
    await rt?.close();
    await Promise.all([cassandra?.close(), front?.close()]);
    await dropKeyspaces([keyspaceOf(AC), keyspaceOf(SHORT), keyspaceOf(EV)]);
  });

  const viaProxy = (opts: Partial<TallyClientOptions> = {}) => {
    const rec = recordingFetch();
    const client = new TallyClient({ url: `http://${front.address}`, fetch: rec.fetch, ...opts });
    return { client, sent: rec.sent };
  };
  /** The exact count, read straight from the runtime. */
  const countOf = async (namespace: string, counter_name: string) =>
    (await new TallyClient({ url: rt.url }).getCount({ namespace, counter_name })).count;
  /** Runs the call while the proxy's fault lasts another `ms`. */
  const healedAfter = async <T>(ms: number, proxy: TcpProxy, call: () => Promise<T>): Promise<T> => {
    const timer = setTimeout(() => proxy.restore(), ms);
    try {
      return await call();
    } finally {
      clearTimeout(timer);
    }
  };
  const tokens = (sent: Sent[]) => new Set(sent.map((s) => JSON.stringify(s.body?.idempotency_token)));

  it('adds, reads, clears and lists namespaces', async () => {
    const client = new TallyClient({ url: rt.url });
    const counter_name = `basic-${randomUUID()}`;
    const added = await client.addCount({ namespace: AC, counter_name, delta: 5 });
    expect(added.idempotency_token.token).toMatch(/^[0-9a-f-]{36}$/);
    const after = await client.addAndGetCount({ namespace: AC, counter_name, delta: -2 });
    expect(after.count).toBe(3);
    expect(await client.getCount({ namespace: AC, counter_name })).toMatchObject({
      count: 3,
      as_of: expect.any(String),
    });
    expect((await client.clearCount({ namespace: AC, counter_name })).count).toBe(0);
    expect((await client.getCount({ namespace: AC, counter_name })).count).toBe(0);
    const list = await client.listNamespaces();
    expect(list.namespaces.find((n) => n.name === SHORT)).toMatchObject({
      counter_type: 'Accurate',
      config: { eventStorage: { acceptLimitSeconds: 2 } },
    });
  });

  it('an add whose answer was lost is sent again with the same token and counted once', async () => {
    const { client, sent } = viaProxy({ attemptTimeoutMs: 400 });
    const counter_name = `lost-${randomUUID()}`;
    front.dropReplies();
    await healedAfter(1000, front, () => client.addCount({ namespace: AC, counter_name, delta: 7 }));
    expect(sent.filter((s) => s.answer === 'TimeoutError').length).toBeGreaterThanOrEqual(2);
    expect(sent.at(-1)!.answer).toBe('200');
    // Every attempt reached the runtime and was applied there; the token made it one add.
    expect(await countOf(AC, counter_name)).toBe(7);
    expect(tokens(sent).size).toBe(1);
  });

  it('on 503 waits at least Retry-After before the next attempt, and the add counts once', async () => {
    const { client, sent } = viaProxy();
    const counter_name = `unavailable-${randomUUID()}`;
    cassandra.cut();
    await healedAfter(1500, cassandra, () => client.addCount({ namespace: AC, counter_name, delta: 3 }));
    const refused = sent.filter((s) => s.answer === '503');
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const [i, s] of sent.entries()) {
      if (s.answer !== '503' || i === sent.length - 1) continue;
      expect(s.retryAfter).toMatch(/^\d+$/);
      expect(sent[i + 1]!.atMs - s.answeredAtMs!).toBeGreaterThanOrEqual(Number(s.retryAfter) * 1000 - 5);
    }
    expect(sent.at(-1)!.answer).toBe('200');
    expect(await countOf(AC, counter_name)).toBe(3);
    expect(tokens(sent).size).toBe(1);
  });

  it('stops retrying at the accept window with AcceptWindowExceededError; what it may have counted counts once', async () => {
    const { client, sent } = viaProxy({ attemptTimeoutMs: 250 });
    const counter_name = `window-${randomUUID()}`;
    // Learnt before the fault: a listing lost with the answers would leave the client at the 5 s default.
    await client.listNamespaces();
    front.dropReplies();
    const started = Date.now();
    const err = (await client
      .addCount({ namespace: SHORT, counter_name, delta: 4 })
      .catch((e: unknown) => e)) as AcceptWindowExceededError;
    expect(err).toBeInstanceOf(AcceptWindowExceededError);
    expect(err.maybeCounted).toBe(true);
    expect(err.lastError).toBeInstanceOf(RequestTimeoutError);
    expect(err.message).toMatch(/accept limit 2 s/); // learnt from GET /v1/namespaces
    // 2 s limit less the 1 s margin: no attempt starts after generation_time + 1 s.
    const generated = Date.parse(err.token.generation_time);
    expect(Math.max(...sent.map((s) => s.atMs))).toBeLessThan(generated + 1000);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(sent.length).toBeGreaterThanOrEqual(2);
    front.restore();
    expect(await countOf(SHORT, counter_name)).toBe(4);
    expect(tokens(sent).size).toBe(1);
  });

  it('hedges a slow call to a second runtime address with the same token, counted once', async () => {
    const slow = await new TcpProxy('127.0.0.1', Number(new URL(rt.url).port)).start();
    try {
      slow.delayReplies(1500);
      const rec = recordingFetch();
      const client = new TallyClient({ url: [rt.url, `http://${slow.address}`], fetch: rec.fetch, hedgeAfterMs: 100 });
      const counter_name = `hedge-${randomUUID()}`;
      await client.listNamespaces(); // from the fast address; the add's first attempt then goes to the slow one
      rec.sent.length = 0;
      const started = Date.now();
      const answer = await client.addAndGetCount({ namespace: AC, counter_name, delta: 6 });
      expect(Date.now() - started).toBeLessThan(1000);
      expect(answer.count).toBe(6);
      expect(rec.sent.map((s) => new URL(s.url).port)).toEqual([String(slow.port), new URL(rt.url).port]);
      expect(tokens(rec.sent).size).toBe(1);
      // The slow attempt was applied too; once its answer is in (and thrown away), still one add.
      await new Promise((r) => setTimeout(r, 1600));
      expect(await countOf(AC, counter_name)).toBe(6);
      // Without hedging the same client waits for the slow runtime.
      const unhedged = Date.now();
      await client.addCount({ namespace: AC, counter_name, delta: 1 }, { hedgeAfterMs: null });
      expect(Date.now() - unhedged).toBeGreaterThanOrEqual(1400);
    } finally {
      await slow.close();
    }
  });

  it('answers each refusal with its typed error, sent once', async () => {
    const cases: [() => Promise<unknown>, new (...a: never[]) => Error, RegExp][] = [];
    const { client, sent } = viaProxy();
    const c = `typed-${randomUUID()}`;
    cases.push(
      [() => client.addCount({ namespace: AC, counter_name: '', delta: 1 }), InvalidArgumentError, /counter_name/],
      [
        () =>
          client.addCount({
            namespace: AC,
            counter_name: c,
            delta: 1,
            idempotency_token: { token: randomUUID(), generation_time: new Date(Date.now() - 60_000).toISOString() },
          }),
        InvalidArgumentError,
        /idempotency_token\.generation_time/,
      ],
      [
        () => client.addCount({ namespace: `nope-${run}`, counter_name: c, delta: 1 }),
        NamespaceNotFoundError,
        /namespace/,
      ],
      [() => client.addCount({ namespace: BE, counter_name: c, delta: 1 }), CountOutOfRangeError, /delta/],
      [() => client.getCount({ namespace: AC, counter_name: 'x'.repeat(20_000) }), PayloadTooLargeError, /^$/],
    );
    await client.addCount({ namespace: BE, counter_name: c, delta: Number.MAX_SAFE_INTEGER });
    for (const [call, type, field] of cases) {
      sent.length = 0;
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(type);
      expect((err as { field?: string }).field ?? '').toMatch(field);
      expect(sent).toHaveLength(1);
    }
  });

  it('an Eventual add is read back once rolled up', async () => {
    const client = new TallyClient({ url: rt.url });
    const counter_name = `ev-${randomUUID()}`;
    await client.addCount({ namespace: EV, counter_name, delta: 9 });
    const deadline = Date.now() + 20_000;
    let count = NaN;
    while (Date.now() < deadline && count !== 9) {
      count = (await client.getCount({ namespace: EV, counter_name })).count;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(count).toBe(9);
  });

  it('with Cassandra down, an add gives up at the accept window, its last error the 503', async () => {
    const { client, sent } = viaProxy();
    cassandra.cut();
    const err = await client
      .addCount({ namespace: SHORT, counter_name: `down-${randomUUID()}`, delta: 1 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AcceptWindowExceededError);
    expect((err as AcceptWindowExceededError).lastError).toBeInstanceOf(UnavailableError);
    expect(sent.every((s) => s.answer === '503')).toBe(true);
  });
});
