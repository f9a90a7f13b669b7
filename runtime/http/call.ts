import { readyOps, type ServedNamespace } from '../counter/registry';
import { asError } from '../../lib/errors';
import type { Logger } from '../../lib/log';
import type { RecentErrors } from '../observability/recent-errors';
import type { CounterOp, OpContext } from './counter-ops';
import { errorReply, INTERNAL_ERROR, type ErrorReply } from './errors';

/**
 * What a call must pass before it runs, for a namespace this process serves (authorization: may the caller do `op`
 * to its counters); it throws the error the call is answered with. `name` is the single operation's (AddCount,
 * GetCount, ...), for a batch item too, so a check decides the same for an item as for the single call.
 */
export type CallCheck = (name: string, op: CounterOp, namespace: string, served: ServedNamespace) => Promise<void>;

/**
 * One call of a counter operation, the path of every batch item and of the single calls: validate the body, look up
 * its namespace (reported to `resolved` when served, for metric labels), pass `check`, run the operation. A namespace
 * not served here has nothing to check against: it is answered 404 (readyOps).
 */
export async function runCall(
  name: string,
  op: CounterOp,
  body: unknown,
  ctx: OpContext,
  check?: CallCheck,
  resolved?: (namespace: string) => void,
): Promise<Record<string, unknown>> {
  const request = op.validate(body);
  const served = ctx.registry.find(request.namespace);
  if (served) {
    resolved?.(request.namespace);
    await check?.(name, op, request.namespace, served);
  }
  return op.run(request, readyOps(request.namespace, served), ctx);
}

/**
 * The answer for a call that threw: the API's for an error it knows; anything else is a bug, logged with its stack
 * and answered 500. A 5xx is kept for /status as the client was told it (a 500 says only "see the log").
 */
export function failureReply(
  err: unknown,
  name: string,
  namespace: string | undefined,
  deps: { log: Logger; recentErrors?: RecentErrors | undefined },
): ErrorReply {
  let reply = errorReply(err);
  if (!reply) {
    const error = asError(err);
    deps.log.error({ op: name, err: error.message, stack: error.stack }, 'request failed');
    reply = INTERNAL_ERROR;
  }
  if (reply.status >= 500) deps.recentErrors?.record({ namespace, code: reply.code, message: reply.message });
  return reply;
}
