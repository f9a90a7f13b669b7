import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TallyClient, type TallyClientOptions } from './client';
import {
  AcceptWindowExceededError,
  ConnectionError,
  CountCorruptError,
  CountOutOfRangeError,
  InvalidArgumentError,
  NamespaceNotFoundError,
  PayloadTooLargeError,
  RequestTimeoutError,
  RetriesExhaustedError,
  RouteNotFoundError,
  ServerError,
  UnavailableError,
  UnsupportedEncodingError,
} from './errors';

/** What the fake runtime does with one request. */
type Reply =
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | 'refuse' // connection refused: never sent
  | 'reset' // connection reset after sending
  | 'hang'; // no answer (until the attempt times out)

interface Seen {
  url: string;
  method: string;
  body: Record<string, unknown> | undefined;
  headers: Record<string, string>;
  atMs: number;
}

const T0 = Date.parse('2026-03-01T12:00:00Z');
const ok = (body: unknown = { idempotency_token: {} }): Reply => ({ status: 200, body });
const unavailable = (retryAfter = '1'): Reply => ({
  status: 503,
  body: { error: { code: 'UNAVAILABLE', message: 'Cassandra is unavailable' } },
  headers: { 'retry-after': retryAfter },
});
const refused = (status: number, code: string, field?: string): Reply => ({
  status,
  body: { error: { code, message: `planted ${code}`, ...(field ? { field } : {}) } },
});
const listing = (name: string, counterType: string, acceptLimitSeconds: number): Reply =>
  ok({
    namespaces: [{ name, counter_type: counterType, ready: true, config: { eventStorage: { acceptLimitSeconds } } }],
    errors: [],
  });

/**
 * A client over a scripted fake runtime and a virtual clock: sleeps advance the clock at once, so backoff, Retry-After
 * and the accept window are exact. `listNamespaces` answers GET /v1/namespaces (default: nothing known, 404).
 */
function harness(
  counter: (n: number) => Reply,
  opts: Partial<TallyClientOptions> & { listNamespaces?: () => Reply } = {},
) {
  const clock = { now: T0 };
  const seen: Seen[] = [];
  const sleeps: number[] = [];
  let n = 0;
  const fakeFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = input instanceof Request ? input.url : input instanceof URL ? input.href : input;
    const listed = url.endsWith('/v1/namespaces');
    const reply = listed ? (opts.listNamespaces ?? (() => refused(404, 'NOT_FOUND')))() : counter(++n);
    if (!listed)
      seen.push({
        url,
        method: init.method ?? 'GET',
        body: init.body ? (JSON.parse(init.body as string) as Record<string, unknown>) : undefined,
        headers: { ...(init.headers as Record<string, string>) },
        atMs: clock.now,
      });
    const code = (c: string) => new TypeError('fetch failed', { cause: Object.assign(new Error(c), { code: c }) });
    if (reply === 'refuse') throw code('ECONNREFUSED');
    if (reply === 'reset') throw code('ECONNRESET');
    if (reply === 'hang')
      return new Promise((_, reject) =>
        init.signal!.addEventListener('abort', () => reject(init.signal!.reason as Error)),
      );
    return new Response(reply.body === undefined ? '' : JSON.stringify(reply.body), {
      status: reply.status,
      headers: { 'content-type': 'application/json', ...reply.headers },
    });
  };
  const client = new TallyClient({
    url: ['http://a.test', 'http://b.test'],
    attemptTimeoutMs: 30,
    backoff: { baseDelayMs: 100, maxDelayMs: 400 },
    random: () => 0.5,
    ...opts,
    fetch: fakeFetch,
    now: () => clock.now,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.now += ms;
    },
  });
  return { client, seen, sleeps, clock };
}

const add = { namespace: 'orders', counter_name: 'checkout', delta: 2 };

