import { intFromEnv, parseInteger } from './env';

describe('settings from the environment', () => {
  const range = { min: 1, max: 100 };

  it('takes the fallback when unset or empty', () => {
    expect(intFromEnv({}, 'X_MS', 7, range)).toBe(7);
    expect(intFromEnv({ X_MS: ' ' }, 'X_MS', 7, range)).toBe(7);
  });

  it('takes an integer in range', () => {
    expect(intFromEnv({ X_MS: '100' }, 'X_MS', 7, range)).toBe(100);
    expect(intFromEnv({ X_MS: '1' }, 'X_MS', 7, range)).toBe(1);
  });

  it.each(['abc', '2.5', '0', '101', '-3', 'NaN', '1e9'])('refuses "%s", naming the setting and the range', (raw) => {
    expect(() => intFromEnv({ X_MS: raw }, 'X_MS', 7, range)).toThrow(
      `X_MS must be an integer from 1 to 100, got "${raw}"`,
    );
  });

  it('names a flag the way the caller says', () => {
    expect(() => parseInteger('x', 5, '--port', 0, 65535)).toThrow(
      '--port must be an integer from 0 to 65535, got "x"',
    );
  });
});
