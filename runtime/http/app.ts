import express, { type NextFunction, type Request, type Response } from 'express';
import type { NamespaceRegistry } from '../counter/registry';
import { messageOf } from '../../lib/errors';
import type { Logger } from '../../lib/log';
import type { RuntimeMetrics } from '../observability/metrics';
import { RecentErrors } from '../observability/recent-errors';
import { mapLimit } from '../../lib/concurrency';
import { authorizePath, OPEN_ACCESS, type Caller, type Guard } from './auth';
import { errorReply, INTERNAL_ERROR, RequestError } from './errors';
import { openApiDocument } from './openapi';
import { sendError } from './reply';
import { collectStatus, renderStatusPage } from './status-page';

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

export interface AppDeps {
  /** Only what the listing reads. */
  registry: Pick<NamespaceRegistry, 'list' | 'errors'>;
  metrics: RuntimeMetrics;
  log: Logger;
  readiness: () => Promise<Readiness>;
  /** The failures /status lists (the server records into the same one); an empty one by default. */
  recentErrors?: RecentErrors;
  /** Who may see what (auth.ts); everyone everything when absent. */
  guard?: Guard;
}

/** The paths that show every namespace's figures: a caller needs `get` on the path (a non-resource URL). */
export const OBSERVER_PATHS = ['/metrics', '/status', '/status.json'] as const;

/** SubjectAccessReviews of one listing in flight at once (each is cached afterwards). */
const LISTING_REVIEWS = 8;

/** Each path of the OpenAPI document as a pattern ({name} is one segment), with the Allow header it answers. */
const ROUTES = Object.entries(openApiDocument.paths).map(([template, operations]) => {
  const methods = Object.keys(operations).map((m) => m.toUpperCase());
  // GET answers HEAD too (express and counter-server.ts do); OPTIONS is answered here.
  if (methods.includes('GET')) methods.push('HEAD');
  methods.push('OPTIONS');
  const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+');
  return { path: new RegExp(`^${pattern}$`), allow: methods.join(', ') };
});

/** The Allow header for a path the OpenAPI document describes, or undefined. */
export function allowedMethods(path: string): string | undefined {
  return ROUTES.find((r) => r.path.test(path))?.allow;
}

/**
 * Everything but the counter operations (which counter-server.ts serves on the hot path): the namespace listing,
 * the OpenAPI document, health, readiness, metrics, and JSON 404s.
 */
export function createApp(deps: AppDeps): express.Express {
  const { registry, metrics, log } = deps;
  const guard = deps.guard ?? OPEN_ACCESS;
  const recentErrors = deps.recentErrors ?? new RecentErrors();
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  const callerOf = (req: Request): Promise<Caller> => guard.authenticate(req.headers.authorization);
  // Health, readiness and the OpenAPI document stay open (probes and tools call them without a token).
  app.use([...OBSERVER_PATHS], async (req, _res, next) => {
    await authorizePath(guard, await callerOf(req), req.originalUrl.split('?')[0]!);
    next();
  });

  // Every namespace to a caller who may get the path itself; to anyone else, those whose counters they may read.
  app.get('/v1/namespaces', async (req, res) => {
    const caller = await callerOf(req);
    const everything = await guard.mayGetPath(caller, req.path);
    const all = registry.list();
    const readable = everything
      ? all
      : (
          await mapLimit(all, LISTING_REVIEWS, async (s) =>
            (await guard.mayCount(caller, 'get', s.config.name, s.home)) ? [s] : [],
          )
        ).flat();
    res.json({
      namespaces: readable.map((s) => ({
        name: s.config.name,
        counter_type: s.config.counterType,
        ready: s.ready,
        ...(s.reason ? { reason: s.reason } : {}),
        ...(s.home ? { kubernetes_namespace: s.home } : {}),
        config: s.config,
      })),
      // The rejected documents name ConfigMaps of every namespace.
      errors: everything ? registry.errors : [],
    });
  });

  // The status page sits with the namespace listing: whatever will guard /v1/namespaces (authentication) is mounted
  // before both, as for /metrics. It shows what those show, and the recent errors' messages.
  const status = () => collectStatus({ registry, metrics, readiness: deps.readiness, recentErrors });
  app.get('/status', async (_req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('cache-control', 'no-store');
    // Belt and braces behind the escaping: nothing on the page may run script or load anything.
    res.setHeader('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'");
    res.setHeader('x-content-type-options', 'nosniff');
    res.send(renderStatusPage(await status()));
  });
  app.get('/status.json', async (_req, res) => {
    res.setHeader('cache-control', 'no-store');
    res.json(await status());
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
    // A path the document describes, asked with a method it does not: 405 with the methods it has (RFC 9110), and
    // those methods for OPTIONS. Only a path it does not describe is a 404.
    const allow = allowedMethods(req.path);
    if (allow) {
      res.setHeader('allow', allow);
      if (req.method === 'OPTIONS') {
        res.status(204).end();
        return;
      }
      sendError(
        res,
        errorReply(
          new RequestError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${req.path}; allowed: ${allow}`),
        ),
      );
      return;
    }
    sendError(
      res,
      errorReply(new RequestError('NOT_FOUND', `no route for ${req.method} ${req.path} (see /openapi.json)`)),
    );
  });

  // Four parameters mark this as express's error handler: the API's errors (401, 403, 503 from the guard) as the
  // counter operations answer them; anything else is a bug.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const reply = errorReply(err);
    if (reply) {
      sendError(res, reply);
      return;
    }
    log.error({ err: messageOf(err) }, 'unhandled error');
    recentErrors.record({ code: INTERNAL_ERROR.code, message: INTERNAL_ERROR.message });
    sendError(res, INTERNAL_ERROR);
  });

  return app;
}
