import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { BearerTokenSource, type BearerToken } from './auth';
import {
  AcceptWindowExceededError,
  apiError,
  ConnectionError,
  InvalidArgumentError,
  isRetryable,
  mayHaveBeenApplied,
  RequestTimeoutError,
  RetriesExhaustedError,
  TallyError,
  UnauthorizedError,
  UnavailableError,
  UnexpectedResponseError,
  type ErrorBody,
} from './errors';
import type { components } from './openapi-types';
import {
  acceptDeadline,
  backoffDelay,
  DEFAULT_BACKOFF,
  nextDelay,
  parseRetryAfter,
  type BackoffOptions,
} from './retry';

type Schemas = components['schemas'];
export type IdempotencyToken = Schemas['IdempotencyToken'];
export type AddCountRequest = Schemas['AddCountRequest'];
export type GetCountRequest = Schemas['GetCountRequest'];
export type ClearCountRequest = Schemas['ClearCountRequest'];
export type MutationResponse = Schemas['MutationResponse'];
export type CountResponse = Schemas['CountResponse'];
export type NamespaceList = Schemas['NamespaceList'];
/** One item's outcome in a batch: its answer, or the typed error the single call would have thrown. */
export type BatchOutcome<T> = { ok: true; value: T } | { ok: false; error: TallyError };
type BatchResult = Schemas['AddCountsResponse']['results'][number] | Schemas['GetCountsResponse']['results'][number];
export type CounterType = NamespaceList['namespaces'][number]['counter_type'];

/** The accept limit the runtime applies when a CounterNamespace does not set one. */
export const DEFAULT_ACCEPT_LIMIT_SECONDS = 5;

export interface TallyClientOptions {
  /** The runtime's base URL, or several: attempts (retries, hedges) go to each in turn. */
  url: string | string[];
  /** Sent as `Authorization: Bearer`: a string, or {file} read again when it changes or its JWT expires. */
  bearerToken?: BearerToken;
  /** One attempt's time limit (ms); a timed-out attempt is retried with the same token. Default 2000. */
  attemptTimeoutMs?: number;
  /** Exponential backoff with full jitter between attempts. Default base 50 ms, cap 2000 ms. */
  backoff?: Partial<BackoffOptions>;
  /** Send the same call again (same token) to the next URL when the first has not answered in this many ms. Off. */
  hedgeAfterMs?: number;
  /**
   * The namespace's accept limit when it is not learnt from GET /v1/namespaces (discovery off or failed). Default 5,
   * the runtime's default.
   */
  acceptLimitSeconds?: number;
  /** Learn each namespace's accept limit and counter type from GET /v1/namespaces (cached a minute). Default true. */
  discoverNamespaces?: boolean;
  /** Stop retrying this long before the accept window closes (travel time, clock offset). Default 1000 ms. */
  acceptMarginMs?: number;
  /** Reads and listings retry for this long (ms). Default 10000. */
  readRetryForMs?: number;
  /** For tests: the fetch, clock, sleep and randomness the client uses. */
  fetch?: typeof fetch;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

export interface CallOptions {
  /** Abandons the call (the promise rejects with the signal's reason); a mutation already sent may still count. */
  signal?: AbortSignal;
  /** This call's hedging delay, or null for none; default the client's. */
  hedgeAfterMs?: number | null;
}

interface NamespaceInfo {
  counterType: CounterType;
  acceptLimitSeconds: number;
}

/** What decides retries: until when they are worth it, and whether a maybe-applied attempt may be sent again. */
interface Policy {
  deadlineMs: number;
  idempotent: boolean;
}

interface Request {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  /** For messages: "AddCount orders/checkout". */
  what: string;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: TallyError };

const GENERATION_TIME_FIELD = 'idempotency_token.generation_time';
const NAMESPACES_TTL_MS = 60_000;
/** The listing is asked for at most this often (a namespace missing from it, a runtime that is down). */
const NAMESPACES_RELIST_MS = 1000;
/** Connection failures that happen before a request is written: such an attempt was surely not applied. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * A client of Tally's counter API. Mutations carry an idempotency token made here before the first attempt (unless
 * the caller brings one), and every retry and hedge sends that same token, so a mutation is counted at most once
 * however often it is sent. 503s, timeouts and connection errors are retried with exponential backoff and jitter,
 * after Retry-After when the runtime sent one, until another attempt would arrive after the namespace's accept window
 * closed: then AcceptWindowExceededError. BestEffort namespaces are not idempotent, so there an attempt that may have
 * been applied is neither retried nor hedged.
 */
export class TallyClient {
  private readonly urls: string[];
  private next = 0;
  private readonly auth: BearerTokenSource | undefined;
  private readonly attemptTimeoutMs: number;
  private readonly backoff: BackoffOptions;
  private readonly hedgeAfterMs: number | undefined;
  private readonly acceptLimitSeconds: number;
  private readonly discover: boolean;
  private readonly acceptMarginMs: number;
  private readonly readRetryForMs: number;
  private readonly fetch: typeof fetch;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private namespaces: { atMs: number; byName: Map<string, NamespaceInfo> } | undefined;
  private listing: Promise<void> | undefined;
  private listedAtMs = -Infinity;