describe('TallyClient mutations', () => {
  it('makes the idempotency token before the first attempt and sends that same token on every retry', async () => {
    const script: Reply[] = [unavailable('0'), 'hang', 'reset', 'refuse', ok()];
    const { client, seen } = harness((n) => script[n - 1]!);
    await client.addCount(add);
    expect(seen).toHaveLength(5);
    const tokens = seen.map((s) => JSON.stringify(s.body!.idempotency_token));
    expect(new Set(tokens).size).toBe(1);
    expect(seen[0]!.body!.idempotency_token).toEqual({
      token: expect.stringMatching(/^[0-9a-f-]{36}$/),
      generation_time: new Date(T0).toISOString(),
    });
    // Attempts go to each URL in turn.
    expect(seen.map((s) => new URL(s.url).host)).toEqual(['a.test', 'b.test', 'a.test', 'b.test', 'a.test']);
  });

  it("keeps the caller's token", async () => {
    const token = { token: 'mine', generation_time: new Date(T0).toISOString() };
    const { client, seen } = harness((n) => (n === 1 ? unavailable('0') : ok()));
    await client.addAndGetCount({ ...add, idempotency_token: token });
    expect(seen.map((s) => s.body!.idempotency_token)).toEqual([token, token]);
  });

  it('makes a new token for each call', async () => {
    const { client, seen } = harness(() => ok());
    await client.addCount(add);
    await client.clearCount({ namespace: 'orders', counter_name: 'checkout' });
    expect(seen[0]!.body!.idempotency_token).not.toEqual(seen[1]!.body!.idempotency_token);
  });

  it('backs off exponentially with jitter, and waits at least Retry-After', async () => {
    const script: Reply[] = [unavailable('0'), unavailable('0'), unavailable('2'), unavailable('0'), ok()];
    const { client, sleeps } = harness((n) => script[n - 1]!, { acceptLimitSeconds: 30 });
    await client.addCount(add);
    // random() = 0.5: half of 100, 200, 400 (the ceiling doubles), then Retry-After's 2 s, then half the 400 ms cap.
    expect(sleeps).toEqual([50, 100, 2000, 200]);
  });

  it('stops before the accept window closes, with AcceptWindowExceededError, the limit learnt from the listing', async () => {
    const { client, seen, clock } = harness(() => unavailable('0'), {
      listNamespaces: () => listing('orders', 'Eventual', 3),
    });
    const err = await client.addCount(add).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AcceptWindowExceededError);
    const window = err as AcceptWindowExceededError;
    expect(window.code).toBe('ACCEPT_WINDOW_EXCEEDED');
    expect(window.maybeCounted).toBe(true);
    expect(window.lastError).toBeInstanceOf(UnavailableError);
    expect(window.attempts).toBe(seen.length);
    expect(window.idempotencyToken).toEqual(seen[0]!.body!.idempotency_token);
    expect(window.message).toMatch(/accept limit 3 s.*may have been counted \(once\) or not/);
    // 3 s limit less the 1 s margin: no attempt at or after T0 + 2 s, and the next would have been.
    expect(Math.max(...seen.map((s) => s.atMs))).toBeLessThan(T0 + 2000);
    expect(clock.now + 200).toBeGreaterThanOrEqual(T0 + 2000);
    expect(seen.length).toBeGreaterThan(5);
  });

  it('uses the acceptLimitSeconds option when the listing cannot be had', async () => {
    const { client, seen } = harness(() => unavailable('0'), { acceptLimitSeconds: 2, acceptMarginMs: 0 });
    await expect(client.addCount(add)).rejects.toThrow(/accept limit 2 s/);
    expect(Math.max(...seen.map((s) => s.atMs))).toBeLessThan(T0 + 2000);
    expect(Math.max(...seen.map((s) => s.atMs))).toBeGreaterThan(T0 + 1500);
  });

  it('gives up at once when Retry-After reaches past the window', async () => {
    const { client, seen, sleeps } = harness(() => unavailable('5'));
    await expect(client.addCount(add)).rejects.toBeInstanceOf(AcceptWindowExceededError);
    expect(seen).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('says when nothing can have been counted: every attempt was refused before it was sent', async () => {
    const { client } = harness(() => 'refuse', { acceptLimitSeconds: 1 });
    const err = (await client.addCount(add).catch((e: unknown) => e)) as AcceptWindowExceededError;
    expect(err.maybeCounted).toBe(false);
    expect(err.message).toMatch(/it was not counted/);
    expect(err.lastError).toBeInstanceOf(ConnectionError);
  });

  it('turns a retry the runtime found too old into AcceptWindowExceededError', async () => {
    const script: Reply[] = ['reset', refused(400, 'INVALID_ARGUMENT', 'idempotency_token.generation_time')];
    const { client } = harness((n) => script[n - 1]!);
    const err = (await client.addCount(add).catch((e: unknown) => e)) as AcceptWindowExceededError;
    expect(err).toBeInstanceOf(AcceptWindowExceededError);
    expect(err.maybeCounted).toBe(true);
    expect(err.lastError).toBeInstanceOf(InvalidArgumentError);
  });

  it('answers each error code with its typed error and does not retry it', async () => {
    const cases: [Reply, new (...a: never[]) => Error][] = [
      [refused(400, 'INVALID_ARGUMENT', 'delta'), InvalidArgumentError],
      [refused(400, 'INVALID_JSON'), InvalidArgumentError],
      [refused(400, 'INVALID_ARGUMENT', 'idempotency_token.generation_time'), InvalidArgumentError],
      [refused(404, 'NAMESPACE_NOT_FOUND', 'namespace'), NamespaceNotFoundError],
      [refused(404, 'NOT_FOUND'), RouteNotFoundError],
      [refused(405, 'METHOD_NOT_ALLOWED'), RouteNotFoundError],
      [refused(409, 'COUNT_OUT_OF_RANGE', 'delta'), CountOutOfRangeError],
      [refused(409, 'COUNT_CORRUPT'), CountCorruptError],
      [refused(413, 'PAYLOAD_TOO_LARGE'), PayloadTooLargeError],
      [refused(415, 'UNSUPPORTED_ENCODING'), UnsupportedEncodingError],
      [refused(500, 'INTERNAL'), ServerError],
      [refused(422, 'SOMETHING_NEW'), InvalidArgumentError],
    ];
    for (const [reply, type] of cases) {
      const { client, seen } = harness(() => reply);
      const err = await client.addCount(add).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(type);
      expect(err).toMatchObject({ status: (reply as { status: number }).status });
      expect(seen).toHaveLength(1);
      expect((err as InvalidArgumentError).idempotencyToken).toEqual(seen[0]!.body!.idempotency_token);
    }
    const { client } = harness(() => refused(400, 'INVALID_ARGUMENT', 'delta'));
    await expect(client.addCount(add)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'delta' });
  });

  it('retries an answer from a proxy in front of the runtime (502 that is not JSON) as unavailable', async () => {
    const { client, seen } = harness((n) => (n === 1 ? { status: 502 } : ok()));
    await client.addCount(add);
    expect(seen).toHaveLength(2);
  });

  it('does not send a BestEffort add again once it may have been applied, but does after a refused connection', async () => {
    const opts = { listNamespaces: () => listing('orders', 'BestEffort', 5) };
    const timedOut = harness(() => 'hang', opts);
    await expect(timedOut.client.addCount(add)).rejects.toBeInstanceOf(RequestTimeoutError);
    expect(timedOut.seen).toHaveLength(1);
    const notSent = harness((n) => (n === 1 ? 'refuse' : ok()), opts);
    await notSent.client.addCount(add);
    expect(notSent.seen).toHaveLength(2);
  });
});

