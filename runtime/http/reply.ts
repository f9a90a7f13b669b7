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

/** Sends an error as {error: {code, message, field?}}, with Retry-After when it has one (503s). */
export function sendError(res: ServerResponse, reply: ErrorReply): void {
  sendJson(
    res,
    reply.status,
    { error: { code: reply.code, message: reply.message, ...(reply.field ? { field: reply.field } : {}) } },
    reply.retryAfter !== undefined ? { 'retry-after': String(reply.retryAfter) } : {},
  );
}
