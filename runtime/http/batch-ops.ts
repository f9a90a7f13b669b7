import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { mapLimit } from '../../lib/concurrency';
import type { Logger } from '../../lib/log';
import type { RuntimeMetrics } from '../observability/metrics';
import type { RecentErrors } from '../observability/recent-errors';
import { failureReply, runCall, type CallCheck } from './call';
import { COUNTER_OPS, type OpContext } from './counter-ops';
import { LIMITS } from './openapi';
import { sendError, sendJson } from './reply';
import { requestValidator } from './validate';

/** A batch call: the single operation each item is, and whether items are mutations (carry idempotency tokens). */
export interface BatchOp {
  item: 'AddCount' | 'GetCount';
  mutation: boolean;
  /** Checks the envelope only ({items: [objects]}, the item and byte limits); each item is checked when it runs. */
  validate(body: unknown): { items: unknown[] };
}

/** POST /v1/counter/<name> → the batch call. */
export const BATCH_OPS: Record<string, BatchOp> = {
  AddCounts: { item: 'AddCount', mutation: true, validate: requestValidator('AddCountsRequest') },
  GetCounts: { item: 'GetCount', mutation: false, validate: requestValidator('GetCountsRequest') },
};

/** One item's result: status 200 and the single call's answer, or the single call's status and error. */
export type ItemResult = { status: number } & Record<string, unknown>;

/** Counts one item's outcome (tally_requests_total); `namespace` is a served namespace or undefined. */
export type CountItem = (namespace: string | undefined, status: number, code: string) => void;

export interface BatchDeps extends OpContext {
  log: Logger;
  recentErrors?: RecentErrors | undefined;
}

/**
 * Runs every item as the single call would run (runCall: validate, namespace, check, operation), at most
 * LIMITS.batchConcurrency at once, and answers a result per item in the items' order. An item's failure is its
 * result only: nothing an item does rejects the batch.
 */
export function runBatch(
  batch: BatchOp,
  items: readonly unknown[],
  deps: BatchDeps,
  countItem: CountItem,
  check?: CallCheck,
): Promise<ItemResult[]> {
  const op = COUNTER_OPS[batch.item]!;
  return mapLimit(items, LIMITS.batchConcurrency, async (item) => {
    // An add sent without a token gets one made here, as AddCount would make it, so that its result carries the
    // token even when the add failed: a 5xx add may have been counted, and is safe to resend only with this token.
    let made: { token: string; generation_time: string } | undefined;
    if (batch.mutation && isObject(item) && !Object.hasOwn(item, 'idempotency_token')) {
      made = { token: randomUUID(), generation_time: new Date(deps.now()).toISOString() };
      item = { ...item, idempotency_token: made };
    }
    let namespace: string | undefined;
    try {
      const reply = await runCall(batch.item, op, item, deps, check, (ns) => (namespace = ns));
      countItem(namespace, 200, 'OK');
      return { status: 200, ...reply };
    } catch (err) {
      const reply = failureReply(err, batch.item, namespace, deps);
      countItem(namespace, reply.status, reply.code);
      return {
        status: reply.status,
        error: { code: reply.code, message: reply.message, ...(reply.field ? { field: reply.field } : {}) },
        ...(made ? { idempotency_token: made } : {}),
        ...(reply.retryAfter !== undefined ? { retry_after: reply.retryAfter } : {}),
      };
    }
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface BatchServerDeps extends BatchDeps {
  metrics: RuntimeMetrics;
}

/**
 * Serves AddCounts and GetCounts: 200 with {results} once the items ran, whatever each item's outcome (every item
 * 503 too: the results say which to retry, with which token); only a request that is not a batch (JSON, envelope,
 * limits) is refused as a whole. Observed as tally_batch_requests_total and tally_request_duration_seconds{op}, the
 * item count in tally_batch_items, and each item in tally_requests_total{op=<the batch>} by its namespace.
 */
export function batchServer(deps: BatchServerDeps, countItem: (op: string, ...item: Parameters<CountItem>) => void) {
  const { metrics } = deps;
  return async (
    name: string,
    batch: BatchOp,
    res: ServerResponse,
    body: () => Promise<unknown>,
    /** The request's per-item check, made before the body is read (authenticating the caller may refuse it all). */
    checkFor?: () => Promise<CallCheck>,
  ): Promise<void> => {
    const started = process.hrtime.bigint();
    let status = 200;
    let code = 'OK';
    try {
      const check = await checkFor?.();
      const { items } = batch.validate(await body());
      metrics.batchItems.labels(name).observe(items.length);
      const results = await runBatch(batch, items, deps, (...item) => countItem(name, ...item), check);
      sendJson(res, 200, { results });
    } catch (err) {
      const reply = failureReply(err, name, undefined, deps);
      status = reply.status;
      code = reply.code;
      if (status === 413) res.setHeader('connection', 'close');
      sendError(res, reply);
    } finally {
      metrics.requestDuration.labels(name).observe(Number(process.hrtime.bigint() - started) / 1e9);
      metrics.batchRequests.labels(name, String(status), code).inc();
    }
  };
}
