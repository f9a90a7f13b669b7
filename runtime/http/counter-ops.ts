import { randomUUID } from 'node:crypto';
import type { NamespaceRegistry } from '../counter/registry';
import { ApiError, invalidArgument } from '../counter/errors';
import type { CountReply, IdempotencyToken } from '../counter/types';
import { requestValidator } from './validate';

interface TokenBody {
  token: string;
  generation_time: string;
}
interface AddBody {
  namespace: string;
  counter_name: string;
  delta: number;
  idempotency_token?: TokenBody;
}
interface CounterBody {
  namespace: string;
  counter_name: string;
  idempotency_token?: TokenBody;
}

export interface OpResult {
  namespace: string;
  body: Record<string, unknown>;
}

export interface OpContext {
  registry: NamespaceRegistry;
  now: () => number;
}

/** One counter API operation: validates its body (against the OpenAPI schemas) and runs it. */
export type CounterOp = (body: unknown, ctx: OpContext) => Promise<OpResult>;

const validateAdd = requestValidator<AddBody>('AddCountRequest');
const validateGet = requestValidator<CounterBody>('GetCountRequest');
const validateClear = requestValidator<CounterBody>('ClearCountRequest');

function tokenJson(t: IdempotencyToken): TokenBody {
  return { token: t.token, generation_time: new Date(t.generationTimeMs).toISOString() };
}

function countJson(reply: CountReply, token?: IdempotencyToken): Record<string, unknown> {
  const json: Record<string, unknown> = { count: reply.count };
  if (reply.asOfMs !== undefined) json.as_of = new Date(reply.asOfMs).toISOString();
  if (token) json.idempotency_token = tokenJson(token);
  return json;
}

/** The client's token, checked against the namespace's accept window, or a new one made now. */
function tokenFor(ctx: OpContext, namespace: string, body: TokenBody | undefined): IdempotencyToken {
  const t = ctx.now();
  if (!body) return { token: randomUUID(), generationTimeMs: t };
  const at = Date.parse(body.generation_time);
  // The schema's date-time format admits leap seconds (23:59:60), which JavaScript dates cannot hold.
  if (!Number.isFinite(at)) {
    throw invalidArgument(
      'idempotency_token.generation_time',
      `${body.generation_time} is not a representable instant (a leap second?); send a time between two seconds instead`,
    );
  }
  const config = ctx.registry.find(namespace)?.config;
  if (config) {
    const earliest = t - config.eventStorage.acceptLimitSeconds * 1000;
    const latest = t + config.eventStorage.maxFutureSkewSeconds * 1000;
    if (at < earliest || at > latest) {
      throw invalidArgument(
        'idempotency_token.generation_time',
        `${body.generation_time} is outside the accepted window [${new Date(earliest).toISOString()}, ${new Date(latest).toISOString()}] ` +
          `(namespace ${namespace} accepts events up to ${config.eventStorage.acceptLimitSeconds} s old and ${config.eventStorage.maxFutureSkewSeconds} s ahead)`,
      );
    }
  }
  return { token: body.token, generationTimeMs: at };
}

const addCount: CounterOp = async (raw, ctx) => {
  const body = validateAdd(raw);
  const ops = ctx.registry.get(body.namespace);
  const token = tokenFor(ctx, body.namespace, body.idempotency_token);
  await ops.add({ counter: body.counter_name, delta: body.delta, token });
  return { namespace: body.namespace, body: { idempotency_token: tokenJson(token) } };
};

const addAndGetCount: CounterOp = async (raw, ctx) => {
  const body = validateAdd(raw);
  const ops = ctx.registry.get(body.namespace);
  const token = tokenFor(ctx, body.namespace, body.idempotency_token);
  const reply = await ops.addAndGet({ counter: body.counter_name, delta: body.delta, token });
  return { namespace: body.namespace, body: countJson(reply, token) };
};

const getCount: CounterOp = async (raw, ctx) => {
  const body = validateGet(raw);
  return { namespace: body.namespace, body: countJson(await ctx.registry.get(body.namespace).get(body.counter_name)) };
};

const clearCount: CounterOp = async (raw, ctx) => {
  const body = validateClear(raw);
  const ops = ctx.registry.get(body.namespace);
  const token = tokenFor(ctx, body.namespace, body.idempotency_token);
  return { namespace: body.namespace, body: countJson(await ops.clear({ counter: body.counter_name, token }), token) };
};

/** POST /v1/counter/<name> → the operation. */
export const COUNTER_OPS: Record<string, CounterOp> = {
  AddCount: addCount,
  AddAndGetCount: addAndGetCount,
  GetCount: getCount,
  ClearCount: clearCount,
};

export { ApiError };
