import {
  CountCorruptError,
  CountOutOfRangeError,
  DeltaOutOfRangeError,
  EventTimeRefusedError,
  NamespaceNotFoundError,
  UnavailableError,
} from '../errors';

/** How the API answers an error: the body {error: {code, message, field?}}, and Retry-After for 503s. */
export interface ErrorReply {
  status: number;
  code: string;
  message: string;
  field?: string;
  /** Seconds. */
  retryAfter?: number;
}

interface Answer {
  status: number;
  code: string;
  /** The request field at fault, when it is always the same one. */
  field?: string;
}

/**
 * Errors about the request itself, raised by the HTTP layer (the body, the route): the answer for each kind.
 */
const REQUEST_ERRORS = {
  INVALID_ARGUMENT: { status: 400, code: 'INVALID_ARGUMENT' },
  INVALID_JSON: { status: 400, code: 'INVALID_JSON' },
  REQUEST_ABORTED: { status: 400, code: 'REQUEST_ABORTED' },
  UNAUTHENTICATED: { status: 401, code: 'UNAUTHENTICATED' },
  PERMISSION_DENIED: { status: 403, code: 'PERMISSION_DENIED' },
  NOT_FOUND: { status: 404, code: 'NOT_FOUND' },
  METHOD_NOT_ALLOWED: { status: 405, code: 'METHOD_NOT_ALLOWED' },
  PAYLOAD_TOO_LARGE: { status: 413, code: 'PAYLOAD_TOO_LARGE' },
  UNSUPPORTED_ENCODING: { status: 415, code: 'UNSUPPORTED_ENCODING' },
  INTERNAL: { status: 500, code: 'INTERNAL' },
} as const satisfies Record<string, Answer>;

export type RequestErrorKind = keyof typeof REQUEST_ERRORS;

/** An error about the request (not the counters), answered as REQUEST_ERRORS says for its kind. */
export class RequestError extends Error {
  constructor(
    readonly kind: RequestErrorKind,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/**
 * The domain errors (runtime/errors.ts) and their answers, one status per code. COUNT_OUT_OF_RANGE is a 409 for both
 * counter kinds: the request is well formed, the counter's value refuses it (a BestEffort add that would leave the
 * range is refused and changes nothing; a durable counter's stored count is out of range).
 */
const DOMAIN_ERRORS: readonly (readonly [abstract new (...args: never[]) => Error, Answer])[] = [
  [NamespaceNotFoundError, { status: 404, code: 'NAMESPACE_NOT_FOUND', field: 'namespace' }],
  [EventTimeRefusedError, { status: 400, code: 'INVALID_ARGUMENT', field: 'idempotency_token.generation_time' }],
  [DeltaOutOfRangeError, { status: 409, code: 'COUNT_OUT_OF_RANGE', field: 'delta' }],
  [CountOutOfRangeError, { status: 409, code: 'COUNT_OUT_OF_RANGE', field: 'counter_name' }],
  [CountCorruptError, { status: 409, code: 'COUNT_CORRUPT', field: 'counter_name' }],
  [UnavailableError, { status: 503, code: 'UNAVAILABLE' }],
];

/** Every answer the API gives for an error, for the OpenAPI document and tests. */
export const ERROR_ANSWERS: readonly Answer[] = [...Object.values(REQUEST_ERRORS), ...DOMAIN_ERRORS.map(([, a]) => a)];

/** The reply for an error the API knows, or undefined for anything else (a bug: the caller logs it, answers 500). */
export function errorReply(err: RequestError): ErrorReply;
export function errorReply(err: unknown): ErrorReply | undefined;
export function errorReply(err: unknown): ErrorReply | undefined {
  if (err instanceof RequestError) {
    const { status, code } = REQUEST_ERRORS[err.kind];
    return { status, code, message: err.message, ...(err.field ? { field: err.field } : {}) };
  }
  for (const [type, answer] of DOMAIN_ERRORS) {
    if (!(err instanceof type)) continue;
    return {
      ...answer,
      message: err.message,
      ...(err instanceof UnavailableError ? { retryAfter: err.retryAfterSeconds } : {}),
    };
  }
  return undefined;
}

/** What a client sees for an error no one expected; the details go to the log only. */
export const INTERNAL_ERROR: ErrorReply = {
  ...REQUEST_ERRORS.INTERNAL,
  message: 'internal error; see the runtime log',
};
