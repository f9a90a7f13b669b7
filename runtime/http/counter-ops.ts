import { randomUUID } from 'node:crypto';
import type { NamespaceRegistry } from '../counter/registry';
import type { CounterOps, CountReply, IdempotencyToken } from '../counter/types';
import type { CounterVerb } from './auth';
import { RequestError } from './errors';
import { requestValidator } from './validate';

interface TokenBody {
  token: string;
  generation_time: string;
}
/** What every operation's body has: the namespace it addresses and the counter. */
export interface CounterBody {
  namespace: string;
  counter_name: string;
  idempotency_token?: TokenBody;
}
interface AddBody extends CounterBody {
  delta: number;
}

export interface OpContext {
  /** Only the lookup: a request resolves its namespace once. */
  registry: Pick<NamespaceRegistry, 'find'>;
  now: () => number;
}

/**
 * One counter API operation: `validate` checks the body against the OpenAPI schemas; `run` performs it on the
 * operations of the namespace the caller resolved from the validated body, and returns the reply body.
 */
export interface CounterOp<B extends CounterBody = CounterBody> {
  /** What the operation does to the counters, as the RBAC verbs a caller needs for it (all of them). */
  verbs: readonly CounterVerb[];
  validate(body: unknown): B;
  run(body: B, ops: CounterOps, ctx: OpContext): Promise<Record<string, unknown>>;
}

function tokenJson(t: IdempotencyToken): TokenBody {
  return { token: t.token, generation_time: new Date(t.generationTimeMs).toISOString() };
}

function countJson(reply: CountReply, token?: TokenBody): Record<string, unknown> {
  const json: Record<string, unknown> = { count: reply.count };
  if (reply.asOfMs !== undefined) json.as_of = new Date(reply.asOfMs).toISOString();
  if (token) json.idempotency_token = token;
  return json;
}

/** The token a mutation is counted under, and how the reply states it. */
interface UsedToken {
  token: IdempotencyToken;
  json: TokenBody;
}

/**
 * The client's token, or a new one made now. Whether its time is accepted is the counter type's to say. A client's
 * token is answered as it was sent: the same instant written again by toISOString() is no RFC 3339 time when it falls
 * outside the years 0000-9999 in UTC (9999-12-31T23:59:59-23:59 became +010000-01-01T23:58:59.000Z), which a
 * BestEffort counter, checking no time, accepts.
 */
function tokenFor(ctx: OpContext, body: TokenBody | undefined): UsedToken {
  if (!body) {
    const token = { token: randomUUID(), generationTimeMs: ctx.now() };
    return { token, json: tokenJson(token) };
  }
  const at = Date.parse(body.generation_time);
  // The schema's date-time format admits leap seconds (23:59:60), which JavaScript dates cannot hold.
  if (!Number.isFinite(at)) {
    throw new RequestError(
      'INVALID_ARGUMENT',
      `idempotency_token.generation_time ${body.generation_time} is not a representable instant (a leap second?); send a time between two seconds instead`,
      'idempotency_token.generation_time',
    );
  }
  return {
    token: { token: body.token, generationTimeMs: at },
    json: { token: body.token, generation_time: body.generation_time },
  };
}

const addCount: CounterOp<AddBody> = {
  verbs: ['update'],
  validate: requestValidator<AddBody>('AddCountRequest'),
  async run(body, ops, ctx) {
    const { token, json } = tokenFor(ctx, body.idempotency_token);
    await ops.add({ counter: body.counter_name, delta: body.delta, token });
    return { idempotency_token: json };
  },
};

const addAndGetCount: CounterOp<AddBody> = {
  // It answers the count too: a caller who may only add learns no count.
  verbs: ['update', 'get'],
  validate: requestValidator<AddBody>('AddCountRequest'),
  async run(body, ops, ctx) {
    const { token, json } = tokenFor(ctx, body.idempotency_token);
    return countJson(await ops.addAndGet({ counter: body.counter_name, delta: body.delta, token }), json);
  },
};

const getCount: CounterOp = {
  verbs: ['get'],
  validate: requestValidator<CounterBody>('GetCountRequest'),
  async run(body, ops) {
    return countJson(await ops.get(body.counter_name));
  },
};

const clearCount: CounterOp = {
  verbs: ['delete'],
  validate: requestValidator<CounterBody>('ClearCountRequest'),
  async run(body, ops, ctx) {
    const { token, json } = tokenFor(ctx, body.idempotency_token);
    return countJson(await ops.clear({ counter: body.counter_name, token }), json);
  },
};

/** POST /v1/counter/<name> → the operation. */
export const COUNTER_OPS: Record<string, CounterOp> = {
  AddCount: addCount,
  AddAndGetCount: addAndGetCount,
  GetCount: getCount,
  ClearCount: clearCount,
};
