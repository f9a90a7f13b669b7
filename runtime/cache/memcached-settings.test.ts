import { cacheSettingsFromEnv } from './memcached';

describe('memcached settings from the environment', () => {
  it('has defaults and no cache without MEMCACHED_SERVERS', () => {
    expect(cacheSettingsFromEnv({})).toBeUndefined();
    expect(cacheSettingsFromEnv({ MEMCACHED_SERVERS: 'm:11211' })).toEqual({
      servers: 'm:11211',
      timeoutMs: 250,
      cooldownMs: 2000,
    });
  });

  // A NaN cool-down used to leave the cache "cooling down" for ever (Date.now() >= NaN is never true).
  it.each([
    ['MEMCACHED_COOLDOWN_MS', 'abc', 'MEMCACHED_COOLDOWN_MS must be an integer from 0 to 600000, got "abc"'],
    ['MEMCACHED_TIMEOUT_MS', '0', 'MEMCACHED_TIMEOUT_MS must be an integer from 1 to 60000, got "0"'],
  ])('refuses %s=%s at start', (name, value, message) => {
    expect(() => cacheSettingsFromEnv({ MEMCACHED_SERVERS: 'm:11211', [name]: value })).toThrow(message);
  });
});
