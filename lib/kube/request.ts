import {
  ApiException,
  Observable,
  ServerConfiguration,
  createConfiguration,
  type Configuration,
  type KubeConfig,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { messageOf } from '../errors';

/**
 * The one way a Kubernetes request is bounded: a middleware that aborts it `timeoutMs` after it is sent (not after
 * the middleware is made), or when `signal` aborts. client-node sets no timeout of its own, so without it a request
 * to an API server that stopped answering (a half-open connection, a partition) waits forever.
 *
 * The object-parameter APIs take *observable* middleware (their `Middleware` export is the promise flavour, which
 * they do not accept per call), hence client-node's tiny Observable here.
 */
function abortMiddleware(opts: { timeoutMs?: number; signal?: AbortSignal }): ObservableMiddleware {
  return {
    pre: (context: RequestContext) => {
      const signals: AbortSignal[] = [];
      if (opts.signal) signals.push(opts.signal);
      if (opts.timeoutMs !== undefined) signals.push(AbortSignal.timeout(opts.timeoutMs));
      if (signals.length > 0) context.setSignal(signals.length === 1 ? signals[0]! : AbortSignal.any(signals));
      return new Observable(Promise.resolve(context));
    },
    post: (context: ResponseContext) => new Observable(Promise.resolve(context)),
  };
}

/** Options for one @kubernetes/client-node 1.x call (its second parameter) that bound that request. */
export function bounded(opts: { timeoutMs?: number; signal?: AbortSignal }): ConfigurationOptions {
  return { middleware: [abortMiddleware(opts)], middlewareMergeStrategy: 'append' };
}

/**
 * Like `kc.makeApiClient(Api)`, but every request the client sends is bounded by `timeoutMs`: a call to an API server
 * that stopped answering would otherwise hold its caller (a reconcile, and with it the object's place in the work
 * queue) forever.
 */
export function makeBoundedApiClient<T>(kc: KubeConfig, Api: new (config: Configuration) => T, timeoutMs: number): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  return new Api(
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kc },
      middleware: [abortMiddleware({ timeoutMs })],
    }),
  );
}

/**
 * The HTTP status of a failed Kubernetes call: ApiException's `code` for API calls, `statusCode` for the errors
 * client-node's Watch reports; undefined for network errors.
 */
export function httpStatus(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (typeof err === 'object' && err !== null) {
    const { statusCode, code } = err as { statusCode?: unknown; code?: unknown };
    if (typeof statusCode === 'number') return statusCode;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/**
 * The server's message from a failed call, else the error's own. ApiException's message is a multi-line dump with
 * headers; its body is usually the raw JSON text of a Status (sometimes already parsed).
 */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiException) {
    let body: unknown = err.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        // not JSON: no message to show
      }
    }
    const message = typeof body === 'object' && body !== null ? (body as { message?: unknown }).message : undefined;
    return typeof message === 'string' ? `HTTP ${err.code}: ${message}` : `HTTP ${err.code}`;
  }
  return messageOf(err);
}

/**
 * A failed Kubernetes call as an error that says what was being done, with the server's message (not ApiException's
 * dump) and the original error kept as its cause: "while adding the finalizer: HTTP 409: the object has been modified".
 */
export function whileCalling(doing: string, err: unknown): Error {
  return new Error(`while ${doing}: ${errorMessage(err)}`, { cause: err });
}
