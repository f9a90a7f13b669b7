import { randomUUID } from 'node:crypto';
import type { NamespaceRegistry } from '../counter/registry';
import type { CounterOps, CountReply, IdempotencyToken } from '../counter/types';
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
  validate(body: unknown): B;
  run(body: B, ops: CounterOps, ctx: OpContext): Promise<Record<string, unknown>>;
}

function tokenJson(t: IdempotencyToken): TokenBody {
  return { token: t.token, generation_time: new Date(t.generationTimeMs).toISOString() };
}

function countJson(reply: CountReply, token?: IdempotencyToken): Record<string, unknown> {
  const json: Record<string, unknown> = { count: reply.count };
  if (reply.asOfMs !== undefined) json.as_of = new Date(reply.asOfMs).toISOString();
  if (token) json.idempotency_token = tokenJson(token);
  return json;
}

/** The client's token, or a new one made now. Whether its time is accepted is the counter type's to say. */
function tokenFor(ctx: OpContext, body: TokenBody | undefined): IdempotencyToken {
  if (!body) return { token: randomUUID(), generationTimeMs: ctx.now() };
  const at = Date.parse(body.generation_time);
  // The schema's date-time format admits leap seconds (23:59:60), which JavaScript dates cannot hold.
  if (!Number.isFinite(at)) {
    throw new RequestError(
      'INVALID_ARGUMENT',
      `idempotency_token.generation_time ${body.generation_time} is not a representable instant (a leap second?); send a time between two seconds instead`,
      'idempotency_token.generation_time',
    );
  }
  return { token: body.token, generationTimeMs: at };
}

const addCount: CounterOp<AddBody> = {
  validate: requestValidator<AddBody>('AddCountRequest'),
  async run(body, ops, ctx) {
    const token = tokenFor(ctx, body.idempotency_token);
    await ops.add({ counter: body.counter_name, delta: body.delta, token });
    return { idempotency_token: tokenJson(token) };
  },
};

const addAndGetCount: CounterOp<AddBody> = {
  validate: requestValidator<AddBody>('AddCountRequest'),
  async run(body, ops, ctx) {
    const token = tokenFor(ctx, body.idempotency_token);
    return countJson(await ops.addAndGet({ counter: body.counter_name, delta: body.delta, token }), token);
  },
};

const getCount: CounterOp = {
  validate: requestValidator<CounterBody>('GetCountRequest'),
  async run(body, ops) {
    return countJson(await ops.get(body.counter_name));
  },
};

const clearCount: CounterOp = {
  validate: requestValidator<CounterBody>('ClearCountRequest'),
  async run(body, ops, ctx) {
    const token = tokenFor(ctx, body.idempotency_token);
    return countJson(await ops.clear({ counter: body.counter_name, token }), token);
  },
};

/** POST /v1/counter/<name> → the operation. */
export const COUNTER_OPS: Record<string, CounterOp> = {
  AddCount: addCount,
  AddAndGetCount: addAndGetCount,
  GetCount: getCount,
  ClearCount: clearCount,
};
