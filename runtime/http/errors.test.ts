import {
  CountCorruptError,
  CountOutOfRangeError,
  DeltaOutOfRangeError,
  EventTimeRefusedError,
  NamespaceNotFoundError,
  UnavailableError,
} from '../errors';
import { ERROR_ANSWERS, errorReply, INTERNAL_ERROR, RequestError } from './errors';

describe('the error table', () => {
  it('gives every code exactly one status', () => {
    const statuses = new Map<string, Set<number>>();
    for (const { code, status } of ERROR_ANSWERS) statuses.set(code, (statuses.get(code) ?? new Set()).add(status));
    expect(Object.fromEntries([...statuses].map(([code, s]) => [code, [...s].sort()]))).toEqual({
      INVALID_ARGUMENT: [400],
      INVALID_JSON: [400],
      REQUEST_ABORTED: [400],
      UNAUTHENTICATED: [401],
      PERMISSION_DENIED: [403],
      NOT_FOUND: [404],
      METHOD_NOT_ALLOWED: [405],
      NAMESPACE_NOT_FOUND: [404],
      COUNT_OUT_OF_RANGE: [409],
      COUNT_CORRUPT: [409],
      PAYLOAD_TOO_LARGE: [413],
      UNSUPPORTED_ENCODING: [415],
      INTERNAL: [500],
      UNAVAILABLE: [503],
    });
  });

  it('answers each domain error with its status, code, field and Retry-After', () => {
    expect(errorReply(new NamespaceNotFoundError('orders'))).toEqual({
      status: 404,
      code: 'NAMESPACE_NOT_FOUND',
      field: 'namespace',
      message: 'namespace "orders" is not served here (GET /v1/namespaces lists those that are)',
    });
    expect(errorReply(new UnavailableError('Cassandra is unavailable', { retryAfterSeconds: 5 }))).toEqual({
      status: 503,
      code: 'UNAVAILABLE',
      message: 'Cassandra is unavailable',
      retryAfter: 5,
    });
    expect(errorReply(new UnavailableError('memcached is unavailable'))).toMatchObject({ retryAfter: 1 });
    expect(errorReply(new EventTimeRefusedError('too old'))).toEqual({
      status: 400,
      code: 'INVALID_ARGUMENT',
      field: 'idempotency_token.generation_time',
      message: 'too old',
    });
    expect(errorReply(new DeltaOutOfRangeError(5))).toMatchObject({
      status: 409,
      code: 'COUNT_OUT_OF_RANGE',
      field: 'delta',
    });
    expect(errorReply(new CountOutOfRangeError('c', 2n ** 60n))).toMatchObject({
      status: 409,
      code: 'COUNT_OUT_OF_RANGE',
      field: 'counter_name',
      message: expect.stringContaining(`the count of c is ${2n ** 60n}, outside`) as unknown,
    });
    expect(errorReply(new CountCorruptError('c', 'the value at k is not a count'))).toEqual({
      status: 409,
      code: 'COUNT_CORRUPT',
      field: 'counter_name',
      message: 'the stored value of c cannot be counted on (the value at k is not a count); ClearCount resets it',
    });
  });

  it('answers a request error by its kind, with the field when it names one', () => {
    expect(errorReply(new RequestError('PAYLOAD_TOO_LARGE', 'too big'))).toEqual({
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
      message: 'too big',
    });
    expect(errorReply(new RequestError('INVALID_ARGUMENT', 'delta must be integer', 'delta'))).toEqual({
      status: 400,
      code: 'INVALID_ARGUMENT',
      message: 'delta must be integer',
      field: 'delta',
    });
  });

  it('knows nothing else: a bug is the caller’s to log and answer with INTERNAL', () => {
    expect(errorReply(new Error('undefined is not a function'))).toBeUndefined();
    expect(errorReply('thrown string')).toBeUndefined();
    expect(INTERNAL_ERROR).toEqual({ status: 500, code: 'INTERNAL', message: 'internal error; see the runtime log' });
  });

  it('says whether the same call may succeed later', () => {
    expect(new UnavailableError('x').retryable).toBe(true);
    for (const err of [
      new NamespaceNotFoundError('n'),
      new EventTimeRefusedError('x'),
      new CountOutOfRangeError('c', 0n),
      new DeltaOutOfRangeError(1),
    ])
      expect(err.retryable).toBe(false);
  });
});