describe('TallyClient hedging', () => {
  it('sends the same call to the next runtime when the first is slow, and takes the first answer', async () => {
    const { client, seen } = harness((n) => (n === 1 ? 'hang' : ok({ idempotency_token: { token: 'x' } })), {
      attemptTimeoutMs: 5000,
      hedgeAfterMs: 20,
    });
    const started = Date.now();
    await expect(client.addCount(add)).resolves.toEqual({ idempotency_token: { token: 'x' } });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(seen.map((s) => new URL(s.url).host)).toEqual(['a.test', 'b.test']);
    expect(seen[0]!.body).toEqual(seen[1]!.body);
  });

  it('does not hedge a fast call, nor a BestEffort one', async () => {
    const fast = harness(() => ok(), { hedgeAfterMs: 20 });
    await fast.client.addCount(add);
    await new Promise((r) => setTimeout(r, 50));
    expect(fast.seen).toHaveLength(1);
    const bestEffort = harness((n) => (n === 1 ? 'hang' : ok()), {
      hedgeAfterMs: 20,
      attemptTimeoutMs: 200,
      listNamespaces: () => listing('orders', 'BestEffort', 5),
    });
    await expect(bestEffort.client.addCount(add)).rejects.toBeInstanceOf(RequestTimeoutError);
    expect(bestEffort.seen).toHaveLength(1);
  });

  it('hedges reads too, per call or not at all', async () => {
    const read = { namespace: 'orders', counter_name: 'checkout' };
    const { client, seen } = harness((n) => (n % 2 === 1 ? 'hang' : ok({ count: 4 })), { attemptTimeoutMs: 300 });
    await expect(client.getCount(read, { hedgeAfterMs: 10 })).resolves.toEqual({ count: 4 });
    expect(seen).toHaveLength(2);
    await expect(client.getCount(read, { hedgeAfterMs: null })).resolves.toEqual({ count: 4 });
    expect(seen).toHaveLength(4); // third timed out after 300 ms unhedged, fourth answered
  });
});

