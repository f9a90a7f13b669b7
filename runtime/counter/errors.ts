/**
 * The errors the counter API returns, each with its HTTP status and a stable code. Anything else that escapes a
 * handler is a bug and answers 500.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** Seconds, for 503. */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const invalidArgument = (field: string, message: string): ApiError =>
  new ApiError(400, 'INVALID_ARGUMENT', `${field} ${message}`, field);

export const namespaceNotFound = (namespace: string): ApiError =>
  new ApiError(
    404,
    'NAMESPACE_NOT_FOUND',
    `namespace "${namespace}" is not served here (GET /v1/namespaces lists those that are)`,
    'namespace',
  );

export const unavailable = (message: string, retryAfter = 1): ApiError =>
  new ApiError(503, 'UNAVAILABLE', message, undefined, retryAfter);

/**
 * A durable counter's count outside what a JSON number carries exactly. Its events are all kept; the count comes
 * back into range with a ClearCount or deltas of the other sign.
 */
export const countOutOfRange = (counter: string, count: bigint): ApiError =>
  new ApiError(
    409,
    'COUNT_OUT_OF_RANGE',
    `the count of ${counter} is ${count}, outside ±${Number.MAX_SAFE_INTEGER} (the integers a JSON number carries exactly); ` +
      'ClearCount it or add deltas that bring it back',
    'counter_name',
  );
