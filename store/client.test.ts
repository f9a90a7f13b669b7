import { errors, types } from 'cassandra-driver';
import { isRefused, isUnavailable } from './client';

const responseError = (code: number): Error => new errors.ResponseError(code, 'from the server');

describe('isUnavailable (answer 503, not 500)', () => {
  it.each([
    ['unavailable', types.responseErrorCodes.unavailableException],
    ['write timeout', types.responseErrorCodes.writeTimeout],
    ['read timeout', types.responseErrorCodes.readTimeout],
    ['overloaded', types.responseErrorCodes.overloaded],
    ['read failure', types.responseErrorCodes.readFailure],
    ['write failure', types.responseErrorCodes.writeFailure],
    ['bootstrapping', types.responseErrorCodes.isBootstrapping],
  ])('treats a server %s as unavailable', (_name, code) => {
    expect(isUnavailable(responseError(code))).toBe(true);
  });

  it('treats an unreachable cluster and a client-side timeout as unavailable', () => {
    expect(isUnavailable(new errors.NoHostAvailableError({}))).toBe(true);
    expect(isUnavailable(new errors.OperationTimedOutError('timed out'))).toBe(true);
  });

  it('does not hide bugs: a syntax or invalid-query error is not unavailability', () => {
    expect(isUnavailable(responseError(types.responseErrorCodes.syntaxError))).toBe(false);
    expect(isUnavailable(responseError(types.responseErrorCodes.invalid))).toBe(false);
    expect(isUnavailable(new TypeError('x is undefined'))).toBe(false);
  });
});

describe('isRefused (the statement itself is refused: do not retry it in a loop)', () => {
  it('is true for syntax, invalid, configuration and permission errors, and not for unavailability', () => {
    const codes = types.responseErrorCodes;
    for (const code of [codes.syntaxError, codes.invalid, codes.configError, codes.unauthorized]) {
      expect(isRefused(responseError(code))).toBe(true);
    }
    expect(isRefused(responseError(codes.unavailableException))).toBe(false);
    expect(isRefused(new errors.NoHostAvailableError({}))).toBe(false);
  });
});
