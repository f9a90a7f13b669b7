import { createServer, type RequestListener, type Server } from 'node:http';
import { intFromEnv } from '../../lib/env';

/**
 * What one client may hold of the server: a client that sends its headers or body slowly is answered 408 and
 * disconnected instead of keeping a socket for minutes, an idle keep-alive connection is closed, and connections
 * beyond the limit are refused at once (each costs memory and a file descriptor).
 */
export interface HttpLimits {
  /** Until the request's headers are in. */
  headersTimeoutMs: number;
  /** Until the whole request (headers and body) is in; not the time the answer takes. */
  requestTimeoutMs: number;
  /**
   * A keep-alive connection with no request for this long is closed. Longer than a load balancer's idle timeout, so
   * that the load balancer closes idle connections first and never sends a request into a closing one.
   */
  idleTimeoutMs: number;
  maxConnections: number;
}

export function httpLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): HttpLimits {
  const ms = { min: 100, max: 3_600_000 };
  const limits = {
    headersTimeoutMs: intFromEnv(env, 'TALLY_HTTP_HEADERS_TIMEOUT_MS', 10_000, ms),
    requestTimeoutMs: intFromEnv(env, 'TALLY_HTTP_REQUEST_TIMEOUT_MS', 30_000, ms),
    idleTimeoutMs: intFromEnv(env, 'TALLY_HTTP_IDLE_TIMEOUT_MS', 65_000, ms),
    maxConnections: intFromEnv(env, 'TALLY_HTTP_MAX_CONNECTIONS', 10_000, { min: 1, max: 1_000_000 }),
  };
  // Node refuses a headers timeout longer than the request timeout (the headers are part of the request).
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new Error(
      `TALLY_HTTP_HEADERS_TIMEOUT_MS (${limits.headersTimeoutMs}) must not exceed TALLY_HTTP_REQUEST_TIMEOUT_MS (${limits.requestTimeoutMs})`,
    );
  }
  return limits;
}

/** An HTTP server that enforces the limits. */
export function createLimitedServer(handler: RequestListener, limits: HttpLimits): Server {
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.idleTimeoutMs,
      // Node looks for expired requests this often (30 s by default, longer than the timeouts it enforces).
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
    handler,
  );
  server.maxConnections = limits.maxConnections;
  return server;
}