  constructor(options: TallyClientOptions) {
    this.urls = (Array.isArray(options.url) ? options.url : [options.url]).map((u) => u.replace(/\/+$/, ''));
    if (this.urls.length === 0 || this.urls.some((u) => !/^https?:\/\/./.test(u)))
      throw new TypeError(`url must be one or more http(s) URLs, got ${JSON.stringify(options.url)}`);
    this.auth = options.bearerToken !== undefined ? new BearerTokenSource(options.bearerToken, options.now) : undefined;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 2000;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.hedgeAfterMs = options.hedgeAfterMs;
    this.acceptLimitSeconds = options.acceptLimitSeconds ?? DEFAULT_ACCEPT_LIMIT_SECONDS;
    this.discover = options.discoverNamespaces ?? true;
    this.acceptMarginMs = options.acceptMarginMs ?? 1000;
    this.readRetryForMs = options.readRetryForMs ?? 10_000;
    this.fetch = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms, signal) => delay(ms, undefined, signal ? { signal } : {}));
    this.random = options.random ?? Math.random;
  }

  /** AddCount: answers the token the add was counted under. */
  addCount(request: AddCountRequest, options: CallOptions = {}): Promise<MutationResponse> {
    return this.mutate('AddCount', request, options);
  }

  /** AddAndGetCount: the count right after the add, and the token. */
  addAndGetCount(request: AddCountRequest, options: CallOptions = {}): Promise<CountResponse> {
    return this.mutate('AddAndGetCount', request, options);
  }

  /** ClearCount: resets the counter to 0, idempotently like an add. */
  clearCount(request: ClearCountRequest, options: CallOptions = {}): Promise<CountResponse> {
    return this.mutate('ClearCount', request, options);
  }

  /** GetCount; retried for readRetryForMs. */
  getCount(request: GetCountRequest, options: CallOptions = {}): Promise<CountResponse> {
    const what = `GetCount ${request.namespace}/${request.counter_name}`;
    return this.read({ method: 'POST', path: '/v1/counter/GetCount', body: JSON.stringify(request), what }, options);
  }

  /**
   * AddCounts: many adds in one request, an outcome per item in order. Each item's token is made here before the
   * first attempt (unless given) and every retry sends it again: items that failed with a 503, or all of them after a
   * timeout or connection error, are sent again until their namespace's accept window would close; BestEffort items
   * that may have been applied are not. An item's refusal (400, 404, ...) is its outcome and is not retried.
   */
  addCounts(items: AddCountRequest[], options: CallOptions = {}): Promise<BatchOutcome<MutationResponse>[]> {
    return this.batch('AddCounts', items, options);
  }

  /** GetCounts: many counters in one request, an outcome per item in order; failed reads retried for readRetryForMs. */
  getCounts(items: GetCountRequest[], options: CallOptions = {}): Promise<BatchOutcome<CountResponse>[]> {
    return this.batch('GetCounts', items, options);
  }

  /** The namespaces the runtime serves, with their settings; retried for readRetryForMs. */
  async listNamespaces(options: CallOptions = {}): Promise<NamespaceList> {
    const list = await this.read<NamespaceList>(
      { method: 'GET', path: '/v1/namespaces', what: 'ListNamespaces' },
      options,
    );
    this.remember(list);
    return list;
  }

  private mutate<T>(
    op: 'AddCount' | 'AddAndGetCount' | 'ClearCount',
    request: AddCountRequest | ClearCountRequest,
    options: CallOptions,
  ): Promise<T> {
    // Made once, before the first attempt: every retry and hedge below sends this very token.
    const token = request.idempotency_token ?? {
      token: randomUUID(),
      generation_time: new Date(this.now()).toISOString(),
    };
    const body = JSON.stringify({ ...request, idempotency_token: token });
    const generatedMs = Date.parse(token.generation_time);
    // Learnt while the first attempt is under way; only a retry or a hedge waits for it.
    const info = this.describe(request.namespace);
    let limitSeconds = this.acceptLimitSeconds;
    const policy = async (): Promise<Policy> => {
      const known = await info;
      limitSeconds = known?.acceptLimitSeconds ?? this.acceptLimitSeconds;
      return {
        deadlineMs: Number.isNaN(generatedMs) ? 0 : acceptDeadline(generatedMs, limitSeconds, this.acceptMarginMs),
        idempotent: known?.counterType !== 'BestEffort',
      };
    };
    const what = `${op} ${request.namespace}/${request.counter_name}`;
    const sent = this.run<T>(
      { method: 'POST', path: `/v1/counter/${op}`, body, what },
      options,
      policy,
      (n, last, maybe) => {
        const counted = maybe ? 'it may have been counted (once) or not' : 'it was not counted';
        return new AcceptWindowExceededError(
          `${what}: gave up after ${n} attempt(s): another would reach the runtime after the accept window of ` +
            `token ${token.token} (generated ${token.generation_time}, accept limit ${limitSeconds} s) closes; ` +
            `${counted}. Last attempt: ${last.message}`,
          n,
          token,
          last,
          maybe,
        );
      },
    );
    return sent.catch((err: unknown) => {
      if (err instanceof TallyError) err.idempotencyToken = token;
      throw err;
    });
  }

  /** The retry loop of a batch: what is retryable is sent again, item by item, by the single calls' rules. */
  private async batch<T>(
    op: 'AddCounts' | 'GetCounts',
    items: (AddCountRequest | GetCountRequest)[],
    options: CallOptions,
  ): Promise<BatchOutcome<T>[]> {
    const mutation = op === 'AddCounts';
    const sent = items.map((item) =>
      mutation
        ? {
            ...item,
            idempotency_token: (item as AddCountRequest).idempotency_token ?? {
              token: randomUUID(),
              generation_time: new Date(this.now()).toISOString(),
            },
          }
        : item,
    );
    const outcomes: BatchOutcome<T>[] = new Array<BatchOutcome<T>>(items.length);
    const last: TallyError[] = [];
    const maybe: boolean[] = [];
    const readDeadlineMs = this.now() + this.readRetryForMs;
    let pending = items.map((_, i) => i);
    let attempts = 0;
    for (let retry = 1; ; retry++) {
      attempts++;
      const body = JSON.stringify({ items: pending.map((i) => sent[i]) });
      const what = `${op} of ${pending.length} item(s)`;
      const o = await this.attempt<{ results: BatchResult[] }>(
        this.nextUrl(),
        { method: 'POST', path: `/v1/counter/${op}`, body, what },
        options.signal ?? new AbortController().signal,
      );
      options.signal?.throwIfAborted();
      const again: number[] = [];
      let retryAfterMs: number | undefined;
      const failed = (i: number, err: TallyError): void => {
        last[i] = err;
        maybe[i] = maybe[i] || mayHaveBeenApplied(err);
        if (isRetryable(err)) again.push(i);
        else outcomes[i] = { ok: false, error: err };
        if (err instanceof UnavailableError && err.retryAfterMs !== undefined)
          retryAfterMs = Math.max(retryAfterMs ?? 0, err.retryAfterMs);
      };
      if (!o.ok) {
        for (const i of pending) failed(i, o.error);
      } else {
        pending.forEach((i, k) => {
          const r = o.value.results?.[k];
          if (r?.status === 200) {
            const value: Record<string, unknown> = { ...r };
            delete value.status;
            outcomes[i] = { ok: true, value: value as T };
          } else if (r && 'error' in r) {
            const retryAfter = r.retry_after === undefined ? undefined : r.retry_after * 1000;
            failed(i, apiError(r.status, { error: r.error }, retryAfter));
          } else {
            failed(i, new UnexpectedResponseError(200, `${what}: no result for item ${i}`));
          }
        });
      }
      pending = [];
      const wait = nextDelay(backoffDelay(retry, this.backoff, this.random), retryAfterMs);
      for (const i of again) {
        const item = sent[i]!;
        const info = mutation ? await this.describe(item.namespace) : undefined;
        const token = (item as AddCountRequest).idempotency_token;
        const generatedMs = token ? Date.parse(token.generation_time) : NaN;
        const limit = info?.acceptLimitSeconds ?? this.acceptLimitSeconds;
        const deadlineMs = !mutation
          ? readDeadlineMs
          : Number.isNaN(generatedMs)
            ? 0
            : acceptDeadline(generatedMs, limit, this.acceptMarginMs);
        // A BestEffort add that may have counted would count twice if sent again.
        if (mutation && info?.counterType === 'BestEffort' && maybe[i]) outcomes[i] = { ok: false, error: last[i]! };
        else if (this.now() + wait < deadlineMs) pending.push(i);
        else {
          const where = `${op} item ${i} (${item.namespace}/${item.counter_name})`;
          outcomes[i] = {
            ok: false,
            error: mutation
              ? new AcceptWindowExceededError(
                  `${where}: gave up after ${attempts} attempt(s): another would reach the runtime after the accept ` +
                    `window of token ${token!.token} closes. Last attempt: ${last[i]!.message}`,
                  attempts,
                  token!,
                  last[i]!,
                  maybe[i]!,
                )
              : new RetriesExhaustedError(`${where}: gave up after ${attempts} attempt(s)`, attempts, last[i]!),
          };
        }
      }
      if (pending.length === 0) break;
      await this.sleep(wait, options.signal);
    }
    if (mutation)
      outcomes.forEach((o, i) => {
        if (!o.ok) o.error.idempotencyToken = (sent[i] as AddCountRequest).idempotency_token;
      });
    return outcomes;
  }

  private read<T>(request: Request, options: CallOptions): Promise<T> {
    const deadlineMs = this.now() + this.readRetryForMs;
    return this.run<T>(
      request,
      options,
      () => Promise.resolve({ deadlineMs, idempotent: true }),
      (n, last) =>
        new RetriesExhaustedError(
          `${request.what}: gave up after ${n} attempt(s) in ${this.readRetryForMs} ms. Last attempt: ${last.message}`,
          n,
          last,
        ),
    );
  }

  /** The retry loop: attempt (hedged), then retry what is retryable while the policy's deadline allows. */
  private async run<T>(
    request: Request,
    options: CallOptions,
    policy: () => Promise<Policy>,
    giveUp: (attempts: number, last: TallyError, maybeApplied: boolean) => TallyError,
  ): Promise<T> {
    const count = { attempts: 0, maybeApplied: false };
    let retry = 0;
    let reauthenticated = false;
    for (;;) {
      const outcome = await this.hedged<T>(request, options, policy, count);
      options.signal?.throwIfAborted();
      if (outcome.ok) return outcome.value;
      const err = outcome.error;
      // A token the runtime finds too old after an earlier attempt failed: the window closed under the retries.
      if (count.attempts > 1 && err instanceof InvalidArgumentError && err.field === GENERATION_TIME_FIELD)
        throw giveUp(count.attempts, err, count.maybeApplied);
      // A refused token is not an applied call: read the token file again once and retry at once.
      if (err instanceof UnauthorizedError && this.auth?.rereadable && !reauthenticated) {
        reauthenticated = true;
        this.auth.invalidate();
        continue;
      }
      if (!isRetryable(err)) throw err;
      const p = await policy();
      if (!p.idempotent && mayHaveBeenApplied(err)) throw err;
      retry++;
      const wait = nextDelay(
        backoffDelay(retry, this.backoff, this.random),
        err instanceof UnavailableError ? err.retryAfterMs : undefined,
      );
      if (this.now() + wait >= p.deadlineMs) throw giveUp(count.attempts, err, count.maybeApplied);
      await this.sleep(wait, options.signal);
    }
  }

  /** One attempt, and with hedging a second one of the same request to the next URL if the first is slow. */
  private hedged<T>(
    request: Request,
    options: CallOptions,
    policy: () => Promise<Policy>,
    count: { attempts: number; maybeApplied: boolean },
  ): Promise<Outcome<T>> {
    const hedgeAfterMs = options.hedgeAfterMs === undefined ? this.hedgeAfterMs : (options.hedgeAfterMs ?? undefined);
    const cancel = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, cancel.signal]) : cancel.signal;
    return new Promise((resolve) => {
      let inFlight = 0;
      let done = false;
      const finish = (o: Outcome<T>): void => {
        done = true;
        clearTimeout(timer);
        cancel.abort(); // the slower attempt: its answer no longer matters (a mutation it carried counts once)
        resolve(o);
      };
      const launch = (): void => {
        inFlight++;
        count.attempts++;
        void this.attempt<T>(this.nextUrl(), request, signal).then((o) => {
          inFlight--;
          if (done) return;
          if (!o.ok && mayHaveBeenApplied(o.error)) count.maybeApplied = true;
          // A retryable failure waits for the other attempt, if one is still out.
          if (o.ok || !isRetryable(o.error) || inFlight === 0) finish(o);
        });
      };
      launch();
      // finish() runs only once an attempt has answered, after this line.
      const timer =
        hedgeAfterMs === undefined
          ? undefined
          : setTimeout(() => {
              void policy().then((p) => {
                if (!done && p.idempotent && this.now() < p.deadlineMs) launch();
              });
            }, hedgeAfterMs);
    });
  }

  private nextUrl(): string {
    return this.urls[this.next++ % this.urls.length]!;
  }

  /** One HTTP request; never throws: every way it can end is an Outcome. */
  private async attempt<T>(url: string, request: Request, signal: AbortSignal): Promise<Outcome<T>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (request.body !== undefined) headers['content-type'] = 'application/json';
    if (this.auth) {
      try {
        headers.authorization = `Bearer ${await this.auth.token()}`;
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        return { ok: false, error: new TallyError(`cannot read the bearer token: ${why}`, 'BEARER_TOKEN_UNREADABLE') };
      }
    }
    // A timer of our own, not AbortSignal.timeout(): that one is unref'd, and a fetch on a connection the peer
    // dropped holds nothing else, so a script waiting on this call alone would exit with it unanswered.
    const timeout = new AbortController();
    // Aborted with a TimeoutError, as AbortSignal.timeout() would, so a fetch wrapper sees the same error.
    const timer = setTimeout(
      () => timeout.abort(new DOMException(`no answer within ${this.attemptTimeoutMs} ms`, 'TimeoutError')),
      this.attemptTimeoutMs,
    );
    const where = `${request.what} at ${url}`;
    try {
      const res = await this.fetch(`${url}${request.path}`, {
        method: request.method,
        headers,
        ...(request.body !== undefined ? { body: request.body } : {}),
        signal: AbortSignal.any([signal, timeout.signal]),
      });
      const text = await res.text();
      return this.answer<T>(res, text, where);
    } catch (err) {
      if (timeout.signal.aborted && !signal.aborted)
        return { ok: false, error: new RequestTimeoutError(`${where}: no answer within ${this.attemptTimeoutMs} ms`) };
      if (signal.aborted) return { ok: false, error: new TallyError(`${where}: abandoned`, 'ABORTED') };
      const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
      const code = typeof cause?.code === 'string' ? cause.code : undefined;
      const detail = typeof cause?.message === 'string' ? cause.message : String(err);
      return {
        ok: false,
        error: new ConnectionError(`${where}: ${detail}`, !(code && NOT_SENT_CODES.has(code)), err),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  private answer<T>(res: Response, text: string, where: string): Outcome<T> {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (res.ok) {
      if (body === undefined)
        return { ok: false, error: new UnexpectedResponseError(res.status, `${where}: ${res.status} answer not JSON`) };
      return { ok: true, value: body as T };
    }
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), this.now());
    if (isErrorBody(body)) return { ok: false, error: apiError(res.status, body, retryAfterMs) };
    // A proxy or load balancer in between (no runtime behind it right now): as unavailable as a 503 of ours.
    if ([502, 503, 504].includes(res.status)) {
      const message = `${where}: ${res.status} from something in front of the runtime: ${text.slice(0, 200)}`;
      return { ok: false, error: new UnavailableError(res.status, 'UNAVAILABLE', message, undefined, retryAfterMs) };
    }
    return {
      ok: false,
      error: new UnexpectedResponseError(
        res.status,
        `${where}: ${res.status} answer is not the API's: ${text.slice(0, 200)}`,
      ),
    };
  }

  /** A namespace's accept limit and type, from the (cached) listing; undefined when it cannot be learnt. */
  private async describe(namespace: string): Promise<NamespaceInfo | undefined> {
    if (!this.discover) return undefined;
    const now = this.now();
    const known = this.namespaces?.byName.get(namespace);
    if (known && now - this.namespaces!.atMs < NAMESPACES_TTL_MS) return known;
    // Listed or tried just now: a runtime that is down, or a namespace it does not serve, is not asked again at once.
    if (now - this.listedAtMs < NAMESPACES_RELIST_MS) return known;
    this.listedAtMs = now;
    // To the runtime the next attempt goes to, without moving the rotation on: the calls keep their order of URLs.
    this.listing ??= this.attempt<NamespaceList>(
      this.urls[this.next % this.urls.length]!,
      { method: 'GET', path: '/v1/namespaces', what: 'ListNamespaces' },
      new AbortController().signal,
    )
      .then((o) => {
        if (o.ok) this.remember(o.value);
      })
      .finally(() => (this.listing = undefined));
    await this.listing;
    return this.namespaces?.byName.get(namespace);
  }

  private remember(list: NamespaceList): void {
    const byName = new Map<string, NamespaceInfo>();
    for (const ns of list.namespaces) {
      byName.set(ns.name, {
        counterType: ns.counter_type,
        acceptLimitSeconds: ns.config.eventStorage.acceptLimitSeconds,
      });
    }
    this.namespaces = { atMs: this.now(), byName };
  }
}

function isErrorBody(body: unknown): body is ErrorBody {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof error?.code === 'string' && typeof error.message === 'string';
}
