import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Express } from 'express';
import { messageOf } from '../../lib/errors';
import type { Logger } from '../../lib/log';
import type { RuntimeMetrics } from '../observability/metrics';
import type { RecentErrors } from '../observability/recent-errors';
import { authorizeCounters, OPEN_ACCESS, type Guard } from './auth';
import { BATCH_OPS, batchServer } from './batch-ops';
import { failureReply, runCall, type CallCheck } from './call';
import { COUNTER_OPS, type CounterOp, type OpContext } from './counter-ops';
import { INTERNAL_ERROR, RequestError } from './errors';
import { LIMITS } from './openapi';
import { sendError, sendJson } from './reply';

const POST_PREFIX = '/v1/counter/';
const GET_PATH = /^\/v1\/namespaces\/([^/?]+)\/counters\/([^/?]+)$/;
/** The answers that are the server's failure, not the client's (errors.ts: UnavailableError, anything unexpected). */
const SERVER_FAILURES = [{ status: 503, code: 'UNAVAILABLE' }, INTERNAL_ERROR];

export interface CounterServerDeps extends OpContext {
  metrics: RuntimeMetrics;
  log: Logger;
  /** Where 5xx answers are kept for /status. */
  recentErrors?: RecentErrors;
  /** Who may count (auth.ts); everyone when absent. */
  guard?: Guard;
}

/** Reads a JSON body of at most maxBytes; rejects with the RequestError a client should see. */
function readJson(req: IncomingMessage, maxBytes: number = LIMITS.bodyMaxBytes): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const encoding = req.headers['content-encoding'];
    if (encoding && encoding !== 'identity') {
      reject(
        new RequestError('UNSUPPORTED_ENCODING', `content-encoding "${encoding}" is not supported; send plain JSON`),
      );
      return;
    }
    const tooLarge = (): RequestError =>
      new RequestError('PAYLOAD_TOO_LARGE', `the body is larger than ${maxBytes} bytes`);
    if (Number(req.headers['content-length'] ?? 0) > maxBytes) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => reject(new RequestError('REQUEST_ABORTED', 'the client aborted the request')));
    req.on('end', () => {
      if (size > maxBytes) return;
      const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8');
      try {
        resolve(text.length === 0 ? undefined : JSON.parse(text));
      } catch (err) {
        reject(new RequestError('INVALID_JSON', `the body is not valid JSON: ${messageOf(err)}`));
      }
    });
  });
}

/**
 * The counter operations are served straight from node:http: they are the hot path (thousands of calls a second),
 * and express's router and body parser cost more than the operations themselves (measured: `npm run bench`).
 * Everything else (namespaces, metrics, health, OpenAPI, 404s) goes to the express app.
 */
export function counterServer(deps: CounterServerDeps, app: Express): RequestListener {
  const { metrics } = deps;
  const guard = deps.guard ?? OPEN_ACCESS;
  // Label children are looked up once, not on every request.
  const durations = new Map<string, ReturnType<typeof metrics.requestDuration.labels>>();
  const counts = new Map<string, ReturnType<typeof metrics.requests.labels>>();
  /** `namespace` is a served namespace's name, or undefined (unknown names would be unbounded label values). */
  const observe = (op: string, namespace: string | undefined, status: number, code: string, seconds: number): void => {
    let d = durations.get(op);
    if (!d) durations.set(op, (d = metrics.requestDuration.labels(op)));
    d.observe(seconds);
    count(op, namespace, status, code);
  };
  /** One answer in tally_requests_total: of a single call, or of a batch item (op: the batch's name). */
  const count = (op: string, namespace: string | undefined, status: number, code: string): void => {
    const ns = namespace ?? '(unknown)';
    const key = `${op}\u0000${ns}\u0000${status}\u0000${code}`;
    let c = counts.get(key);
    if (!c) {
      counts.set(key, (c = metrics.requests.labels(op, ns, String(status), code)));
      // The server-side failures start at 0 beside the first answer of an op and namespace, so error ratios (and the
      // alerts on them) read 0 rather than nothing until the first failure.
      for (const e of SERVER_FAILURES)
        metrics.requests.inc({ op, namespace: ns, status: String(e.status), code: e.code }, 0);
    }
    c.inc();
  };

  const serveBatch = batchServer(deps, count);

  /**
   * The caller of a request, and the check each of its calls must pass: may the caller do the operation's verbs to
   * the counters of the namespace (in its CounterNamespace's Kubernetes namespace). Known before the body is read,
   * so an anonymous caller learns nothing from validation errors.
   */
  const checkFor = async (req: IncomingMessage): Promise<CallCheck> => {
    const caller = await guard.authenticate(req.headers.authorization);
    return (_name, op, namespace, served) => authorizeCounters(guard, caller, op.verbs, namespace, served.home);
  };

  const serve = async (
    name: string,
    op: CounterOp,
    req: IncomingMessage,
    res: ServerResponse,
    body: () => Promise<unknown>,
  ): Promise<void> => {
    const started = process.hrtime.bigint();
    let namespace: string | undefined;
    let status = 200;
    let code = 'OK';
    try {
      const check = await checkFor(req);
      // The namespace is looked up once, from the validated body: for the check, the operation and the metric label.
      sendJson(res, 200, await runCall(name, op, await body(), deps, check, (ns) => (namespace = ns)));
    } catch (err) {
      const reply = failureReply(err, name, namespace, deps);
      status = reply.status;
      code = reply.code;
      if (status === 413) res.setHeader('connection', 'close');
      sendError(res, reply);
    } finally {
      observe(name, namespace, status, code, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };

  return (req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'POST' && url.startsWith(POST_PREFIX)) {
      const name = url.slice(POST_PREFIX.length);
      const op = Object.hasOwn(COUNTER_OPS, name) ? COUNTER_OPS[name] : undefined;
      if (op) {
        void serve(name, op, req, res, () => readJson(req));
        return;
      }
      const batch = Object.hasOwn(BATCH_OPS, name) ? BATCH_OPS[name] : undefined;
      if (batch) {
        // Each item runs runCall (call.ts) with the request's check, as a single call would.
        void serveBatch(
          name,
          batch,
          res,
          () => readJson(req, LIMITS.batchBodyMaxBytes),
          () => checkFor(req),
        );
        return;
      }
    } else if (req.method === 'GET' || req.method === 'HEAD') {
      // HEAD is GET without the body (node sends none), as express answers it for the app's routes.
      const m = GET_PATH.exec(url);
      if (m) {
        const body = { namespace: safeDecode(m[1]!), counter_name: safeDecode(m[2]!) };
        void serve('GetCount', COUNTER_OPS.GetCount!, req, res, () => Promise.resolve(body));
        return;
      }
    }
    app(req, res);
  };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
