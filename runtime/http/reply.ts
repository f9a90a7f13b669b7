import type { ServerResponse } from 'node:http';
import type { ErrorReply } from './errors';

/** Sends a JSON body in one write. */
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

/**
 * Sends an error as {error: {code, message, field?}}, with Retry-After when it has one (503s) and the scheme to
 * authenticate with on a 401 (RFC 9110).
 */
export function sendError(res: ServerResponse, reply: ErrorReply): void {
  const headers: Record<string, string> = {};
  if (reply.retryAfter !== undefined) headers['retry-after'] = String(reply.retryAfter);
  if (reply.status === 401) headers['www-authenticate'] = 'Bearer realm="tally"';
  sendJson(
    res,
    reply.status,
    { error: { code: reply.code, message: reply.message, ...(reply.field ? { field: reply.field } : {}) } },
    headers,
  );
}
