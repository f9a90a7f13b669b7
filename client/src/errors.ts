import type { components } from './openapi-types';

export type ErrorBody = components['schemas']['Error'];

/** Every error the client throws. `code` is the API's error code, or the client's own for failures it saw itself. */
export class TallyError extends Error {
  /**
   * For a failed mutation, the token its attempts carried: sending the same call again with it (while the accept
   * window lasts) cannot count it twice.
   */
  idempotencyToken?: { token: string; generation_time: string };

  constructor(
    message: string,
    /** The API's code (INVALID_ARGUMENT, UNAVAILABLE, ...) or CONNECTION_ERROR, TIMEOUT, ACCEPT_WINDOW_EXCEEDED, ... */
    readonly code: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An error answer of the API: {error: {code, message, field?}} with its HTTP status. */
export class TallyApiError extends TallyError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    /** The request field at fault, dotted (idempotency_token.generation_time). */
    readonly field?: string,
  ) {
    super(`${status} ${code}: ${message}`, code);
  }
}

/** 400 INVALID_ARGUMENT or INVALID_JSON: the request is wrong; `field` names what. */
export class InvalidArgumentError extends TallyApiError {}
/** 404 NAMESPACE_NOT_FOUND: this runtime does not serve the namespace. */
export class NamespaceNotFoundError extends TallyApiError {}
/** 404 NOT_FOUND or 405 METHOD_NOT_ALLOWED: no such operation (a client and a runtime of different versions). */
export class RouteNotFoundError extends TallyApiError {}
/** 409 COUNT_OUT_OF_RANGE: the count would leave ±(2^53 − 1); nothing was changed by this call. */
export class CountOutOfRangeError extends TallyApiError {}
/** 409 COUNT_CORRUPT: the stored BestEffort value is not a count Tally wrote; ClearCount resets it. */
export class CountCorruptError extends TallyApiError {}
/** 413 PAYLOAD_TOO_LARGE: the body is over the runtime's limit (16 KiB). */
export class PayloadTooLargeError extends TallyApiError {}
/** 415 UNSUPPORTED_ENCODING: a compressed body. */
export class UnsupportedEncodingError extends TallyApiError {}
/** 401 or 403: the bearer token is missing, expired or not allowed. */
export class UnauthorizedError extends TallyApiError {}
/** 500 or any other status: a fault of the runtime, not retried. */
export class ServerError extends TallyApiError {}

/** 503 UNAVAILABLE: a store the call needs is down; retried (after Retry-After) while the accept window allows. */
export class UnavailableError extends TallyApiError {
  constructor(
    status: number,
    code: string,
    message: string,
    field: string | undefined,
    /** The Retry-After header, in ms, when the answer had a valid one. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(status, code, message, field);
  }
}

/** No answer: the connection was refused, reset or closed. `sent` is false when the request surely never left. */
export class ConnectionError extends TallyError {
  constructor(
    message: string,
    readonly sent: boolean,
    cause: unknown,
  ) {
    super(message, 'CONNECTION_ERROR', { cause });
  }
}

/** No answer within the attempt timeout. The call may have been applied. */
export class RequestTimeoutError extends TallyError {
  constructor(message: string) {
    super(message, 'TIMEOUT');
  }
}

/** The runtime answered something that is not the API's JSON (a proxy's error page, say). */
export class UnexpectedResponseError extends TallyError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message, 'UNEXPECTED_RESPONSE');
  }
}

/**
 * A mutation gave up because another attempt could no longer reach the runtime within the namespace's accept window:
 * the server would refuse its token as too old. The mutation may have been counted (once: every attempt carried the
 * same token) or not; `lastError` is how the last attempt ended.
 */
export class AcceptWindowExceededError extends TallyError {
  constructor(
    message: string,
    readonly attempts: number,
    readonly token: { token: string; generation_time: string },
    readonly lastError: TallyError,
    /** False when no attempt can have been applied (every one was refused before it was sent, or answered no). */
    readonly maybeCounted: boolean,
  ) {
    super(message, 'ACCEPT_WINDOW_EXCEEDED', { cause: lastError });
  }
}

/** A read or listing gave up after retrying for its time budget; `lastError` is how the last attempt ended. */
export class RetriesExhaustedError extends TallyError {
  constructor(
    message: string,
    readonly attempts: number,
    readonly lastError: TallyError,
  ) {
    super(message, 'RETRIES_EXHAUSTED', { cause: lastError });
  }
}

type ApiErrorClass = new (status: number, code: string, message: string, field?: string) => TallyApiError;

const BY_CODE: Record<string, ApiErrorClass> = {
  INVALID_ARGUMENT: InvalidArgumentError,
  INVALID_JSON: InvalidArgumentError,
  REQUEST_ABORTED: InvalidArgumentError,
  NAMESPACE_NOT_FOUND: NamespaceNotFoundError,
  NOT_FOUND: RouteNotFoundError,
  METHOD_NOT_ALLOWED: RouteNotFoundError,
  COUNT_OUT_OF_RANGE: CountOutOfRangeError,
  COUNT_CORRUPT: CountCorruptError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  UNSUPPORTED_ENCODING: UnsupportedEncodingError,
};

/** The typed error for an API error answer; by code, else by status (a code this client does not know yet). */
export function apiError(status: number, body: ErrorBody, retryAfterMs: number | undefined): TallyApiError {
  const { code, message, field } = body.error;
  if (status === 503) return new UnavailableError(status, code, message, field, retryAfterMs);
  const known = BY_CODE[code];
  if (known) return new known(status, code, message, field);
  if (status === 401 || status === 403) return new UnauthorizedError(status, code, message, field);
  if (status === 404) return new RouteNotFoundError(status, code, message, field);
  if (status >= 400 && status < 500) return new InvalidArgumentError(status, code, message, field);
  return new ServerError(status, code, message, field);
}

/**
 * Whether an attempt that ended so may have been applied by the runtime. A refused connection never carried the
 * request; a 503 may follow a store write that timed out but happened, so it counts as maybe applied.
 */
export function mayHaveBeenApplied(err: TallyError): boolean {
  if (err instanceof ConnectionError) return err.sent;
  return err instanceof RequestTimeoutError || err instanceof UnavailableError;
}

/** Whether another attempt may succeed: unavailability, timeouts and connection errors. */
export function isRetryable(err: TallyError): boolean {
  return err instanceof UnavailableError || err instanceof RequestTimeoutError || err instanceof ConnectionError;
}
