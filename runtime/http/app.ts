import express, { type NextFunction, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import type { NamespaceRegistry } from '../counter/registry';
import { ApiError, invalidArgument } from '../counter/errors';
import type { CountReply, IdempotencyToken } from '../counter/types';
import type { Logger } from '../observability/log';
import type { RuntimeMetrics } from '../observability/metrics';
import { LIMITS, openApiDocument } from './openapi';
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

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

export interface AppDeps {
  registry: NamespaceRegistry;
  metrics: RuntimeMetrics;
  log: Logger;
  readiness: () => Promise<Readiness>;
  now?: () => number;
}

const validateAdd = requestValidator<AddBody>('AddCountRequest');
const validateGet = requestValidator<CounterBody>('GetCountRequest');
const validateClear = requestValidator<CounterBody>('ClearCountRequest');

function tokenJson(t: IdempotencyToken): TokenBody {
  return { token: t.token, generation_time: new Date(t.generationTimeMs).toISOString() };
}

function countJson(reply: CountReply, token?: IdempotencyToken): Record<string, unknown> {
  return {
    count: reply.count,
    ...(reply.asOfMs !== undefined ? { as_of: new Date(reply.asOfMs).toISOString() } : {}),
    ...(token ? { idempotency_token: tokenJson(token) } : {}),
  };
}

/** Sends an error as {error: {code, message, field?}}; 503s carry Retry-After. */
function sendError(res: Response, err: ApiError): void {
  if (err.retryAfter !== undefined) res.setHeader('Retry-After', String(err.retryAfter));
  res
    .status(err.status)
    .json({ error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } });
}

/** Express's body parser reports its own failures; these are the client's mistakes, never a 500. */
function bodyParserError(err: unknown): ApiError | undefined {
  const e = err as { type?: string; status?: number; message?: string };
  switch (e.type) {
    case 'entity.parse.failed':
      return new ApiError(400, 'INVALID_JSON', `the body is not valid JSON: ${e.message ?? ''}`.trim());
    case 'entity.too.large':
      return new ApiError(413, 'PAYLOAD_TOO_LARGE', `the body is larger than ${LIMITS.bodyMaxBytes} bytes`);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ApiError(415, 'UNSUPPORTED_ENCODING', e.message ?? 'unsupported body encoding');
    case 'request.aborted':
      return new ApiError(400, 'REQUEST_ABORTED', 'the client aborted the request');
    default:
      return undefined;
  }
}

/** The HTTP API. Request bodies are validated against the OpenAPI document the server also publishes. */
export function createApp(deps: AppDeps): express.Express {
  const { registry, metrics, log } = deps;
  const now = deps.now ?? Date.now;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  // Any content type is read as JSON, so `curl -d '{...}'` works without a header.
  app.use(express.json({ limit: LIMITS.bodyMaxBytes, strict: true, type: () => true }));

  /** Resolves the token to use: the client's, checked against the accept window, or a new one. */
  function tokenFor(namespace: string, body: TokenBody | undefined): IdempotencyToken {
    const config = registry.find(namespace)?.config;
    const t = now();
    if (!body) return { token: randomUUID(), generationTimeMs: t };
    const at = Date.parse(body.generation_time);
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

  type Handler = (req: Request) => Promise<{ namespace: string; body: Record<string, unknown> }>;

  /** Wraps a counter operation with metrics and error mapping. */
  const op =
    (name: string, handler: Handler) =>
    async (req: Request, res: Response): Promise<void> => {
      const end = metrics.requestDuration.startTimer({ op: name });
      let namespace = '';
      let status = 200;
      try {
        const result = await handler(req);
        namespace = result.namespace;
        res.status(200).json(result.body);
      } catch (err) {
        const apiError = err instanceof ApiError ? err : undefined;
        status = apiError?.status ?? 500;
        namespace =
          typeof (req.body as { namespace?: unknown })?.namespace === 'string'
            ? (req.body as { namespace: string }).namespace
            : ((req.params.namespace as string | undefined) ?? '');
        if (apiError) sendError(res, apiError);
        else {
          log.error({ op: name, err: (err as Error).message, stack: (err as Error).stack }, 'request failed');
          sendError(res, new ApiError(500, 'INTERNAL', 'internal error; see the runtime log'));
        }
      } finally {
        end();
        // Unknown namespaces would be unbounded label values: they share one label.
        const nsLabel = registry.find(namespace) ? namespace : '(unknown)';
        metrics.requests.inc({ op: name, namespace: nsLabel, status: String(status) });
      }
    };

  app.post(
    '/v1/counter/AddCount',
    op('AddCount', async (req) => {
      const body = validateAdd(req.body);
      const ops = registry.get(body.namespace);
      const token = tokenFor(body.namespace, body.idempotency_token);
      await ops.add({ counter: body.counter_name, delta: body.delta, token });
      return { namespace: body.namespace, body: { idempotency_token: tokenJson(token) } };
    }),
  );

  app.post(
    '/v1/counter/AddAndGetCount',
    op('AddAndGetCount', async (req) => {
      const body = validateAdd(req.body);
      const ops = registry.get(body.namespace);
      const token = tokenFor(body.namespace, body.idempotency_token);
      const reply = await ops.addAndGet({ counter: body.counter_name, delta: body.delta, token });
      return { namespace: body.namespace, body: countJson(reply, token) };
    }),
  );

  app.post(
    '/v1/counter/GetCount',
    op('GetCount', async (req) => {
      const body = validateGet(req.body);
      return { namespace: body.namespace, body: countJson(await registry.get(body.namespace).get(body.counter_name)) };
    }),
  );

  app.get(
    '/v1/namespaces/:namespace/counters/:counter_name',
    op('GetCount', async (req) => {
      const body = validateGet({ namespace: req.params.namespace, counter_name: req.params.counter_name });
      return { namespace: body.namespace, body: countJson(await registry.get(body.namespace).get(body.counter_name)) };
    }),
  );

  app.post(
    '/v1/counter/ClearCount',
    op('ClearCount', async (req) => {
      const body = validateClear(req.body);
      const ops = registry.get(body.namespace);
      const token = tokenFor(body.namespace, body.idempotency_token);
      const reply = await ops.clear({ counter: body.counter_name, token });
      return { namespace: body.namespace, body: countJson(reply, token) };
    }),
  );

  app.get('/v1/namespaces', (_req, res) => {
    res.json({
      namespaces: registry.list().map((s) => ({
        name: s.config.name,
        counter_type: s.config.counterType,
        ready: s.ready,
        ...(s.reason ? { reason: s.reason } : {}),
        config: s.config,
      })),
      errors: registry.errors,
    });
  });

  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const r = await deps.readiness();
    res.status(r.ready ? 200 : 503).json({ status: r.ready ? 'ready' : 'not ready', checks: r.checks });
  });

  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });

  app.use((req, res) => {
    sendError(res, new ApiError(404, 'NOT_FOUND', `no route for ${req.method} ${req.path} (see /openapi.json)`));
  });

  // Four parameters mark this as express's error handler.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const mapped = bodyParserError(err);
    if (mapped) return sendError(res, mapped);
    log.error({ err: (err as Error).message }, 'unhandled error');
    sendError(res, new ApiError(500, 'INTERNAL', 'internal error; see the runtime log'));
  });

  return app;
}