describe('TallyClient reads', () => {
  it('retries a read for readRetryForMs, then RetriesExhaustedError', async () => {
    const { client, seen, clock } = harness(() => unavailable('1'), { readRetryForMs: 5000 });
    const err = (await client
      .getCount({ namespace: 'orders', counter_name: 'c' })
      .catch((e: unknown) => e)) as RetriesExhaustedError;
    expect(err).toBeInstanceOf(RetriesExhaustedError);
    expect(err.lastError).toBeInstanceOf(UnavailableError);
    expect(seen).toHaveLength(5); // Retry-After 1 s: at 0, 1, 2, 3, 4 s
    expect(clock.now - T0).toBe(4000);
  });

  it('reads GET /v1/namespaces', async () => {
    const { client } = harness(() => ok(), { listNamespaces: () => listing('orders', 'Eventual', 5) });
    const list = await client.listNamespaces();
    expect(list.namespaces.map((n) => n.name)).toEqual(['orders']);
  });
});

describe('TallyClient bearer token', () => {
  it('sends a fixed token', async () => {
    const { client, seen } = harness(() => ok(), { bearerToken: 's3cret' });
    await client.addCount(add);
    expect(seen[0]!.headers.authorization).toBe('Bearer s3cret');
  });

  it('sends none without one', async () => {
    const { client, seen } = harness(() => ok());
    await client.addCount(add);
    expect(seen[0]!.headers.authorization).toBeUndefined();
  });

  it('reads a token file again when it is replaced, and after a 401', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-client-'));
    const file = path.join(dir, 'token');
    try {
      fs.writeFileSync(file, 'first\n');
      const script: Reply[] = [ok(), ok(), refused(401, 'UNAUTHENTICATED'), ok()];
      const { client, seen, clock } = harness((n) => script[n - 1]!, { bearerToken: { file } });
      await client.addCount(add);
      // Rotated the way kubelet does it: a new file renamed over the old one.
      fs.writeFileSync(`${file}.new`, 'second');
      fs.renameSync(`${file}.new`, file);
      clock.now += 1500;
      await client.addCount(add);
      fs.writeFileSync(`${file}.new`, 'third');
      fs.renameSync(`${file}.new`, file);
      await client.addCount(add); // within the recheck second: the old token, refused, then the file again
      expect(seen.map((s) => s.headers.authorization)).toEqual([
        'Bearer first',
        'Bearer second',
        'Bearer second',
        'Bearer third',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('TallyClient batches', () => {
  const items = ['a', 'b', 'c'].map((c) => ({ namespace: 'orders', counter_name: c, delta: 1 }));
  const tokenOf = (i: number) => ({ token: `t-${i}`, generation_time: new Date(T0).toISOString() });
  const result = (status: number, i: number) =>
    status === 200
      ? { status, idempotency_token: tokenOf(i) }
      : status === 503
        ? { status, error: { code: 'UNAVAILABLE', message: 'Cassandra is unavailable' }, retry_after: 1 }
        : { status, error: { code: 'NAMESPACE_NOT_FOUND', message: 'not served', field: 'namespace' } };
  const sentItems = (s: Seen) => s.body!.items as { counter_name: string; idempotency_token: unknown }[];

  it('makes each token once and sends the same tokens again after a lost answer', async () => {
    const script: Reply[] = ['reset', ok({ results: [0, 1, 2].map((i) => result(200, i)) })];
    const { client, seen } = harness((n) => script[n - 1]!);
    const outcomes = await client.addCounts(items);
    expect(outcomes.map((o) => o.ok)).toEqual([true, true, true]);
    expect(seen).toHaveLength(2);
    expect(sentItems(seen[1]!)).toEqual(sentItems(seen[0]!));
    expect(new Set(sentItems(seen[0]!).map((i) => JSON.stringify(i.idempotency_token))).size).toBe(3);
  });

  it('sends again only the items that failed with a 503, after their Retry-After, with their tokens', async () => {
    const script: Reply[] = [
      ok({ results: [result(200, 0), result(503, 1), result(404, 2)] }),
      ok({ results: [result(200, 1)] }),
    ];
    const { client, seen, sleeps } = harness((n) => script[n - 1]!);
    const outcomes = await client.addCounts(items);
    expect(sentItems(seen[1]!)).toEqual([sentItems(seen[0]!)[1]]);
    expect(sleeps).toEqual([1000]);
    expect(outcomes.map((o) => (o.ok ? 'ok' : o.error.constructor.name))).toEqual([
      'ok',
      'ok',
      'NamespaceNotFoundError',
    ]);
    expect(outcomes[0]).toEqual({ ok: true, value: { idempotency_token: tokenOf(0) } });
    expect(!outcomes[2]!.ok && outcomes[2]!.error.idempotencyToken).toEqual(sentItems(seen[0]!)[2]!.idempotency_token);
  });

  it('does not send a BestEffort add again once it may have counted', async () => {
    const { client, seen } = harness(() => ok({ results: [result(503, 0)] }), {
      listNamespaces: () => listing('orders', 'BestEffort', 5),
    });
    const [outcome] = await client.addCounts([items[0]!]);
    expect(seen).toHaveLength(1);
    expect(outcome!.ok ? undefined : outcome!.error).toBeInstanceOf(UnavailableError);
  });

  it('gives up on an add once another attempt would miss its accept window', async () => {
    const { client, seen } = harness(() => unavailable('2'), { discoverNamespaces: false });
    const [outcome] = await client.addCounts([items[0]!]);
    expect(outcome!.ok ? undefined : outcome!.error).toBeInstanceOf(AcceptWindowExceededError);
    expect(seen.length).toBeGreaterThan(1);
    expect(new Set(seen.map((s) => JSON.stringify(sentItems(s)))).size).toBe(1);
  });

  it('GetCounts: an outcome per counter, in order', async () => {
    const { client, seen } = harness(() =>
      ok({ results: [{ status: 200, count: 4, as_of: new Date(T0).toISOString() }, result(404, 0)] }),
    );
    const outcomes = await client.getCounts([
      { namespace: 'orders', counter_name: 'a' },
      { namespace: 'nope', counter_name: 'b' },
    ]);
    expect(seen[0]!.url).toBe('http://a.test/v1/counter/GetCounts');
    expect(outcomes[0]).toEqual({ ok: true, value: { count: 4, as_of: new Date(T0).toISOString() } });
    expect(outcomes[1]!.ok ? undefined : outcomes[1]!.error).toBeInstanceOf(NamespaceNotFoundError);
  });
});
