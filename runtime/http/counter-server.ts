import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Express } from 'express';
import { ApiError } from '../counter/errors';
import type { Logger } from '../../lib/log';
import type { RuntimeMetrics } from '../observability/metrics';
import { COUNTER_OPS, type CounterOp, type OpContext } from './counter-ops';
import { LIMITS } from './openapi';

const POST_PREFIX = '/v1/counter/';
const GET_PATH = /^\/v1\/namespaces\/([^/?]+)\/counters\/([^/?]+)$/;

export interface CounterServerDeps extends OpContext {
  metrics: RuntimeMetrics;
  log: Logger;
}

/** Sends a JSON body in one write; errors as {error: {code, message, field?}}, 503s with Retry-After. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: ApiError): void {
  sendJson(
    res,
    err.status,
    { error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } },
    err.retryAfter !== undefined ? { 'retry-after': String(err.retryAfter) } : {},
  );
}

/** Reads a JSON body of at most LIMITS.bodyMaxBytes; rejects with the ApiError a client should see. */
function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const encoding = req.headers['content-encoding'];
    if (encoding && encoding !== 'identity') {
      reject(
        new ApiError(415, 'UNSUPPORTED_ENCODING', `content-encoding "${encoding}" is not supported; send plain JSON`),
      );
      return;
    }
    const tooLarge = (): ApiError =>
      new ApiError(413, 'PAYLOAD_TOO_LARGE', `the body is larger than ${LIMITS.bodyMaxBytes} bytes`);
    if (Number(req.headers['content-length'] ?? 0) > LIMITS.bodyMaxBytes) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > LIMITS.bodyMaxBytes) {
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => reject(new ApiError(400, 'REQUEST_ABORTED', 'the client aborted the request')));
    req.on('end', () => {
      if (size > LIMITS.bodyMaxBytes) return;
      const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8');
      try {
        resolve(text.length === 0 ? undefined : JSON.parse(text));
      } catch (err) {
        reject(new ApiError(400, 'INVALID_JSON', `the body is not valid JSON: ${(err as Error).message}`));
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
  const { metrics, log } = deps;
  // Label children are looked up once, not on every request.
  const durations = new Map<string, ReturnType<typeof metrics.requestDuration.labels>>();
  const counts = new Map<string, ReturnType<typeof metrics.requests.labels>>();
  const observe = (op: string, namespace: string, status: number, seconds: number): void => {
    let d = durations.get(op);
    if (!d) durations.set(op, (d = metrics.requestDuration.labels(op)));
    d.observe(seconds);
    // Unknown namespaces would be unbounded label values: they share one.
    const ns = deps.registry.find(namespace) ? namespace : '(unknown)';
    const key = `${op}\u0000${ns}\u0000${status}`;
    let c = counts.get(key);
    if (!c) counts.set(key, (c = metrics.requests.labels(op, ns, String(status))));
    c.inc();
  };

  const serve = async (
    name: string,
    op: CounterOp,
    res: ServerResponse,
    body: () => Promise<unknown>,
  ): Promise<void> => {
    const started = process.hrtime.bigint();
    let namespace = '';
    let status = 200;
    try {
      const parsed = await body();
      if (parsed && typeof parsed === 'object' && typeof (parsed as { namespace?: unknown }).namespace === 'string') {
        namespace = (parsed as { namespace: string }).namespace;
      }
      const result = await op(parsed, deps);
      sendJson(res, 200, result.body);
    } catch (err) {
      if (err instanceof ApiError) {
        status = err.status;
        if (status === 413) res.setHeader('connection', 'close');
        sendError(res, err);
      } else {
        status = 500;
        log.error({ op: name, err: (err as Error).message, stack: (err as Error).stack }, 'request failed');
        sendError(res, new ApiError(500, 'INTERNAL', 'internal error; see the runtime log'));
      }
    } finally {
      observe(name, namespace, status, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };

  return (req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'POST' && url.startsWith(POST_PREFIX)) {
      const name = url.slice(POST_PREFIX.length);
      const op = Object.hasOwn(COUNTER_OPS, name) ? COUNTER_OPS[name] : undefined;
      if (op) {
        void serve(name, op, res, () => readJson(req));
        return;
      }
    } else if (req.method === 'GET') {
      const m = GET_PATH.exec(url);
      if (m) {
        const body = { namespace: safeDecode(m[1]!), counter_name: safeDecode(m[2]!) };
        void serve('GetCount', COUNTER_OPS.GetCount!, res, () => Promise.resolve(body));
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
